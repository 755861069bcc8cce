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
/// Longest page title, offer slot, custom event name or alias id, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest campaign offer token, in bytes.
pub const MAX_TOKEN_LEN: usize = 512;
/// Most items one offer impression may list.
pub const MAX_SLOT_ITEMS: usize = 100;
/// Most properties a custom event may carry.
pub const MAX_PROPERTIES: usize = 64;

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
    Alias,
    OfferImpression,
    OfferClick,
    Custom,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        EventType::PageView,
        EventType::Click,
        EventType::AddToCart,
        EventType::Purchase,
        EventType::Identify,
        EventType::PagePing,
        EventType::Alias,
        EventType::OfferImpression,
        EventType::OfferClick,
        EventType::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PageView => "page_view",
            EventType::Click => "click",
            EventType::AddToCart => "add_to_cart",
            EventType::Purchase => "purchase",
            EventType::Identify => "identify",
            EventType::PagePing => "page_ping",
            EventType::Alias => "alias",
            EventType::OfferImpression => "offer_impression",
            EventType::OfferClick => "offer_click",
            EventType::Custom => "custom",
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        brand: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
    },
    /// A click on an element marked with data attributes (product, category, offer).
    Click {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_id: Option<ItemId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<Category>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        brand: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offer_id: Option<String>,
    },
    AddToCart {
        item_id: ItemId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        category: Option<Category>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        brand: Option<String>,
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
    /// Another identifier (an earlier member id or a device's anonymous id) belongs to this member.
    Alias {
        previous_id: String,
    },
    /// An offer slot on the page showed these items (in rank order), or a campaign's offer (its
    /// `token`, then `item_ids` may be empty).
    OfferImpression {
        slot: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        item_ids: Vec<ItemId>,
        /// The campaign offer's token, as the recommender issued it (`crate::campaign::token`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// An item shown in an offer slot, or a campaign's offer (its `token`), was clicked.
    OfferClick {
        slot: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        item_id: Option<ItemId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Anything else a tracker reports (Snowplow structured events, other Segment `track` calls).
    Custom {
        name: String,
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        properties: serde_json::Map<String, serde_json::Value>,
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
            EventBody::Alias { .. } => EventType::Alias,
            EventBody::OfferImpression { .. } => EventType::OfferImpression,
            EventBody::OfferClick { .. } => EventType::OfferClick,
            EventBody::Custom { .. } => EventType::Custom,
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
    /// What the collector added (see [`Context`]).
    #[serde(default, skip_serializing_if = "Context::is_empty")]
    pub context: Context,
    #[serde(flatten)]
    pub body: EventBody,
}

/// How an event reached the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Tailor's own JSON API (`POST /v1/events`), used by the JS tag and back ends.
    Api,
    /// The Snowplow tracker protocol.
    Snowplow,
    /// The Segment HTTP API.
    Segment,
    /// `tailor import` of historical data.
    Import,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Snowplow => "snowplow",
            Source::Segment => "segment",
            Source::Import => "import",
        }
    }
}

/// Class of device, from the user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    Other,
}

/// Where a visit came from, from the referrer and campaign parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferrerClass {
    Search,
    Social,
    Email,
    Internal,
    Direct,
    Other,
}

impl ReferrerClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferrerClass::Search => "search",
            ReferrerClass::Social => "social",
            ReferrerClass::Email => "email",
            ReferrerClass::Internal => "internal",
            ReferrerClass::Direct => "direct",
            ReferrerClass::Other => "other",
        }
    }
}

/// UTM campaign parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Campaign {
    pub fn is_empty(&self) -> bool {
        *self == Campaign::default()
    }
}

/// Enrichment: what the collector derived from the request, never sent by clients as such.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The raw `User-Agent`, truncated to 512 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceClass>,
    /// A crawler, monitor or other automated client.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_class: Option<ReferrerClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_host: Option<String>,
    /// A known referring service (`Google`, `Facebook`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_source: Option<String>,
    #[serde(default, skip_serializing_if = "Campaign::is_empty")]
    pub campaign: Campaign,
    /// The client address, truncated or hashed as configured (`collector.ip_mode`); never raw by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's own clock for the event, before skew correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_timestamp: Option<DateTime<Utc>>,
    /// How far the client's clock ran ahead of the collector's (ms, negative when behind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_ms: Option<i64>,
}

