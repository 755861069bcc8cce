//! The dead-letter record: a rejected event kept with its raw payload and the reason, so an operator can
//! inspect it and, once the cause is fixed (a site added, a tracker repaired), re-drive it.
//!
//! One record per rejected event, not per request: a batch with one bad event dead-letters that event
//! only. Records are written to `kafka.dead_letter_topic` and read back by `tailor dead-letters`.

use crate::event::{FieldError, Source};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A rejected event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Unique id of this record (UUIDv7); also the event id a re-driven event gets if it had none,
    /// so re-driving the same record twice still counts the event once.
    pub id: String,
    pub received_at: DateTime<Utc>,
    pub source: Source,
    /// The HTTP path the payload was sent to (`/v1/events`, `/com.snowplowanalytics.snowplow/tp2`, ...).
    pub route: String,
    /// The site, when the request named a known one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<String>,
    /// Stable label of the first error (`missing_field`, `unknown_site`, ...), for counting and filters.
    pub reason: String,
    pub errors: Vec<FieldError>,
    /// Position of the event in its request's batch.
    pub index: usize,
    /// The event as received: JSON for the Tailor and Segment APIs and Snowplow POSTs, the query
    /// string for Snowplow GETs. Kept verbatim so a re-drive sees exactly what the client sent.
    pub payload: String,
    /// The request's `User-Agent`, so a re-drive enriches the event as the original request would have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The client address as `collector.ip_mode` keeps it (never raw unless configured so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl DeadLetter {
    /// A record for one rejected event (or a whole unusable body, at index 0).
    pub fn new(
        source: Source,
        route: &str,
        index: usize,
        payload: String,
        error: FieldError,
        received_at: DateTime<Utc>,
    ) -> DeadLetter {
        DeadLetter {
            id: uuid::Uuid::now_v7().to_string(),
            received_at,
            source,
            route: route.to_string(),
            site_id: None,
            reason: error.metric_reason().to_string(),
            errors: vec![error],
            index,
            payload,
            user_agent: None,
            ip: None,
        }
    }
}
