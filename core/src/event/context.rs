//! Enrichment: what the collector derives from the request and adds to an event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
