//! Ranking, with no I/O: candidate generators → one blend → business rules → diversity.
//!
//! ```text
//!  the member's summary ─┐                 ┌─ item_to_item (co-visitation, followers, co-purchase)
//!  the page context ─────┼─▶ seeds, reads ─┼─ session_knn (V-SKNN over the most recent sessions), reminder
//!  the site's models ────┘                 └─ popular (overall, category, interests, trending)
//!                                                   │ each a list of (item, score, because)
//!                                                   ▼
//!                         blend: Σ weight(source) × score / best score of that source
//!                                                   │ the strongest contribution gives the reason
//!                                                   ▼
//!                        rules (filters, boosts, pins) → diversity (≤ N per category) → top `limit`
//! ```
//!
//! Each generator is a pure function of what the store returned for the request; the request flow
//! (`crate::engine`) plans the reads and calls them. Scores of different generators are not
//! comparable (counts, similarities, popularity), so the blend normalises each generator's list by
//! its best score before weighting: a weight then says how much a source's *best* candidate is worth.

pub mod blend;
pub mod boost;
pub mod item_to_item;
pub mod popular;
pub mod reminder;
pub mod rerank;
pub mod session_knn;

use serde::{Deserialize, Serialize};

/// Where a candidate came from. The order is the tie-break order of reasons.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Items of past sessions most similar to the one in progress.
    SessionKnn,
    /// Items of the session in progress, most recent first.
    Reminder,
    /// Items that followed the session's recent items in other sessions.
    Sequence,
    /// Items viewed in the same sessions as the seeds.
    Covisitation,
    /// Items bought together with the seeds or the member's purchases.
    Copurchase,
    /// Popular items of the member's favourite categories and brands.
    Interest,
    /// Items whose last day beats their long-run rate.
    Trending,
    /// Popular items of the page's category.
    Category,
    /// Popular items of the site (cold start).
    Popular,
}

impl Source {
    pub const ALL: [Source; 9] = [
        Source::SessionKnn,
        Source::Reminder,
        Source::Sequence,
        Source::Covisitation,
        Source::Copurchase,
        Source::Interest,
        Source::Trending,
        Source::Category,
        Source::Popular,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::SessionKnn => "session_knn",
            Source::Reminder => "reminder",
            Source::Sequence => "sequence",
            Source::Covisitation => "covisitation",
            Source::Copurchase => "copurchase",
            Source::Interest => "interest",
            Source::Trending => "trending",
            Source::Category => "category",
            Source::Popular => "popular",
        }
    }
}

/// What a candidate is recommended because of, turned into a sentence once the catalog is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Because {
    /// A seed item (the page's, or one the visitor viewed, carted or bought).
    Item(String),
    /// A category (the page's, or one of the member's interests).
    Category(String),
    /// A brand of the member's interests.
    Brand(String),
    /// Nothing more specific than the source.
    #[default]
    Source,
}

impl Because {
    /// The cause as a candidate carries it.
    pub fn cause(&self) -> Cause<'_> {
        match self {
            Because::Item(i) => Cause::Item(i),
            Because::Category(c) => Cause::Category(c),
            Because::Brand(b) => Cause::Brand(b),
            Because::Source => Cause::Source,
        }
    }
}

/// [`Because`], borrowed from what the request read: a candidate carries one without allocating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cause<'a> {
    Item(&'a str),
    Category(&'a str),
    Brand(&'a str),
    Source,
}

impl Cause<'_> {
    pub fn to_because(self) -> Because {
        match self {
            Cause::Item(i) => Because::Item(i.to_string()),
            Cause::Category(c) => Because::Category(c.to_string()),
            Cause::Brand(b) => Because::Brand(b.to_string()),
            Cause::Source => Because::Source,
        }
    }
}

/// One generator's candidate, borrowed from the lists the request read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate<'a> {
    pub item_id: &'a str,
    /// Comparable within one generator's list only.
    pub score: f64,
    pub because: Cause<'a>,
}

/// One generator's output: one candidate an item, in no particular order (the blend sums them;
/// [`sort_candidates`] ranks a list).
#[derive(Debug, Clone, PartialEq)]
pub struct Generated<'a> {
    pub source: Source,
    pub candidates: Vec<Candidate<'a>>,
}

/// Sums contributions per item and remembers the cause of each item's largest one: the shape every
/// generator that adds up several lists shares.
pub(crate) struct Tally<'a, C> {
    // item -> (score, cause of the best contribution, best contribution)
    scores: tailor_core::hash::FastMap<&'a str, (f64, C, f64)>,
}

impl<'a, C: Copy> Tally<'a, C> {
    /// A tally with room for `n` items (what its lists hold at most: no rehash while adding).
    pub(crate) fn with_capacity(n: usize) -> Self {
        Tally {
            scores: tailor_core::hash::map_with_capacity(n),
        }
    }

    pub(crate) fn add(&mut self, item: &'a str, contribution: f64, cause: C) {
        let e = self.scores.entry(item).or_insert((0.0, cause, 0.0));
        e.0 += contribution;
        if contribution > e.2 {
            e.1 = cause;
            e.2 = contribution;
        }
    }

    /// The items with a positive score as candidates, in no particular order.
    pub(crate) fn into_candidates(self, because: impl Fn(C) -> Cause<'a>) -> Vec<Candidate<'a>> {
        self.scores
            .into_iter()
            .filter(|(_, (score, _, _))| *score > 0.0)
            .map(|(item, (score, cause, _))| Candidate {
                item_id: item,
                score,
                because: because(cause),
            })
            .collect()
    }
}

/// Sorts candidates best first, ties by item id (so answers are deterministic). Ids are unique
/// within a generator's list, so the order is total and an unstable sort gives the same result.
pub fn sort_candidates(c: &mut [Candidate<'_>]) {
    c.sort_unstable_by(|a, b| by_rank((a.score, a.item_id), (b.score, b.item_id)));
}

/// The order of every ranked list: the higher score first, ties by item id.
pub(crate) fn by_rank(a: (f64, &str), b: (f64, &str)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

/// A generator's list ranked (tests read them in order).
#[cfg(test)]
pub(crate) fn ranked(mut c: Vec<Candidate<'_>>) -> Vec<Candidate<'_>> {
    sort_candidates(&mut c);
    c
}
