//! The kinds of event.

use serde::{Deserialize, Serialize};
use std::fmt;

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

    pub(super) fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
