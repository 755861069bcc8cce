//! The fold: what a batch of events does to the subjects' state documents and to the site's shared
//! keys, with no I/O. The worker loads the documents a batch needs, runs [`fold`], and writes back.
//!
//! Per event, in offset order:
//! 1. drop it if its id was seen (marker in the store, or earlier in the batch);
//! 2. resolve whose profile it updates: the member it names, else the member its device was stitched
//!    to, else the device's anonymous profile;
//! 3. merge the device's anonymous history into the member the first time they appear together
//!    (`merged` records it, so a merge happens exactly once however often it is replayed), and the
//!    alias' previous identity likewise;
//! 4. drop it if the target document's watermark for the event's partition is at or past its offset
//!    (already applied before a crash or rebalance), or the subject was erased after it was received;
//! 5. apply it: counters, interests, sessions, purchases, then the judgements at the event's time
//!    (lifetime value, life-cycle stage, segments, behaviour-change signals), emitting a change for
//!    each transition;
//! 6. plan its site-level effects (popularity, co-visitation, indexes, segment sets, analytics) as
//!    one update guarded by the site's own per-partition watermark.
//!
//! Time is the event's timestamp, never the wall clock, so a replay reproduces the same documents.

use chrono::{DateTime, Timelike, Utc};
use std::collections::{HashMap, HashSet};
use tailor_core::change::{Change, ChangeKind};
use tailor_core::config::ProcessorConfig;
use tailor_core::event::{Event, EventBody, ReferrerClass};
use tailor_core::keys::KeySpace;
use tailor_core::models::{Facts, SiteModels};
use tailor_core::ops::{Position, Update, WriteOp};
use tailor_core::segment::{Rule, Subject as RuleSubject};
use tailor_core::state::{
    add_count, cap_counts, day_of, push_front_distinct, Caps, Session, StageRecord, Step,
    SubjectState, DAY_MS,
};
use tailor_core::{AnonymousId, MemberId, SiteId, Subject};

/// Popularity weight of a view or click.
pub const VIEW_WEIGHT: f64 = 1.0;
/// Popularity weight of an add-to-cart.
pub const CART_WEIGHT: f64 = 3.0;
/// Popularity weight of a purchased order line.
pub const PURCHASE_WEIGHT: f64 = 5.0;
/// Analytics days are kept this long.
const ANALYTICS_TTL_SECS: u64 = 400 * 86_400;
/// Dwell histogram bucket upper bounds, seconds.
pub const DWELL_BUCKETS: [(u64, &str); 7] = [
    (5, "0-5s"),
    (15, "5-15s"),
    (30, "15-30s"),
    (60, "30-60s"),
    (180, "1-3m"),
    (600, "3-10m"),
    (u64::MAX, "10m+"),
];

/// A loaded state document.
#[derive(Debug, Clone)]
pub struct Doc {
    pub site: SiteId,
    pub subject: Subject,
    pub state: SubjectState,
    /// The revision read (`None`: the document did not exist).
    pub rev: Option<u64>,
    pub dirty: bool,
    /// Other writes in the subject's slot that must land with the document (purchase days).
    pub extra: Vec<WriteOp>,
}

/// What the site's judgements need: its models and its segment rules.
#[derive(Debug, Clone, Default)]
pub struct SiteCtx {
    pub models: SiteModels,
    pub segments: Vec<(String, Rule)>,
}

/// Everything loaded for a batch.
#[derive(Debug, Default)]
pub struct Loaded {
    /// By state key.
    pub docs: HashMap<String, Doc>,
    /// Marker keys that exist, with the message that set them (`topic/partition@offset`).
    pub markers: HashMap<String, String>,
    /// Erasure time (ms) by state key.
    pub erased: HashMap<String, i64>,
    pub sites: HashMap<SiteId, SiteCtx>,
}

/// One event with its bus position.
pub struct Input<'a> {
    /// `topic/partition`.
    pub tp: String,
    pub offset: i64,
    pub event: &'a Event,
}

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    DuplicateEvent,
    BehindWatermark,
    Erased,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::DuplicateEvent => "duplicate_event",
            Outcome::BehindWatermark => "behind_watermark",
            Outcome::Erased => "erased",
        }
    }
}

/// The result of folding a batch; dirty documents stay in [`Loaded::docs`].
#[derive(Debug, Default)]
pub struct Folded {
    pub outcomes: Vec<Outcome>,
    pub site_updates: Vec<Update>,
    pub markers: Vec<Update>,
    pub changes: Vec<Change>,
}

/// Folding settings.
pub struct Folder<'a> {
    pub keys: &'a KeySpace,
    pub config: &'a ProcessorConfig,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The page an event is on: the URL's path, else the item, else the title.
pub fn page_of(e: &Event) -> Option<String> {
    if let Some(u) = &e.url {
        let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        let path = path.split(['?', '#']).next().unwrap_or("/");
        return Some(if path.is_empty() { "/" } else { path }.to_string());
    }
    match &e.body {
        EventBody::PageView {
            item_id: Some(i), ..
        } => Some(format!("item:{i}")),
        EventBody::PageView { title: Some(t), .. } => Some(t.clone()),
        _ => None,
    }
}

