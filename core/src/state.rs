//! The mined state of one subject (member or anonymous visitor): one document per subject, kept in the
//! subject's Redis hash slot, read, advanced by the processor's fold, and written back under an
//! optimistic-concurrency guard together with the per-partition watermarks of the events it absorbed.
//!
//! Everything here is plain data with small, pure update rules (decay, session accounting, merges),
//! so the same code serves the processor, replay, the profile API and the tests. Every list is capped,
//! so a document stays a few kilobytes however long the member's history.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Milliseconds per day: purchase days and activity days are counted in UTC days since the epoch.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day (since the epoch) of a timestamp in milliseconds.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// Scores that halve every `half_life`: each id's score is stored as of `t_ms`, the time of the
/// newest event absorbed, so reading at `t` only multiplies by `2^-((t - t_ms)/half_life)` and the
/// ranking never changes between events. At most `cap` ids are kept; the weakest are evicted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decayed {
    pub t_ms: i64,
    /// Highest score first.
    pub scores: Vec<(String, f64)>,
}

fn decay_factor(dt_ms: i64, half_life_ms: i64) -> f64 {
    if half_life_ms <= 0 {
        return 1.0;
    }
    (-(dt_ms as f64) / half_life_ms as f64).exp2()
}

impl Decayed {
    /// Adds `weight` for `id` at time `t_ms` (earlier than the newest event is fine: it counts less).
    pub fn add(&mut self, id: &str, weight: f64, t_ms: i64, half_life_ms: i64, cap: usize) {
        if self.scores.is_empty() {
            self.t_ms = t_ms;
        }
        let w = if t_ms >= self.t_ms {
            let f = decay_factor(t_ms - self.t_ms, half_life_ms);
            for (_, s) in &mut self.scores {
                *s *= f;
            }
            self.t_ms = t_ms;
            weight
        } else {
            weight * decay_factor(self.t_ms - t_ms, half_life_ms)
        };
        match self.scores.iter_mut().find(|(i, _)| i == id) {
            Some((_, s)) => *s += w,
            None => self.scores.push((id.to_string(), w)),
        }
        self.scores
            .sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.scores.truncate(cap);
    }

    /// Scores as of `t_ms`, highest first.
    pub fn at(&self, t_ms: i64, half_life_ms: i64) -> Vec<(String, f64)> {
        let f = decay_factor((t_ms - self.t_ms).max(0), half_life_ms);
        self.scores
            .iter()
            .map(|(i, s)| (i.clone(), s * f))
            .collect()
    }

    /// One id's score as of `t_ms` (0 when not kept).
    pub fn score(&self, id: &str, t_ms: i64, half_life_ms: i64) -> f64 {
        let f = decay_factor((t_ms - self.t_ms).max(0), half_life_ms);
        self.scores
            .iter()
            .find(|(i, _)| i == id)
            .map_or(0.0, |(_, s)| s * f)
    }

    /// The sum of all scores as of `t_ms`.
    pub fn total(&self, t_ms: i64, half_life_ms: i64) -> f64 {
        let f = decay_factor((t_ms - self.t_ms).max(0), half_life_ms);
        self.scores.iter().map(|(_, s)| s).sum::<f64>() * f
    }

    /// Folds another subject's scores into these (identity merge).
    pub fn merge(&mut self, other: &Decayed, half_life_ms: i64, cap: usize) {
        for (id, s) in &other.scores {
            self.add(id, *s, other.t_ms, half_life_ms, cap);
        }
    }
}

/// Running mean and variance (Welford), mergeable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
}

impl Stats {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    pub fn std_dev(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            (self.m2 / (self.n - 1) as f64).sqrt()
        }
    }

    pub fn merge(&mut self, o: &Stats) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n as f64;
        self.m2 += o.m2 + d * d * (self.n as f64 * o.n as f64) / n as f64;
        self.n = n;
    }
}

