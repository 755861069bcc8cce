//! Campaigns: offers the shop shows to the right member at the right moment, and the experiments
//! that learn which offers work. Pure: the recommender and the processor do the I/O.
//!
//! A campaign is configured (`[[campaigns]]`) or sent to `PUT /admin/campaigns/{id}?site=` as a
//! [`CampaignDef`], checked once by [`check`] into a [`Campaign`] (every bad field named, sizes
//! bounded). On a page view the recommender asks [`Campaign::eligible`] for each campaign of the
//! slot and picks among the eligible ones by priority, then by Thompson sampling.
//!
//! Invariants:
//! * Assignment is a pure function of (campaign id, subject): [`Campaign::assign`] puts a member in
//!   the holdout, or (fixed split) in a variant, the same way on every request and every process.
//!   A holdout member is never eligible; [`Campaign::eligible`] says `Holdout` only when every other
//!   condition holds, so the recommender can report the held-back offer as the control group's
//!   exposure.
//! * Thompson sampling ([`choose`]) takes its randomness from a [`Rng`] passed in, so a seeded run
//!   is reproducible; with probability `exploration` it picks uniformly (the exploration floor: each
//!   variant gets at least `exploration / variants` of the draws).
//! * An offer's [`token`] is signed (HMAC-SHA256 under `recommender.offer_secret`): [`verify`]
//!   refuses a token whose fields were changed or that was made without the secret, so a forged
//!   impression is never counted.

use crate::event::{ErrorKind, FieldError};
use crate::ids::{check_id, ItemId, SiteId};
use crate::models::Facts;
use crate::rules::MAX_SLOTS;
use crate::segment;
use crate::state::{SubjectState, DAY_MS};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Longest campaign id or variant name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Most variants in one campaign.
pub const MAX_VARIANTS: usize = 10;
/// Longest title, body, coupon, reason or audience rule, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest url or image, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Most items one variant may list.
pub const MAX_ITEMS: usize = 20;
/// Longest trigger window or cap period, in days.
pub const MAX_DAYS: u32 = 365;
/// Most impressions a frequency cap may allow.
pub const MAX_CAP: u32 = 1000;
/// Largest holdout share.
pub const MAX_HOLDOUT: f64 = 0.9;
/// Most campaigns the admin API stores per site.
pub const MAX_CAMPAIGNS_PER_SITE: usize = 200;
/// Impression times kept per campaign in a member's document (the cap never needs more).
pub const KEPT_IMPRESSIONS: usize = MAX_CAP as usize;
/// Campaigns whose impressions a member's document keeps (the least recent are dropped).
pub const KEPT_CAMPAIGNS: usize = 50;

/// The change that opens a campaign's window for a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOn {
    /// The life-cycle stage changed (to `to`, when given).
    StageChanged,
    /// The member entered the segment `segment`.
    SegmentEntered,
    /// A new interest (in `category`, when given) was detected.
    NewInterest,
    /// The member ordered.
    Purchase,
}

/// When a campaign becomes eligible: for `within_days` days, starting `after_days` days after the
/// change (`after_days = 7, within_days = 7` with `purchase`: the week after the order's first week).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    pub on: TriggerOn,
    /// `stage_changed`: the new stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `segment_entered`: the segment (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// `new_interest`: the category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub within_days: u32,
    #[serde(default)]
    pub after_days: u32,
}

/// One offer of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantDef {
    pub name: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    /// Items the offer shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// Share of members in a fixed split (`split = "fixed"`); equal shares when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
}

/// At most `impressions` impressions per member in any `per_days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub impressions: u32,
    pub per_days: u32,
}

/// The campaign stops once it reached either total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impressions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<u64>,
}

/// How a variant is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Thompson sampling on the observed rates.
    #[default]
    Thompson,
    /// Each member gets one variant, by hash, in the variants' `weight` shares (a clean A/B test).
    Fixed,
}

/// What Thompson sampling maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimize {
    /// Conversions per impression.
    #[default]
    Conversions,
    /// Clicks per impression.
    Clicks,
}

