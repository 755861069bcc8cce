//! Typed configuration, shared by every stage.
//!
//! One TOML file (all sections optional) plus command-line/environment overrides applied by the binary.
//! Defaults live in the `Default` impls (the whole's here, each section's in `sections.rs`) and
//! nowhere else; [`Config::validate`] (`validate.rs`) runs at start-up and names the offending key.
//! Unknown keys are rejected, so a typo fails loudly instead of being ignored.

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
}

mod sections;
mod validate;
pub use sections::*;

#[cfg(test)]
mod tests;