/// One visit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub pages: u32,
    pub dwell_ms: u64,
    /// First and last page (URL path, or the item when the event has no URL).
    pub entry: Option<String>,
    pub exit: Option<String>,
    /// search, social, email, campaign, referral or direct.
    pub channel: String,
    /// The referring host or service.
    pub referrer: Option<String>,
    /// Distinct items viewed, newest first (co-visitation pairs them).
    pub items: Vec<String>,
    /// Item views and clicks, newest first, repeats kept (at most `processor.session_items`; kept
    /// for the latest session only, emptied when the next one starts): the session as the
    /// recommender reads it, since how often and how recently an item was clicked again says
    /// whether it is clicked once more (`recommender::rank::rerank`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clicks: Vec<String>,
}

impl Session {
    /// A view or click of an item: into the distinct items and the clicks, each capped at `cap`.
    pub fn push_click(&mut self, item: &str, cap: usize) {
        push_front_distinct(&mut self.items, item, cap);
        push_front(&mut self.clicks, item, cap);
    }

    /// The session as the recommender reads it, newest first: its clicks, or its distinct items
    /// for a session recorded before clicks were kept.
    pub fn as_read(&self) -> &[String] {
        if self.clicks.is_empty() {
            &self.items
        } else {
            &self.clicks
        }
    }
}

/// Visits: the open one, the last few, and aggregates over all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sessions {
    pub count: u64,
    pub pages: u64,
    /// Sessions per channel.
    pub channels: BTreeMap<String, u64>,
    /// Sessions per referring host or service (capped: the rarest are dropped).
    pub referrers: BTreeMap<String, u64>,
    /// Days between the starts of consecutive sessions.
    pub gap_days: Stats,
    /// The latest sessions, oldest first, the open one last.
    pub recent: Vec<Session>,
}

impl Sessions {
    pub fn current(&self) -> Option<&Session> {
        self.recent.last()
    }
}

/// Orders and spend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Purchases {
    pub orders: u64,
    pub units: u64,
    /// Revenue per currency.
    pub revenue: BTreeMap<String, f64>,
    /// Revenue over all currencies, the "M" of RFM (Tailor does not convert currencies: a shop selling
    /// in several should send revenue in one).
    pub monetary: f64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// Spend per purchase day (UTC days since the epoch): the lifetime-value models' input.
    pub days: BTreeMap<i64, f64>,
    /// Quantity bought per item, most first (capped).
    pub items: Vec<(String, f64)>,
    /// Orders per category.
    pub categories: BTreeMap<String, u64>,
    /// Order values, for "a change in what they buy".
    pub order_values: Stats,
    /// Recent order ids (an order reported twice under two event ids counts once).
    pub order_ids: Vec<String>,
}

/// The lifetime-value estimate of the member as of `at_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberClv {
    pub at_ms: i64,
    pub p_alive: f64,
    /// Expected purchases in the model's horizon.
    pub expected_purchases: f64,
    pub expected_spend: f64,
    /// expected_purchases × expected_spend.
    pub value: f64,
}

/// A page in the recent navigation path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub t_ms: i64,
    pub page: String,
}

/// Time-decayed interests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interests {
    pub items: Decayed,
    pub categories: Decayed,
    pub brands: Decayed,
    /// Categories with the short half-life: recent behaviour, compared with `categories` to detect a
    /// new interest.
    pub recent_categories: Decayed,
}

/// The stage in the relationship life cycle and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: String,
    pub since_ms: i64,
}

/// The items whose views, clicks and carts a subject fed the site's shared models on one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SharedToday {
    /// Days since the epoch (UTC).
    pub day: i64,
    pub items: Vec<String>,
}

impl SharedToday {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Whether an interaction feeds the site's shared models (popularity, co-visitation, the session
/// index, followers), so that no one visitor can flood them: see [`SubjectState::share`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// The first interaction with the item today: counts everywhere.
    New,
    /// The item was counted today already: popularity counts distinct visitors, so not again;
    /// session-based models (which count distinct sessions) still learn from it.
    Repeat,
    /// The subject already fed `cap` distinct items today: nothing more today.
    OverCap,
}

