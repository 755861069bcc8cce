//! The member profile served by the API: the subject's state document ([`crate::state`]) seen at one
//! moment, with the judgements that depend on the time of reading (decayed interests, RFM scores
//! against the site's current cut points, P(alive), churn risk and life-cycle stage) computed then.

use crate::config::ProcessorConfig;
use crate::models::{Facts, Rfm, SiteModels};
use crate::state::{SubjectState, DAY_MS};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// An item, category or brand with its score (a count, or a decayed interest).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub id: String,
    pub score: f64,
}

/// Purchases summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Purchases {
    pub orders: u64,
    pub units: u64,
    /// Revenue per currency: Tailor never converts currencies.
    pub revenue: BTreeMap<String, f64>,
    /// Revenue over all currencies (the M of RFM).
    pub monetary: f64,
    pub average_order_value: f64,
    pub first_purchase: Option<DateTime<Utc>>,
    pub last_purchase: Option<DateTime<Utc>>,
    /// Items bought, with quantities, most bought first.
    pub items: Vec<Scored>,
    /// Orders per category.
    pub categories: BTreeMap<String, u64>,
}

/// One visit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionView {
    pub id: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub pages: u32,
    pub dwell_ms: u64,
    pub entry: Option<String>,
    pub exit: Option<String>,
    pub channel: String,
    pub referrer: Option<String>,
}

/// Visits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sessions {
    pub count: u64,
    pub pages: u64,
    pub channels: BTreeMap<String, u64>,
    pub referrers: BTreeMap<String, u64>,
    /// Mean days between visits (null before the second visit).
    pub mean_gap_days: Option<f64>,
    /// The latest sessions, newest first.
    pub recent: Vec<SessionView>,
}

/// A page of the recent navigation path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathStep {
    pub at: Option<DateTime<Utc>>,
    pub page: String,
}

/// Where the subject stands in the life cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lifecycle {
    pub stage: &'static str,
    /// When the processor last saw the stage change (null if it has not recorded one yet).
    pub since: Option<DateTime<Utc>>,
}

/// Lifetime value and churn risk, as of the read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value {
    pub p_alive: f64,
    pub churn_risk: f64,
    pub expected_purchases: f64,
    pub expected_spend: f64,
    /// Expected spend over `horizon_weeks`.
    pub clv: f64,
    pub horizon_weeks: f64,
}

/// The public profile of one member (or anonymous visitor).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub site_id: String,
    pub subject: String,
    pub member_id: Option<String>,
    /// The most recent device.
    pub anonymous_id: Option<String>,
    pub anonymous_ids: Vec<String>,
    /// Identities whose history was merged into this profile.
    pub merged: Vec<String>,
    /// For an anonymous visitor who identified: the member now holding its history.
    pub stitched_to: Option<String>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    /// Events applied, by type.
    pub event_counts: BTreeMap<String, u64>,
    pub dwell_ms: u64,
    /// Most recently viewed items, newest first.
    pub recent_items: Vec<String>,
    /// Recent pages, newest first.
    pub path: Vec<PathStep>,
    /// Decayed interests, strongest first.
    pub top_items: Vec<Scored>,
    pub top_categories: Vec<Scored>,
    pub top_brands: Vec<Scored>,
    pub purchases: Purchases,
    pub sessions: Sessions,
    /// RFM scores against the site's customers (null before the first purchase or the first
    /// refresh of the site's cut points).
    pub rfm: Option<Rfm>,
    /// Share of the site's customers who spent less.
    pub value_percentile: Option<f64>,
    pub lifecycle: Lifecycle,
    /// Null until the site's lifetime-value models are fitted and the member has bought.
    pub value: Option<Value>,
    pub segments: Vec<String>,
    pub traits: BTreeMap<String, serde_json::Value>,
}

fn at(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn scored(v: Vec<(String, f64)>) -> Vec<Scored> {
    v.into_iter()
        .map(|(id, score)| Scored { id, score })
        .collect()
}

impl Profile {
    /// The profile of `state` as of `now_ms`.
    pub fn view(
        site_id: &str,
        subject: &str,
        s: &SubjectState,
        models: &SiteModels,
        config: &ProcessorConfig,
        now_ms: i64,
    ) -> Profile {
        let half_life = (config.interest_half_life_days * DAY_MS as f64) as i64;
        let facts = Facts::of(s, models, &config.lifecycle, now_ms);
        let value = facts.value.map(|c| Value {
            p_alive: c.p_alive,
            churn_risk: 1.0 - c.p_alive,
            expected_purchases: c.expected_purchases,
            expected_spend: c.expected_spend,
            clv: c.value,
            horizon_weeks: config.lifecycle.horizon_weeks,
        });
        let p = &s.purchases;
        Profile {
            site_id: site_id.to_string(),
            subject: subject.to_string(),
            member_id: s.member_id.clone(),
            anonymous_id: s.anonymous_ids.last().cloned(),
            anonymous_ids: s.anonymous_ids.clone(),
            merged: s.merged.iter().cloned().collect(),
            stitched_to: s.stitched_to.clone(),
            first_seen: at(s.first_seen_ms),
            last_seen: at(s.last_seen_ms),
            event_counts: s.events.clone(),
            dwell_ms: s.dwell_ms,
            recent_items: s.recent_items.clone(),
            path: s
                .path
                .iter()
                .rev()
                .map(|p| PathStep {
                    at: at(Some(p.t_ms)),
                    page: p.page.clone(),
                })
                .collect(),
            top_items: scored(s.interests.items.at(now_ms, half_life)),
            top_categories: scored(s.interests.categories.at(now_ms, half_life)),
            top_brands: scored(s.interests.brands.at(now_ms, half_life)),
            purchases: Purchases {
                orders: p.orders,
                units: p.units,
                revenue: p.revenue.clone(),
                monetary: p.monetary,
                average_order_value: facts.average_order_value,
                first_purchase: at(p.first_ms),
                last_purchase: at(p.last_ms),
                items: scored(p.items.clone()),
                categories: p.categories.clone(),
            },
            sessions: Sessions {
                count: s.sessions.count,
                pages: s.sessions.pages,
                channels: s.sessions.channels.clone(),
                referrers: s.sessions.referrers.clone(),
                mean_gap_days: (s.sessions.gap_days.n > 0).then_some(s.sessions.gap_days.mean),
                recent: s
                    .sessions
                    .recent
                    .iter()
                    .rev()
                    .map(|x| SessionView {
                        id: x.id.clone(),
                        start: at(Some(x.start_ms)),
                        end: at(Some(x.end_ms)),
                        pages: x.pages,
                        dwell_ms: x.dwell_ms,
                        entry: x.entry.clone(),
                        exit: x.exit.clone(),
                        channel: x.channel.clone(),
                        referrer: x.referrer.clone(),
                    })
                    .collect(),
            },
            rfm: facts.rfm.clone(),
            value_percentile: facts.value_percentile,
            lifecycle: Lifecycle {
                stage: facts.lifecycle,
                since: s
                    .stage
                    .as_ref()
                    .filter(|r| r.stage == facts.lifecycle)
                    .and_then(|r| at(Some(r.since_ms))),
            },
            value,
            segments: s.segments.iter().cloned().collect(),
            traits: s.traits.clone(),
        }
    }
}
