//! The configuration's sections: sites, the bus and the store, each stage's tuning, with their
//! defaults (the `Default` impls, the only place defaults live).

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The product catalog (`/v1/catalog/items`, `tailor catalog import`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// How often each recommender checks the stored catalog and business rules for changes, in
    /// milliseconds (a change made through this recommender is seen at once).
    pub refresh_ms: u64,
    /// Most items one `PUT /v1/catalog/items` may carry (400 above).
    pub max_items_per_request: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            refresh_ms: 2_000,
            max_items_per_request: 1_000,
        }
    }
}

/// Connection limits of the HTTP server every service runs (`tailor_infra::server`), so that a
/// client cannot hold the server's sockets and memory for free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Longest the server waits for a request's complete headers, counted from when it is ready for
    /// the request (a new connection, or the end of the previous response on a kept-alive one).
    pub header_read_timeout_ms: u64,
    /// A connection with no request in progress and no byte moving for this long is closed.
    pub idle_timeout_ms: u64,
    /// Most connections served at once; one more is accepted and closed at once.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 4_096,
        }
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let hour = 3_600_000;
        for (key, v) in [
            ("http.header_read_timeout_ms", self.header_read_timeout_ms),
            ("http.idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if !(1..=hour).contains(&v) {
                return Err(ConfigError::new(key, "must be from 1 to 3600000 (an hour)"));
            }
        }
        // A semaphore holds at most this many permits, and a cap above any file-descriptor limit
        // would not be a cap.
        if !(1..=1_000_000).contains(&self.max_connections) {
            return Err(ConfigError::new(
                "http.max_connections",
                "must be from 1 to 1000000",
            ));
        }
        Ok(())
    }
}

/// The warehouse sink (`tailor export`): Parquet files partitioned by site and day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Directory of the files (`site=<site>/date=<day>/part-*.parquet`).
    pub dir: std::path::PathBuf,
    /// Consumer group of the sink (its own offsets, apart from the processor's).
    pub group: String,
    /// Rows buffered before a flush.
    pub max_rows: usize,
    /// Longest a row waits for its flush, in seconds.
    pub max_age_secs: u64,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            dir: "tailor-warehouse".into(),
            group: "tailor-export".into(),
            max_rows: 50_000,
            max_age_secs: 60,
        }
    }
}

/// One shop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The `site_id` events carry.
    pub id: String,
    /// A human-readable name for dashboards.
    #[serde(default)]
    pub name: String,
    /// Snowplow tracker app ids (`aid`) whose events belong to this site.
    #[serde(default)]
    pub snowplow_app_ids: Vec<String>,
    /// Segment write keys (HTTP Basic user name, or `writeKey` in the body) that write to this site.
    #[serde(default)]
    pub segment_write_keys: Vec<String>,
    /// Browser origins (`https://shop.example`) allowed to send this site's events cross-origin;
    /// `"*"` allows any. Empty: server-side clients only (requests without an `Origin` header).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// API keys (`[[sites.keys]]`: `name`, `scope`, `sha256`); see `crate::access`. A scope with no
    /// key is closed: `tailor keys create` makes one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<crate::access::KeyConfig>,
    /// No key needed for any scope. Never read from a file: only the built-in demo site of a
    /// deployment started without a configuration file (`Config::default()`) is open.
    #[serde(skip)]
    pub open: bool,
}

impl SiteConfig {
    /// The built-in demo site, writable from any origin.
    pub fn demo() -> SiteConfig {
        SiteConfig {
            id: "demo".into(),
            name: "Tailor demo shop".into(),
            snowplow_app_ids: vec!["demo".into()],
            segment_write_keys: vec!["demo".into()],
            allowed_origins: vec!["*".into()],
            keys: Vec::new(),
            open: false,
        }
    }