/// Everything Tailor knows about one subject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectState {
    pub member_id: Option<String>,
    /// Devices (anonymous ids) seen for this subject, oldest first (capped).
    pub anonymous_ids: Vec<String>,
    /// For an anonymous visitor who identified: the member its history was merged into. Its later
    /// anonymous events go to that member.
    pub stitched_to: Option<String>,
    /// Subjects (`a:<id>`, `m:<id>`) whose history was merged into this one, each exactly once.
    pub merged: BTreeSet<String>,
    pub first_seen_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// Events applied, by type.
    pub events: BTreeMap<String, u64>,
    pub dwell_ms: u64,
    pub traits: BTreeMap<String, serde_json::Value>,
    /// Recently viewed items, newest first, distinct.
    pub recent_items: Vec<String>,
    /// What this subject fed the site's shared models today (see [`SubjectState::share`]).
    #[serde(skip_serializing_if = "SharedToday::is_empty")]
    pub shared_today: SharedToday,
    /// Recent pages, oldest first.
    pub path: Vec<Step>,
    pub interests: Interests,
    /// Views per category per day, for the last few weeks (segment rules such as "viewed X three
    /// times this week").
    pub category_days: BTreeMap<String, BTreeMap<i64, u32>>,
    pub sessions: Sessions,
    pub purchases: Purchases,
    pub stage: Option<StageRecord>,
    pub clv: Option<MemberClv>,
    /// Segments the subject belongs to.
    pub segments: BTreeSet<String>,
    /// When each behaviour-change signal last fired (key → ms), so a signal fires once per cooldown.
    pub signals: BTreeMap<String, i64>,
    /// Impression times (ms) per campaign, oldest first, for frequency caps
    /// (`crate::campaign::record_impression` keeps them bounded).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub offers: BTreeMap<String, Vec<i64>>,
    /// The member's latest encounter with each campaign (arm, last shown, last clicked), which
    /// purchases are attributed to (`crate::campaign::attribute`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposures: BTreeMap<String, crate::campaign::Exposure>,
    /// Last applied offset per `topic/partition`: a redelivered event at or below it is skipped.
    pub wm: BTreeMap<String, i64>,
}

/// Removes from `map` the entries whose value is smallest until at most `cap` remain.
pub fn cap_counts(map: &mut BTreeMap<String, u64>, cap: usize) {
    while map.len() > cap {
        let weakest = map
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(k, _)| k.clone())
            .expect("non-empty");
        map.remove(&weakest);
    }
}

/// Moves `value` to the front, removing earlier copies, keeping at most `cap`.
pub fn push_front_distinct(list: &mut Vec<String>, value: &str, cap: usize) {
    list.retain(|v| v != value);
    list.insert(0, value.to_string());
    list.truncate(cap);
}

/// Puts `value` at the front of a newest-first list capped at `cap` (repeats kept).
pub fn push_front(list: &mut Vec<String>, value: &str, cap: usize) {
    list.insert(0, value.to_string());
    list.truncate(cap);
}

/// Adds `by` to `id`'s quantity in a most-first list capped at `cap`.
pub fn add_count(list: &mut Vec<(String, f64)>, id: &str, by: f64, cap: usize) {
    match list.iter_mut().find(|(i, _)| i == id) {
        Some((_, q)) => *q += by,
        None => list.push((id.to_string(), by)),
    }
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(cap);
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// Caps of the lists in a document.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub items: usize,
    pub categories: usize,
    pub brands: usize,
    pub recent_items: usize,
    pub path: usize,
    pub sessions: usize,
    pub half_life_ms: i64,
    pub short_half_life_ms: i64,
}

/// What a recommendation needs of a subject, stored beside the document (hash field `reco`) so the
/// hot read path parses a few hundred bytes instead of the whole document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoView {
    /// Recently viewed items, newest first.
    pub recent: Vec<String>,
    /// Items bought (never offered again).
    pub bought: Vec<String>,
    pub stitched_to: Option<String>,
    /// The latest session's clicks, newest first, repeats kept (its distinct items for a session
    /// recorded before clicks were kept), and when it last saw a click (ms): the session in
    /// progress if that is recent enough.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session: Vec<String>,
    #[serde(default)]
    pub session_end_ms: Option<i64>,
    /// The strongest decayed category and brand interests with their shares of the member's total
    /// (decay scales every score alike, so shares taken at the last event hold at any later time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<(String, f64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brands: Vec<(String, f64)>,
    /// Life-cycle stage and segments, for rules and reasons.
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
}

/// Interests carried in the recommendation summary.
pub const RECO_INTERESTS: usize = 5;

