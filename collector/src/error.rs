//! Every way an ingest request can fail, and its HTTP answer, in one place.

use axum::extract::rejection::BytesRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tailor_core::event::FieldError;
use tailor_infra::http::error_with;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("request body exceeds the configured limit (collector.max_body_bytes)")]
    BodyTooLarge,
    #[error("could not read the request body: {0}")]
    BadBody(String),
    #[error("request body is not valid JSON: {0}")]
    NotJson(String),
    #[error("a batch must hold at least one event")]
    EmptyBatch,
    #[error("a batch may hold at most {max} events, got {got}")]
    TooManyEvents { got: usize, max: usize },
    /// Events that failed validation, by index in the batch (0 for a single event).
    #[error("{} invalid event(s); first: {}", .0.len(), .0[0].1)]
    Invalid(Vec<(usize, FieldError)>),
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
    fn reason(&self) -> &'static str {
        match self {
            IngestError::BodyTooLarge => "body_too_large",
            IngestError::BadBody(_) => "bad_body",
            IngestError::NotJson(_) => "not_json",
            IngestError::EmptyBatch => "empty_batch",
            IngestError::TooManyEvents { .. } => "too_many_events",
            IngestError::Invalid(_) => "invalid_event",
            IngestError::Unavailable(_) => "bus_unavailable",
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        metrics::counter!("tailor_collector_requests_rejected_total", "reason" => self.reason())
            .increment(1);
        let message = self.to_string();
        match self {
            IngestError::BodyTooLarge => error_with(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                message,
                None,
                vec![],
            ),
            IngestError::TooManyEvents { .. } => error_with(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_events",
                message,
                None,
                vec![],
            ),
            IngestError::BadBody(_) => {
                error_with(StatusCode::BAD_REQUEST, "bad_body", message, None, vec![])
            }
            IngestError::NotJson(_) => {
                error_with(StatusCode::BAD_REQUEST, "not_json", message, None, vec![])
            }
            IngestError::EmptyBatch => error_with(
                StatusCode::BAD_REQUEST,
                "empty_batch",
                message,
                None,
                vec![],
            ),
            IngestError::Invalid(errors) => {
                let field = Some(errors[0].1.field.clone());
                let details = errors
                    .iter()
                    .map(|(i, e)| serde_json::json!({"index": i, "field": e.field, "reason": e.reason}))
                    .collect();
                error_with(
                    StatusCode::BAD_REQUEST,
                    "invalid_event",
                    message,
                    field,
                    details,
                )
            }
            IngestError::Unavailable(_) => {
                let mut r = error_with(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    message,
                    None,
                    vec![],
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                r
            }
        }
    }
}