    /// Whether a browser at `origin` may write this site's events.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

/// The event bus. Without `brokers` Tailor uses its in-process bus (embedded mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`; empty means the in-process bus.
    pub brokers: Option<String>,
    /// Topic of validated events.
    pub topic: String,
    /// Partitions to create the topic with, if it does not exist.
    pub partitions: i32,
    /// Replication factor to create the topic with.
    pub replication_factor: i32,
    /// Consumer group of the processor.
    pub group: String,
    /// How long the collector waits for the broker to confirm a write before spooling it.
    pub delivery_timeout_ms: u64,
    /// How long the broker may hold a consumer's fetch waiting for records (`fetch.wait.max.ms`):
    /// bounds how late the processor sees an event on a broker that holds fetches for the full
    /// wait. 1 to 500.
    pub fetch_wait_ms: u64,
    /// Topic of rejected events (raw payload + error), read by `tailor dead-letters`.
    pub dead_letter_topic: String,
    /// Topic of profile change events (life-cycle transitions, segment entry and exit, behaviour
    /// changes, identity merges) for the recommender and outside systems.
    pub changes_topic: String,
    /// Topic of campaigns' outbound actions (docs/marketing.md), for e-mail and SMS systems.
    pub actions_topic: String,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            topic: "tailor.events".into(),
            partitions: 6,
            replication_factor: 1,
            group: "tailor-processor".into(),
            delivery_timeout_ms: 5_000,
            fetch_wait_ms: 10,
            dead_letter_topic: "tailor.dead-letters".into(),
            changes_topic: "tailor.changes".into(),
            actions_topic: "tailor.actions".into(),
        }
    }
}

/// The profile store. Without `url` Tailor uses its in-process store (embedded mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`; empty means the in-process store.
    pub url: Option<String>,
    /// Prefix of every key, so deployments can share a Redis.
    pub namespace: String,
    /// `url` names nodes of a Redis Cluster (any of them, comma-separated), not one Redis.
    pub cluster: bool,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            namespace: "tailor".into(),
            cluster: false,
        }
    }
}

/// Limits of the collection API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Largest request body accepted, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most events in one batch request (413 above).
    pub max_batch_events: usize,
    /// How client IP addresses are kept on events.
    pub ip_mode: IpMode,
    /// Secret mixed into hashed IPs (`ip_mode = "hash"`), so hashes cannot be reversed by enumeration.
    pub ip_salt: String,
    /// Take the client IP from the first `X-Forwarded-For` address (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Sustained requests per second allowed per client IP (429 above).
    pub rate_limit_per_sec: u32,
    /// Requests a client IP may burst above the sustained rate.
    pub rate_limit_burst: u32,
    /// Longest a request may take, body upload included, before 408.
    pub request_timeout_ms: u64,
    /// Directory of the on-disk spool that keeps accepting events while Kafka is unreachable.
    pub spool_dir: std::path::PathBuf,
    /// Largest spool size in bytes; only beyond it does the collector answer 503.
    pub spool_max_bytes: u64,
    /// Seconds the spool may hold records without the bus confirming any before the collector turns
    /// unready (`/readyz` 503, `tailor_spool_unconfirmed_seconds`): a broker that is down, or up
    /// but failing every request.
    pub spool_stall_secs: u64,
    /// Bytes the dead-letter store keeps, half for small records (up to 16 KiB: nearly every
    /// rejected event) and half for big ones (whole refused bodies), the oldest of each half
    /// dropped first. Kafka: the dead-letter topic's `retention.bytes` per partition, set when
    /// Tailor creates it.
    pub dead_letter_max_bytes: u64,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            max_body_bytes: 1024 * 1024,
            max_batch_events: 500,
            ip_mode: IpMode::Truncate,
            ip_salt: String::new(),
            trust_forwarded_for: false,
            rate_limit_per_sec: 200,
            rate_limit_burst: 400,
            request_timeout_ms: 10_000,
            spool_dir: "tailor-spool".into(),
            spool_max_bytes: 1024 * 1024 * 1024,
            spool_stall_secs: 60,
            dead_letter_max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// What the collector keeps of a client IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    /// Zero the host part: IPv4 to /24, IPv6 to /48 (default).
    Truncate,
    /// A salted SHA-256 of the address, hex (pseudonymous, still joinable).
    Hash,
    /// Nothing.
    Drop,
    /// The address as is (only where the shop has a legal basis for it).
    Raw,
}

