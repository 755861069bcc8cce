//! What a client may send: every field optional and loosely typed (see the module docs of `event`).

use super::{Campaign, ErrorKind, EventType, FieldError};
use serde::{Deserialize, Serialize};

/// What a client may send; see the module docs.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawEvent {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub event_id: Option<String>,
    pub site_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub member_id: Option<String>,
    pub session_id: Option<String>,
    pub timestamp: Option<String>,
    /// When the client sent the request, by its own clock: with `timestamp`, corrects clock skew.
    pub sent_at: Option<String>,
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub title: Option<String>,
    pub item_id: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub offer_id: Option<String>,
    pub quantity: Option<u32>,
    pub price: Option<f64>,
    pub dwell_ms: Option<u64>,
    pub traits: Option<serde_json::Map<String, serde_json::Value>>,
    pub order: Option<RawOrder>,
    pub previous_id: Option<String>,
    pub slot: Option<String>,
    pub item_ids: Option<Vec<String>>,
    /// A campaign offer's token (offer impressions and clicks).
    pub token: Option<String>,
    pub name: Option<String>,
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
    /// UTM parameters when the tracker reports them apart from the URL (Segment `context.campaign`).
    pub campaign: Option<Campaign>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawOrder {
    pub id: Option<String>,
    pub revenue: Option<f64>,
    pub currency: Option<String>,
    pub lines: Option<Vec<RawLine>>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawLine {
    pub item_id: Option<String>,
    pub category: Option<String>,
    pub brand: Option<String>,
    pub price: Option<f64>,
    pub quantity: Option<u32>,
}

impl RawEvent {
    /// Parses one JSON value into a raw event, naming the offending path on a type error.
    pub fn from_json(value: serde_json::Value) -> Result<RawEvent, FieldError> {
        Self::from_json_ref(&value)
    }

    /// [`RawEvent::from_json`] leaving the value to the caller (who may still need it whole, to
    /// dead-letter the event as it came).
    pub fn from_json_ref(value: &serde_json::Value) -> Result<RawEvent, FieldError> {
        if !value.is_object() {
            return Err(FieldError::new(
                ErrorKind::Malformed,
                "$",
                "must be a JSON object",
            ));
        }
        serde_path_to_error::deserialize(value).map_err(FieldError::from_path_error)
    }

    /// A raw event of the given type with nothing else set (for protocol mappings to fill in).
    pub fn of_type(kind: EventType) -> RawEvent {
        RawEvent {
            kind: Some(kind.as_str().to_string()),
            ..RawEvent::default()
        }
    }
}
