//! The event schema (version 1) and its validation at the edge.
//!
//! Two shapes exist on purpose. [`RawEvent`] is what a client may send: every field optional and loosely
//! typed, so that a bad payload yields a precise `field: reason` error instead of a generic serde message.
//! [`Event`] is what the collector writes to the bus once validation and enrichment are done: every
//! invariant holds (ids valid, type-specific fields present, amounts finite), so the processor trusts it.
//! The wire format of both is the same snake_case JSON, documented in `docs/events.md`.

use crate::ids::{
    AnonymousId, Category, EventId, IdError, ItemId, MemberId, SessionId, SiteId, Subject,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

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

/// The kinds of event, as named on the wire (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PageView,
    Click,
    AddToCart,
    Purchase,
    Identify,
    PagePing,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::PageView,
        EventType::Click,
        EventType::AddToCart,
        EventType::Purchase,
        EventType::Identify,
        EventType::PagePing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PageView => "page_view",
            EventType::Click => "click",
            EventType::AddToCart => "add_to_cart",
            EventType::Purchase => "purchase",
            EventType::Identify => "identify",
            EventType::PagePing => "page_ping",
        }
    }

    fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub item_id: ItemId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// Unit price, in the order's currency.
    pub price: f64,
    pub quantity: u32,
}

/// A completed order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    /// Order total in `currency`; defaults to the sum of the lines when the client omits it.
    pub revenue: f64,
    /// ISO 4217 code, upper case.
    pub currency: String,
    pub lines: Vec<OrderLine>,
}

/// The type-specific part of an event, tagged by `type` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    PageView {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_id: Option<ItemId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<Category>,
    },
    Click {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_id: Option<ItemId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<Category>,
    },
    AddToCart {
        item_id: ItemId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<Category>,
        quantity: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        price: Option<f64>,
    },
    Purchase {
        order: Order,
    },
    Identify {
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        traits: serde_json::Map<String, serde_json::Value>,
    },
    PagePing {
        dwell_ms: u64,
    },
}

impl EventBody {
    pub fn event_type(&self) -> EventType {
        match self {
            EventBody::PageView { .. } => EventType::PageView,
            EventBody::Click { .. } => EventType::Click,
            EventBody::AddToCart { .. } => EventType::AddToCart,
            EventBody::Purchase { .. } => EventType::Purchase,
            EventBody::Identify { .. } => EventType::Identify,
            EventBody::PagePing { .. } => EventType::PagePing,
        }
    }
}

/// A validated, enriched event as it travels on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema_version: u16,
    pub event_id: EventId,
    pub site_id: SiteId,
    pub anonymous_id: AnonymousId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<MemberId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// When the event happened, by the client's clock (defaults to `received_at`).
    pub timestamp: DateTime<Utc>,
    /// When the collector received it.
    pub received_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        self.body.event_type()
    }

    /// Whose profile this event updates.
    pub fn subject(&self) -> Subject {
        match &self.member_id {
            Some(m) => Subject::Member(m.clone()),
            None => Subject::Anonymous(self.anonymous_id.clone()),
        }
    }

    /// The bus message key: one device's events share a partition, so a session stays in order.
    /// (Keying by member would split a visit at the moment of login.)
    pub fn partition_key(&self) -> String {
        format!("{}/{}", self.site_id, self.anonymous_id)
    }

    /// The item this event is about, if any.
    pub fn item(&self) -> Option<(&ItemId, Option<&Category>)> {
        match &self.body {
            EventBody::PageView {
                item_id: Some(i),
                category,
            }
            | EventBody::Click {
                item_id: Some(i),
                category,
            }
            | EventBody::AddToCart {
                item_id: i,
                category,
                ..
            } => Some((i, category.as_ref())),
            _ => None,
        }
    }
}