/// Tuning of the processor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorConfig {
    /// Most events applied per store round trip.
    pub batch_size: usize,
    /// Length of a profile's recently viewed list.
    pub recent_items: u32,
    /// Distinct items remembered per session for co-visitation.
    pub session_items: u32,
    /// How long an event id is remembered to drop duplicates, in seconds.
    pub dedupe_ttl_secs: u64,
    /// Write state documents compressed and dedupe markers as fields of a hash per device
    /// (`tailor_core::stored`, `tailor_core::keys::MarkerSlot`); both forms are always read. Off, the
    /// forms of earlier versions are written, which those versions can read: upgrading a running
    /// deployment rolls out with it off, then turns it on once no earlier processor runs
    /// (docs/operations.md, "Rolling out a new version").
    pub compact_storage: bool,
    /// Half-life of interest scores (items, categories, brands), in days.
    pub interest_half_life_days: f64,
    /// Half-life of the short-term category interest that behaviour-change detection compares with
    /// the long-term one, in days.
    pub recent_half_life_days: f64,
    /// Interests kept per member: items, categories, brands.
    pub top_items: u32,
    pub top_categories: u32,
    pub top_brands: u32,
    /// Pages kept in the recent navigation path.
    pub path_length: u32,
    /// Sessions kept in full per member (older ones live on in the aggregates).
    pub sessions_kept: u32,
    /// Inactivity after which an event without a session id starts a new session, in minutes.
    pub session_timeout_mins: u32,
    /// How often site models (RFM cut points, lifetime-value fit, segment definitions) are refreshed
    /// and the time-driven stages re-evaluated, in seconds.
    pub models_refresh_secs: u64,
    /// Fewest customers before the lifetime-value models are fitted.
    pub min_customers_for_fit: u32,
    /// Days before the same behaviour-change signal may fire again for a member.
    pub signal_cooldown_days: u32,
    /// Events a member needs before behaviour changes are judged against their history.
    pub min_history_events: u32,
    /// Most recent sessions kept per item for session-based neighbours (V-SKNN's sample size: the
    /// neighbours of a session in progress are found among the most recent sessions sharing an item).
    pub session_index_size: u32,
    /// How long a session's item list is kept for session-based neighbours, in days.
    pub session_index_ttl_days: u32,
    /// Most neighbours kept per item in each item-to-item model (co-visitation, followers,
    /// co-purchase), the strongest: an item's list is trimmed when the item itself is seen, so a
    /// busy item's list stays bounded (the recommender reads `recommender.neighbours_per_seed`).
    pub neighbours_kept: u32,
    /// Most distinct items one visitor feeds the shared models (popularity, co-visitation, session
    /// index, followers) per day; beyond it their views only reach their own profile.
    pub shared_items_per_day: u32,
    /// Run the actions stage (campaigns' outbound actions, docs/marketing.md) in this processor:
    /// one more consumer group, on the change events. Off, triggers act on the site only.
    pub actions: bool,
    /// Clicks back within a session that count as "followed by" (sequential rules), weighted 1/distance.
    pub sequence_steps: u32,
    /// The session's most recent distinct items that an item viewed for the first time in the session
    /// is paired with in co-visitation: bounds a view's co-visitation writes (two increments a pair),
    /// which would otherwise grow with the session's length.
    pub covisitation_window: u32,
    /// Trending compares the last this-many hours with the long-run daily rate.
    pub trending_window_hours: u32,
    /// Days of the long-run rate trending compares against.
    pub trending_baseline_days: u32,
    pub lifecycle: crate::models::LifecycleRules,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            batch_size: 500,
            recent_items: 20,
            session_items: 30,
            dedupe_ttl_secs: 7 * 24 * 3600,
            compact_storage: true,
            interest_half_life_days: 30.0,
            recent_half_life_days: 1.0,
            top_items: 50,
            top_categories: 20,
            top_brands: 20,
            path_length: 20,
            sessions_kept: 10,
            session_timeout_mins: 30,
            models_refresh_secs: 300,
            min_customers_for_fit: 50,
            signal_cooldown_days: 7,
            min_history_events: 10,
            session_index_size: 500,
            shared_items_per_day: 200,
            actions: true,
            session_index_ttl_days: 30,
            neighbours_kept: 300,
            sequence_steps: 5,
            covisitation_window: 5,
            trending_window_hours: 24,
            trending_baseline_days: 28,
            lifecycle: crate::models::LifecycleRules::default(),
        }
    }
}