impl Context {
    pub fn is_empty(&self) -> bool {
        *self == Context::default()
    }
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
                ..
            }
            | EventBody::Click {
                item_id: Some(i),
                category,
                ..
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

pub(crate) fn required<T>(v: Option<T>, field: &str) -> Result<T, FieldError> {
    v.ok_or_else(|| FieldError::missing(field))
}

pub(crate) fn parse_id<T>(
    v: Option<String>,
    field: &str,
    parse: impl Fn(String) -> Result<T, IdError>,
) -> Result<Option<T>, FieldError> {
    v.map(parse)
        .transpose()
        .map_err(|e| FieldError::invalid(field, e.to_string()))
}

fn parse_url(v: Option<String>, field: &str) -> Result<Option<String>, FieldError> {
    bounded(v, field, MAX_URL_LEN)
}

/// An optional free-text field: empty means absent, longer than `max` bytes is an error.
pub(crate) fn bounded(
    v: Option<String>,
    field: &str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match v {
        Some(u) if u.len() > max => Err(FieldError::invalid(
            field,
            format!("must be at most {max} bytes"),
        )),
        Some(u) if u.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn required_text(v: Option<String>, field: &str) -> Result<String, FieldError> {
    required(bounded(v, field, MAX_TEXT_LEN)?, field)
}

pub(crate) fn amount(v: f64, field: &str) -> Result<f64, FieldError> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(FieldError::invalid(
            field,
            "must be a finite, non-negative number",
        ))
    }
}

fn quantity(v: Option<u32>, field: &str) -> Result<u32, FieldError> {
    match v {
        Some(0) => Err(FieldError::invalid(field, "must be at least 1")),
        q => Ok(q.unwrap_or(1)),
    }
}

pub(crate) fn timestamp(v: &str, field: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| FieldError::invalid(field, format!("must be RFC 3339: {e}")))
}

fn small_map(
    v: Option<serde_json::Map<String, serde_json::Value>>,
    field: &str,
    max: usize,
) -> Result<serde_json::Map<String, serde_json::Value>, FieldError> {
    let m = v.unwrap_or_default();
    if m.len() > max {
        return Err(FieldError::invalid(
            field,
            format!("must have at most {max} keys"),
        ));
    }
    Ok(m)
}

