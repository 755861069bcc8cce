//! Typed configuration, shared by every stage.
//!
//! One TOML file (all sections optional) plus command-line/environment overrides applied by the binary.
//! Defaults live in the `Default` impls below and nowhere else; [`Config::validate`] runs at start-up and
//! names the offending key. Unknown keys are rejected, so a typo fails loudly instead of being ignored.

use crate::ids::SiteId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A configuration problem: the key (dotted path) and why it is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}`: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Sites (shops) this deployment serves; events for other sites are rejected. A file's list adds
    /// to the built-in `demo` site unless `demo_site = false`.
    #[serde(default)]
    pub sites: Vec<SiteConfig>,
    /// Keep the built-in `demo` site (the demo shop's and the README's) beside the configured ones.
    pub demo_site: bool,
    pub kafka: KafkaConfig,
    pub redis: RedisConfig,
    pub collector: CollectorConfig,
    pub processor: ProcessorConfig,
    pub recommender: RecommenderConfig,
    /// Segments evaluated on every profile update (more can be added through the admin API).
    pub segments: Vec<crate::segment::SegmentDef>,
    pub export: ExportConfig,
    /// The product catalog's API and the recommender's copy of it.
    pub catalog: CatalogConfig,
    /// Business rules applied to every recommendation (more can be added through the admin API);
    /// fields in `core/src/rules.rs` and docs/catalog.md.
    pub rules: Vec<crate::rules::RuleDef>,
    /// Campaigns whose offers the recommender shows (more can be added through the admin API);
    /// fields in `core/src/campaign.rs` and docs/marketing.md.
    pub campaigns: Vec<crate::campaign::CampaignDef>,
    /// Connection limits of the HTTP server every service runs.
    pub http: HttpConfig,
}

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
    fn validate(&self) -> Result<(), ConfigError> {
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

impl Default for Config {
    fn default() -> Self {
        Config {
            // No configuration file: the demo site is the only one, and it is open (no keys), so
            // the README's first commands work as written. A file's sites are always closed.
            sites: vec![SiteConfig {
                open: true,
                ..SiteConfig::demo()
            }],
            demo_site: true,
            kafka: KafkaConfig::default(),
            redis: RedisConfig::default(),
            collector: CollectorConfig::default(),
            processor: ProcessorConfig::default(),
            recommender: RecommenderConfig::default(),
            segments: default_segments(),
            export: ExportConfig::default(),
            catalog: CatalogConfig::default(),
            rules: Vec::new(),
            campaigns: Vec::new(),
            http: HttpConfig::default(),
        }
    }
}

fn seg(name: &str, rule: &str, description: &str) -> crate::segment::SegmentDef {
    crate::segment::SegmentDef {
        name: name.into(),
        rule: rule.into(),
        description: Some(description.into()),
        site: None,
    }
}

/// Segments every deployment starts with.
pub fn default_segments() -> Vec<crate::segment::SegmentDef> {
    vec![
        seg(
            "rfm_champions",
            r#"rfm.segment == "champions""#,
            "Bought recently, often and for much",
        ),
        seg(
            "top_value",
            "value_percentile >= 0.8",
            "The top 20% of customers by spend",
        ),
        seg(
            "churn_risk",
            "churn_risk > 0.7",
            "Repeat customers the BG/NBD model thinks have probably left",
        ),
        seg(
            "lapsing",
            r#"lifecycle == "lapsing""#,
            "Customers past their usual buying rhythm",
        ),
    ]
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

    fn validate_weights(&self) -> Result<(), ConfigError> {
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

impl Config {
    /// Reads a TOML file; unknown keys and type errors name the key.
    pub fn from_toml_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
        })?;
        Config::from_toml(&text)
    }

    /// Parses a file's text; an error names the key by its full path (`collector.foo`,
    /// `sites[1].id`). The built-in demo site is added unless the file lists its own `demo` or says
    /// `demo_site = false`.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let path = e.path().to_string();
                let e = e.into_inner();
                // A syntax error has no path: name the line it is on instead.
                let key = if path == "." {
                    let at = e.span().map_or(0, |s| s.start.min(text.len()));
                    format!("line {}", text[..at].matches('\n').count() + 1)
                } else {
                    path
                };
                ConfigError::new(key, e.message().to_string())
            })?;
        if config.demo_site && config.site("demo").is_none() {
            config.sites.push(SiteConfig::demo());
        }
        Ok(config)
    }

    /// Checks every value that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sites.is_empty() {
            return Err(ConfigError::new("sites", "at least one site is required"));
        }
        for (i, s) in self.sites.iter().enumerate() {
            SiteId::parse(s.id.clone())
                .map_err(|e| ConfigError::new(format!("sites[{i}].id"), e.to_string()))?;
            if self.sites[..i].iter().any(|o| o.id == s.id) {
                return Err(ConfigError::new(
                    format!("sites[{i}].id"),
                    format!("site {:?} is listed twice", s.id),
                ));
            }
        }
        if let Some(b) = &self.kafka.brokers {
            if b.trim().is_empty() || b.split(',').any(|h| !h.trim().contains(':')) {
                return Err(ConfigError::new(
                    "kafka.brokers",
                    format!("expected host:port[,host:port...], got {b:?}"),
                ));
            }
        }
        nonempty("kafka.topic", &self.kafka.topic)?;
        nonempty("kafka.group", &self.kafka.group)?;
        nonempty("kafka.dead_letter_topic", &self.kafka.dead_letter_topic)?;
        nonempty("kafka.changes_topic", &self.kafka.changes_topic)?;
        nonempty("kafka.actions_topic", &self.kafka.actions_topic)?;
        nonempty("export.group", &self.export.group)?;
        if self.export.group == self.kafka.group {
            return Err(ConfigError::new(
                "export.group",
                "must differ from kafka.group (the sink keeps its own offsets)",
            ));
        }
        if self.kafka.dead_letter_topic == self.kafka.topic {
            return Err(ConfigError::new(
                "kafka.dead_letter_topic",
                "must differ from kafka.topic",
            ));
        }
        if self.kafka.changes_topic == self.kafka.topic
            || self.kafka.changes_topic == self.kafka.dead_letter_topic
        {
            return Err(ConfigError::new(
                "kafka.changes_topic",
                "must differ from kafka.topic and kafka.dead_letter_topic",
            ));
        }
        if [
            &self.kafka.topic,
            &self.kafka.dead_letter_topic,
            &self.kafka.changes_topic,
        ]
        .contains(&&self.kafka.actions_topic)
        {
            return Err(ConfigError::new(
                "kafka.actions_topic",
                "must differ from kafka.topic, kafka.dead_letter_topic and kafka.changes_topic",
            ));
        }
        self.validate_mining()?;
        self.http.validate()?;
        // Each half must hold at least a few of the biggest records (a payload is cut at 256 KiB).
        if self.collector.dead_letter_max_bytes < 4 * 1024 * 1024 {
            return Err(ConfigError::new(
                "collector.dead_letter_max_bytes",
                "must be at least 4194304 (4 MiB)",
            ));
        }
        if self.collector.ip_mode == IpMode::Hash && self.collector.ip_salt.len() < 16 {
            return Err(ConfigError::new(
                "collector.ip_salt",
                "must be at least 16 characters when collector.ip_mode = \"hash\"",
            ));
        }
        self.validate_site_keys()?;
        self.validate_access_keys()?;
        self.validate_rules()?;
        self.validate_campaigns()?;
        if let Some(u) = &self.redis.url {
            if !(u.starts_with("redis://")
                || u.starts_with("rediss://")
                || u.starts_with("unix://"))
            {
                return Err(ConfigError::new(
                    "redis.url",
                    format!("expected redis://host:port[/db], got {u:?}"),
                ));
            }
        }
        nonempty("redis.namespace", &self.redis.namespace)?;
        if self.redis.cluster && self.redis.url.is_none() {
            return Err(ConfigError::new(
                "redis.cluster",
                "needs redis.url (or --redis): the cluster's nodes, comma-separated",
            ));
        }
        if self.redis.namespace.contains(['{', '}']) {
            return Err(ConfigError::new(
                "redis.namespace",
                "must not contain '{' or '}'",
            ));
        }
        let counts = [
            ("catalog.refresh_ms", self.catalog.refresh_ms as i64),
            (
                "catalog.max_items_per_request",
                self.catalog.max_items_per_request as i64,
            ),
            (
                "collector.rate_limit_per_sec",
                self.collector.rate_limit_per_sec as i64,
            ),
            (
                "collector.rate_limit_burst",
                self.collector.rate_limit_burst as i64,
            ),
            (
                "collector.request_timeout_ms",
                self.collector.request_timeout_ms as i64,
            ),
            (
                "collector.spool_max_bytes",
                self.collector.spool_max_bytes as i64,
            ),
            (
                "collector.spool_stall_secs",
                self.collector.spool_stall_secs as i64,
            ),
            ("kafka.partitions", self.kafka.partitions as i64),
            (
                "kafka.replication_factor",
                self.kafka.replication_factor as i64,
            ),
            (
                "kafka.delivery_timeout_ms",
                self.kafka.delivery_timeout_ms as i64,
            ),
            (
                "collector.max_body_bytes",
                self.collector.max_body_bytes as i64,
            ),
            (
                "collector.max_batch_events",
                self.collector.max_batch_events as i64,
            ),
            ("processor.batch_size", self.processor.batch_size as i64),
            ("export.max_rows", self.export.max_rows as i64),
            ("export.max_age_secs", self.export.max_age_secs as i64),
            ("processor.top_items", self.processor.top_items as i64),
            (
                "processor.top_categories",
                self.processor.top_categories as i64,
            ),
            ("processor.top_brands", self.processor.top_brands as i64),
            ("processor.path_length", self.processor.path_length as i64),
            (
                "processor.sessions_kept",
                self.processor.sessions_kept as i64,
            ),
            (
                "processor.session_timeout_mins",
                self.processor.session_timeout_mins as i64,
            ),
            (
                "processor.models_refresh_secs",
                self.processor.models_refresh_secs as i64,
            ),
            ("processor.recent_items", self.processor.recent_items as i64),
            (
                "processor.session_items",
                self.processor.session_items as i64,
            ),
            (
                "processor.dedupe_ttl_secs",
                self.processor.dedupe_ttl_secs as i64,
            ),
            (
                "processor.neighbours_kept",
                self.processor.neighbours_kept as i64,
            ),
            (
                "processor.session_index_size",
                self.processor.session_index_size as i64,
            ),
            (
                "processor.shared_items_per_day",
                self.processor.shared_items_per_day as i64,
            ),
            (
                "processor.session_index_ttl_days",
                self.processor.session_index_ttl_days as i64,
            ),
            (
                "processor.sequence_steps",
                self.processor.sequence_steps as i64,
            ),
            (
                "processor.covisitation_window",
                self.processor.covisitation_window as i64,
            ),
            (
                "processor.trending_window_hours",
                self.processor.trending_window_hours as i64,
            ),
            (
                "processor.trending_baseline_days",
                self.processor.trending_baseline_days as i64,
            ),
            (
                "recommender.default_limit",
                self.recommender.default_limit as i64,
            ),
            ("recommender.seed_items", self.recommender.seed_items as i64),
            (
                "recommender.neighbours_per_seed",
                self.recommender.neighbours_per_seed as i64,
            ),
            (
                "recommender.popular_read",
                self.recommender.popular_read as i64,
            ),
            (
                "recommender.session_sample",
                self.recommender.session_sample as i64,
            ),
            (
                "recommender.session_neighbours",
                self.recommender.session_neighbours as i64,
            ),
            (
                "recommender.session_timeout_mins",
                self.recommender.session_timeout_mins as i64,
            ),
            ("recommender.timeout_ms", self.recommender.timeout_ms as i64),
            (
                "recommender.rerank_candidates",
                self.recommender.rerank_candidates as i64,
            ),
            (
                "recommender.rerank_popular_items",
                self.recommender.rerank_popular_items as i64,
            ),
        ];
        for (key, value) in counts {
            positive(key, value)?;
        }
        self.recommender.validate_weights()?;
        // A request waits for the broker's confirmation (at most the delivery timeout, then a second
        // for the spool) before it answers; a shorter request deadline would answer 408 to events
        // that are then delivered anyway.
        if self.kafka.brokers.is_some()
            && self.kafka.delivery_timeout_ms + 1000 >= self.collector.request_timeout_ms
        {
            return Err(ConfigError::new(
                "kafka.delivery_timeout_ms",
                format!(
                    "must be more than a second below collector.request_timeout_ms ({} ms)",
                    self.collector.request_timeout_ms
                ),
            ));
        }
        if !(1..=500).contains(&self.kafka.fetch_wait_ms) {
            return Err(ConfigError::new(
                "kafka.fetch_wait_ms",
                format!("must be 1 to 500 ms, got {}", self.kafka.fetch_wait_ms),
            ));
        }
        if (self.processor.neighbours_kept as usize) < self.recommender.neighbours_per_seed {
            return Err(ConfigError::new(
                "processor.neighbours_kept",
                format!(
                    "must be at least recommender.neighbours_per_seed ({}): the recommender reads that many",
                    self.recommender.neighbours_per_seed
                ),
            ));
        }
        if self.recommender.max_limit < self.recommender.default_limit {
            return Err(ConfigError::new(
                "recommender.max_limit",
                "must be at least recommender.default_limit",
            ));
        }
        Ok(())
    }

    pub fn has_site(&self, site: &SiteId) -> bool {
        self.site(site.as_str()).is_some()
    }

    pub fn site(&self, id: &str) -> Option<&SiteConfig> {
        self.sites.iter().find(|s| s.id == id)
    }

    /// The site a Snowplow app id writes to.
    pub fn site_for_app_id(&self, app_id: &str) -> Option<&SiteConfig> {
        self.sites
            .iter()
            .find(|s| s.snowplow_app_ids.iter().any(|a| a == app_id))
    }

    /// The site a Segment write key writes to.
    pub fn site_for_write_key(&self, key: &str) -> Option<&SiteConfig> {
        self.sites
            .iter()
            .find(|s| s.segment_write_keys.iter().any(|k| k == key))
    }

    /// Processor tuning that is not a plain count, and the segment definitions.
    fn validate_mining(&self) -> Result<(), ConfigError> {
        let p = &self.processor;
        for (key, v) in [
            (
                "processor.interest_half_life_days",
                p.interest_half_life_days,
            ),
            ("processor.recent_half_life_days", p.recent_half_life_days),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ConfigError::new(
                    key,
                    format!("must be a positive number of days, got {v}"),
                ));
            }
        }
        if p.recent_half_life_days >= p.interest_half_life_days {
            return Err(ConfigError::new(
                "processor.recent_half_life_days",
                "must be shorter than processor.interest_half_life_days",
            ));
        }
        let l = &p.lifecycle;
        if l.lapsing_days == 0 || l.lapsed_days <= l.lapsing_days {
            return Err(ConfigError::new(
                "processor.lifecycle.lapsed_days",
                format!(
                    "must be greater than processor.lifecycle.lapsing_days (> 0), got {} and {}",
                    l.lapsed_days, l.lapsing_days
                ),
            ));
        }
        if !(0.0 < l.lapsed_p_alive
            && l.lapsed_p_alive < l.lapsing_p_alive
            && l.lapsing_p_alive < 1.0)
        {
            return Err(ConfigError::new(
                "processor.lifecycle.lapsing_p_alive",
                "need 0 < lapsed_p_alive < lapsing_p_alive < 1",
            ));
        }
        if !(l.horizon_weeks.is_finite() && l.horizon_weeks > 0.0) {
            return Err(ConfigError::new(
                "processor.lifecycle.horizon_weeks",
                "must be a positive number of weeks",
            ));
        }
        for (i, d) in self.segments.iter().enumerate() {
            crate::segment::check(d).map_err(|e| ConfigError::new(format!("segments[{i}]"), e))?;
            if let Some(site) = &d.site {
                if self.site(site).is_none() {
                    return Err(ConfigError::new(
                        format!("segments[{i}].site"),
                        format!("no site {site:?} is configured"),
                    ));
                }
            }
            if self.segments[..i].iter().any(|o| {
                o.name == d.name && (o.site.is_none() || d.site.is_none() || o.site == d.site)
            }) {
                return Err(ConfigError::new(
                    format!("segments[{i}].name"),
                    format!("segment {:?} is defined twice", d.name),
                ));
            }
        }
        Ok(())
    }

    /// Each business rule checks, names a configured site, and has a name unique on its sites.
    fn validate_rules(&self) -> Result<(), ConfigError> {
        for (i, d) in self.rules.iter().enumerate() {
            crate::rules::check(d)
                .map_err(|e| ConfigError::new(format!("rules[{i}].{}", e.field), e.reason))?;
            if let Some(site) = &d.site {
                if self.site(site).is_none() {
                    return Err(ConfigError::new(
                        format!("rules[{i}].site"),
                        format!("no site {site:?} is configured"),
                    ));
                }
            }
            if self.rules[..i].iter().any(|o| {
                o.name == d.name && (o.site.is_none() || d.site.is_none() || o.site == d.site)
            }) {
                return Err(ConfigError::new(
                    format!("rules[{i}].name"),
                    format!("rule {:?} is defined twice", d.name),
                ));
            }
        }
        Ok(())
    }

    /// Each campaign checks, names a configured site, and has an id unique on its sites; offers
    /// are bounded and their tokens signed with a real key.
    fn validate_campaigns(&self) -> Result<(), ConfigError> {
        if self.recommender.offers_per_slot > 10 {
            return Err(ConfigError::new(
                "recommender.offers_per_slot",
                "must be from 0 to 10",
            ));
        }
        if self.recommender.offer_secret.len() < 16 {
            return Err(ConfigError::new(
                "recommender.offer_secret",
                "must be at least 16 characters",
            ));
        }
        for (i, d) in self.campaigns.iter().enumerate() {
            crate::campaign::check(d)
                .map_err(|e| ConfigError::new(format!("campaigns[{i}].{}", e.field), e.reason))?;
            if let Some(site) = &d.site {
                if self.site(site).is_none() {
                    return Err(ConfigError::new(
                        format!("campaigns[{i}].site"),
                        format!("no site {site:?} is configured"),
                    ));
                }
            }
            if self.campaigns[..i]
                .iter()
                .any(|o| o.id == d.id && (o.site.is_none() || d.site.is_none() || o.site == d.site))
            {
                return Err(ConfigError::new(
                    format!("campaigns[{i}].id"),
                    format!("campaign {:?} is defined twice", d.id),
                ));
            }
        }
        Ok(())
    }

    /// An app id or write key must name one site only, and origins must be `scheme://host[:port]`.
    fn validate_site_keys(&self) -> Result<(), ConfigError> {
        for (i, s) in self.sites.iter().enumerate() {
            let lists: [(&str, &Vec<String>); 2] = [
                ("snowplow_app_ids", &s.snowplow_app_ids),
                ("segment_write_keys", &s.segment_write_keys),
            ];
            for (name, list) in lists {
                for (j, v) in list.iter().enumerate() {
                    let key = format!("sites[{i}].{name}[{j}]");
                    nonempty(&key, v)?;
                    let owners = self.sites.iter().filter(|o| {
                        let l = if name == "snowplow_app_ids" {
                            &o.snowplow_app_ids
                        } else {
                            &o.segment_write_keys
                        };
                        l.contains(v)
                    });
                    if owners.count() > 1 || list[..j].contains(v) {
                        return Err(ConfigError::new(key, format!("{v:?} is given twice")));
                    }
                }
            }
            for (j, o) in s.allowed_origins.iter().enumerate() {
                let ok = o == "*"
                    || ((o.starts_with("http://") || o.starts_with("https://"))
                        && !o.ends_with('/')
                        && o.matches('/').count() == 2);
                if !ok {
                    return Err(ConfigError::new(
                        format!("sites[{i}].allowed_origins[{j}]"),
                        format!("expected \"*\" or scheme://host[:port] with no path, got {o:?}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Config {
    /// Each API key has a name unique within its site and a well-formed digest that no other key
    /// shares (a secret must name one key, so a request is never ambiguous).
    fn validate_access_keys(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<(String, usize, usize)> = Vec::new();
        for (i, s) in self.sites.iter().enumerate() {
            for (j, k) in s.keys.iter().enumerate() {
                let at = format!("sites[{i}].keys[{j}]");
                nonempty(&format!("{at}.name"), &k.name)?;
                if s.keys[..j].iter().any(|o| o.name == k.name) {
                    return Err(ConfigError::new(
                        format!("{at}.name"),
                        format!("key {:?} is named twice on site {:?}", k.name, s.id),
                    ));
                }
                let Some(d) = crate::access::parse_digest(&k.sha256) else {
                    return Err(ConfigError::new(
                        format!("{at}.sha256"),
                        format!(
                            "expected the hex SHA-256 of the secret (64 hex digits), got {:?}",
                            k.sha256
                        ),
                    ));
                };
                let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                if let Some((_, oi, oj)) = seen.iter().find(|(h, ..)| *h == hex) {
                    return Err(ConfigError::new(
                        format!("{at}.sha256"),
                        format!("the same secret as sites[{oi}].keys[{oj}]: give each key its own"),
                    ));
                }
                seen.push((hex, i, j));
            }
        }
        Ok(())
    }
}

fn positive(key: &str, v: i64) -> Result<(), ConfigError> {
    if v > 0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("must be greater than 0, got {v}"),
        ))
    }
}

fn nonempty(key: &str, v: &str) -> Result<(), ConfigError> {
    if v.trim().is_empty() {
        Err(ConfigError::new(key, "must not be empty"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_embedded() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.kafka.brokers.is_none() && c.redis.url.is_none());
        assert!(c.has_site(&SiteId::parse("demo").unwrap()));
    }

    #[test]
    fn the_delivery_timeout_fits_in_the_request_deadline() {
        let kafka = "[kafka]\nbrokers = \"localhost:9092\"\ndelivery_timeout_ms = 9500\n";
        let e = Config::from_toml(kafka).unwrap().validate().unwrap_err();
        assert_eq!(e.key, "kafka.delivery_timeout_ms");
        assert!(e.reason.contains("10000 ms"), "{e}");
        let c = Config::from_toml(&format!("{kafka}[collector]\nrequest_timeout_ms = 11000\n"));
        c.unwrap().validate().unwrap();
        let e = Config::from_toml("[kafka]\nfetch_wait_ms = 0\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "kafka.fetch_wait_ms", "{e}");
        assert!(e.to_string().contains("1 to 500"), "{e}");
        // Embedded, nothing waits for a broker.
        let c = Config::from_toml("[kafka]\ndelivery_timeout_ms = 9500\n").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn the_kept_neighbours_cover_what_the_recommender_reads() {
        let e = Config::from_toml("[processor]\nneighbours_kept = 20\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "processor.neighbours_kept");
        assert!(e.reason.contains("(25)"), "{e}");
        let c = "[processor]\nneighbours_kept = 20\n[recommender]\nneighbours_per_seed = 20\n";
        Config::from_toml(c).unwrap().validate().unwrap();
    }

    #[test]
    fn partial_file_keeps_defaults() {
        let c = Config::from_toml("[kafka]\nbrokers = \"localhost:9092\"\n").unwrap();
        assert_eq!(c.kafka.brokers.as_deref(), Some("localhost:9092"));
        assert_eq!(c.kafka.topic, "tailor.events");
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_named_by_their_full_path() {
        let e = Config::from_toml("[kafka]\nbrokerz = \"x\"\n").unwrap_err();
        assert!(e.reason.contains("brokerz"), "{e}");
        assert_eq!(e.key, "kafka.brokerz");
        let e = Config::from_toml("[collector]\nfoo = 1\n").unwrap_err();
        assert_eq!(e.key, "collector.foo", "{e}");
        let e = Config::from_toml("colour = 1\n").unwrap_err();
        assert_eq!(e.key, "colour", "{e}");
        let e = Config::from_toml("[[sites]]\nid = \"a\"\n[[sites]]\nid = \"b\"\nkey = 1\n")
            .unwrap_err();
        assert_eq!(e.key, "sites[1].key", "{e}");
        let e = Config::from_toml("[processor]\nbatch_size = \"many\"\n").unwrap_err();
        assert_eq!(e.key, "processor.batch_size", "{e}");
        let e = Config::from_toml("[processor\n").unwrap_err();
        assert_eq!(e.key, "line 1", "{e}");
    }

    #[test]
    fn site_keys_are_checked_and_only_the_fileless_demo_site_is_open() {
        let good = crate::access::digest_hex("tlr_x");
        let site = |keys: &str| format!("[[sites]]\nid = \"shop\"\n{keys}");
        let key = |name: &str, scope: &str, sha: &str| {
            format!("[[sites.keys]]\nname = \"{name}\"\nscope = \"{scope}\"\nsha256 = \"{sha}\"\n")
        };
        let c = Config::from_toml(&site(&key("ops", "admin", &good))).unwrap();
        c.validate().unwrap();
        assert!(c.sites.iter().all(|s| !s.open), "a file's sites are closed");
        assert!(
            Config::default().sites[0].open,
            "the file-less demo site is open"
        );
        let e = Config::from_toml(&site(&key("ops", "root", &good))).unwrap_err();
        assert_eq!(e.key, "sites[0].keys[0].scope", "{e}");
        let e = Config::from_toml(&site(&key("ops", "admin", "abc")))
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "sites[0].keys[0].sha256", "{e}");
        assert!(e.reason.contains("64 hex digits"), "{e}");
        let twice = format!(
            "{}{}",
            key("ops", "admin", &good),
            key("ops", "serve", &crate::access::digest_hex("tlr_y"))
        );
        let e = Config::from_toml(&site(&twice))
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "sites[0].keys[1].name", "{e}");
        let shared = format!(
            "{}{}",
            key("ops", "admin", &good),
            key("shop", "serve", &good)
        );
        let e = Config::from_toml(&site(&shared))
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "sites[0].keys[1].sha256", "{e}");
        let e = Config::from_toml(&format!("{}open = true\n", site(""))).unwrap_err();
        assert_eq!(e.key, "sites[0].open", "{e}");
    }

    #[test]
    fn configured_sites_keep_the_demo_site_unless_turned_off() {
        let c = Config::from_toml("[[sites]]\nid = \"shop\"\n").unwrap();
        let ids: Vec<&str> = c.sites.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["shop", "demo"]);
        c.validate().unwrap();
        let c = Config::from_toml("demo_site = false\n[[sites]]\nid = \"shop\"\n").unwrap();
        let ids: Vec<&str> = c.sites.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["shop"]);
        let c = Config::from_toml("[[sites]]\nid = \"demo\"\nname = \"mine\"\n").unwrap();
        assert_eq!(c.sites.len(), 1);
        assert_eq!(
            c.sites[0].name, "mine",
            "a listed demo site is the file's own"
        );
        // An empty file is the defaults, except that its demo site is closed (needs keys).
        let mut closed = Config::default();
        closed.sites[0].open = false;
        assert_eq!(Config::from_toml("").unwrap(), closed);
        // `tailor config` prints what a file re-reads as the same configuration.
        let printed = toml::to_string(&closed).unwrap();
        assert_eq!(Config::from_toml(&printed).unwrap(), closed);
        let e = Config::from_toml("demo_site = false\n").unwrap();
        assert_eq!(e.validate().unwrap_err().key, "sites");
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.kafka.brokers = Some("localhost".into());
        assert_eq!(c.validate().unwrap_err().key, "kafka.brokers");
        let mut c = Config::default();
        c.redis.url = Some("http://x".into());
        assert_eq!(c.validate().unwrap_err().key, "redis.url");
        let mut c = Config::default();
        c.processor.batch_size = 0;
        assert_eq!(c.validate().unwrap_err().key, "processor.batch_size");
        let mut c = Config::default();
        c.sites.push(c.sites[0].clone());
        assert_eq!(c.validate().unwrap_err().key, "sites[1].id");
        let mut c = Config::default();
        let mut other = c.sites[0].clone();
        other.id = "other".into();
        c.sites.push(other);
        assert_eq!(
            c.validate().unwrap_err().key,
            "sites[0].snowplow_app_ids[0]"
        );
        let mut c = Config::default();
        c.sites[0].allowed_origins = vec!["https://shop.example/".into()];
        assert_eq!(c.validate().unwrap_err().key, "sites[0].allowed_origins[0]");
        let mut c = Config::default();
        c.collector.ip_mode = IpMode::Hash;
        assert_eq!(c.validate().unwrap_err().key, "collector.ip_salt");
        let mut c = Config::default();
        c.http.max_connections = 0;
        assert_eq!(c.validate().unwrap_err().key, "http.max_connections");
        let mut c = Config::default();
        c.http.header_read_timeout_ms = 0;
        assert_eq!(c.validate().unwrap_err().key, "http.header_read_timeout_ms");
        let mut c = Config::default();
        c.collector.dead_letter_max_bytes = 1024;
        assert_eq!(
            c.validate().unwrap_err().key,
            "collector.dead_letter_max_bytes"
        );
        let c = Config::from_toml("[http]\nidle_timeout_ms = 5000\n").unwrap();
        assert_eq!(c.http.idle_timeout_ms, 5000);
        assert_eq!(
            c.http.max_connections,
            HttpConfig::default().max_connections
        );
    }

    #[test]
    fn campaigns_are_read_from_toml_and_checked_naming_the_key() {
        let c = Config::from_toml(
            "[[campaigns]]\nid = \"winback\"\naudience = 'lifecycle == \"lapsing\"'\nslots = [\"home\"]\n\
             trigger = { on = \"stage_changed\", to = \"lapsing\", within_days = 14 }\n\
             variants = [{ name = \"a\", title = \"We miss you\", coupon = \"BACK10\" }]\n",
        )
        .unwrap();
        assert_eq!(c.campaigns[0].variants[0].coupon.as_deref(), Some("BACK10"));
        assert_eq!(c.recommender.offers_per_slot, 1);
        let mut bad = c.clone();
        bad.campaigns[0].holdout = 2.0;
        assert_eq!(bad.validate().unwrap_err().key, "campaigns[0].holdout");
        let mut twice = c.clone();
        twice.campaigns.push(c.campaigns[0].clone());
        assert_eq!(twice.validate().unwrap_err().key, "campaigns[1].id");
        let mut weak = c.clone();
        weak.recommender.offer_secret = "short".into();
        assert_eq!(weak.validate().unwrap_err().key, "recommender.offer_secret");
        let e = Config::from_toml("[[campaigns]]\nid = \"x\"\nslots = [\"home\"]\nvariants = [{ name = \"a\", title = \"\" }]\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, "campaigns[0].variants[0].title");
    }

    #[test]
    fn rules_are_read_from_toml_and_checked_naming_the_key() {
        let c = Config::from_toml(
            "[[rules]]\nname = \"no-clearance\"\nkind = \"exclude\"\ncategories = [\"clearance\"]\n\
             [[rules]]\nname = \"tents-up\"\nkind = \"boost\"\nfactor = 1.5\nbrands = [\"Acme\"]\nslots = [\"home\"]\n\
             [[rules]]\nname = \"pin\"\nkind = \"pin\"\nsegment = 'lifecycle == \"lapsing\"'\npins = [{ item = \"coffee\", position = 1 }]\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.rules.len(), 3);
        assert_eq!(c.rules[2].pins[0].item, "coffee");
        let mut bad = c.clone();
        bad.rules[1].factor = Some(0.5);
        let e = bad.validate().unwrap_err();
        assert_eq!(e.key, "rules[1].factor");
        assert!(e.reason.starts_with("a boost multiplies"), "{e}");
        let mut twice = c.clone();
        twice.rules[1].name = "no-clearance".into();
        assert_eq!(twice.validate().unwrap_err().key, "rules[1].name");
        let mut elsewhere = c.clone();
        elsewhere.rules[0].site = Some("nowhere".into());
        assert_eq!(elsewhere.validate().unwrap_err().key, "rules[0].site");
        let e = Config::from_toml("[[rules]]\nname = \"x\"\nkind = \"shove\"\n").unwrap_err();
        assert!(e.reason.contains("shove"), "{e}");
        let mut zero = Config::default();
        zero.catalog.refresh_ms = 0;
        assert_eq!(zero.validate().unwrap_err().key, "catalog.refresh_ms");
    }

    #[test]
    fn sites_resolve_by_protocol_key_and_origin() {
        let c = Config::default();
        assert_eq!(c.site_for_app_id("demo").unwrap().id, "demo");
        assert_eq!(c.site_for_write_key("demo").unwrap().id, "demo");
        assert!(c.site_for_write_key("nope").is_none());
        assert!(c.sites[0].allows_origin("https://anything.example"));
        let mut s = c.sites[0].clone();
        s.allowed_origins = vec!["https://shop.example".into()];
        assert!(s.allows_origin("https://SHOP.example"));
        assert!(!s.allows_origin("https://evil.example"));
    }
}