/// Tuning of the recommendation API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecommenderConfig {
    /// Items returned when the request gives no `limit`.
    pub default_limit: usize,
    /// Largest `limit` accepted (400 above).
    pub max_limit: usize,
    /// How many of the member's recent items seed co-visitation.
    pub seed_items: usize,
    /// Neighbours read per seed item.
    pub neighbours_per_seed: usize,
    /// Items read from each popularity list (site, category, interests, trending).
    pub popular_read: usize,
    /// Session-based neighbours: how many of the most recent sessions sharing an item are compared
    /// (V-SKNN's sample, which session-rec sets to 500; 125 ranks as well once the learned stage
    /// re-orders the blend, for a quarter of the work; at most `processor.session_index_size` are
    /// kept per item) ...
    pub session_sample: usize,
    /// ... and how many of the most similar vote (V-SKNN's k).
    pub session_neighbours: usize,
    /// Past sessions whose item lists the recommender keeps in memory (0: none), so a request
    /// reads only the neighbour sessions that changed since: one that has ended
    /// (`session_timeout_mins`) until the session index shows a later click, one that may still be
    /// going on for `session_index_cache_ms`.
    pub session_cache: usize,
    /// Items whose most recent sessions (the session index's lists) the recommender keeps in
    /// memory, each for `session_index_cache_ms` (0: none) ...
    pub session_index_cache: usize,
    /// ... milliseconds: neighbours are then sampled without the sessions of the last moment (and
    /// a neighbour session still going on is read again after this long).
    pub session_index_cache_ms: u64,
    /// The site's other shared lists (co-visits, followers and co-purchases of an item, popular
    /// and trending items) the recommender keeps in memory, each for `shared_list_cache_ms` (0:
    /// none) ...
    pub shared_list_cache: usize,
    /// ... milliseconds: answers then reflect the shared models as they were at most this long ago
    /// (a visitor's own clicks, read with their summary, show at once).
    pub shared_list_cache_ms: u64,
    /// A session whose last click is older than this is over: its items seed nothing, in minutes.
    pub session_timeout_mins: u32,
    /// Session neighbours weigh their items by exp(-distance in clicks to the shared item / this)
    /// (STAN's position weighting); absent: every item of a neighbour alike (plain V-SKNN).
    pub session_position_decay: Option<f64>,
    /// Session neighbours are weighted by exp(-their age / this many days) at the time of the
    /// request (STAN's recency factor); absent: every sampled neighbour alike.
    pub session_recency_decay_days: Option<f64>,
    /// The session's own clicks weigh exp(-clicks before the last / this) when neighbours are
    /// compared (STAN's first factor); absent: V-SKNN's linear j / n.
    pub session_click_decay: Option<f64>,
    /// How much each candidate source's best item is worth in the blend (see docs/ranking.md).
    pub weights: SourceWeights,
    /// The learned re-ranking stage (when the site has a model, `tailor ranker fit`) re-orders
    /// this many of the blend's best items.
    pub rerank_candidates: usize,
    /// Items of the site's popularity the recommender keeps in memory for the re-ranking model.
    pub rerank_popular_items: usize,
    /// At most this many items of one category per answer (0: no limit).
    pub max_per_category: usize,
    /// Never offer the item of the current page (product pages usually want this; the offline
    /// evaluation protocol does not, since shoppers return to it).
    pub exclude_current_item: bool,
    /// A request that cannot finish in this many milliseconds is answered from the cached popular
    /// items instead.
    pub timeout_ms: u64,
    /// Overrides per slot (`home`, `product`, `cart`, ... as the `slot` parameter names them).
    pub slots: BTreeMap<String, SlotRanking>,
    /// Most campaign offers answered beside the items of a request naming a slot (0: none).
    pub offers_per_slot: usize,
    /// The key that signs offer tokens (HMAC-SHA256), shared by the recommender that issues them
    /// and the processor that counts them: set your own in production, at least 16 characters.
    pub offer_secret: String,
}

