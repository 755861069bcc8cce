//! `GET /admin/clv/fit?site=&calibration_end=YYYY-MM-DD`: fits the lifetime-value models
//! ([`tailor_core::clv`]) on a site's customers as the store holds them (spend per purchase day, kept
//! by the processor) and answers the parameters with the customer counts. `tailor clv fit` prints it.
//! When a model cannot be fitted, or the site has fewer customers than the processor waits for
//! (`processor.min_customers_for_fit`), `notes` says so in words instead of leaving bare nulls.
//!
//! The read is the processor's own (`crate::models::load_customers`): chunked, one
//! pipelined round trip per thousand customers.

use super::Admin;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::HashMap;
use tailor_core::clv::{BgNbd, GammaGamma};
use tailor_infra::api::{bad, ApiError};

const DAY_MS: i64 = 86_400_000;

/// The fitted parameters and what they were fitted on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Fit {
    pub site_id: String,
    pub calibration_end: NaiveDate,
    /// Customers with a first purchase on or before `calibration_end`.
    pub customers: usize,
    /// Of those, customers with at least one repeat purchase (the Gamma-Gamma population).
    pub repeat_customers: usize,
    /// Purchase days of every customer, whole history (for progress checks after an import).
    pub purchase_days: usize,
    pub r: Option<f64>,
    pub alpha: Option<f64>,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub p: Option<f64>,
    pub q: Option<f64>,
    pub gamma: Option<f64>,
    /// Why parameters are missing or not used yet, for people.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Fits BG/NBD and Gamma-Gamma on the site's customers as the store holds them.
#[utoipa::path(get, path = "/admin/clv/fit", tag = "insights",
    params(
        ("site" = String, Query, description = "the site id"),
        ("calibration_end" = Option<String>, Query, description = "end of the calibration period, YYYY-MM-DD (default today)")),
    responses(
        (status = 200, description = "the parameters (null when not fitted, with `notes` saying why)", body = Fit),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn fit_handler(
    State(r): State<Admin>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match r.fit_clv(&q).await {
        Ok(f) => Json(f).into_response(),
        Err(e) => e.into_response(),
    }
}

impl Admin {
    pub async fn fit_clv(&self, q: &HashMap<String, String>) -> Result<Fit, ApiError> {
        let site = self.site(q)?;
        let end = match q.get("calibration_end").filter(|v| !v.is_empty()) {
            Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|e| bad("calibration_end", format!("expected YYYY-MM-DD: {e}")))?,
            None => chrono::Utc::now().date_naive(),
        };
        let end_day = end
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis()
            .div_euclid(DAY_MS);
        let (summaries, purchase_days) =
            crate::models::load_customers(self.store.as_ref(), &self.keys, &site, end_day).await?;
        let bg = BgNbd::fit(&summaries);
        let gg = GammaGamma::fit(&summaries);
        let customers = summaries.len();
        let repeat_customers = summaries.iter().filter(|c| c.x > 0.0).count();
        let min = self.config.processor.min_customers_for_fit as usize;
        let mut notes = Vec::new();
        if customers < min {
            notes.push(format!(
                "{customers} customers bought on or before {end}, fewer than \
                 processor.min_customers_for_fit ({min}): the processor does not fit the site's \
                 lifetime-value models until it has as many"
            ));
        }
        if bg.is_none() {
            notes.push(format!(
                "BG/NBD (r, alpha, a, b) not fitted: too few customers by {end}, or none with a \
                 repeat purchase ({customers} customers, {repeat_customers} repeat)"
            ));
        }
        if gg.is_none() {
            notes.push(format!(
                "Gamma-Gamma (p, q, gamma) not fitted: too few repeat customers with spend by {end} \
                 ({repeat_customers})"
            ));
        }
        Ok(Fit {
            site_id: site.to_string(),
            calibration_end: end,
            customers,
            repeat_customers,
            purchase_days,
            r: bg.map(|m| m.r),
            alpha: bg.map(|m| m.alpha),
            a: bg.map(|m| m.a),
            b: bg.map(|m| m.b),
            p: gg.map(|m| m.p),
            q: gg.map(|m| m.q),
            gamma: gg.map(|m| m.gamma),
            notes,
        })
    }
}
