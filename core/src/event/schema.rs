//! The validated event as it travels on the bus: [`Event`] and its type-specific [`EventBody`].

use super::{Context, EventType};
use crate::ids::{AnonymousId, Category, EventId, ItemId, MemberId, SessionId, SiteId, Subject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Amounts on the bus. Writing refuses a number that is not finite: serde_json would write it as
/// `null`, which no reader decodes back into a number, so the event would be acknowledged and then
/// dropped by the processor. Reading takes `null` as 0: collectors before this check wrote an
/// overflowing total as `null`, and such an acknowledged order must still count (its items and
/// date are known; its amount is not).
mod wire_amount {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            Err(serde::ser::Error::custom(format!(
                "the amount {v} is not a finite number"
            )))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(0.0))
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
    #[serde(with = "wire_amount")]
    pub price: f64,
    pub quantity: u32,
}

/// A completed order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    /// Order total in `currency`; defaults to the sum of the lines when the client omits it.
    #[serde(with = "wire_amount")]
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

    /// The event as the bus carries it. Fails (instead of writing what no reader could decode) when
    /// an amount is not finite; validation bounds every amount, so this is a backstop.
    pub fn to_wire(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
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
