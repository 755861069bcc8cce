//! The event schema (version 1) and its validation at the edge.
//!
//! Two shapes exist on purpose. [`RawEvent`] is what a client may send: every field optional and loosely
//! typed, so that a bad payload yields a precise `field: reason` error instead of a generic serde message.
//! [`Event`] is what the collector writes to the bus once validation and enrichment are done: every
//! invariant holds (ids valid, type-specific fields present, amounts finite), so the processor trusts it.
//! The wire format of both is the same snake_case JSON, documented in `docs/events.md`.
//!
//! The files: `limits` (the documented bounds), `kind` ([`EventType`]), `schema` ([`Event`] and its
//! body), `context` (what the collector adds), `error` ([`FieldError`]), `raw` ([`RawEvent`]),
//! `fields` (one checker per kind of field), `validate` (raw → event, clock skew), `order`
//! (purchases).

mod context;
mod error;
mod fields;
mod kind;
mod limits;
mod order;
mod raw;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

pub use context::{Campaign, Context, DeviceClass, ReferrerClass, Source};
pub use error::{ErrorKind, FieldError};
/// The field checkers the catalog and the rules share with events (same bounds, same errors).
pub(crate) use fields::{amount, bounded, parse_id, required, timestamp};
pub use kind::EventType;
pub use limits::*;
pub use raw::{RawEvent, RawLine, RawOrder};
pub use schema::{Event, EventBody, Order, OrderLine};
