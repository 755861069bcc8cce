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

/// One field of a subject's state hash (`doc`: the whole document, `reco`: the recommendation
/// summary), read with `parse`, following an anonymous id's stitch (`stitched_to` reads it from the value) to the
/// member now holding its history: the subject it was found under and the value; `None` if never
/// seen. A value that does not parse is a store error (503), not a missing profile.
pub async fn stitched_field<T>(
    store: &dyn crate::store::Store,
    keys: &tailor_core::keys::KeySpace,
    site: &SiteId,
    subject: &tailor_core::Subject,
    field: &str,
    parse: fn(&str) -> Result<T, String>,
    stitched_to: fn(&T) -> Option<&String>,
) -> Result<Option<(tailor_core::Subject, T)>, ApiError> {
    use tailor_core::{MemberId, Subject};
    let mut subject = subject.clone();
    for _ in 0..2 {
        let raw = store
            .read(&[crate::store::Read::Field(
                keys.state(site, &subject),
                field.into(),
            )])
            .await?
            .pop()
            .and_then(|v| v.into_text());
        let Some(raw) = raw else { return Ok(None) };
        let value: T = parse(&raw).map_err(|e| {
            ApiError::Store(StoreError::Rejected(format!(
                "the {field} of {subject} does not parse: {e}"
            )))
        })?;
        match (&subject, stitched_to(&value)) {
            (Subject::Anonymous(_), Some(m)) => {
                subject = Subject::Member(
                    MemberId::parse(m.clone())
                        .map_err(|e| ApiError::Store(StoreError::Rejected(e.to_string())))?,
                );
            }
            _ => return Ok(Some((subject, value))),
        }
    }
    Ok(None)
}

/// A subject's state document, following an anonymous id's stitch to the member now holding its
/// history: the subject it was found under and the document; `None` if never seen.
pub async fn state_of(
    store: &dyn crate::store::Store,
    keys: &tailor_core::keys::KeySpace,
    site: &SiteId,
    subject: &tailor_core::Subject,
) -> Result<Option<(tailor_core::Subject, tailor_core::state::SubjectState)>, ApiError> {
    stitched_field(
        store,
        keys,
        site,
        subject,
        "doc",
        tailor_core::state::SubjectState::from_stored,
        |s: &tailor_core::state::SubjectState| s.stitched_to.as_ref(),
    )
    .await
}

/// The `limit` parameter: `default` when absent, else an integer from 1 to `max` (400 otherwise).
pub fn limit(q: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                bad(
                    "limit",
                    format!("must be an integer from 1 to {max}, got {l:?}"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_has_a_default_and_a_range() {
        let q = |v: &str| HashMap::from([("limit".to_string(), v.to_string())]);
        assert_eq!(limit(&HashMap::new(), 100, 1000).unwrap(), 100);
        assert_eq!(limit(&q("7"), 100, 1000).unwrap(), 7);
        for bad_value in ["0", "1001", "many", "-1"] {
            let e = limit(&q(bad_value), 100, 1000).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("limit: must be an integer from 1 to 1000"),
                "{e}"
            );
        }
    }
}
