//! The Redis key layout, in one place.
//!
//! Every key starts with a configurable namespace (default `tailor`), so several deployments or test
//! runs can share one Redis. Keys live in two kinds of Redis Cluster hash slot, and every atomic
//! update stays inside one:
//!
//! * the subject's slot, tag `{<site>:<subject>}` (`<subject>` is `m:<member>` or `a:<anonymous id>`):
//!   the state document and everything else that is one member's;
//! * the site's slot, tag `{<site>}`: the shared models, indexes, segment sets and analytics.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `NS:{site:subj}:state` | hash | `doc`: the state document (JSON), `rev`: its revision (the write guard) |
//! | `NS:{site:subj}:pdays` | zset | purchase day → spend (the lifetime-value fit's input) |
//! | `NS:{site:a:dev}:evd:<generation>` | hash | dedupe markers of the events from device `dev` received in that generation: hashed event id → `<partition>@<offset>` of the message that applied it (expires; [`MarkerSlot`]) |
//! | `NS:{site:a:dev}:ev:<event_id>` | string | an event's dedupe marker as written before the markers moved to `evd` hashes: still read, never written (expires within `processor.dedupe_ttl_secs`) |
//! | `NS:{site:subj}:erased` | string | when the subject was erased (ms); older events are dropped |
//! | `NS:{site:subj}:act:<action id>` | string | an outbound action was sent (expires) |
//! | `NS:{site}:actions:dead` | list | outbound actions whose webhook kept failing (JSON, newest first) |
//! | `NS:{site}:wm` | hash | `<topic>/<partition>` → last offset applied to the site's keys |
//! | `NS:{site}:covis:<item>` | zset | items co-visited with `item` → sessions |
//! | `NS:{site}:popular` | zset | item → weighted interactions |
//! | `NS:{site}:popcat:<category>` / `:popbrand:<brand>` | zset | item → weighted interactions in that category / brand |
//! | `NS:{site}:pop:h:<YYYYMMDDHH>` / `:pop:d:<YYYYMMDD>` | zset | item → weighted interactions that hour / day (trending's windows; expire) |
//! | `NS:{site}:trending` | zset | item → how far its last day beats its long-run daily rate (background refresh) |
//! | `NS:{site}:isess:<item>` | zset | session → its last click (ms): the most recent sessions with `item` (session-based neighbours) |
//! | `NS:{site}:si:<device>/<session>` | string | that session's items as [`crate::stored::session_list`] writes them: its last click (ms), then its distinct items, oldest last click first (expires) |
//! | `NS:{site}:sess:<device>/<session>` | zset | item → last click (ms) in that session: the form before `si`, still read, written with `processor.compact_storage = false` (expires) |
//! | `NS:{site}:next:<item>` | zset | item → Σ 1/distance over sessions where it followed `item` |
//! | `NS:{site}:copurch:<item>` | zset | item → times bought with `item` (same order, or by the same customer) |
//! | `NS:{site}:customers` | zset | customer subject → total spend (M) |
//! | `NS:{site}:rfm:r` / `:rfm:f` | zset | customer subject → last purchase (ms) / orders |
//! | `NS:{site}:offers` | hash | per-slot impressions, items shown, clicks |
//! | `NS:{site}:models` | hash | `rfm`, `clv`, `grid`: the site models (JSON) |
//! | `NS:{site}:segdefs` | hash | segment name → definition added through the admin API (JSON) |
//! | `NS:{site}:catalog` | hash | item id → the catalog item (JSON, `catalog::CatalogItem`) |
//! | `NS:{site}:catalog:meta` | hash | `rev`: bumped by every catalog write, so caches reload only on change |
//! | `NS:{site}:ranker` | hash | `rev`, `model`: the learned re-ranking model (JSON, `tailor ranker fit`) and its revision |
//! | `NS:{site}:rules` | hash | business rule name → definition added through the admin API (JSON) |
//! | `NS:{site}:lease:refresh` | hash | `owner`, `until` (ms): which processor refreshes the site's models and sweeps it |
//! | `NS:{site}:seg:<name>` | set | subjects in the segment |
//! | `NS:{site}:stage:<stage>` | set | subjects in the life-cycle stage |
//! | `NS:{site}:an:<day>` | hash | that day's counters: events, sessions, channels, funnel per hour, dwell buckets |
//! | `NS:{site}:an:<day>:pages` / `:refs` | zset | that day's page views per page / sessions per referrer |

