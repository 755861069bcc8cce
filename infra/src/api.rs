//! What every JSON API over the store shares (recommendations and profiles, the catalog, rules and
//! campaigns, the mining admin API): the error type, mapped to HTTP in one place, and the parsing
//! of the `site` parameter every route takes.

use crate::http::error_with;
use crate::store::StoreError;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use tailor_core::config::Config;
use tailor_core::SiteId;

/// Query parameters as given.
pub type Params = Query<HashMap<String, String>>;

/// The APIs' errors.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{param}: {reason}")]
    BadParam { param: &'static str, reason: String },
    /// What was not found (`profile of m:42`, `catalog item tent-2p`, ...).
    #[error("no {0}")]
    NotFound(String),
    /// A definition (`segment "vip"`, `rule "x"`, `campaign "y"`) that the configuration file holds:
    /// the admin API may neither replace nor delete it, so the file stays the one source of truth (a
    /// change through the API would silently be undone, or hide the file's definition).
    #[error("{0} comes from the configuration file; change it there")]
    Configured(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A 400 naming the parameter.
pub fn bad(param: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::BadParam {
        param,
        reason: reason.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ApiError::BadParam { param, .. } => error_with(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                message,
                Some(param.into()),
                vec![],
            ),
            ApiError::NotFound(_) => {
                error_with(StatusCode::NOT_FOUND, "not_found", message, None, vec![])
            }
            ApiError::Configured(_) => {
                error_with(StatusCode::CONFLICT, "configured", message, None, vec![])
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "profile store read failed");
                error_with(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    message,
                    None,
                    vec![],
                )
            }
        }
    }
}

/// The site a request names (`raw`, the `site` parameter or field): required, valid and configured.
pub fn site(config: &Config, raw: Option<&str>) -> Result<SiteId, ApiError> {
    let raw = raw.ok_or_else(|| bad("site", "is required"))?;
    let site = SiteId::parse(raw.to_string()).map_err(|e| bad("site", e.to_string()))?;
    if !config.has_site(&site) {
        return Err(bad("site", format!("unknown site {raw:?}")));
    }
    Ok(site)
}
