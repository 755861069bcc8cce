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
use tailor_core::campaign;
use tailor_core::change::{Change, ChangeKind};
use tailor_core::config::ProcessorConfig;
use tailor_core::event::{Event, EventBody, ReferrerClass};
use tailor_core::keys::{KeySpace, MarkerSlot};
use tailor_core::models::{Facts, SiteModels};
use tailor_core::ops::{Position, Update, WriteOp};
use tailor_core::segment::{Rule, Subject as RuleSubject};
use tailor_core::state::{
    add_count, cap_counts, day_of, push_front_distinct, Caps, Session, Share, StageRecord, Step,
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
    /// Erasure time (ms) by state key.
    pub erased: HashMap<String, i64>,
    pub sites: HashMap<SiteId, SiteCtx>,
}

/// One event with its bus position and its dedupe marker.
pub struct Input<'a> {
    /// `topic/partition`.
    pub tp: String,
    pub offset: i64,
    pub event: &'a Event,
    /// Where its marker is written and looked for ([`Folder::marker`]).
    pub marker: MarkerSlot,
    /// The messages that set the markers found for it in the store (`<partition>@<offset>`, or
    /// `topic/partition@offset` in a legacy marker); empty when none was.
    pub marked: Vec<String>,
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
    /// One update per marker hash (the batch's markers of one device and generation, set together,
    /// the hash's expiry renewed once), or per legacy marker key.
    pub markers: Vec<Update>,
    pub changes: Vec<Change>,
    /// The position in `markers` of each marker hash's update.
    marker_hashes: HashMap<String, usize>,
}

/// Folding settings.
pub struct Folder<'a> {
    pub keys: &'a KeySpace,
    pub config: &'a ProcessorConfig,
    /// The key campaign offer tokens are verified with (`recommender.offer_secret`).
    pub offer_secret: &'a str,
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

    /// Where an event's dedupe marker is written and looked for.
    pub fn marker(&self, e: &Event) -> MarkerSlot {
        self.keys.marker(
            &e.site_id,
            &Subject::Anonymous(e.anonymous_id.clone()),
            &e.event_id,
            ms(e.received_at),
            self.config.dedupe_ttl_secs,
        )
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
        let slot = &input.marker;
        // The message, as a marker names it: the partition (one topic feeds the processor) and offset.
        let partition = input.tp.rsplit('/').next().unwrap_or(&input.tp);
        let here = format!("{partition}@{}", input.offset);
        let legacy_here = format!("{}@{}", input.tp, input.offset);
        // A marker set by this very message (its document write conflicted, or crashed after the
        // marker landed) is not a duplicate: the document's watermark decides.
        let marked_elsewhere = input.marked.iter().any(|m| *m != here && *m != legacy_here);
        if marked_elsewhere || !seen.insert((site.clone(), e.event_id.to_string())) {
            return Outcome::DuplicateEvent;
        }
        if self.config.compact_storage {
            let bucket = slot.own();
            let set = WriteOp::HashSet {
                key: bucket.to_string(),
                field: slot.field.clone(),
                value: here,
            };
            match out.marker_hashes.get(bucket) {
                // Before the hash's expiry, which stays the update's last op.
                Some(&i) => {
                    let ops = &mut out.markers[i].ops;
                    ops.insert(ops.len() - 1, set);
                }
                None => {
                    out.marker_hashes
                        .insert(bucket.to_string(), out.markers.len());
                    out.markers.push(Update {
                        ops: vec![
                            set,
                            WriteOp::Expire {
                                key: bucket.to_string(),
                                seconds: MarkerSlot::bucket_ttl_secs(self.config.dedupe_ttl_secs),
                            },
                        ],
                        ..Default::default()
                    });
                }
            }
        } else {
            // As earlier versions wrote it, which they can read (`processor.compact_storage`).
            out.markers.push(Update {
                ops: vec![WriteOp::Put {
                    key: slot.legacy.clone(),
                    value: legacy_here,
                    ttl_secs: Some(self.config.dedupe_ttl_secs),
                }],
                ..Default::default()
            });
        }

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
                parts: Vec::new(),
                since: None,
            }),
            ops,
            ..Default::default()
        }
    }
}

mod apply;
mod judge;
mod purchase;
mod session;
mod shared;
mod signals;
mod stitch;
#[cfg(test)]
mod tests;

pub use judge::rejudge;
