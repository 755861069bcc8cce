//! One checker per kind of field, each naming the field in its error.

use super::{FieldError, MAX_QUANTITY, MAX_TEXT_LEN, MAX_URL_LEN};
use crate::ids::IdError;
use chrono::{DateTime, Utc};

pub(crate) fn required<T>(v: Option<T>, field: &str) -> Result<T, FieldError> {
    v.ok_or_else(|| FieldError::missing(field))
}

pub(crate) fn parse_id<T>(
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
pub(crate) fn bounded(
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

/// An amount of money from 0 to `max` (a finite number: NaN and infinities fail the range test).
pub(crate) fn amount(v: f64, field: &str, max: f64) -> Result<f64, FieldError> {
    if (0.0..=max).contains(&v) {
        Ok(v)
    } else {
        Err(FieldError::invalid(
            field,
            format!("must be a number from 0 to {max:e}"),
        ))
    }
}

/// A quantity from 1 to [`MAX_QUANTITY`], 1 when absent.
pub(super) fn quantity(v: Option<u32>, field: &str) -> Result<u32, FieldError> {
    match v {
        Some(q) if !(1..=MAX_QUANTITY).contains(&q) => Err(FieldError::invalid(
            field,
            format!("must be from 1 to {MAX_QUANTITY}"),
        )),
        q => Ok(q.unwrap_or(1)),
    }
}

pub(crate) fn timestamp(v: &str, field: &str) -> Result<DateTime<Utc>, FieldError> {
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