impl RawEvent {
    /// Parses one JSON value into a raw event, naming the offending path on a type error.
    pub fn from_json(value: serde_json::Value) -> Result<RawEvent, FieldError> {
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

    /// Validates and completes the event: assigns an event id when absent, stamps `received_at`,
    /// defaults the timestamp and corrects it for clock skew, and checks the type-specific fields.
    ///
    /// Skew correction follows Snowplow's `derived_tstamp`: when the client says both when the event
    /// happened (`timestamp`) and when it sent it (`sent_at`), both by its own clock, the event happened
    /// `sent_at - timestamp` before the collector received it. The client's value is kept in
    /// `context.device_timestamp`.
    pub fn validate(self, received_at: DateTime<Utc>) -> Result<Event, FieldError> {
        let kind = required(self.kind, "type")?;
        let kind = EventType::parse(&kind).ok_or_else(|| {
            FieldError::new(
                ErrorKind::UnknownType,
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
        let mut context = Context::default();
        let timestamp = match (self.timestamp, self.sent_at) {
            (None, _) => received_at,
            (Some(t), None) => timestamp(&t, "timestamp")?,
            (Some(t), Some(sent)) => {
                let device = timestamp(&t, "timestamp")?;
                // Some trackers send `sent_at` at a coarser resolution than the event time (the
                // Snowplow Python tracker: whole seconds), so it can fall a little before it; the
                // event then happened at sending.
                let sent = timestamp(&sent, "sent_at")?.max(device);
                context.device_timestamp = Some(device);
                context.clock_skew_ms = Some((sent - received_at).num_milliseconds());
                received_at - (sent - device)
            }
        };
        if timestamp > received_at + MAX_FUTURE_SKEW {
            return Err(FieldError::invalid(
                "timestamp",
                "lies more than 24 hours in the future",
            ));
        }
        let url = parse_url(self.url, "url")?;
        let referrer = parse_url(self.referrer, "referrer")?;
        let item_id = parse_id(self.item_id, "item_id", ItemId::parse)?;
        let category = parse_id(self.category, "category", Category::parse)?;
        let brand = bounded(self.brand, "brand", crate::ids::MAX_ID_LEN)?;
        if let Some(c) = self.campaign {
            context.campaign = c;
        }

        let body = match kind {
            EventType::PageView => EventBody::PageView {
                item_id,
                category,
                brand,
                title: bounded(self.title, "title", MAX_TEXT_LEN)?,
            },
            EventType::Click => EventBody::Click {
                item_id,
                category,
                brand,
                offer_id: bounded(self.offer_id, "offer_id", MAX_TEXT_LEN)?,
            },
            EventType::AddToCart => EventBody::AddToCart {
                item_id: required(item_id, "item_id")?,
                category,
                brand,
                quantity: quantity(self.quantity, "quantity")?,
                price: self.price.map(|p| amount(p, "price")).transpose()?,
            },
            EventType::Purchase => EventBody::Purchase {
                order: validate_order(required(self.order, "order")?)?,
            },
            EventType::Identify => {
                if member_id.is_none() {
                    return Err(FieldError::new(
                        ErrorKind::MissingField,
                        "member_id",
                        "is required for an identify event",
                    ));
                }
                EventBody::Identify {
                    traits: small_map(self.traits, "traits", MAX_TRAITS)?,
                }
            }
            EventType::PagePing => {
                let dwell_ms = required(self.dwell_ms, "dwell_ms")?;
                if dwell_ms > MAX_DWELL_MS {
                    return Err(FieldError::invalid(
                        "dwell_ms",
                        format!("must be at most {MAX_DWELL_MS} (one day)"),
                    ));
                }
                EventBody::PagePing { dwell_ms }
            }
            EventType::Alias => {
                if member_id.is_none() {
                    return Err(FieldError::new(
                        ErrorKind::MissingField,
                        "member_id",
                        "is required for an alias event",
                    ));
                }
                EventBody::Alias {
                    previous_id: required_text(self.previous_id, "previous_id")?,
                }
            }
            EventType::OfferImpression => {
                let token = bounded(self.token, "token", MAX_TOKEN_LEN)?;
                let raw = match token {
                    Some(_) => self.item_ids.unwrap_or_default(),
                    None => required(self.item_ids, "item_ids")?,
                };
                if raw.len() > MAX_SLOT_ITEMS {
                    return Err(FieldError::invalid(
                        "item_ids",
                        format!("must hold at most {MAX_SLOT_ITEMS} items"),
                    ));
                }
                let item_ids = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, id)| {
                        ItemId::parse(id).map_err(|e| {
                            FieldError::invalid(format!("item_ids[{i}]"), e.to_string())
                        })
                    })
                    .collect::<Result<_, _>>()?;
                EventBody::OfferImpression {
                    slot: required_text(self.slot, "slot")?,
                    item_ids,
                    token,
                }
            }
            EventType::OfferClick => {
                let token = bounded(self.token, "token", MAX_TOKEN_LEN)?;
                EventBody::OfferClick {
                    slot: required_text(self.slot, "slot")?,
                    item_id: match token {
                        Some(_) => item_id,
                        None => Some(required(item_id, "item_id")?),
                    },
                    token,
                }
            }
            EventType::Custom => EventBody::Custom {
                name: required_text(self.name, "name")?,
                properties: small_map(self.properties, "properties", MAX_PROPERTIES)?,
            },
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
            context,
            body,
        })
    }
}

fn validate_order(o: RawOrder) -> Result<Order, FieldError> {
    let order_id = required(o.id, "order.id")?;
    if order_id.is_empty() || order_id.len() > crate::ids::MAX_ID_LEN {
        return Err(FieldError::invalid("order.id", "must be 1 to 128 bytes"));
    }
    let currency = required(o.currency, "order.currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(FieldError::invalid(
            "order.currency",
            "must be an ISO 4217 code of three upper-case letters",
        ));
    }
    let raw_lines = required(o.lines, "order.lines")?;
    if raw_lines.is_empty() || raw_lines.len() > MAX_ORDER_LINES {
        return Err(FieldError::invalid(
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
        let brand = bounded(l.brand, &f("brand"), crate::ids::MAX_ID_LEN)?;
        let price = amount(required(l.price, &f("price"))?, &f("price"))?;
        lines.push(OrderLine {
            item_id,
            category,
            brand,
            price,
            quantity: quantity(l.quantity, &f("quantity"))?,
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
    fn errors_carry_their_kind() {
        let kind = |v| parse(v).unwrap_err().kind;
        assert_eq!(
            kind(json!({"site_id":"demo","anonymous_id":"a"})),
            ErrorKind::MissingField
        );
        assert_eq!(
            kind(json!({"type":"x","site_id":"demo","anonymous_id":"a"})),
            ErrorKind::UnknownType
        );
        assert_eq!(
            kind(json!({"type":"page_view","site_id":"demo","anonymous_id":"a","dwell_ms":"x"})),
            ErrorKind::InvalidType
        );
        assert_eq!(
            kind(
                json!({"type":"add_to_cart","site_id":"demo","anonymous_id":"a","item_id":"i","quantity":0})
            ),
            ErrorKind::InvalidValue
        );
        assert_eq!(kind(json!("x")), ErrorKind::Malformed);
        assert_eq!(ErrorKind::MissingField.as_str(), "missing_field");
    }

    #[test]
    fn clock_skew_is_corrected_from_sent_at() {
        // The device clock runs 1 hour fast; the event happened 10 s before it was sent.
        let e = parse(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
            "timestamp":"2026-11-24T12:59:50Z","sent_at":"2026-11-24T13:00:00Z"}),
        )
        .unwrap();
        assert_eq!(e.timestamp, now() - Duration::seconds(10));
        assert_eq!(e.context.clock_skew_ms, Some(3_600_000));
        assert_eq!(
            e.context.device_timestamp,
            Some("2026-11-24T12:59:50Z".parse().unwrap())
        );
        // A sent_at a little before the event time (a coarser clock) means it was sent at once.
        let e = parse(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
            "timestamp":"2026-11-24T12:59:59.351Z","sent_at":"2026-11-24T12:59:59Z"}),
        )
        .unwrap();
        assert_eq!(e.timestamp, now());
        let err = parse(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
            "timestamp":"2026-11-24T13:00:00Z","sent_at":"yesterday"}),
        )
        .unwrap_err();
        assert_eq!(err.field, "sent_at");
    }

    #[test]
    fn new_event_types_validate_their_fields() {
        let e = parse(
            json!({"type":"offer_impression","site_id":"demo","anonymous_id":"a",
            "slot":"home","item_ids":["i1","i2"]}),
        )
        .unwrap();
        assert_eq!(
            e.body,
            EventBody::OfferImpression {
                slot: "home".into(),
                item_ids: vec![ItemId::parse("i1").unwrap(), ItemId::parse("i2").unwrap()],
                token: None,
            }
        );
        // A campaign offer's impression and click carry its token instead of items.
        let e = parse(
            json!({"type":"offer_impression","site_id":"demo","anonymous_id":"a",
            "slot":"home","token":"t.s"}),
        )
        .unwrap();
        assert!(
            matches!(e.body, EventBody::OfferImpression { ref item_ids, token: Some(_), .. } if item_ids.is_empty())
        );
        let e = parse(
            json!({"type":"offer_click","site_id":"demo","anonymous_id":"a",
            "slot":"home","token":"t.s"}),
        )
        .unwrap();
        assert!(matches!(
            e.body,
            EventBody::OfferClick {
                item_id: None,
                token: Some(_),
                ..
            }
        ));
        let err = parse(
            json!({"type":"offer_impression","site_id":"demo","anonymous_id":"a",
            "slot":"home"}),
        )
        .unwrap_err();
        assert_eq!(err.field, "item_ids");
        let err = parse(
            json!({"type":"offer_click","site_id":"demo","anonymous_id":"a",
            "slot":"home","token":"x".repeat(MAX_TOKEN_LEN + 1)}),
        )
        .unwrap_err();
        assert_eq!(err.field, "token");
        let err = parse(
            json!({"type":"offer_impression","site_id":"demo","anonymous_id":"a",
            "slot":"home","item_ids":["ok","bad id"]}),
        )
        .unwrap_err();
        assert_eq!(err.field, "item_ids[1]");
        let err =
            parse(json!({"type":"offer_click","site_id":"demo","anonymous_id":"a","item_id":"i"}))
                .unwrap_err();
        assert_eq!(err.field, "slot");
        let err =
            parse(json!({"type":"alias","site_id":"demo","anonymous_id":"a","previous_id":"x"}))
                .unwrap_err();
        assert_eq!(err.field, "member_id");
        let e = parse(
            json!({"type":"custom","site_id":"demo","anonymous_id":"a","name":"signup",
            "properties":{"plan":"pro"}}),
        )
        .unwrap();
        let wire = serde_json::to_value(&e).unwrap();
        assert_eq!(wire["properties"]["plan"], "pro");
        assert_eq!(serde_json::from_value::<Event>(wire).unwrap(), e);
    }
}
