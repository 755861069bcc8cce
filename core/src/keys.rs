//! The Redis key layout, in one place.
//!
//! Every key starts with a configurable namespace (default `tailor`), so several deployments or test
//! runs can share one Redis. A subject's keys carry the hash tag `{<site>:<subject>}`, so on Redis Cluster
//! all of one member's keys live in one slot and can be updated by one script. Shared per-site models
//! (co-visitation, popularity) are tagged by site and item instead.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `NS:{site:subj}:profile` | hash | counters, first/last seen, revenue per currency |
//! | `NS:{site:subj}:recent` | list | last N viewed items, newest first, distinct |
//! | `NS:{site:subj}:items` | zset | views per item |
//! | `NS:{site:subj}:cats` | zset | views per category |
//! | `NS:{site:subj}:bought` | zset | quantity bought per item |
//! | `NS:{site:subj}:sess:<session>` | list | distinct items viewed in a session (expires) |
//! | `NS:{site:subj}:ev:<event_id>` | string | "applied" marker for dedupe (expires) |
//! | `NS:{site}:covis:<item>` | zset | items co-visited with `item` → sessions |
//! | `NS:{site}:popular` | zset | item → weighted interactions |
//! | `NS:offsets:<group>` | hash | `<topic>/<partition>` → last applied offset |

use crate::ids::{EventId, SessionId, SiteId, Subject};

/// Builds every key Tailor writes to or reads from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    ns: String,
}

impl Default for KeySpace {
    fn default() -> Self {
        KeySpace::new("tailor")
    }
}

impl KeySpace {
    pub fn new(namespace: impl Into<String>) -> Self {
        KeySpace {
            ns: namespace.into(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    fn subject(&self, site: &SiteId, subject: &Subject, suffix: &str) -> String {
        format!("{}:{{{site}:{subject}}}:{suffix}", self.ns)
    }

    pub fn profile(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "profile")
    }

    pub fn recent_items(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "recent")
    }

    pub fn item_views(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "items")
    }

    pub fn category_views(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "cats")
    }

    pub fn bought(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "bought")
    }

    /// Spend per purchase day (member: days since the epoch, UTC; score: revenue that day), the
    /// history the lifetime-value models are fitted on.
    pub fn purchase_days(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "pdays")
    }

    pub fn session_items(&self, site: &SiteId, s: &Subject, session: &SessionId) -> String {
        self.subject(site, s, &format!("sess:{session}"))
    }

    pub fn applied_marker(&self, site: &SiteId, s: &Subject, event: &EventId) -> String {
        self.subject(site, s, &format!("ev:{event}"))
    }

    /// Takes the item as text: the ids it pairs come back from the store, where only valid
    /// [`ItemId`](crate::ItemId)s are ever written.
    pub fn covisits(&self, site: &SiteId, item: &str) -> String {
        format!("{}:{{{site}}}:covis:{item}", self.ns)
    }

    pub fn popular(&self, site: &SiteId) -> String {
        format!("{}:{{{site}}}:popular", self.ns)
    }

    /// The site's customers (member: subject `m:<id>`/`a:<id>`; score: total revenue).
    pub fn customers(&self, site: &SiteId) -> String {
        format!("{}:{{{site}}}:customers", self.ns)
    }

    /// Per-slot offer counters of a site: `<slot>:impressions`, `<slot>:items_shown`, `<slot>:clicks`.
    pub fn offer_stats(&self, site: &SiteId) -> String {
        format!("{}:{{{site}}}:offers", self.ns)
    }

    pub fn offsets(&self, group: &str) -> String {
        format!("{}:offsets:{group}", self.ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MemberId;

    #[test]
    fn member_keys_share_one_hash_tag() {
        let k = KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        let s = Subject::Member(MemberId::parse("alice").unwrap());
        assert_eq!(k.profile(&site, &s), "tailor:{demo:m:alice}:profile");
        assert_eq!(
            k.session_items(&site, &s, &SessionId::parse("s1").unwrap()),
            "tailor:{demo:m:alice}:sess:s1"
        );
        assert_eq!(k.covisits(&site, "sku1"), "tailor:{demo}:covis:sku1");
    }
}
