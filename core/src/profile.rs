//! The member profile: the fields the processor maintains and the JSON view served by the API.
//!
//! The processor writes the hash fields named here ([`fields`]); [`Profile::from_parts`] assembles the
//! stored parts into the public view. Both sides use these names, so the layout is defined once.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Field names of the profile hash.
pub mod fields {
    pub const FIRST_SEEN_MS: &str = "first_seen_ms";
    pub const LAST_SEEN_MS: &str = "last_seen_ms";
    pub const ANONYMOUS_ID: &str = "anonymous_id";
    pub const MEMBER_ID: &str = "member_id";
    pub const ORDERS: &str = "orders";
    pub const UNITS: &str = "units";
    pub const DWELL_MS: &str = "dwell_ms";
    pub const FIRST_PURCHASE_MS: &str = "first_purchase_ms";
    pub const LAST_PURCHASE_MS: &str = "last_purchase_ms";
    /// Prefix of per-type counters: `events:page_view`.
    pub const EVENTS_PREFIX: &str = "events:";
    /// Prefix of revenue per currency: `revenue:EUR`.
    pub const REVENUE_PREFIX: &str = "revenue:";
    /// Prefix of identify traits: `trait:email`.
    pub const TRAIT_PREFIX: &str = "trait:";
}

/// An item or category with its count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub id: String,
    pub count: f64,
}

/// Purchases summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Purchases {
    pub orders: u64,
    pub units: u64,
    /// Revenue per currency: Tailor never converts currencies.
    pub revenue: BTreeMap<String, f64>,
    pub first_purchase: Option<DateTime<Utc>>,
    pub last_purchase: Option<DateTime<Utc>>,
    /// Items bought, with quantities, most bought first.
    pub items: Vec<Scored>,
}

/// The public profile of one member (or anonymous visitor).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub site_id: String,
    pub subject: String,
    pub member_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Events applied, by type.
    pub event_counts: BTreeMap<String, u64>,
    pub dwell_ms: u64,
    /// Most recently viewed items, newest first.
    pub recent_items: Vec<String>,
    pub top_items: Vec<Scored>,
    pub top_categories: Vec<Scored>,
    pub purchases: Purchases,
    pub traits: BTreeMap<String, serde_json::Value>,
}

/// The stored parts a [`Profile`] is built from.
#[derive(Debug, Default, Clone)]
pub struct ProfileParts {
    pub hash: HashMap<String, String>,
    pub recent: Vec<String>,
    pub items: Vec<(String, f64)>,
    pub categories: Vec<(String, f64)>,
    pub bought: Vec<(String, f64)>,
}

impl ProfileParts {
    /// A subject with no stored hash has never been seen.
    pub fn is_empty(&self) -> bool {
        self.hash.is_empty()
    }
}

fn millis(v: Option<&String>) -> Option<DateTime<Utc>> {
    v.and_then(|s| s.parse::<i64>().ok())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn count(v: Option<&String>) -> u64 {
    v.and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn scored(v: Vec<(String, f64)>) -> Vec<Scored> {
    v.into_iter()
        .map(|(id, count)| Scored { id, count })
        .collect()
}

impl Profile {
    pub fn from_parts(site_id: &str, subject: &str, p: ProfileParts) -> Profile {
        let h = &p.hash;
        let mut event_counts = BTreeMap::new();
        let mut revenue = BTreeMap::new();
        let mut traits = BTreeMap::new();
        for (k, v) in h {
            if let Some(t) = k.strip_prefix(fields::EVENTS_PREFIX) {
                event_counts.insert(t.to_string(), v.parse().unwrap_or(0));
            } else if let Some(c) = k.strip_prefix(fields::REVENUE_PREFIX) {
                revenue.insert(c.to_string(), v.parse().unwrap_or(0.0));
            } else if let Some(t) = k.strip_prefix(fields::TRAIT_PREFIX) {
                let value = serde_json::from_str(v).unwrap_or(serde_json::Value::String(v.clone()));
                traits.insert(t.to_string(), value);
            }
        }
        Profile {
            site_id: site_id.to_string(),
            subject: subject.to_string(),
            member_id: h.get(fields::MEMBER_ID).cloned(),
            anonymous_id: h.get(fields::ANONYMOUS_ID).cloned(),
            first_seen: millis(h.get(fields::FIRST_SEEN_MS)),
            last_seen: millis(h.get(fields::LAST_SEEN_MS)),
            event_counts,
            dwell_ms: count(h.get(fields::DWELL_MS)),
            recent_items: p.recent,
            top_items: scored(p.items),
            top_categories: scored(p.categories),
            purchases: Purchases {
                orders: count(h.get(fields::ORDERS)),
                units: count(h.get(fields::UNITS)),
                revenue,
                first_purchase: millis(h.get(fields::FIRST_PURCHASE_MS)),
                last_purchase: millis(h.get(fields::LAST_PURCHASE_MS)),
                items: scored(p.bought),
            },
            traits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_counters_revenue_and_times() {
        let mut hash = HashMap::new();
        hash.insert("events:page_view".into(), "3".into());
        hash.insert("revenue:EUR".into(), "12.5".into());
        hash.insert("orders".into(), "1".into());
        hash.insert("first_seen_ms".into(), "1700000000000".into());
        hash.insert("trait:plan".into(), "\"gold\"".into());
        let p = Profile::from_parts(
            "demo",
            "m:alice",
            ProfileParts {
                hash,
                recent: vec!["b".into(), "a".into()],
                bought: vec![("a".into(), 2.0)],
                ..Default::default()
            },
        );
        assert_eq!(p.event_counts["page_view"], 3);
        assert_eq!(p.purchases.revenue["EUR"], 12.5);
        assert_eq!(p.purchases.orders, 1);
        assert_eq!(p.first_seen.unwrap().timestamp(), 1_700_000_000);
        assert_eq!(p.traits["plan"], "gold");
        assert_eq!(p.purchases.items[0].id, "a");
    }
}