fn default_exploration() -> f64 {
    0.1
}

/// A campaign as configured or sent to the admin API (the wire shape of issue 10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignDef {
    /// Unique per site; in the admin API it comes from the path.
    #[serde(default)]
    pub id: String,
    /// Only this site (every site when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// A condition in the segment rule language (docs/mining.md); everyone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Members of this named segment only (with `audience`, both must hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerDef>,
    pub slots: Vec<String>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    pub variants: Vec<VariantDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<Cap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Share of members who never see the campaign (the control group of the lift).
    #[serde(default)]
    pub holdout: f64,
    #[serde(default)]
    pub split: Split,
    #[serde(default)]
    pub optimize: Optimize,
    /// Share of draws picked uniformly among variants (0 to 1).
    #[serde(default = "default_exploration")]
    pub exploration: f64,
    /// The reason shown with the offer, replacing the one derived from the trigger or audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Which purchases count as the campaign's conversions (7 days after a click, 1 after a view).
    #[serde(default)]
    pub attribution: Attribution,
    /// Where each outbound action of the campaign's trigger is POSTed (http or https), besides the
    /// actions topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// A checked campaign.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub def: CampaignDef,
    audience: Option<segment::Rule>,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError::invalid(field, reason)
}

fn name(v: &str, field: &str) -> Result<(), FieldError> {
    if v.is_empty() {
        return Err(FieldError::new(
            ErrorKind::MissingField,
            field,
            "is required",
        ));
    }
    check_id(v).map_err(|e| invalid(field, e.to_string()))?;
    if v.len() > MAX_NAME_LEN || v.contains('|') {
        return Err(invalid(
            field,
            format!("must be at most {MAX_NAME_LEN} bytes, without '|'"),
        ));
    }
    Ok(())
}

fn text(v: Option<&str>, field: &str, max: usize) -> Result<(), FieldError> {
    match v {
        Some(t) if t.trim().is_empty() || t.len() > max => Err(invalid(
            field,
            format!("must be 1 to {max} bytes, not blank"),
        )),
        _ => Ok(()),
    }
}

/// A link the tag may render: see [`crate::catalog::is_safe_link`].
fn link(v: Option<&str>, field: &str) -> Result<(), FieldError> {
    text(v, field, MAX_URL_LEN)?;
    match v {
        Some(u) if !crate::catalog::is_safe_link(u) => Err(invalid(
            field,
            "must be an http(s):// URL or a path starting with '/', without spaces",
        )),
        _ => Ok(()),
    }
}

fn days(v: u32, field: &str, min: u32) -> Result<(), FieldError> {
    if !(min..=MAX_DAYS).contains(&v) {
        return Err(invalid(field, format!("must be from {min} to {MAX_DAYS}")));
    }
    Ok(())
}

fn trigger(t: &TriggerDef) -> Result<(), FieldError> {
    days(t.within_days, "trigger.within_days", 1)?;
    days(t.after_days, "trigger.after_days", 0)?;
    let only = |present: bool, field: &str, on: &str| {
        if present {
            Err(invalid(
                format!("trigger.{field}"),
                format!("only a {on} trigger takes {field}"),
            ))
        } else {
            Ok(())
        }
    };
    only(
        t.to.is_some() && t.on != TriggerOn::StageChanged,
        "to",
        "stage_changed",
    )?;
    only(
        t.segment.is_some() && t.on != TriggerOn::SegmentEntered,
        "segment",
        "segment_entered",
    )?;
    only(
        t.category.is_some() && t.on != TriggerOn::NewInterest,
        "category",
        "new_interest",
    )?;
    if t.on == TriggerOn::SegmentEntered && t.segment.is_none() {
        return Err(FieldError::new(
            ErrorKind::MissingField,
            "trigger.segment",
            "is required for a segment_entered trigger",
        ));
    }
    for (field, v) in [
        ("to", &t.to),
        ("segment", &t.segment),
        ("category", &t.category),
    ] {
        text(v.as_deref(), &format!("trigger.{field}"), MAX_NAME_LEN)?;
    }
    Ok(())
}