fn shares(d: &Decayed) -> Vec<(String, f64)> {
    let total: f64 = d.scores.iter().map(|(_, s)| s).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    d.scores
        .iter()
        .take(RECO_INTERESTS)
        .map(|(i, s)| (i.clone(), s / total))
        .collect()
}

impl SubjectState {
    /// The recommendation summary of this document.
    pub fn reco_view(&self) -> RecoView {
        let visit = self.latest_visit();
        RecoView {
            recent: self.recent_items.clone(),
            bought: self
                .purchases
                .items
                .iter()
                .map(|(i, _)| i.clone())
                .collect(),
            stitched_to: self.stitched_to.clone(),
            session: visit.map(|s| s.as_read().to_vec()).unwrap_or_default(),
            session_end_ms: visit.map(|s| s.end_ms),
            categories: shares(&self.interests.categories),
            brands: shares(&self.interests.brands),
            stage: self.stage.as_ref().map(|s| s.stage.clone()),
            segments: self.segments.iter().cloned().collect(),
        }
    }

    /// The latest session with item views (a ping or a purchase without a session id may open an
    /// itemless one after it).
    fn latest_visit(&self) -> Option<&Session> {
        self.sessions
            .recent
            .iter()
            .rev()
            .find(|s| !s.items.is_empty())
    }

    /// Whether anything was ever recorded.
    pub fn is_empty(&self) -> bool {
        self.first_seen_ms.is_none() && self.merged.is_empty() && self.stitched_to.is_none()
    }

