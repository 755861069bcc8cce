//! One checker per kind of field, each naming the field in its error.

use super::{FieldError, MAX_TEXT_LEN, MAX_URL_LEN};
use crate::ids::IdError;
use chrono::{DateTime, Utc};

pub(super) fn required<T>(v: Option<T>, field: &str) -> Result<T, FieldError> {
    v.ok_or_else(|| FieldError::missing(field))
}

pub(super) fn parse_id<T>(
    v: Option<String>,
    field: &str,
    parse: impl Fn(String) -> Result<T, IdError>,
) -> Result<Option<T>, FieldError> {
    v.map(parse)
        .transpose()
        .map_err(|e| FieldError::invalid(field, e.to_string()))
}

pub(super) fn parse_url(v: Option<String>, field: &str) -> Result<Option<String>, FieldError> {
    bounded(v, field, MAX_URL_LEN)
}

/// An optional free-text field: empty means absent, longer than `max` bytes is an error.
pub(super) fn bounded(
    v: Option<String>,
    field: &str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match v {
        Some(u) if u.len() > max => Err(FieldError::invalid(
            field,
            format!("must be at most {max} bytes"),
        )),
        Some(u) if u.is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub(super) fn required_text(v: Option<String>, field: &str) -> Result<String, FieldError> {
    required(bounded(v, field, MAX_TEXT_LEN)?, field)
}

pub(super) fn amount(v: f64, field: &str) -> Result<f64, FieldError> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(FieldError::invalid(
            field,
            "must be a finite, non-negative number",
        ))
    }
}

pub(super) fn quantity(v: Option<u32>, field: &str) -> Result<u32, FieldError> {
    match v {
        Some(0) => Err(FieldError::invalid(field, "must be at least 1")),
        q => Ok(q.unwrap_or(1)),
    }
}

pub(super) fn timestamp(v: &str, field: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| FieldError::invalid(field, format!("must be RFC 3339: {e}")))
}

pub(super) fn small_map(
    v: Option<serde_json::Map<String, serde_json::Value>>,
    field: &str,
    max: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, FieldError> {
    let m = v.unwrap_or_default();
    if m.len() > max {
        return Err(FieldError::invalid(
            field,
            format!("must have at most {max} keys"),
        ));
    }
    Ok(m)
}