fn variant(v: &VariantDef, i: usize, split: Split) -> Result<(), FieldError> {
    let f = |field: &str| format!("variants[{i}].{field}");
    name(&v.name, &f("name"))?;
    if v.name == HOLDOUT {
        return Err(invalid(f("name"), "\"holdout\" names the control group"));
    }
    text(Some(&v.title), &f("title"), MAX_TEXT_LEN)?;
    text(v.body.as_deref(), &f("body"), MAX_TEXT_LEN)?;
    text(v.coupon.as_deref(), &f("coupon"), MAX_NAME_LEN)?;
    link(v.url.as_deref(), &f("url"))?;
    link(v.image.as_deref(), &f("image"))?;
    if v.items.len() > MAX_ITEMS {
        return Err(invalid(f("items"), format!("at most {MAX_ITEMS} items")));
    }
    for (j, item) in v.items.iter().enumerate() {
        ItemId::parse(item.clone())
            .map_err(|e| invalid(f(&format!("items[{j}]")), e.to_string()))?;
    }
    match v.weight {
        Some(_) if split != Split::Fixed => {
            Err(invalid(f("weight"), "only a fixed split takes weights"))
        }
        Some(w) if !(w.is_finite() && w > 0.0 && w <= 1000.0) => Err(invalid(
            f("weight"),
            "must be a number above 0 and at most 1000",
        )),
        _ => Ok(()),
    }
}

/// Checks a definition and compiles it, naming the first bad field.
pub fn check(d: &CampaignDef) -> Result<Campaign, FieldError> {
    name(&d.id, "id")?;
    if let Some(s) = &d.site {
        SiteId::parse(s.clone()).map_err(|e| invalid("site", e.to_string()))?;
    }
    text(d.audience.as_deref(), "audience", MAX_TEXT_LEN)?;
    let audience = d
        .audience
        .as_deref()
        .map(|a| segment::Rule::parse(a).map_err(|e| invalid("audience", e.to_string())))
        .transpose()?;
    text(d.segment.as_deref(), "segment", MAX_NAME_LEN)?;
    if let Some(t) = &d.trigger {
        trigger(t)?;
    }
    if d.slots.is_empty() || d.slots.len() > MAX_SLOTS {
        return Err(invalid(
            "slots",
            format!("must name 1 to {MAX_SLOTS} slots"),
        ));
    }
    for (i, s) in d.slots.iter().enumerate() {
        text(Some(s), &format!("slots[{i}]"), MAX_NAME_LEN)?;
    }
    if let (Some(s), Some(e)) = (d.start, d.end) {
        if e <= s {
            return Err(invalid("end", "must be after start"));
        }
    }
    if d.variants.is_empty() || d.variants.len() > MAX_VARIANTS {
        return Err(invalid(
            "variants",
            format!("a campaign needs 1 to {MAX_VARIANTS} variants"),
        ));
    }
    for (i, v) in d.variants.iter().enumerate() {
        variant(v, i, d.split)?;
        if d.variants[..i].iter().any(|o| o.name == v.name) {
            return Err(invalid(
                format!("variants[{i}].name"),
                format!("{:?} is used twice", v.name),
            ));
        }
    }
    if let Some(c) = d.cap {
        if !(1..=MAX_CAP).contains(&c.impressions) {
            return Err(invalid(
                "cap.impressions",
                format!("must be from 1 to {MAX_CAP}"),
            ));
        }
        days(c.per_days, "cap.per_days", 1)?;
    }
    if let Some(b) = d.budget {
        if b.impressions.is_none() && b.conversions.is_none() {
            return Err(invalid("budget", "needs impressions or conversions"));
        }
        for (field, v) in [
            ("impressions", b.impressions),
            ("conversions", b.conversions),
        ] {
            if v == Some(0) {
                return Err(invalid(format!("budget.{field}"), "must be at least 1"));
            }
        }
    }
    if let Some(w) = &d.webhook {
        let scheme_ok = w.starts_with("http://") || w.starts_with("https://");
        if !scheme_ok || w.len() > MAX_URL_LEN || w.chars().any(char::is_whitespace) {
            return Err(invalid(
                "webhook",
                format!("must be an http:// or https:// URL of at most {MAX_URL_LEN} bytes"),
            ));
        }
    }
    for (field, days) in [
        ("attribution.click_days", d.attribution.click_days),
        ("attribution.view_days", d.attribution.view_days),
    ] {
        if days > MAX_ATTRIBUTION_DAYS {
            return Err(invalid(
                field,
                format!("must be from 0 to {MAX_ATTRIBUTION_DAYS}"),
            ));
        }
    }
    if !(d.holdout.is_finite() && (0.0..=MAX_HOLDOUT).contains(&d.holdout)) {
        return Err(invalid(
            "holdout",
            format!("must be from 0 to {MAX_HOLDOUT}"),
        ));
    }
    if !(d.exploration.is_finite() && (0.0..=1.0).contains(&d.exploration)) {
        return Err(invalid("exploration", "must be from 0 to 1"));
    }
    text(d.reason.as_deref(), "reason", MAX_TEXT_LEN)?;
    Ok(Campaign {
        def: d.clone(),
        audience,
    })
}