    /// Folds another subject's history into this one (identity stitching). Counters add up, interests
    /// and purchase days merge, sessions interleave by time, campaign impressions join (for caps).
    /// Watermarks, signals and segment memberships stay this document's own.
    pub fn absorb(&mut self, o: &SubjectState, caps: &Caps) {
        for a in &o.anonymous_ids {
            if !self.anonymous_ids.contains(a) {
                self.anonymous_ids.push(a.clone());
            }
        }
        let excess = self.anonymous_ids.len().saturating_sub(20);
        self.anonymous_ids.drain(..excess);
        self.merged.extend(o.merged.iter().cloned());
        self.first_seen_ms = min_opt(self.first_seen_ms, o.first_seen_ms);
        self.last_seen_ms = max_opt(self.last_seen_ms, o.last_seen_ms);
        for (k, v) in &o.events {
            *self.events.entry(k.clone()).or_default() += v;
        }
        self.dwell_ms += o.dwell_ms;
        for (k, v) in &o.traits {
            self.traits.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for i in o.recent_items.iter().rev() {
            if !self.recent_items.contains(i) {
                self.recent_items.push(i.clone());
            }
        }
        self.recent_items.truncate(caps.recent_items);
        self.path.extend(o.path.iter().cloned());
        self.path.sort_by_key(|s| s.t_ms);
        let excess = self.path.len().saturating_sub(caps.path);
        self.path.drain(..excess);
        let i = &mut self.interests;
        i.items
            .merge(&o.interests.items, caps.half_life_ms, caps.items);
        i.categories
            .merge(&o.interests.categories, caps.half_life_ms, caps.categories);
        i.brands
            .merge(&o.interests.brands, caps.half_life_ms, caps.brands);
        i.recent_categories.merge(
            &o.interests.recent_categories,
            caps.short_half_life_ms,
            caps.categories,
        );
        for (c, days) in &o.category_days {
            let mine = self.category_days.entry(c.clone()).or_default();
            for (d, n) in days {
                *mine.entry(*d).or_default() += n;
            }
        }
        let s = &mut self.sessions;
        s.count += o.sessions.count;
        s.pages += o.sessions.pages;
        for (k, v) in &o.sessions.channels {
            *s.channels.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.sessions.referrers {
            *s.referrers.entry(k.clone()).or_default() += v;
        }
        cap_counts(&mut s.referrers, 30);
        s.gap_days.merge(&o.sessions.gap_days);
        s.recent.extend(o.sessions.recent.iter().cloned());
        s.recent.sort_by_key(|x| x.start_ms);
        let excess = s.recent.len().saturating_sub(caps.sessions);
        s.recent.drain(..excess);
        let (p, q) = (&mut self.purchases, &o.purchases);
        p.orders += q.orders;
        p.units += q.units;
        for (c, r) in &q.revenue {
            *p.revenue.entry(c.clone()).or_default() += r;
        }
        p.monetary += q.monetary;
        p.first_ms = min_opt(p.first_ms, q.first_ms);
        p.last_ms = max_opt(p.last_ms, q.last_ms);
        for (d, v) in &q.days {
            *p.days.entry(*d).or_default() += v;
        }
        for (i, n) in &q.items {
            add_count(&mut p.items, i, *n, 100);
        }
        for (c, n) in &q.categories {
            *p.categories.entry(c.clone()).or_default() += n;
        }
        p.order_values.merge(&q.order_values);
        p.order_ids.extend(q.order_ids.iter().cloned());
        // Offers seen before logging in count toward the member's frequency caps, and their
        // exposures toward attribution (the later encounter wins).
        for (campaign, times) in &o.offers {
            for t in times {
                crate::campaign::record_impression(&mut self.offers, campaign, *t);
            }
        }
        for (campaign, e) in &o.exposures {
            let newer = self
                .exposures
                .get(campaign)
                .is_none_or(|mine| e.seen_ms > mine.seen_ms);
            if newer {
                self.exposures.insert(campaign.clone(), e.clone());
            }
        }
    }

    /// Records an interaction with `item` at `t_ms` against the subject's daily share of the shared
    /// models, and says how far it counts ([`Share`]): popularity counts a visitor once per item and
    /// day, and a visitor feeds at most `cap` distinct items a day, so a flood of fake views from one
    /// visitor moves an item by one, and stops after `cap` items.
    pub fn share(&mut self, item: &str, t_ms: i64, cap: usize) -> Share {
        let day = day_of(t_ms);
        let today = &mut self.shared_today;
        // A late event of an earlier day counts against the latest day's share (never reopening
        // its own day, so back-dated events cannot escape the cap).
        if day > today.day {
            today.day = day;
            today.items.clear();
        }
        if today.items.iter().any(|i| i == item) {
            Share::Repeat
        } else if today.items.len() >= cap {
            Share::OverCap
        } else {
            today.items.push(item.to_string());
            Share::New
        }
    }

    /// Serialises for the store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a state document always serialises")
    }

    /// Parses a stored document; a document that does not parse (written by a future version, or
    /// damaged) is an error for the caller to report, never silently replaced.
    pub fn from_json(s: &str) -> Result<SubjectState, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// Reads the form kept in the store (the JSON compressed, [`crate::stored`]), or the plain JSON
    /// written before it; an error for the caller to report, as [`from_json`](Self::from_json)'s.
    pub fn from_stored(s: &str) -> Result<SubjectState, String> {
        crate::stored::parse(s)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_visitor_feeds_the_shared_models_once_per_item_and_day_up_to_a_cap() {
        let mut s = SubjectState::default();
        let day = 20_000 * DAY_MS;
        assert_eq!(s.share("a", day + 1, 2), Share::New);
        assert_eq!(s.share("a", day + 2, 2), Share::Repeat);
        assert_eq!(s.share("b", day + 3, 2), Share::New);
        assert_eq!(s.share("c", day + 4, 2), Share::OverCap);
        assert_eq!(
            s.share("a", day + 5, 2),
            Share::Repeat,
            "counted ones stay repeats"
        );
        // Back-dated events count against the latest day.
        assert_eq!(s.share("d", day - 3 * DAY_MS, 2), Share::OverCap);
        // A new day, a new share.
        assert_eq!(s.share("a", day + DAY_MS, 2), Share::New);
        assert_eq!(s.shared_today.items, ["a"]);
        let json = s.to_json();
        assert_eq!(
            SubjectState::from_json(&json).unwrap().shared_today,
            s.shared_today
        );
    }

    use super::*;

    #[test]
    fn a_session_keeps_distinct_items_and_every_click_and_is_read_as_its_clicks() {
        let mut s = Session::default();
        for i in ["a", "b", "a", "a"] {
            s.push_click(i, 3);
        }
        assert_eq!(s.items, ["a", "b"]);
        assert_eq!(
            s.clicks,
            ["a", "a", "b"],
            "newest first, capped, repeats kept"
        );
        assert_eq!(s.as_read(), ["a", "a", "b"]);
        // A session stored before clicks were kept is read as its distinct items.
        let old = Session {
            items: vec!["x".into(), "y".into()],
            ..Default::default()
        };
        assert_eq!(old.as_read(), ["x", "y"]);
    }

    const H: i64 = 10 * DAY_MS;

    #[test]
    fn decayed_scores_halve_every_half_life_and_keep_the_strongest() {
        let mut d = Decayed::default();
        d.add("old", 1.0, 0, H, 2);
        d.add("new", 1.0, H, H, 2);
        let s = d.at(H, H);
        assert_eq!(s[0], ("new".into(), 1.0));
        assert!((s[1].1 - 0.5).abs() < 1e-12);
        // An event from the past counts at its decayed weight.
        d.add("late", 1.0, 0, H, 3);
        assert!((d.score("late", H, H) - 0.5).abs() < 1e-12);
        // Reading later decays everything alike.
        assert!((d.score("new", 2 * H, H) - 0.5).abs() < 1e-12);
        // Capacity 2 evicts the weakest.
        d.add("third", 0.9, H, H, 2);
        assert_eq!(d.scores.len(), 2);
        assert_eq!(d.scores[0].0, "new");
        assert_eq!(d.scores[1].0, "third");
    }

    #[test]
    fn stats_merge_like_one_stream() {
        let (mut a, mut b, mut all) = (Stats::default(), Stats::default(), Stats::default());
        for x in [1.0, 2.0, 4.0] {
            a.push(x);
            all.push(x);
        }
        for x in [8.0, 16.0] {
            b.push(x);
            all.push(x);
        }
        a.merge(&b);
        assert_eq!(a.n, all.n);
        assert!((a.mean - all.mean).abs() < 1e-12);
        assert!((a.std_dev() - all.std_dev()).abs() < 1e-9);
    }

    #[test]
    fn absorbing_adds_counters_and_purchase_days() {
        let caps = Caps {
            items: 10,
            categories: 10,
            brands: 10,
            recent_items: 5,
            path: 5,
            sessions: 5,
            half_life_ms: H,
            short_half_life_ms: DAY_MS,
        };
        let mut m = SubjectState::default();
        m.events.insert("page_view".into(), 2);
        m.purchases.days.insert(10, 5.0);
        m.purchases.orders = 1;
        let mut a = SubjectState::default();
        a.anonymous_ids.push("dev".into());
        a.events.insert("page_view".into(), 3);
        a.purchases.days.insert(10, 1.0);
        a.purchases.days.insert(12, 2.0);
        a.purchases.orders = 2;
        a.recent_items = vec!["x".into()];
        crate::campaign::record_impression(&mut a.offers, "winback", 5);
        crate::campaign::record_impression(&mut m.offers, "winback", 7);
        m.absorb(&a, &caps);
        assert_eq!(m.offers["winback"], [5, 7]);
        assert_eq!(m.events["page_view"], 5);
        assert_eq!(m.purchases.orders, 3);
        assert_eq!(m.purchases.days[&10], 6.0);
        assert_eq!(m.purchases.days[&12], 2.0);
        assert_eq!(m.anonymous_ids, ["dev"]);
        assert_eq!(m.recent_items, ["x"]);
        let back = SubjectState::from_json(&m.to_json()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn a_document_is_stored_compressed_and_one_stored_as_json_still_reads() {
        let mut m = SubjectState::default();
        m.anonymous_ids.push("dev".into());
        m.recent_items = (0..30).map(|i| format!("sku-{i}")).collect();
        m.events.insert("page_view".into(), 30);
        let stored = crate::stored::compress(&m.to_json());
        assert!(stored.starts_with(crate::stored::TAG));
        assert!(stored.len() < m.to_json().len() / 2, "{stored:?}");
        assert_eq!(SubjectState::from_stored(&stored).unwrap(), m);
        assert_eq!(SubjectState::from_stored(&m.to_json()).unwrap(), m);
        assert!(SubjectState::from_stored("{\"not\": a document").is_err());
        assert!(SubjectState::from_stored("Z\u{1}\u{2}").is_err());
    }
}
