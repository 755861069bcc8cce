//! Every way an ingest request can fail as a whole, and its HTTP answer, in one place.
//!
//! Per-event problems are not errors of the request: a batch with some bad events is accepted for its
//! good ones and lists the others (see [`crate::pipeline::Outcome`]). Only when nothing in the request
//! is usable, or the request itself is refused (size, auth, rate), is the answer an error.

use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tailor_core::event::{ErrorKind, FieldError};
use tailor_infra::http::error_with;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("request body exceeds the configured limit (collector.max_body_bytes)")]
    BodyTooLarge,
    #[error("could not read the request body: {0}")]
    BadBody(String),
    /// The body is not in the route's wire format (not JSON, bad protocol envelope, ...).
    #[error("{0}")]
    Malformed(String),
    #[error("a batch must hold at least one event")]
    EmptyBatch,
    #[error("a batch may hold at most {max} events, got {got}")]
    TooManyEvents { got: usize, max: usize },
    /// Every event of the request was rejected, by index in the batch (0 for a single event).
    #[error("{} invalid event(s); first: {}", .0.len(), .0[0].1)]
    Invalid(Vec<(usize, FieldError)>),
    /// A Segment request without a known write key.
    #[error("{0}")]
    Unauthorized(String),
    #[error("too many requests from this address; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("events could not be made durable: {0}")]
    Unavailable(String),
}

impl IngestError {
    pub fn from_body_rejection(r: BytesRejection) -> IngestError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            IngestError::BodyTooLarge
        } else {
            IngestError::BadBody(r.body_text())
        }
    }

    /// Label for `tailor_collector_requests_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::BodyTooLarge => "body_too_large",
            IngestError::BadBody(_) => "bad_body",
            IngestError::Malformed(_) => "malformed",
            IngestError::EmptyBatch => "empty_batch",
            IngestError::TooManyEvents { .. } => "too_many_events",
            IngestError::Invalid(_) => "invalid_event",
            IngestError::Unauthorized(_) => "unauthorized",
            IngestError::RateLimited { .. } => "rate_limited",
            IngestError::Unavailable(_) => "bus_unavailable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            IngestError::BodyTooLarge | IngestError::TooManyEvents { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::Invalid(errors) if all_of(errors, ErrorKind::Unauthorized) => {
                StatusCode::UNAUTHORIZED
            }
            IngestError::Invalid(errors) if all_of(errors, ErrorKind::Forbidden) => {
                StatusCode::FORBIDDEN
            }
            IngestError::BadBody(_)
            | IngestError::Malformed(_)
            | IngestError::EmptyBatch
            | IngestError::Invalid(_) => StatusCode::BAD_REQUEST,
            IngestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IngestError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Whether every rejection of a request is of `kind` (then the request as a whole is 401 or 403).
fn all_of(errors: &[(usize, FieldError)], kind: ErrorKind) -> bool {
    errors.iter().all(|(_, e)| e.kind == kind)
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        metrics::counter!("tailor_collector_requests_rejected_total", "reason" => self.reason())
            .increment(1);
        let status = self.status();
        let message = self.to_string();
        let (field, details) = match &self {
            IngestError::Invalid(errors) => (
                Some(errors[0].1.field.clone()),
                errors
                    .iter()
                    .map(|(i, e)| {
                        serde_json::json!({"index": i, "field": e.field, "reason": e.reason, "kind": e.kind})
                    })
                    .collect(),
            ),
            _ => (None, vec![]),
        };
        let mut r = error_with(status, self.reason(), message, field, details);
        let h = r.headers_mut();
        match &self {
            IngestError::Unavailable(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            IngestError::RateLimited { retry_after_secs } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            IngestError::Unauthorized(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tailor\""),
                );
            }
            IngestError::Invalid(_) if status == StatusCode::UNAUTHORIZED => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tailor\""),
                );
            }
            _ => {}
        }
        r
    }
}