/// The built-in `recommender.offer_secret`: fine for a demo, public, so replace it in production.
pub const DEV_OFFER_SECRET: &str = "tailor-development-offer-secret";

impl Default for RecommenderConfig {
    fn default() -> Self {
        RecommenderConfig {
            default_limit: 10,
            max_limit: 100,
            seed_items: 5,
            neighbours_per_seed: 25,
            popular_read: 100,
            session_sample: 125,
            session_neighbours: 50,
            session_cache: 50_000,
            session_index_cache: 1_000,
            session_index_cache_ms: 1_000,
            shared_list_cache: 10_000,
            shared_list_cache_ms: 1_000,
            session_timeout_mins: 30,
            session_position_decay: Some(2.0),
            session_recency_decay_days: Some(20.0),
            session_click_decay: None,
            weights: SourceWeights::default(),
            rerank_candidates: 50,
            rerank_popular_items: 20_000,
            max_per_category: 0,
            exclude_current_item: false,
            timeout_ms: 50,
            // A product page never offers its own item.
            slots: BTreeMap::from([(
                "product".to_string(),
                SlotRanking {
                    exclude_current_item: Some(true),
                    ..Default::default()
                },
            )]),
            offers_per_slot: 1,
            offer_secret: DEV_OFFER_SECRET.into(),
        }
    }
}

/// Blend weight of each candidate source.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceWeights {
    /// Items of past sessions most similar to the one in progress (V-SKNN).
    pub session_knn: f64,
    /// Items of the session in progress, most recent first ("you viewed this").
    pub reminder: f64,
    /// Items that followed the session's recent items in other sessions.
    pub sequence: f64,
    /// Items viewed in the same sessions as the page's and the visitor's recent items.
    pub covisitation: f64,
    /// Items bought together with the seeds and the member's purchases.
    pub copurchase: f64,
    /// Popular items of the member's favourite categories and brands.
    pub interest: f64,
    /// Items trending now.
    pub trending: f64,
    /// Popular items of the page's category.
    pub category: f64,
    /// Popular items of the site (what a first-time visitor sees).
    pub popular: f64,
}

impl Default for SourceWeights {
    fn default() -> Self {
        // Tuned on a split of the clickstream's training file (docs/quality.md): the session's
        // neighbours lead, reminders and what usually comes next refine the order; the rest fill.
        SourceWeights {
            session_knn: 1.0,
            reminder: 0.4,
            sequence: 0.15,
            covisitation: 0.05,
            copurchase: 0.02,
            interest: 0.1,
            trending: 0.02,
            category: 0.0,
            popular: 0.005,
        }
    }
}