/// The campaigns in force on a site: the configured ones for it (or every site) and those stored
/// through the admin API (`stored`: id → JSON), sorted by id. A stored campaign named like a
/// configured one is ignored. Returns the unusable stored campaigns' problems too, to log.
pub fn site_campaigns(
    configured: &[CampaignDef],
    stored: &HashMap<String, String>,
    site: &SiteId,
) -> (Vec<Campaign>, Vec<String>) {
    let mut problems = Vec::new();
    let mut out: Vec<Campaign> = configured
        .iter()
        .filter(|d| d.site.as_deref().is_none_or(|s| s == site.as_str()))
        .filter_map(|d| match check(d) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(format!("configured campaign {:?}: {e}", d.id));
                None
            }
        })
        .collect();
    for (id, raw) in stored {
        if out.iter().any(|c| &c.def.id == id) {
            problems.push(format!(
                "stored campaign {id:?} is shadowed by the configuration"
            ));
            continue;
        }
        match serde_json::from_str::<CampaignDef>(raw)
            .map_err(|e| e.to_string())
            .and_then(|d| check(&d).map_err(|e| e.to_string()))
        {
            Ok(c) => out.push(c),
            Err(e) => problems.push(format!("stored campaign {id:?}: {e}")),
        }
    }
    out.sort_by(|a, b| a.def.id.cmp(&b.def.id));
    (out, problems)
}

/// What eligibility reads of a member.
pub struct Member<'a> {
    /// The subject as assignment keys it (`m:<id>` once identified, so it holds across devices).
    pub subject: &'a str,
    /// The member's document; `None` for a visitor never seen (eligible only for campaigns with no
    /// audience, segment or trigger).
    pub state: Option<&'a SubjectState>,
    /// The member's facts, needed only by campaigns with an `audience` rule.
    pub facts: Option<&'a Facts>,
    pub now_ms: i64,
    pub half_life_ms: i64,
}

/// Why a campaign is not shown (the reason counted in metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    Schedule,
    Audience,
    Trigger,
    Cap,
    Budget,
    Holdout,
}

impl Ineligible {
    pub fn as_str(self) -> &'static str {
        match self {
            Ineligible::Schedule => "schedule",
            Ineligible::Audience => "audience",
            Ineligible::Trigger => "trigger",
            Ineligible::Cap => "cap",
            Ineligible::Budget => "budget",
            Ineligible::Holdout => "holdout",
        }
    }
}

fn ago(days: f64) -> String {
    match days {
        d if d >= 60.0 => format!("{} months", (d / 30.4).round() as i64),
        d if d >= 14.0 => format!("{} weeks", (d / 7.0).round() as i64),
        d if d >= 2.0 => format!("{} days", d.round() as i64),
        _ => "a day".into(),
    }
}

