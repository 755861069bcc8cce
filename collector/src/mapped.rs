//! The common output of every wire format the collector speaks (Tailor's JSON API, Snowplow, Segment):
//! one entry per event in the request, either a raw event ready for validation or the reason it could
//! not be mapped, always with the event's own raw payload so a rejection can be dead-lettered verbatim.

use tailor_core::event::{FieldError, RawEvent};

/// One event of a request, mapped to Tailor's raw event shape.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// Position in the request's batch (0 for a single event).
    pub index: usize,
    /// The site, when the request resolved one (app id, write key or `site_id`).
    pub site_id: Option<String>,
    /// This event's payload as received: JSON text, or the query string of a Snowplow GET.
    pub payload: String,
    pub result: Result<RawEvent, FieldError>,
}