/// The marketing channel and referrer of a session's first event.
pub fn channel_of(e: &Event) -> (String, Option<String>) {
    let c = &e.context;
    if !c.campaign.is_empty() {
        let medium = c
            .campaign
            .medium
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let ch = if medium.contains("email") || medium.contains("newsletter") {
            "email"
        } else {
            "campaign"
        };
        return (
            ch.into(),
            c.campaign
                .source
                .clone()
                .or_else(|| c.referrer_host.clone()),
        );
    }
    let referrer = c
        .referrer_source
        .clone()
        .or_else(|| c.referrer_host.clone());
    let ch = match c.referrer_class {
        Some(ReferrerClass::Search) => "search",
        Some(ReferrerClass::Social) => "social",
        Some(ReferrerClass::Email) => "email",
        Some(ReferrerClass::Other) => "referral",
        _ => return ("direct".into(), None),
    };
    (ch.into(), referrer)
}

/// The item, category and brand an event is about, with the interest weight of the interaction.
fn interaction(e: &Event) -> Vec<(String, Option<String>, Option<String>, f64)> {
    match &e.body {
        EventBody::PageView {
            item_id: Some(i),
            category,
            brand,
            ..
        }
        | EventBody::Click {
            item_id: Some(i),
            category,
            brand,
            ..
        } => vec![(
            i.to_string(),
            category.as_ref().map(|c| c.to_string()),
            brand.clone(),
            VIEW_WEIGHT,
        )],
        EventBody::AddToCart {
            item_id,
            category,
            brand,
            ..
        } => vec![(
            item_id.to_string(),
            category.as_ref().map(|c| c.to_string()),
            brand.clone(),
            CART_WEIGHT,
        )],
        EventBody::Purchase { order } => order
            .lines
            .iter()
            .map(|l| {
                (
                    l.item_id.to_string(),
                    l.category.as_ref().map(|c| c.to_string()),
                    l.brand.clone(),
                    PURCHASE_WEIGHT,
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Collects one event's site ops and changes while it is applied.
pub struct Effects<'a> {
    keys: &'a KeySpace,
    site: &'a SiteId,
    subject: String,
    /// Change ids start with this (the causing event's id).
    id_prefix: String,
    at: DateTime<Utc>,
    ops: Vec<WriteOp>,
    changes: Vec<Change>,
}

impl Effects<'_> {
    fn change(&mut self, detail: Option<&str>, kind: ChangeKind) {
        let id = match detail {
            Some(d) => format!("{}:{}:{d}", self.id_prefix, kind.name()),
            None => format!("{}:{}", self.id_prefix, kind.name()),
        };
        self.changes.push(Change {
            id,
            site_id: self.site.to_string(),
            subject: self.subject.clone(),
            at: self.at,
            source_event_id: self.id_prefix.clone(),
            kind,
        });
    }

    fn zincr(&mut self, key: String, member: &str, by: f64) {
        self.ops.push(WriteOp::ZIncr {
            key,
            member: member.to_string(),
            by,
        });
    }

    fn hincr(&mut self, key: &str, field: String, by: i64) {
        self.ops.push(WriteOp::HashIncr {
            key: key.to_string(),
            field,
            by,
        });
    }
}

impl Folder<'_> {
    fn caps(&self) -> Caps {
        let c = self.config;
        Caps {
            items: c.top_items as usize,
            categories: c.top_categories as usize,
            brands: c.top_brands as usize,
            recent_items: c.recent_items as usize,
            path: c.path_length as usize,
            sessions: c.sessions_kept as usize,
            half_life_ms: self.half_life_ms(),
            short_half_life_ms: (c.recent_half_life_days * DAY_MS as f64) as i64,
        }
    }

    pub fn half_life_ms(&self) -> i64 {
        (self.config.interest_half_life_days * DAY_MS as f64) as i64
    }

    /// The state keys an event needs before its target is known: its device, its member, and for an
    /// alias both readings of the previous id.
    pub fn keys_needed(&self, e: &Event) -> Vec<(String, SiteId, Subject)> {
        let site = &e.site_id;
        let mut out = Vec::new();
        let mut add = |s: Subject| out.push((self.keys.state(site, &s), site.clone(), s));
        add(Subject::Anonymous(e.anonymous_id.clone()));
        if let Some(m) = &e.member_id {
            add(Subject::Member(m.clone()));
        }
        if let EventBody::Alias { previous_id } = &e.body {
            if let Ok(a) = AnonymousId::parse(previous_id.clone()) {
                add(Subject::Anonymous(a));
            }
            if let Ok(m) = MemberId::parse(previous_id.clone()) {
                add(Subject::Member(m));
            }
        }
        out
    }

    /// Folds a batch into the loaded documents.
    pub fn fold(&self, loaded: &mut Loaded, batch: &[Input<'_>]) -> Folded {
        let mut out = Folded::default();
        let mut seen: HashSet<(SiteId, String)> = HashSet::new();
        for input in batch {
            let outcome = self.fold_one(loaded, input, &mut seen, &mut out);
            out.outcomes.push(outcome);
        }
        out
    }

    fn doc<'l>(&self, loaded: &'l mut Loaded, site: &SiteId, s: &Subject) -> &'l mut Doc {
        let key = self.keys.state(site, s);
        loaded.docs.entry(key).or_insert_with(|| Doc {
            site: site.clone(),
            subject: s.clone(),
            state: SubjectState::default(),
            rev: None,
            dirty: false,
            extra: Vec::new(),
        })
    }

    fn fold_one(
        &self,
        loaded: &mut Loaded,
        input: &Input<'_>,
        seen: &mut HashSet<(SiteId, String)>,
        out: &mut Folded,
    ) -> Outcome {
        let e = input.event;
        let site = &e.site_id;
        let device = Subject::Anonymous(e.anonymous_id.clone());
        let marker = self.keys.applied_marker(site, &device, &e.event_id);
        let here = format!("{}@{}", input.tp, input.offset);
        // A marker set by this very message (its document write conflicted, or crashed after the
        // marker landed) is not a duplicate: the document's watermark decides.
        let marked_elsewhere = loaded.markers.get(&marker).is_some_and(|m| *m != here);
        if marked_elsewhere || !seen.insert((site.clone(), e.event_id.to_string())) {
            return Outcome::DuplicateEvent;
        }
        out.markers.push(Update {
            ops: vec![WriteOp::Put {
                key: marker,
                value: here,
                ttl_secs: Some(self.config.dedupe_ttl_secs),
            }],
            ..Default::default()
        });

        // Whose profile: the named member, else the member the device was stitched to, else the device.
        let stitched = self.doc(loaded, site, &device).state.stitched_to.clone();
        let target = match (&e.member_id, stitched) {
            (Some(m), _) => Subject::Member(m.clone()),
            (None, Some(m)) => match MemberId::parse(m) {
                Ok(m) => Subject::Member(m),
                Err(_) => device.clone(),
            },
            (None, None) => device.clone(),
        };
        let target_key = self.keys.state(site, &target);
        if loaded
            .erased
            .get(&target_key)
            .or_else(|| loaded.erased.get(&self.keys.state(site, &device)))
            .is_some_and(|at| *at >= ms(e.received_at))
        {
            return Outcome::Erased;
        }
        let mut fx = Effects {
            keys: self.keys,
            site,
            subject: target.to_string(),
            id_prefix: e.event_id.to_string(),
            at: e.timestamp,
            ops: Vec::new(),
            changes: Vec::new(),
        };
        if let Subject::Member(m) = &target {
            self.stitch(loaded, site, &device, m, &mut fx);
            if let EventBody::Alias { previous_id } = &e.body {
                for prev in [
                    AnonymousId::parse(previous_id.clone())
                        .ok()
                        .map(Subject::Anonymous),
                    MemberId::parse(previous_id.clone())
                        .ok()
                        .map(Subject::Member),
                ]
                .into_iter()
                .flatten()
                {
                    if prev != target && prev != device {
                        self.stitch(loaded, site, &prev, m, &mut fx);
                    }
                }
            }
        }

        let caps = self.caps();
        let ctx = loaded.sites.get(site).cloned().unwrap_or_default();
        let doc = self.doc(loaded, site, &target);
        if doc
            .state
            .wm
            .get(&input.tp)
            .is_some_and(|w| *w >= input.offset)
        {
            // Already applied: only a merge (repair after a crash between two writes) may remain.
            out.changes.extend(fx.changes);
            if !fx.ops.is_empty() {
                out.site_updates.push(self.site_update(site, input, fx.ops));
            }
            return Outcome::BehindWatermark;
        }
        doc.dirty = true;
        doc.state.wm.insert(input.tp.clone(), input.offset);
        self.apply(doc, e, &caps, &ctx, &mut fx);
        out.changes.extend(fx.changes);
        if !fx.ops.is_empty() {
            out.site_updates.push(self.site_update(site, input, fx.ops));
        }
        Outcome::Applied
    }

    fn site_update(&self, site: &SiteId, input: &Input<'_>, ops: Vec<WriteOp>) -> Update {
        Update {
            position: Some(Position {
                key: self.keys.site_watermark(site),
                field: input.tp.clone(),
                offset: input.offset,
            }),
            ops,
            ..Default::default()
        }
    }

    /// Merges `from`'s history into member `m` once, and points `from` at `m`.
    fn stitch(
        &self,
        loaded: &mut Loaded,
        site: &SiteId,
        from: &Subject,
        m: &MemberId,
        fx: &mut Effects<'_>,
    ) {
        let to = Subject::Member(m.clone());
        let from_name = from.to_string();
        let source = self.doc(loaded, site, from).state.clone();
        if !self
            .doc(loaded, site, &to)
            .state
            .merged
            .contains(&from_name)
        {
            let caps = self.caps();
            let target = self.doc(loaded, site, &to);
            target.state.merged.insert(from_name.clone());
            target.dirty = true;
            if !source.is_empty() && source.stitched_to.as_deref() != Some(m.as_str()) {
                target.state.absorb(&source, &caps);
                for (day, spend) in &source.purchases.days {
                    target.extra.push(WriteOp::ZIncr {
                        key: self.keys.purchase_days(site, &to),
                        member: day.to_string(),
                        by: *spend,
                    });
                }
                fx.change(
                    Some(&from_name),
                    ChangeKind::IdentityMerged {
                        from: from_name.clone(),
                    },
                );
                // The anonymous identity leaves the site's indexes and sets; the member's entries are
                // refreshed when the event is applied.
                for key in [
                    self.keys.customers(site),
                    self.keys.recency_index(site),
                    self.keys.frequency_index(site),
                ] {
                    fx.ops.push(WriteOp::ZRemove {
                        key,
                        member: from_name.clone(),
                    });
                }
                for seg in &source.segments {
                    fx.ops.push(WriteOp::SetRemove {
                        key: self.keys.segment(site, seg),
                        member: from_name.clone(),
                    });
                }
                if let Some(st) = &source.stage {
                    fx.ops.push(WriteOp::SetRemove {
                        key: self.keys.stage(site, &st.stage),
                        member: from_name.clone(),
                    });
                }
            }
        }
        let src = self.doc(loaded, site, from);
        if src.state.stitched_to.as_deref() != Some(m.as_str()) {
            src.state.stitched_to = Some(m.to_string());
            src.state.segments.clear();
            src.state.stage = None;
            src.dirty = true;
        }
    }

    /// Applies one event to its target document.
    fn apply(&self, doc: &mut Doc, e: &Event, caps: &Caps, ctx: &SiteCtx, fx: &mut Effects<'_>) {
        let k = self.keys;
        let site = doc.site.clone();
        let t = ms(e.timestamp);
        let s = &mut doc.state;
        let events_before: u64 = s.events.values().sum();
        *s.events
            .entry(e.event_type().as_str().to_string())
            .or_default() += 1;
        s.first_seen_ms = Some(s.first_seen_ms.map_or(t, |f| f.min(t)));
        s.last_seen_ms = Some(s.last_seen_ms.map_or(t, |l| l.max(t)));
        let anon = e.anonymous_id.to_string();
        if !s.anonymous_ids.contains(&anon) {
            s.anonymous_ids.push(anon);
            let excess = s.anonymous_ids.len().saturating_sub(20);
            s.anonymous_ids.drain(..excess);
        }
        if let Some(m) = &e.member_id {
            s.member_id = Some(m.to_string());
        }
        let bot = e.context.bot;
        let day = e.timestamp.format("%Y-%m-%d").to_string();
        let an = k.analytics(&site, &day);
        if bot {
            fx.hincr(&an, "bots".into(), 1);
        } else {
            fx.hincr(&an, format!("events:{}", e.event_type().as_str()), 1);
        }

        // Sessions (identify and alias are not visits).
        let visit = !matches!(e.body, EventBody::Identify { .. } | EventBody::Alias { .. });
        let mut session_items_before = Vec::new();
        if visit {
            session_items_before = self.session(s, e, t, caps, fx, bot, &an);
        }

        // Interests, recency lists, path.
        let interactions = interaction(e);
        let is_view = matches!(e.body, EventBody::PageView { .. } | EventBody::Click { .. });
        for (item, category, brand, w) in &interactions {
            s.interests
                .items
                .add(item, *w, t, caps.half_life_ms, caps.items);
            if let Some(c) = category {
                s.interests
                    .categories
                    .add(c, *w, t, caps.half_life_ms, caps.categories);
                s.interests.recent_categories.add(
                    c,
                    *w,
                    t,
                    caps.short_half_life_ms,
                    caps.categories,
                );
                if is_view {
                    self.count_category_day(s, c, t);
                    self.new_interest(s, c, t, caps, events_before, fx);
                }
            }
            if let Some(b) = brand {
                s.interests
                    .brands
                    .add(b, *w, t, caps.half_life_ms, caps.brands);
            }
            if !bot {
                fx.zincr(k.popular(&site), item, *w);
            }
        }
        let hour = e.timestamp.hour();
        match &e.body {
            EventBody::PageView { item_id, .. } | EventBody::Click { item_id, .. } => {
                if let Some(i) = item_id {
                    push_front_distinct(&mut s.recent_items, i.as_str(), caps.recent_items);
                    if !bot {
                        self.covisit(&site, i.as_str(), &session_items_before, fx);
                        if matches!(e.body, EventBody::PageView { .. }) {
                            fx.hincr(&an, format!("funnel:{hour:02}:view"), 1);
                        }
                    }
                }
                if matches!(e.body, EventBody::PageView { .. }) {
                    if let Some(page) = page_of(e) {
                        s.path.push(Step {
                            t_ms: t,
                            page: page.clone(),
                        });
                        s.path.sort_by_key(|p| p.t_ms);
                        let excess = s.path.len().saturating_sub(caps.path);
                        s.path.drain(..excess);
                        if !bot {
                            fx.zincr(k.analytics_pages(&site, &day), &page, 1.0);
                        }
                    }
                }
            }
            EventBody::AddToCart { .. } if !bot => {
                fx.hincr(&an, format!("funnel:{hour:02}:cart"), 1);
            }
            EventBody::Purchase { order } => {
                self.purchase(doc, e, order, t, fx, &an, hour);
            }
            EventBody::Identify { traits } => {
                for (name, value) in traits {
                    doc.state.traits.insert(name.clone(), value.clone());
                }
            }
            EventBody::PagePing { dwell_ms } => {
                doc.state.dwell_ms += dwell_ms;
                if !bot {
                    let secs = dwell_ms / 1000;
                    let bucket = DWELL_BUCKETS
                        .iter()
                        .find(|(max, _)| secs < *max)
                        .map_or("10m+", |(_, n)| n);
                    fx.hincr(&an, format!("dwell:{bucket}"), 1);
                }
            }
            EventBody::OfferImpression { slot, item_ids } => {
                let stats = k.offer_stats(&site);
                fx.hincr(&stats, format!("{slot}:impressions"), 1);
                fx.hincr(&stats, format!("{slot}:items_shown"), item_ids.len() as i64);
            }
            EventBody::OfferClick { slot, .. } => {
                fx.hincr(&k.offer_stats(&site), format!("{slot}:clicks"), 1);
            }
            _ => {}
        }
        fx.ops.push(WriteOp::Expire {
            key: an,
            seconds: ANALYTICS_TTL_SECS,
        });
        self.judge(
            doc,
            ctx,
            t,
            fx,
            matches!(e.body, EventBody::Purchase { .. }),
        );
    }

    /// A new interest: the short-term view of `c` is strong and dominant while the long-term profile,
    /// minus what the recent burst itself contributed, hardly shows it.
    fn new_interest(
        &self,
        s: &mut SubjectState,
        c: &str,
        t: i64,
        caps: &Caps,
        events_before: u64,
        fx: &mut Effects<'_>,
    ) {
        let (short, long) = (&s.interests.recent_categories, &s.interests.categories);
        let r_score = short.score(c, t, caps.short_half_life_ms);
        let r_total = short.total(t, caps.short_half_life_ms);
        let baseline_total = long.total(t, caps.half_life_ms) - r_total;
        let baseline = (long.score(c, t, caps.half_life_ms) - r_score).max(0.0);
        let r_share = r_score / r_total.max(1e-9);
        let l_share = baseline / baseline_total.max(1e-9);
        if events_before >= u64::from(self.config.min_history_events)
            && baseline_total >= 1.0
            && r_score >= 3.0
            && r_share >= 0.5
            && l_share < 0.1
            && self.signal(&mut s.signals, &format!("new_interest:{c}"), t)
        {
            fx.change(
                Some(c),
                ChangeKind::NewInterest {
                    category: c.to_string(),
                    recent_share: r_share,
                    long_term_share: l_share,
                },
            );
        }
    }

    fn count_category_day(&self, s: &mut SubjectState, c: &str, t: i64) {
        let today = day_of(t);
        let days = s.category_days.entry(c.to_string()).or_default();
        *days.entry(today).or_default() += 1;
        let newest = *days.keys().next_back().expect("just added");
        days.retain(|d, _| *d > newest - 35);
        // Keep the categories most recently active.
        while s.category_days.len() > self.config.top_categories as usize {
            let stale = s
                .category_days
                .iter()
                .min_by_key(|(_, d)| d.keys().next_back().copied().unwrap_or(i64::MIN))
                .map(|(c, _)| c.clone())
                .expect("non-empty");
            s.category_days.remove(&stale);
        }
    }

    /// Finds or opens the event's session; returns the session's items before this event.
    #[allow(clippy::too_many_arguments)]
    fn session(
        &self,
        s: &mut SubjectState,
        e: &Event,
        t: i64,
        caps: &Caps,
        fx: &mut Effects<'_>,
        bot: bool,
        an: &str,
    ) -> Vec<String> {
        let timeout = i64::from(self.config.session_timeout_mins) * 60_000;
        let sessions = &mut s.sessions;
        let found = match &e.session_id {
            Some(id) => sessions.recent.iter().rposition(|x| x.id == id.as_str()),
            None => sessions.recent.iter().rposition(|x| {
                t >= x.start_ms - timeout && t <= x.end_ms + timeout && x.id.starts_with('~')
            }),
        };
        let idx = match found {
            Some(i) => i,
            None => {
                let (channel, referrer) = channel_of(e);
                let previous_start = sessions.recent.last().map(|x| x.start_ms);
                if let Some(prev) = previous_start {
                    let gap = (t - prev) as f64 / DAY_MS as f64;
                    if gap > 0.0 {
                        let usual = sessions.gap_days;
                        if usual.n >= 3
                            && gap >= 2.0
                            && gap > 3.0 * usual.mean.max(1.0 / 24.0)
                            && self.signal(&mut s.signals, "visit_frequency_drop", t)
                        {
                            fx.change(
                                None,
                                ChangeKind::VisitFrequencyDrop {
                                    gap_days: gap,
                                    usual_gap_days: usual.mean,
                                },
                            );
                        }
                        s.sessions.gap_days.push(gap);
                    }
                }
                let sessions = &mut s.sessions;
                if sessions.count >= 3
                    && channel != "direct"
                    && !sessions.channels.contains_key(&channel)
                    && self.signal(&mut s.signals, &format!("new_channel:{channel}"), t)
                {
                    fx.change(
                        Some(&channel),
                        ChangeKind::NewChannel {
                            channel: channel.clone(),
                            referrer: referrer.clone(),
                        },
                    );
                }
                let sessions = &mut s.sessions;
                sessions.count += 1;
                *sessions.channels.entry(channel.clone()).or_default() += 1;
                if let Some(r) = &referrer {
                    *sessions.referrers.entry(r.clone()).or_default() += 1;
                    cap_counts(&mut sessions.referrers, 30);
                }
                if !bot {
                    fx.hincr(an, "sessions".into(), 1);
                    fx.hincr(an, format!("channel:{channel}"), 1);
                    if let Some(r) = &referrer {
                        let day = an.rsplit(':').next().unwrap_or_default().to_string();
                        fx.zincr(fx.keys.analytics_referrers(fx.site, &day), r, 1.0);
                    }
                }
                let id = match &e.session_id {
                    Some(id) => id.to_string(),
                    None => format!("~{t}"),
                };
                sessions.recent.push(Session {
                    id: id.clone(),
                    start_ms: t,
                    end_ms: t,
                    channel,
                    referrer,
                    ..Default::default()
                });
                sessions.recent.sort_by_key(|x| x.start_ms);
                let excess = sessions.recent.len().saturating_sub(caps.sessions);
                sessions.recent.drain(..excess);
                sessions
                    .recent
                    .iter()
                    .rposition(|x| x.id == id)
                    .unwrap_or(sessions.recent.len() - 1)
            }
        };
        let sess = &mut s.sessions.recent[idx];
        sess.start_ms = sess.start_ms.min(t);
        sess.end_ms = sess.end_ms.max(t);
        let before = sess.items.clone();
        match &e.body {
            EventBody::PageView { item_id, .. } => {
                sess.pages += 1;
                s.sessions.pages += 1;
                let sess = &mut s.sessions.recent[idx];
                if let Some(page) = page_of(e) {
                    if sess.entry.is_none() || t <= sess.start_ms {
                        sess.entry = Some(page.clone());
                    }
                    if t >= sess.end_ms {
                        sess.exit = Some(page);
                    }
                }
                if let Some(i) = item_id {
                    push_front_distinct(
                        &mut sess.items,
                        i.as_str(),
                        self.config.session_items as usize,
                    );
                }
            }
            EventBody::Click {
                item_id: Some(i), ..
            } => {
                push_front_distinct(
                    &mut sess.items,
                    i.as_str(),
                    self.config.session_items as usize,
                );
            }
            EventBody::PagePing { dwell_ms } => sess.dwell_ms += dwell_ms,
            _ => {}
        }
        before
    }

    /// Whether the signal `key` may fire at `t` (outside its cooldown); if so, records it.
    fn signal(
        &self,
        signals: &mut std::collections::BTreeMap<String, i64>,
        key: &str,
        t: i64,
    ) -> bool {
        let cooldown = i64::from(self.config.signal_cooldown_days) * DAY_MS;
        if signals.get(key).is_some_and(|last| t - last < cooldown) {
            return false;
        }
        signals.insert(key.to_string(), t);
        true
    }

    /// Pairs an item seen for the first time in a session with the session's earlier items.
    fn covisit(&self, site: &SiteId, item: &str, before: &[String], fx: &mut Effects<'_>) {
        if before.iter().any(|s| s == item) {
            return;
        }
        for other in before {
            fx.zincr(self.keys.covisits(site, other), item, 1.0);
            fx.zincr(self.keys.covisits(site, item), other, 1.0);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn purchase(
        &self,
        doc: &mut Doc,
        e: &Event,
        order: &tailor_core::event::Order,
        t: i64,
        fx: &mut Effects<'_>,
        an: &str,
        hour: u32,
    ) {
        let k = self.keys;
        let site = doc.site.clone();
        let p = &mut doc.state.purchases;
        if p.order_ids.contains(&order.id) {
            return; // the same order reported again under another event id
        }
        let new_categories: Vec<String> = order
            .lines
            .iter()
            .filter_map(|l| l.category.as_ref().map(|c| c.to_string()))
            .filter(|c| !p.categories.contains_key(c))
            .collect();
        let usual = p.order_values;
        let orders_before = p.orders;
        p.order_ids.push(order.id.clone());
        let excess = p.order_ids.len().saturating_sub(50);
        p.order_ids.drain(..excess);
        p.orders += 1;
        p.units += order
            .lines
            .iter()
            .map(|l| u64::from(l.quantity))
            .sum::<u64>();
        *p.revenue.entry(order.currency.clone()).or_default() += order.revenue;
        p.monetary += order.revenue;
        p.first_ms = Some(p.first_ms.map_or(t, |f| f.min(t)));
        p.last_ms = Some(p.last_ms.map_or(t, |l| l.max(t)));
        *p.days.entry(day_of(t)).or_default() += order.revenue;
        for l in &order.lines {
            add_count(&mut p.items, l.item_id.as_str(), f64::from(l.quantity), 100);
        }
        let mut cats: Vec<String> = order
            .lines
            .iter()
            .filter_map(|l| l.category.as_ref().map(|c| c.to_string()))
            .collect();
        cats.sort();
        cats.dedup();
        for c in cats {
            *p.categories.entry(c).or_default() += 1;
        }
        p.order_values.push(order.revenue);
        let (orders, monetary, last) = (p.orders, p.monetary, p.last_ms.unwrap_or(t));
        let subject = doc.subject.clone();
        doc.extra.push(WriteOp::ZIncr {
            key: k.purchase_days(&site, &subject),
            member: day_of(t).to_string(),
            by: order.revenue,
        });
        let name = subject.to_string();
        fx.ops.push(WriteOp::ZSet {
            key: k.customers(&site),
            member: name.clone(),
            score: monetary,
        });
        fx.ops.push(WriteOp::ZSet {
            key: k.recency_index(&site),
            member: name.clone(),
            score: last as f64,
        });
        fx.ops.push(WriteOp::ZSet {
            key: k.frequency_index(&site),
            member: name,
            score: orders as f64,
        });
        if !e.context.bot {
            fx.hincr(an, format!("funnel:{hour:02}:purchase"), 1);
            fx.ops.push(WriteOp::HashIncrFloat {
                key: an.to_string(),
                field: "revenue".into(),
                by: order.revenue,
            });
        }
        if orders_before >= 2 {
            let shift = if let Some(c) = new_categories.first() {
                Some(("new_category", Some(c.clone())))
            } else if usual.n >= 3
                && usual.std_dev() > 0.0
                && (order.revenue - usual.mean).abs() > 3.0 * usual.std_dev()
            {
                Some(("order_value", None))
            } else {
                None
            };
            if let Some((reason, category)) = shift {
                if self.signal(
                    &mut doc.state.signals,
                    &format!("purchase_shift:{reason}"),
                    t,
                ) {
                    fx.change(
                        Some(reason),
                        ChangeKind::PurchaseShift {
                            reason: reason.into(),
                            category,
                            order_value: order.revenue,
                            usual_order_value: usual.mean,
                        },
                    );
                }
            }
        }
    }

    /// Lifetime value (on purchases), life-cycle stage and segments at time `t`, with a change for
    /// every transition.
    fn judge(&self, doc: &mut Doc, ctx: &SiteCtx, t: i64, fx: &mut Effects<'_>, purchase: bool) {
        let rules = &self.config.lifecycle;
        let site = doc.site.clone();
        let name = doc.subject.to_string();
        let s = &mut doc.state;
        let facts = Facts::of(s, &ctx.models, rules, t);
        if purchase && facts.value.is_some() {
            s.clv = facts.value;
        }
        let stage = facts.lifecycle;
        let from = s.stage.as_ref().map(|r| r.stage.clone());
        if from.as_deref() != Some(stage) {
            if let Some(old) = &from {
                fx.ops.push(WriteOp::SetRemove {
                    key: self.keys.stage(&site, old),
                    member: name.clone(),
                });
            }
            fx.ops.push(WriteOp::SetAdd {
                key: self.keys.stage(&site, stage),
                member: name.clone(),
            });
            s.stage = Some(StageRecord {
                stage: stage.to_string(),
                since_ms: t,
            });
            fx.change(
                Some(stage),
                ChangeKind::StageChanged {
                    from,
                    to: stage.to_string(),
                },
            );
        }
        let subject = RuleSubject {
            facts: &facts,
            state: s,
            now_ms: t,
            half_life_ms: self.half_life_ms(),
        };
        let now_in: Vec<&String> = ctx
            .segments
            .iter()
            .filter(|(_, rule)| rule.matches(&subject))
            .map(|(n, _)| n)
            .collect();
        let entered: Vec<String> = now_in
            .iter()
            .filter(|n| !s.segments.contains(**n))
            .map(|n| (*n).clone())
            .collect();
        let exited: Vec<String> = s
            .segments
            .iter()
            .filter(|n| !now_in.contains(n))
            .cloned()
            .collect();
        for seg in entered {
            fx.ops.push(WriteOp::SetAdd {
                key: self.keys.segment(&site, &seg),
                member: name.clone(),
            });
            s.segments.insert(seg.clone());
            fx.change(
                Some(&seg),
                ChangeKind::SegmentEntered {
                    segment: seg.clone(),
                },
            );
        }
        for seg in exited {
            fx.ops.push(WriteOp::SetRemove {
                key: self.keys.segment(&site, &seg),
                member: name.clone(),
            });
            s.segments.remove(&seg);
            fx.change(
                Some(&seg),
                ChangeKind::SegmentExited {
                    segment: seg.clone(),
                },
            );
        }
    }
}

/// Re-judges a document at `now_ms` outside any event: the periodic sweep that moves idle customers
/// to lapsing and lapsed and refreshes time-dependent segments. Returns the site ops and the changes,
/// whose ids start with `id_prefix` (one per sweep day and subject, so a repeated sweep repeats ids).
pub fn rejudge(
    folder: &Folder<'_>,
    doc: &mut Doc,
    ctx: &SiteCtx,
    now_ms: i64,
    id_prefix: String,
) -> (Vec<WriteOp>, Vec<Change>) {
    let site = doc.site.clone();
    let mut fx = Effects {
        keys: folder.keys,
        site: &site,
        subject: doc.subject.to_string(),
        id_prefix,
        at: DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
        ops: Vec::new(),
        changes: Vec::new(),
    };
    folder.judge(doc, ctx, now_ms, &mut fx, true);
    (fx.ops, fx.changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tailor_core::event::RawEvent;

    fn event(v: serde_json::Value) -> Event {
        RawEvent::from_json(v)
            .unwrap()
            .validate(Utc::now())
            .unwrap()
    }

    struct World {
        keys: KeySpace,
        config: ProcessorConfig,
        loaded: Loaded,
        offset: i64,
    }

    impl World {
        fn new() -> World {
            World {
                keys: KeySpace::default(),
                config: ProcessorConfig::default(),
                loaded: Loaded::default(),
                offset: 0,
            }
        }

        /// Folds events as one batch at fresh offsets of partition 0; returns the outcomes.
        fn fold(&mut self, events: &[Event]) -> Folded {
            let inputs: Vec<Input<'_>> = events
                .iter()
                .map(|e| {
                    self.offset += 1;
                    Input {
                        tp: "t/0".into(),
                        offset: self.offset,
                        event: e,
                    }
                })
                .collect();
            let folder = Folder {
                keys: &self.keys,
                config: &self.config,
            };
            folder.fold(&mut self.loaded, &inputs)
        }

        fn state(&self, subject: &str) -> &SubjectState {
            let s = Subject::parse(subject).unwrap();
            &self.loaded.docs[&self.keys.state(&SiteId::parse("demo").unwrap(), &s)].state
        }
    }

    fn view(anon: &str, member: Option<&str>, item: &str) -> Event {
        let mut v = json!({"type":"page_view","site_id":"demo","anonymous_id":anon,"session_id":"s","item_id":item});
        if let Some(m) = member {
            v["member_id"] = json!(m);
        }
        event(v)
    }

    #[test]
    fn anonymous_history_is_merged_once_and_later_anonymous_events_follow_the_stitch() {
        let mut w = World::new();
        let anon = view("dev", None, "a");
        let login = view("dev", Some("m"), "b");
        let out = w.fold(&[anon.clone(), login.clone()]);
        assert_eq!(out.outcomes, [Outcome::Applied, Outcome::Applied]);
        assert_eq!(w.state("m:m").events["page_view"], 2);
        assert_eq!(w.state("a:dev").stitched_to.as_deref(), Some("m"));
        assert_eq!(
            out.changes
                .iter()
                .filter(|c| c.kind.name() == "identity_merged")
                .count(),
            1
        );
        // The same events redelivered at the same offsets: behind the watermark, nothing merged again.
        w.offset = 0;
        let again = w.fold(&[anon, login]);
        assert_eq!(
            again.outcomes,
            [Outcome::BehindWatermark, Outcome::BehindWatermark]
        );
        assert!(again.changes.is_empty());
        // A later anonymous event from the device goes to the member.
        w.offset = 10;
        w.fold(&[view("dev", None, "c")]);
        assert_eq!(w.state("m:m").events["page_view"], 3);
        // Co-visitation paired the session's items across the login.
        assert_eq!(w.state("m:m").recent_items, ["c", "b", "a"]);
    }

    #[test]
    fn duplicates_by_event_id_and_by_order_id_count_once() {
        let mut w = World::new();
        let order = |id: &str| {
            event(
                json!({"type":"purchase","site_id":"demo","anonymous_id":"d","member_id":"m","event_id":id,
                "order":{"id":"o1","currency":"EUR","lines":[{"item_id":"x","price":5.0,"quantity":2}]}}),
            )
        };
        let first = order("e1");
        let out = w.fold(&[first.clone(), first, order("e2")]);
        assert_eq!(out.outcomes[1], Outcome::DuplicateEvent);
        let p = &w.state("m:m").purchases;
        assert_eq!((p.orders, p.units, p.monetary), (1, 2, 10.0));
        // The site's customer index is set, not incremented: replaying it is harmless.
        assert!(out
            .site_updates
            .iter()
            .flat_map(|u| &u.ops)
            .any(|o| matches!(o,
            WriteOp::ZSet { key, score, .. } if key.ends_with(":customers") && *score == 10.0)));
        // Every site update stays in the site's slot.
        for u in &out.site_updates {
            assert_eq!(u.slot_tag(), Ok(Some("demo")));
        }
    }

    #[test]
    fn pages_and_channels() {
        let e = event(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
            "url":"https://shop.example/p/1?utm_source=n&utm_medium=Email#top"}),
        );
        assert_eq!(page_of(&e).as_deref(), Some("/p/1"));
        let e = event(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a","url":"https://shop.example"}),
        );
        assert_eq!(page_of(&e).as_deref(), Some("/"));
        assert_eq!(channel_of(&e).0, "direct");
    }
}