use crate::ids::{EventId, SiteId, Subject};

/// An event's dedupe marker: a field of a hash per device and *generation*, the span of
/// `processor.dedupe_ttl_secs` its collector received it in.
///
/// A marker is a hash field (about 20 bytes in a small hash) rather than a key of its own (about 140
/// bytes), and the generation bounds each hash: a device's hashes expire two generations after their
/// last write, so an active device keeps at most three. The marker is written in the event's own
/// generation and looked for in it and both neighbours: a retry received up to a generation later
/// (or, with collectors' clocks apart, earlier) finds it, so every duplicate within
/// `dedupe_ttl_secs` is caught, and some up to twice that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerSlot {
    /// The previous generation's hash, the event's own, the next one.
    pub buckets: [String; 3],
    /// The event's field in them.
    pub field: String,
    /// The key the marker had before (see [`KeySpace::legacy_marker`]).
    pub legacy: String,
}

impl MarkerSlot {
    /// The hash the marker is written to.
    pub fn own(&self) -> &str {
        &self.buckets[1]
    }

    /// How long a hash lives after its last write: two generations.
    pub fn bucket_ttl_secs(ttl_secs: u64) -> u64 {
        2 * ttl_secs.max(1)
    }
}

/// An event id's field in a marker hash: the first 63 bits of its SHA-256, in decimal, which Redis
/// keeps as an 8-byte integer in a small hash (an event id may be any string up to 128 characters).
/// Two ids of one device sharing a field within a generation (odds about n²/2⁶⁴ for n events) would
/// drop the second as a duplicate.
pub fn marker_field(event: &EventId) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(event.as_str().as_bytes());
    let first = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (first >> 1).to_string()
}

