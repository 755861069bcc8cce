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
/// The earliest accepted event time, 1990-01-01T00:00:00Z (ms since the epoch): before the web, so
/// every real history import fits (CDNOW's purchases start in 1997), while a device clock reset to
/// year 1 (or a skew correction pushed there) is refused instead of stored.
pub const MIN_TIMESTAMP_MS: i64 = 631_152_000_000;
/// How far in the future a client timestamp may lie before it is rejected as nonsense.
pub const MAX_FUTURE_SKEW: Duration = Duration::hours(24);
/// Longest page title, offer slot, custom event name or alias id, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Most items one offer impression may list.
pub const MAX_SLOT_ITEMS: usize = 100;
/// Longest campaign offer token, in bytes.
pub const MAX_TOKEN_LEN: usize = 512;
/// Most properties a custom event may carry.
pub const MAX_PROPERTIES: usize = 64;
/// Highest unit price (`price` of an order line or a cart addition), in the currency's units. A
/// billion covers every real product in every currency (including those counted in thousands, such as
/// VND or IDR); more is a bug or an attack, and would let a handful of events dominate a site's sums.
pub const MAX_PRICE: f64 = 1e9;
/// Highest `quantity` of an order line or a cart addition.
pub const MAX_QUANTITY: u32 = 100_000;
/// Highest order total (`order.revenue`, given or summed from the lines).
pub const MAX_REVENUE: f64 = 1e12;
