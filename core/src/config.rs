//! Typed configuration, shared by every stage.
//!
//! One TOML file (all sections optional) plus command-line/environment overrides applied by the binary.
//! Defaults live in the `Default` impls below and nowhere else; [`Config::validate`] runs at start-up and
//! names the offending key. Unknown keys are rejected, so a typo fails loudly instead of being ignored.

use crate::ids::SiteId;
use serde::{Deserialize, Serialize};
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
    /// Sites (shops) this deployment serves; events for other sites are rejected.
    pub sites: Vec<SiteConfig>,
    pub kafka: KafkaConfig,
    pub redis: RedisConfig,
    pub collector: CollectorConfig,
    pub processor: ProcessorConfig,
    pub recommender: RecommenderConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sites: vec![SiteConfig {
                id: "demo".into(),
                name: "Tailor demo shop".into(),
            }],
            kafka: KafkaConfig::default(),
            redis: RedisConfig::default(),
            collector: CollectorConfig::default(),
            processor: ProcessorConfig::default(),
            recommender: RecommenderConfig::default(),
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
    /// How long the collector waits for the broker to confirm a write before answering 503.
    pub delivery_timeout_ms: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: None,
            topic: "tailor.events".into(),
            partitions: 6,
            replication_factor: 1,
            group: "tailor-processor".into(),
            delivery_timeout_ms: 10_000,
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
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            namespace: "tailor".into(),
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
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            max_body_bytes: 1024 * 1024,
            max_batch_events: 500,
        }
    }
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
    /// A session's item list expires this long after its last event, in seconds.
    pub session_ttl_secs: u64,
    /// How long an event id is remembered to drop duplicates, in seconds.
    pub dedupe_ttl_secs: u64,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            batch_size: 500,
            recent_items: 20,
            session_items: 30,
            session_ttl_secs: 4 * 3600,
            dedupe_ttl_secs: 7 * 24 * 3600,
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
}

impl Default for RecommenderConfig {
    fn default() -> Self {
        RecommenderConfig {
            default_limit: 10,
            max_limit: 100,
            seed_items: 10,
            neighbours_per_seed: 50,
        }
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

    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| text[s].lines().next().unwrap_or("").trim().to_string())
                .unwrap_or_default();
            ConfigError::new(key, e.message().to_string())
        })
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
        if self.redis.namespace.contains(['{', '}']) {
            return Err(ConfigError::new(
                "redis.namespace",
                "must not contain '{' or '}'",
            ));
        }
        let counts: [(&str, i64); 13] = [
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
            ("processor.recent_items", self.processor.recent_items as i64),
            (
                "processor.session_items",
                self.processor.session_items as i64,
            ),
            (
                "processor.session_ttl_secs",
                self.processor.session_ttl_secs as i64,
            ),
            (
                "processor.dedupe_ttl_secs",
                self.processor.dedupe_ttl_secs as i64,
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
        ];
        for (key, value) in counts {
            positive(key, value)?;
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
        self.sites.iter().any(|s| s.id == site.as_str())
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
    fn partial_file_keeps_defaults() {
        let c = Config::from_toml("[kafka]\nbrokers = \"localhost:9092\"\n").unwrap();
        assert_eq!(c.kafka.brokers.as_deref(), Some("localhost:9092"));
        assert_eq!(c.kafka.topic, "tailor.events");
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::from_toml("[kafka]\nbrokerz = \"x\"\n").unwrap_err();
        assert!(e.reason.contains("brokerz"), "{e}");
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
    }
}