/// A rejected field: which one (a JSON path such as `order.lines[0].price`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A short, stable label for metrics (`missing_field`, `invalid_type`, ...), derived from the reason.
    pub fn metric_reason(&self) -> &'static str {
        let r = self.reason.as_str();
        if r.starts_with("is required") {
            "missing_field"
        } else if r.starts_with("invalid type") || r.starts_with("invalid value") {
            "invalid_type"
        } else if r.starts_with("unknown site") {
            "unknown_site"
        } else if r.starts_with("must be one of") {
            "unknown_type"
        } else {
            "invalid_value"
        }
    }
}

/// What a client may send; see the module docs.
#[derive(Debug, Default, Deserialize)]
pub struct RawEvent {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub event_id: Option<String>,
    pub site_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub member_id: Option<String>,
    pub session_id: Option<String>,
    pub timestamp: Option<String>,
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub item_id: Option<String>,
    pub category: Option<String>,
    pub quantity: Option<u32>,
    pub price: Option<f64>,
    pub dwell_ms: Option<u64>,
    pub traits: Option<serde_json::Map<String, serde_json::Value>>,
    pub order: Option<RawOrder>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawOrder {
    pub id: Option<String>,
    pub revenue: Option<f64>,
    pub currency: Option<String>,
    pub lines: Option<Vec<RawLine>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLine {
    pub item_id: Option<String>,
    pub category: Option<String>,
    pub price: Option<f64>,
    pub quantity: Option<u32>,
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, FieldError> {
    v.ok_or_else(|| FieldError::new(field, "is required"))
}

fn parse_id<T>(
    v: Option<String>,
    field: &str,
    parse: impl Fn(String) -> Result<T, IdError>,
) -> Result<Option<T>, FieldError> {
    v.map(parse)
        .transpose()
        .map_err(|e| FieldError::new(field, e.to_string()))
}

fn parse_url(v: Option<String>, field: &str) -> Result<Option<String>, FieldError> {
    match v {
        Some(u) if u.len() > MAX_URL_LEN => Err(FieldError::new(
            field,
            format!("must be at most {MAX_URL_LEN} bytes"),
        )),
        Some(u) if u.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn amount(v: f64, field: &str) -> Result<f64, FieldError> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(FieldError::new(
            field,
            "must be a finite, non-negative number",
        ))
    }
}

impl RawEvent {
    /// Parses one JSON value into a raw event, naming the offending path on a type error.
    pub fn from_json(value: serde_json::Value) -> Result<RawEvent, FieldError> {
        if !value.is_object() {
            return Err(FieldError::new("$", "must be a JSON object"));
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            FieldError::new(path, e.into_inner().to_string())
        })
    }

    /// Validates and completes the event: assigns an event id when absent, stamps `received_at`,
    /// defaults the timestamp, and checks the type-specific fields.
    pub fn validate(self, received_at: DateTime<Utc>) -> Result<Event, FieldError> {
        let kind = required(self.kind, "type")?;
        let kind = EventType::parse(&kind).ok_or_else(|| {
            FieldError::new(
                "type",
                format!(
                    "must be one of {}, got {kind:?}",
                    EventType::ALL.map(|t| t.as_str()).join(", ")
                ),
            )
        })?;
        let event_id =
            parse_id(self.event_id, "event_id", EventId::parse)?.unwrap_or_else(EventId::generate);
        let site_id = required(parse_id(self.site_id, "site_id", SiteId::parse)?, "site_id")?;
        let anonymous_id = required(
            parse_id(self.anonymous_id, "anonymous_id", AnonymousId::parse)?,
            "anonymous_id",
        )?;
        let member_id = parse_id(self.member_id, "member_id", MemberId::parse)?;
        let session_id = parse_id(self.session_id, "session_id", SessionId::parse)?;
        let timestamp = match self.timestamp {
            None => received_at,
            Some(t) => DateTime::parse_from_rfc3339(&t)
                .map_err(|e| FieldError::new("timestamp", format!("must be RFC 3339: {e}")))?
                .with_timezone(&Utc),
        };
        if timestamp > received_at + MAX_FUTURE_SKEW {
            return Err(FieldError::new(
                "timestamp",
                "lies more than 24 hours in the future",
            ));
        }
        let url = parse_url(self.url, "url")?;
        let referrer = parse_url(self.referrer, "referrer")?;
        let item_id = parse_id(self.item_id, "item_id", ItemId::parse)?;
        let category = parse_id(self.category, "category", Category::parse)?;

        let body = match kind {
            EventType::PageView => EventBody::PageView { item_id, category },
            EventType::Click => EventBody::Click { item_id, category },
            EventType::AddToCart => EventBody::AddToCart {
                item_id: required(item_id, "item_id")?,
                category,
                quantity: match self.quantity {
                    Some(0) => return Err(FieldError::new("quantity", "must be at least 1")),
                    q => q.unwrap_or(1),
                },
                price: self.price.map(|p| amount(p, "price")).transpose()?,
            },
            EventType::Purchase => EventBody::Purchase {
                order: validate_order(required(self.order, "order")?)?,
            },
            EventType::Identify => {
                if member_id.is_none() {
                    return Err(FieldError::new(
                        "member_id",
                        "is required for an identify event",
                    ));
                }
                let traits = self.traits.unwrap_or_default();
                if traits.len() > MAX_TRAITS {
                    return Err(FieldError::new(
                        "traits",
                        format!("must have at most {MAX_TRAITS} keys"),
                    ));
                }
                EventBody::Identify { traits }
            }
            EventType::PagePing => {
                let dwell_ms = required(self.dwell_ms, "dwell_ms")?;
                if dwell_ms > MAX_DWELL_MS {
                    return Err(FieldError::new(
                        "dwell_ms",
                        format!("must be at most {MAX_DWELL_MS} (one day)"),
                    ));
                }
                EventBody::PagePing { dwell_ms }
            }
        };
        Ok(Event {
            schema_version: SCHEMA_VERSION,
            event_id,
            site_id,
            anonymous_id,
            member_id,
            session_id,
            timestamp,
            received_at,
            url,
            referrer,
            body,
        })
    }
}

fn validate_order(o: RawOrder) -> Result<Order, FieldError> {
    let order_id = required(o.id, "order.id")?;
    if order_id.is_empty() || order_id.len() > crate::ids::MAX_ID_LEN {
        return Err(FieldError::new("order.id", "must be 1 to 128 bytes"));
    }
    let currency = required(o.currency, "order.currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(FieldError::new(
            "order.currency",
            "must be an ISO 4217 code of three upper-case letters",
        ));
    }
    let raw_lines = required(o.lines, "order.lines")?;
    if raw_lines.is_empty() || raw_lines.len() > MAX_ORDER_LINES {
        return Err(FieldError::new(
            "order.lines",
            format!("must hold 1 to {MAX_ORDER_LINES} lines"),
        ));
    }
    let mut lines = Vec::with_capacity(raw_lines.len());
    for (i, l) in raw_lines.into_iter().enumerate() {
        let f = |name: &str| format!("order.lines[{i}].{name}");
        let item_id = required(
            parse_id(l.item_id, &f("item_id"), ItemId::parse)?,
            &f("item_id"),
        )?;
        let category = parse_id(l.category, &f("category"), Category::parse)?;
        let price = amount(required(l.price, &f("price"))?, &f("price"))?;
        let quantity = match l.quantity {
            Some(0) => return Err(FieldError::new(f("quantity"), "must be at least 1")),
            q => q.unwrap_or(1),
        };
        lines.push(OrderLine {
            item_id,
            category,
            price,
            quantity,
        });
    }
    let revenue = match o.revenue {
        Some(r) => amount(r, "order.revenue")?,
        None => lines.iter().map(|l| l.price * f64::from(l.quantity)).sum(),
    };
    Ok(Order {
        id: order_id,
        revenue,
        currency,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    fn parse(v: serde_json::Value) -> Result<Event, FieldError> {
        RawEvent::from_json(v)?.validate(now())
    }

    #[test]
    fn minimal_page_view_gets_defaults() {
        let e = parse(json!({"type":"page_view","site_id":"demo","anonymous_id":"a1"})).unwrap();
        assert_eq!(e.event_type(), EventType::PageView);
        assert_eq!(e.timestamp, now());
        assert_eq!(e.received_at, now());
        assert!(!e.event_id.as_str().is_empty());
        assert_eq!(
            e.subject(),
            Subject::Anonymous(AnonymousId::parse("a1").unwrap())
        );
    }

    #[test]
    fn purchase_round_trips_through_the_wire_format() {
        let e = parse(json!({
            "type":"purchase","site_id":"demo","anonymous_id":"a1","member_id":"m1",
            "event_id":"e-1","timestamp":"2026-11-24T11:00:00+01:00",
            "order":{"id":"o1","currency":"EUR","lines":[
                {"item_id":"sku1","category":"shoes","price":10.5,"quantity":2},
                {"item_id":"sku2","price":1.0}
            ]}
        }))
        .unwrap();
        let EventBody::Purchase { order } = &e.body else {
            panic!("not a purchase")
        };
        assert_eq!(order.revenue, 22.0);
        assert_eq!(order.lines[1].quantity, 1);
        assert_eq!(
            e.timestamp,
            "2026-11-24T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let wire = serde_json::to_value(&e).unwrap();
        assert_eq!(wire["type"], "purchase");
        assert_eq!(wire["order"]["lines"][0]["item_id"], "sku1");
        let back: Event = serde_json::from_value(wire).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"site_id":"demo","anonymous_id":"a"}),
                "type",
                "is required",
            ),
            (
                json!({"type":"nope","site_id":"demo","anonymous_id":"a"}),
                "type",
                "must be one of",
            ),
            (
                json!({"type":"page_view","anonymous_id":"a"}),
                "site_id",
                "is required",
            ),
            (
                json!({"type":"page_view","site_id":"demo","anonymous_id":""}),
                "anonymous_id",
                "must not be empty",
            ),
            (
                json!({"type":"add_to_cart","site_id":"demo","anonymous_id":"a"}),
                "item_id",
                "is required",
            ),
            (
                json!({"type":"page_ping","site_id":"demo","anonymous_id":"a"}),
                "dwell_ms",
                "is required",
            ),
            (
                json!({"type":"identify","site_id":"demo","anonymous_id":"a"}),
                "member_id",
                "is required",
            ),
            (
                json!({"type":"page_view","site_id":"demo","anonymous_id":"a","timestamp":"yesterday"}),
                "timestamp",
                "must be RFC 3339",
            ),
            (
                json!({"type":"page_view","site_id":"demo","anonymous_id":"a","timestamp":"2027-01-01T00:00:00Z"}),
                "timestamp",
                "future",
            ),
            (
                json!({"type":"purchase","site_id":"demo","anonymous_id":"a","order":{"id":"o","currency":"eur","lines":[]}}),
                "order.currency",
                "ISO 4217",
            ),
            (
                json!({"type":"purchase","site_id":"demo","anonymous_id":"a","order":{"id":"o","currency":"EUR","lines":[{"item_id":"x","price":-1}]}}),
                "order.lines[0].price",
                "non-negative",
            ),
            (
                json!({"type":"purchase","site_id":"demo","anonymous_id":"a","order":{"id":"o","currency":"EUR","lines":[{"item_id":"x","price":"cheap"}]}}),
                "order.lines[0].price",
                "invalid type",
            ),
            (
                json!({"type":"page_view","site_id":"demo","anonymous_id":"a","dwell_ms":-5}),
                "dwell_ms",
                "invalid value",
            ),
            (json!([1]), "$", "JSON object"),
        ];
        for (input, field, reason) in cases {
            let err = parse(input.clone()).unwrap_err();
            assert_eq!(err.field, field, "{input}: {err}");
            assert!(err.reason.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn metric_reasons_are_stable_labels() {
        assert_eq!(
            FieldError::new("type", "is required").metric_reason(),
            "missing_field"
        );
        assert_eq!(
            FieldError::new("x", "invalid type: string").metric_reason(),
            "invalid_type"
        );
        assert_eq!(
            FieldError::new("x", "must be at least 1").metric_reason(),
            "invalid_value"
        );
    }
}