impl SourceWeights {
    /// All zero but one source (the offline evaluation's single-generator rankers).
    pub fn only(name: &str, w: f64) -> Option<SourceWeights> {
        let mut z = SourceWeights {
            session_knn: 0.0,
            reminder: 0.0,
            sequence: 0.0,
            covisitation: 0.0,
            copurchase: 0.0,
            interest: 0.0,
            trending: 0.0,
            category: 0.0,
            popular: 0.0,
        };
        *z.get_mut(name)? = w;
        Some(z)
    }

    /// The weight of a source by its name (`session_knn`, `sequence`, ...).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut f64> {
        Some(match name {
            "session_knn" => &mut self.session_knn,
            "reminder" => &mut self.reminder,
            "sequence" => &mut self.sequence,
            "covisitation" => &mut self.covisitation,
            "copurchase" => &mut self.copurchase,
            "interest" => &mut self.interest,
            "trending" => &mut self.trending,
            "category" => &mut self.category,
            "popular" => &mut self.popular,
            _ => return None,
        })
    }

    fn all(&self) -> [(&'static str, f64); 9] {
        [
            ("session_knn", self.session_knn),
            ("reminder", self.reminder),
            ("sequence", self.sequence),
            ("covisitation", self.covisitation),
            ("copurchase", self.copurchase),
            ("interest", self.interest),
            ("trending", self.trending),
            ("category", self.category),
            ("popular", self.popular),
        ]
    }
}

/// What one slot changes of the ranking; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlotRanking {
    /// Weights for this slot, by source name (`popular = 1.0`); sources not named keep the
    /// recommender's weights.
    pub weights: BTreeMap<String, f64>,
    pub max_per_category: Option<usize>,
    pub exclude_current_item: Option<bool>,
}

impl RecommenderConfig {
    /// The ranking settings of a slot: the recommender's, with the slot's overrides.
    pub fn for_slot(&self, slot: Option<&str>) -> (SourceWeights, usize, bool) {
        let mut weights = self.weights;
        let mut max = self.max_per_category;
        let mut exclude = self.exclude_current_item;
        if let Some(o) = slot.and_then(|s| self.slots.get(s)) {
            for (name, w) in &o.weights {
                if let Some(slot) = weights.get_mut(name) {
                    *slot = *w;
                }
            }
            max = o.max_per_category.unwrap_or(max);
            exclude = o.exclude_current_item.unwrap_or(exclude);
        }
        (weights, max, exclude)
    }

    pub(super) fn validate_weights(&self) -> Result<(), ConfigError> {
        if let Some(d) = self.session_recency_decay_days {
            if !d.is_finite() || d <= 0.0 {
                return Err(ConfigError::new(
                    "recommender.session_recency_decay_days",
                    format!("must be a number of days > 0, got {d}"),
                ));
            }
        }
        for (key, l) in [
            ("session_position_decay", self.session_position_decay),
            ("session_click_decay", self.session_click_decay),
        ] {
            if let Some(l) = l.filter(|l| !l.is_finite() || *l <= 0.0) {
                return Err(ConfigError::new(
                    format!("recommender.{key}"),
                    format!("must be a number of clicks > 0, got {l}"),
                ));
            }
        }
        for (name, w) in self.weights.all() {
            if !w.is_finite() || w < 0.0 {
                return Err(ConfigError::new(
                    format!("recommender.weights.{name}"),
                    format!("must be a number >= 0, got {w}"),
                ));
            }
        }
        for (slot, o) in &self.slots {
            for (name, w) in &o.weights {
                let key = format!("recommender.slots.{slot}.weights.{name}");
                if SourceWeights::default().get_mut(name).is_none() {
                    return Err(ConfigError::new(
                        key,
                        "unknown source: expected session_knn, reminder, sequence, covisitation, copurchase, interest, trending, category or popular",
                    ));
                }
                if !w.is_finite() || *w < 0.0 {
                    return Err(ConfigError::new(
                        key,
                        format!("must be a number >= 0, got {w}"),
                    ));
                }
            }
        }
        Ok(())
    }
}