/// What a popularity key is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    Category,
    Brand,
}

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

    /// The subject's state document (hash: `doc`, `rev`).
    pub fn state(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "state")
    }

    /// Spend per purchase day (member: days since the epoch, UTC; score: revenue that day), the
    /// history the lifetime-value models are fitted on.
    pub fn purchase_days(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "pdays")
    }

    /// An event's dedupe marker as written before [`marker`](Self::marker) (a key per event): read,
    /// so that a duplicate of an event applied before the upgrade is still caught, never written.
    pub fn legacy_marker(&self, site: &SiteId, device: &Subject, event: &EventId) -> String {
        self.subject(site, device, &format!("ev:{event}"))
    }

    /// Where the dedupe marker of an event from `device`, received at `received_ms` by the
    /// collector's clock, is written and looked for; `ttl_secs` is `processor.dedupe_ttl_secs`.
    pub fn marker(
        &self,
        site: &SiteId,
        device: &Subject,
        event: &EventId,
        received_ms: i64,
        ttl_secs: u64,
    ) -> MarkerSlot {
        let generation = received_ms.div_euclid((ttl_secs.max(1) * 1000) as i64);
        let bucket = |g: i64| self.subject(site, device, &format!("evd:{g}"));
        MarkerSlot {
            buckets: [
                bucket(generation - 1),
                bucket(generation),
                bucket(generation + 1),
            ],
            field: marker_field(event),
            legacy: self.legacy_marker(site, device, event),
        }
    }

    /// Marks an outbound action as sent (topic and webhook), in the member's slot (expires).
    pub fn action_sent(&self, site: &SiteId, s: &Subject, action_id: &str) -> String {
        self.subject(site, s, &format!("act:{action_id}"))
    }

    /// Outbound actions whose webhook kept failing (newest first, bounded), as JSON.
    pub fn actions_dead(&self, site: &SiteId) -> String {
        self.site_key(site, "actions:dead")
    }

    /// The erasure tombstone of a subject.
    pub fn erased(&self, site: &SiteId, s: &Subject) -> String {
        self.subject(site, s, "erased")
    }

    fn site_key(&self, site: &SiteId, suffix: &str) -> String {
        format!("{}:{{{site}}}:{suffix}", self.ns)
    }

    /// Per-partition offsets already applied to the site's shared keys.
    pub fn site_watermark(&self, site: &SiteId) -> String {
        self.site_key(site, "wm")
    }

    pub fn models(&self, site: &SiteId) -> String {
        self.site_key(site, "models")
    }

    pub fn segment_defs(&self, site: &SiteId) -> String {
        self.site_key(site, "segdefs")
    }

    /// The site's product catalog: item id → item (JSON).
    /// The learned re-ranking model: fields `rev` and `model`.
    pub fn ranker(&self, site: &SiteId) -> String {
        format!("{}:{{{site}}}:ranker", self.ns)
    }

    pub fn catalog(&self, site: &SiteId) -> String {
        self.site_key(site, "catalog")
    }

    /// The catalog's revision (field [`CATALOG_REV`](Self::CATALOG_REV)), bumped in the same update
    /// as every catalog write.
    pub fn catalog_meta(&self, site: &SiteId) -> String {
        self.site_key(site, "catalog:meta")
    }

    /// The field of [`catalog_meta`](Self::catalog_meta) holding the revision.
    pub const CATALOG_REV: &'static str = "rev";

    /// Business rules added through the admin API: name → definition (JSON).
    pub fn rules(&self, site: &SiteId) -> String {
        self.site_key(site, "rules")
    }

    /// Campaigns added through the admin API: id → definition (JSON).
    pub fn campaigns(&self, site: &SiteId) -> String {
        self.site_key(site, "campaigns")
    }

    /// Campaign counters: `<campaign>|<variant>|impressions|clicks|conversions` → count.
    pub fn campaign_stats(&self, site: &SiteId) -> String {
        self.site_key(site, "campaigns:stats")
    }

    /// The lease that lets one processor of a group refresh and sweep the site.
    pub fn refresh_lease(&self, site: &SiteId) -> String {
        self.site_key(site, "lease:refresh")
    }

    pub fn segment(&self, site: &SiteId, name: &str) -> String {
        self.site_key(site, &format!("seg:{name}"))
    }

    pub fn stage(&self, site: &SiteId, stage: &str) -> String {
        self.site_key(site, &format!("stage:{stage}"))
    }

    /// Customers by the time of their last purchase (ms).
    pub fn recency_index(&self, site: &SiteId) -> String {
        self.site_key(site, "rfm:r")
    }

    /// Customers by order count.
    pub fn frequency_index(&self, site: &SiteId) -> String {
        self.site_key(site, "rfm:f")
    }

    /// A day's counters (`day`: `YYYY-MM-DD`).
    pub fn analytics(&self, site: &SiteId, day: &str) -> String {
        self.site_key(site, &format!("an:{day}"))
    }

    pub fn analytics_pages(&self, site: &SiteId, day: &str) -> String {
        self.site_key(site, &format!("an:{day}:pages"))
    }

    pub fn analytics_referrers(&self, site: &SiteId, day: &str) -> String {
        self.site_key(site, &format!("an:{day}:refs"))
    }

    /// Takes the item as text: the ids it pairs come back from the store, where only valid
    /// [`ItemId`](crate::ItemId)s are ever written.
    pub fn covisits(&self, site: &SiteId, item: &str) -> String {
        format!("{}:{{{site}}}:covis:{item}", self.ns)
    }

    pub fn popular(&self, site: &SiteId) -> String {
        format!("{}:{{{site}}}:popular", self.ns)
    }

    /// Popularity within one category (`facet` = `cat`) or brand (`facet` = `brand`).
    pub fn popular_in(&self, site: &SiteId, facet: Facet, value: &str) -> String {
        let f = match facet {
            Facet::Category => "popcat",
            Facet::Brand => "popbrand",
        };
        format!("{}:{{{site}}}:{f}:{value}", self.ns)
    }

    /// Popularity within one hour (`YYYYMMDDHH`, UTC) of the events' clock.
    pub fn popular_hour(&self, site: &SiteId, hour: &str) -> String {
        format!("{}:{{{site}}}:pop:h:{hour}", self.ns)
    }

    /// Popularity within one day (`YYYYMMDD`, UTC) of the events' clock.
    pub fn popular_day(&self, site: &SiteId, day: &str) -> String {
        format!("{}:{{{site}}}:pop:d:{day}", self.ns)
    }

    /// Items trending now (written by the background model refresh).
    pub fn trending(&self, site: &SiteId) -> String {
        format!("{}:{{{site}}}:trending", self.ns)
    }

    /// The most recent sessions that contained `item`.
    pub fn item_sessions(&self, site: &SiteId, item: &str) -> String {
        format!("{}:{{{site}}}:isess:{item}", self.ns)
    }

    /// The items of one session (`session` = `<device>/<session id>`) as one string
    /// ([`crate::stored::session_list`]).
    pub fn session_list(&self, site: &SiteId, session: &str) -> String {
        format!("{}:{{{site}}}:si:{session}", self.ns)
    }

    /// The items of one session as a sorted set (item → last click), the form before
    /// [`session_list`](Self::session_list): still read, written with `processor.compact_storage =
    /// false`.
    pub fn session_items(&self, site: &SiteId, session: &str) -> String {
        format!("{}:{{{site}}}:sess:{session}", self.ns)
    }

    /// Items that followed `item` within sessions.
    pub fn followers(&self, site: &SiteId, item: &str) -> String {
        format!("{}:{{{site}}}:next:{item}", self.ns)
    }

    /// Items bought together with `item`.
    pub fn copurchases(&self, site: &SiteId, item: &str) -> String {
        format!("{}:{{{site}}}:copurch:{item}", self.ns)
    }

    /// The site's customers (member: subject `m:<id>`/`a:<id>`; score: total revenue).
    pub fn customers(&self, site: &SiteId) -> String {
        format!("{}:{{{site}}}:customers", self.ns)
    }

    /// Per-slot offer counters of a site: `<slot>:impressions`, `<slot>:items_shown`, `<slot>:clicks`.
    pub fn offer_stats(&self, site: &SiteId) -> String {
        format!("{}:{{{site}}}:offers", self.ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MemberId;

    #[test]
    fn a_marker_field_is_pinned_across_versions() {
        // A marker written by one version is looked for by the next: the field may never change.
        let field = |id: &str| marker_field(&EventId::parse(id).unwrap());
        assert_eq!(field("e1"), "5021058866657771161");
        assert_eq!(field("e2"), "6199069511792963389");
    }

    #[test]
    fn a_marker_is_written_in_its_generation_and_looked_for_around_it() {
        let k = KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        let dev = Subject::parse("a:d1").unwrap();
        let id = EventId::parse("e1").unwrap();
        let ttl = 3600;
        let at = |ms: i64| k.marker(&site, &dev, &id, ms, ttl);
        // A retry received within the TTL, later or a little earlier, looks where the first was written.
        for (first, retry) in [
            (0, 3_599_999),
            (3_599_999, 3_600_000),
            (3_600_000, 3_599_999),
        ] {
            assert!(at(retry).buckets.iter().any(|b| b == at(first).own()));
        }
        assert!(!at(7_200_000).buckets.iter().any(|b| b == at(0).own()));
        assert_eq!(MarkerSlot::bucket_ttl_secs(ttl), 7200);
    }

    #[test]
    fn member_keys_share_one_hash_tag() {
        let k = KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        let s = Subject::Member(MemberId::parse("alice").unwrap());
        assert_eq!(k.state(&site, &s), "tailor:{demo:m:alice}:state");
        assert_eq!(
            k.legacy_marker(&site, &s, &EventId::parse("e1").unwrap()),
            "tailor:{demo:m:alice}:ev:e1"
        );
        let week: i64 = 7 * 24 * 3600;
        let slot = k.marker(
            &site,
            &s,
            &EventId::parse("e1").unwrap(),
            2 * week * 1000 + 5,
            week as u64,
        );
        assert_eq!(
            slot.buckets,
            [1, 2, 3].map(|g| format!("tailor:{{demo:m:alice}}:evd:{g}"))
        );
        assert_eq!(slot.own(), "tailor:{demo:m:alice}:evd:2");
        assert_eq!(slot.legacy, "tailor:{demo:m:alice}:ev:e1");
        assert_eq!(k.covisits(&site, "sku1"), "tailor:{demo}:covis:sku1");
        assert_eq!(k.segment(&site, "vip"), "tailor:{demo}:seg:vip");
        assert_eq!(k.catalog(&site), "tailor:{demo}:catalog");
        assert_eq!(k.catalog_meta(&site), "tailor:{demo}:catalog:meta");
        assert_eq!(k.ranker(&site), "tailor:{demo}:ranker");
        assert_eq!(k.rules(&site), "tailor:{demo}:rules");
    }
}
