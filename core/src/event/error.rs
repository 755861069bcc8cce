//! Why an event was rejected: the field, the reason and a stable kind.

use serde::{Deserialize, Serialize};

/// Why a field was rejected, as a stable label for metrics and dead-letter filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    MissingField,
    InvalidType,
    InvalidValue,
    UnknownType,
    UnknownSite,
    /// The request names a site it may not write to (CORS origin, Snowplow app id, Segment write key).
    Forbidden,
    /// A server-side request without the `collect` key a closed site needs (`crate::access`).
    Unauthorized,
    /// The payload is not in the wire format at all (bad JSON, bad base64, bad protocol envelope).
    Malformed,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MissingField => "missing_field",
            ErrorKind::InvalidType => "invalid_type",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::UnknownType => "unknown_type",
            ErrorKind::UnknownSite => "unknown_site",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Malformed => "malformed",
        }
    }
}

/// A rejected field: which one (a JSON path such as `order.lines[0].price`), why, and the kind of error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
    pub kind: ErrorKind,
}

impl FieldError {
    pub fn new(kind: ErrorKind, field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
            kind,
        }
    }

    pub fn missing(field: impl Into<String>) -> Self {
        FieldError::new(ErrorKind::MissingField, field, "is required")
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError::new(ErrorKind::InvalidValue, field, reason)
    }

    /// The error of a typed deserialisation that tracked its path: an unknown field is named as
    /// the field itself (serde says which only in its message), any other error is an invalid type
    /// at the path.
    pub fn from_path_error(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        match message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((name, _)) => FieldError::invalid(name, message.clone()),
            None => FieldError::new(ErrorKind::InvalidType, path, message),
        }
    }

    /// The metric label of this error's kind.
    pub fn metric_reason(&self) -> &'static str {
        self.kind.as_str()
    }
}