impl Campaign {
    pub fn id(&self) -> &str {
        &self.def.id
    }

    pub fn needs_facts(&self) -> bool {
        self.audience.is_some()
    }

    /// Whether the campaign needs the member's document (audience, segment, trigger or cap).
    pub fn needs_state(&self) -> bool {
        self.audience.is_some()
            || self.def.segment.is_some()
            || self.def.trigger.is_some()
            || self.def.cap.is_some()
    }

    pub fn fills(&self, slot: &str) -> bool {
        self.def.slots.iter().any(|s| s == slot)
    }

    /// The subject's place in the experiment: a pure function of the campaign id and the subject.
    pub fn assign(&self, subject: &str) -> Assignment {
        if unit(fnv(&[&self.def.id, subject, "holdout"])) < self.def.holdout {
            return Assignment::Holdout;
        }
        if self.def.split == Split::Thompson {
            return Assignment::Treated(None);
        }
        let weights: Vec<f64> = self
            .def
            .variants
            .iter()
            .map(|v| v.weight.unwrap_or(1.0))
            .collect();
        let total: f64 = weights.iter().sum();
        let mut x = unit(fnv(&[&self.def.id, subject, "variant"])) * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return Assignment::Treated(Some(i));
            }
            x -= w;
        }
        Assignment::Treated(Some(weights.len() - 1))
    }

    /// When the trigger's change last happened for the member, if it did.
    fn triggered_at(&self, t: &TriggerDef, s: &SubjectState) -> Option<i64> {
        match t.on {
            TriggerOn::StageChanged => s
                .stage
                .as_ref()
                .filter(|r| t.to.as_ref().is_none_or(|to| *to == r.stage))
                .map(|r| r.since_ms),
            TriggerOn::SegmentEntered => {
                let seg = t.segment.as_deref().unwrap_or_default();
                s.segments
                    .contains(seg)
                    .then(|| s.signals.get(&segment_entered_signal(seg)).copied())
                    .flatten()
            }
            TriggerOn::NewInterest => s
                .signals
                .iter()
                .filter(|(k, _)| match k.strip_prefix("new_interest:") {
                    Some(c) => t.category.as_ref().is_none_or(|want| want == c),
                    None => false,
                })
                .map(|(_, at)| *at)
                .max(),
            TriggerOn::Purchase => s.purchases.last_ms,
        }
    }

    /// Whether `now_ms` is within the campaign's schedule.
    pub fn running(&self, now_ms: i64) -> bool {
        let d = &self.def;
        !(d.start.is_some_and(|s| now_ms < s.timestamp_millis())
            || d.end.is_some_and(|e| now_ms >= e.timestamp_millis()))
    }

    /// Whether the member is in the campaign's segment and audience. `known_segment` is a segment
    /// the caller knows the member just entered (a trigger's change), which the document may not
    /// show yet.
    pub fn in_audience(
        &self,
        m: &Member<'_>,
        known_segment: Option<&str>,
    ) -> Result<(), Ineligible> {
        let d = &self.def;
        let state = m.state;
        if state.is_none() && (self.audience.is_some() || d.segment.is_some()) {
            // A visitor never seen is in no audience.
            return Err(Ineligible::Audience);
        }
        if let Some(seg) = &d.segment {
            if known_segment != Some(seg.as_str())
                && !state.is_some_and(|s| s.segments.contains(seg))
            {
                return Err(Ineligible::Audience);
            }
        }
        if let Some(rule) = &self.audience {
            let held = match (state, m.facts) {
                (Some(state), Some(facts)) => rule.matches(&segment::Subject {
                    facts,
                    state,
                    now_ms: m.now_ms,
                    half_life_ms: m.half_life_ms,
                }),
                _ => false,
            };
            if !held {
                return Err(Ineligible::Audience);
            }
        }
        Ok(())
    }

    /// Whether the campaign may be shown to the member now, given the site's counters; on success
    /// the reason a person reads.
    pub fn eligible(&self, m: &Member<'_>, stats: &Stats) -> Result<String, Ineligible> {
        let d = &self.def;
        let now = m.now_ms;
        if !self.running(now) {
            return Err(Ineligible::Schedule);
        }
        if let Some(b) = d.budget {
            let spent = stats.total(&d.id);
            if b.impressions.is_some_and(|n| spent.impressions >= n)
                || b.conversions.is_some_and(|n| spent.conversions >= n)
            {
                return Err(Ineligible::Budget);
            }
        }
        let state = m.state;
        if state.is_none() && d.trigger.is_some() {
            // A visitor never seen has had no change.
            return Err(Ineligible::Audience);
        }
        self.in_audience(m, None)?;
        if let Some(t) = &d.trigger {
            let at = state
                .and_then(|s| self.triggered_at(t, s))
                .ok_or(Ineligible::Trigger)?;
            let from = at + i64::from(t.after_days) * DAY_MS;
            let to = from + i64::from(t.within_days) * DAY_MS;
            if !(from..to).contains(&now) {
                return Err(Ineligible::Trigger);
            }
        }
        // Last: a holdout member is one who would have seen the offer (the control group's
        // exposures are counted from this answer).
        if self.assign(m.subject) == Assignment::Holdout {
            return Err(Ineligible::Holdout);
        }
        if let (Some(c), Some(s)) = (d.cap, state) {
            let since = now - i64::from(c.per_days) * DAY_MS;
            let seen = s
                .offers
                .get(&d.id)
                .map_or(0, |times| times.iter().filter(|t| **t > since).count());
            if seen >= c.impressions as usize {
                return Err(Ineligible::Cap);
            }
        }
        Ok(self.reason(state, m.facts, now))
    }

    /// The reason shown with the offer: the configured one, else one from the trigger or audience.
    fn reason(&self, state: Option<&SubjectState>, facts: Option<&Facts>, now_ms: i64) -> String {
        if let Some(r) = &self.def.reason {
            return r.clone();
        }
        let since_order = facts.and_then(|f| f.days_since_last_purchase);
        let stage = state
            .and_then(|s| s.stage.as_ref())
            .map(|s| s.stage.as_str());
        let lapsing = |days: Option<f64>| {
            days.map(|d| format!("you have not ordered for {}", ago(d)))
                .unwrap_or_else(|| "we have not seen an order from you for a while".into())
        };
        let since_ms = |ms: Option<i64>| ms.map(|t| (now_ms - t) as f64 / DAY_MS as f64);
        match &self.def.trigger {
            Some(t) => match t.on {
                TriggerOn::StageChanged if matches!(stage, Some("lapsing" | "lapsed")) => {
                    lapsing(since_order.or(since_ms(state.and_then(|s| s.purchases.last_ms))))
                }
                TriggerOn::StageChanged => format!("for {} customers", stage.unwrap_or("new")),
                TriggerOn::SegmentEntered => format!(
                    "picked for {} members",
                    t.segment
                        .as_deref()
                        .unwrap_or_default()
                        .replace(['_', '-'], " ")
                ),
                TriggerOn::NewInterest => match &t.category {
                    Some(c) => format!("because you have been looking at {c}"),
                    None => "because of what you have been looking at".into(),
                },
                TriggerOn::Purchase => "after your recent order".into(),
            },
            None if matches!(stage, Some("lapsing" | "lapsed"))
                && self
                    .def
                    .audience
                    .as_deref()
                    .is_some_and(|a| a.contains("laps")) =>
            {
                lapsing(since_order)
            }
            None => match &self.def.segment {
                Some(s) => format!("picked for {} members", s.replace(['_', '-'], " ")),
                None => "picked for you".into(),
            },
        }
    }
}

/// The signal key under which the processor records when a member entered a segment.
pub fn segment_entered_signal(segment: &str) -> String {
    format!("segment_entered:{segment}")
}

mod action;
mod attribution;
mod experiment;
mod report;
mod token;

pub use action::*;
pub use attribution::*;
pub use experiment::*;
pub use report::*;
pub use token::*;

#[cfg(test)]
mod tests;
