//! Change events: what the processor tells the recommender and outside systems about a member, on the
//! changes topic (`kafka.changes_topic`). Each has a deterministic id made from the event that caused
//! it, so a change re-emitted after a crash carries the id it had the first time: consumers drop
//! repeats by id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One change to one subject's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `<source_event_id>:<kind>[:<detail>]`, stable across re-emission.
    pub id: String,
    pub site_id: String,
    /// `m:<member>` or `a:<anonymous id>`.
    pub subject: String,
    /// When it happened (the time of the causing event).
    pub at: DateTime<Utc>,
    /// The event that caused it.
    pub source_event_id: String,
    #[serde(flatten)]
    pub kind: ChangeKind,
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    /// A move in the relationship life cycle (prospect, first-time buyer, repeat, lapsing, lapsed).
    StageChanged {
        from: Option<String>,
        to: String,
    },
    SegmentEntered {
        segment: String,
    },
    SegmentExited {
        segment: String,
    },
    /// Recent views concentrate on a category the long-term profile hardly shows.
    NewInterest {
        category: String,
        recent_share: f64,
        long_term_share: f64,
    },
    /// The member came back after a gap far longer than their usual rhythm.
    VisitFrequencyDrop {
        gap_days: f64,
        usual_gap_days: f64,
    },
    /// A session from a channel (or referrer) the member never came through before.
    NewChannel {
        channel: String,
        referrer: Option<String>,
    },
    /// An order unlike earlier ones: a first order in a category, or a value far from the usual.
    PurchaseShift {
        reason: String,
        category: Option<String>,
        order_value: f64,
        usual_order_value: f64,
    },
    /// Another identity's history was merged into this member.
    IdentityMerged {
        from: String,
    },
}

impl ChangeKind {
    pub fn name(&self) -> &'static str {
        match self {
            ChangeKind::StageChanged { .. } => "stage_changed",
            ChangeKind::SegmentEntered { .. } => "segment_entered",
            ChangeKind::SegmentExited { .. } => "segment_exited",
            ChangeKind::NewInterest { .. } => "new_interest",
            ChangeKind::VisitFrequencyDrop { .. } => "visit_frequency_drop",
            ChangeKind::NewChannel { .. } => "new_channel",
            ChangeKind::PurchaseShift { .. } => "purchase_shift",
            ChangeKind::IdentityMerged { .. } => "identity_merged",
        }
    }
}
