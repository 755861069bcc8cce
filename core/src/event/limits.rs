//! The bounds validation enforces, documented in `docs/events.md`.

use chrono::Duration;

/// Version of the schema that [`Event`] serializes; bumped on any incompatible change.
pub const SCHEMA_VERSION: u16 = 1;
/// Longest accepted URL or referrer, in bytes.
pub const MAX_URL_LEN: usize = 4096;
/// Most traits an identify event may carry.
pub const MAX_TRAITS: usize = 64;
/// Most lines in one order.
pub const MAX_ORDER_LINES: usize = 500;
/// Longest dwell a single page ping may report (one day).
pub const MAX_DWELL_MS: u64 = 24 * 3600 * 1000;
/// How far in the future a client timestamp may lie before it is rejected as nonsense.
pub const MAX_FUTURE_SKEW: Duration = Duration::hours(24);
/// Longest page title, offer slot, custom event name or alias id, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Most items one offer impression may list.
pub const MAX_SLOT_ITEMS: usize = 100;
/// Most properties a custom event may carry.
pub const MAX_PROPERTIES: usize = 64;
