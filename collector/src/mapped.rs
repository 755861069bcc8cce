//! The common output of every wire format the collector speaks (Tailor's JSON API, Snowplow, Segment):
//! one entry per event in the request, either a raw event ready for validation or the reason it could
//! not be mapped, always with the event's own raw payload so a rejection can be dead-lettered verbatim.

use serde_json::Value;
use tailor_core::event::{ErrorKind, FieldError, RawEvent};

/// One event of a request, mapped to Tailor's raw event shape.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// Position in the request's batch (0 for a single event).
    pub index: usize,
    /// The site, when the request resolved one (app id, write key or `site_id`).
    pub site_id: Option<String>,
    /// This event's payload as received: JSON text, or the query string of a Snowplow GET.
    pub payload: Payload,
    pub result: Result<RawEvent, FieldError>,
    /// The user agent the event itself reports (the shopper's browser, relayed by a server): Snowplow
    /// `ua`, Segment `context.userAgent`, Tailor `context.user_agent`. See `enrich` for how it is used.
    pub user_agent: Option<String>,
}

/// An event's payload as received, kept for its dead letter: text, or a JSON element of a batch,
/// which becomes text only if the event is dead-lettered (most never are).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Text(String),
    Json(Value),
}

impl Payload {
    /// The payload as the dead letter records it.
    pub fn into_text(self) -> String {
        match self {
            Payload::Text(t) => t,
            Payload::Json(v) => v.to_string(),
        }
    }
}

/// A number that a tracker may send as a JSON number or as a string (Snowplow sends every value as a
/// string); `field` names it in the error.
pub fn number(v: Option<&Value>, field: &str) -> Result<Option<f64>, FieldError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            FieldError::new(
                ErrorKind::InvalidType,
                field,
                format!("must be a number, got {s:?}"),
            )
        }),
        Some(other) => Err(FieldError::new(
            ErrorKind::InvalidType,
            field,
            format!("must be a number, got {other}"),
        )),
    }
}

/// A non-negative whole number (a quantity), as [`number`] accepts it.
pub fn count(v: Option<&Value>, field: &str) -> Result<Option<u32>, FieldError> {
    match number(v, field)? {
        None => Ok(None),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => Ok(Some(n as u32)),
        Some(n) => Err(FieldError::invalid(
            field,
            format!("must be a whole number, got {n}"),
        )),
    }
}
