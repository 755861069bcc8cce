//! The write-op language of profile updates.
//!
//! The processor decides *what* an event changes as a list of [`WriteOp`]s, with no I/O; a store
//! backend (Redis, in-process) only *interprets* them. This keeps one code path for business logic
//! whatever the backend, and lets the Redis backend apply one event's ops in a single atomic script.

use serde::{Deserialize, Serialize};

/// One primitive change to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteOp {
    /// `HINCRBY key field by`
    HashIncr { key: String, field: String, by: i64 },
    /// `HINCRBYFLOAT key field by`
    HashIncrFloat { key: String, field: String, by: f64 },
    /// `HSET key field value`
    HashSet {
        key: String,
        field: String,
        value: String,
    },
    /// Keep the smaller of the stored and given integer (first-seen under out-of-order delivery).
    HashMin {
        key: String,
        field: String,
        value: i64,
    },
    /// Keep the larger of the stored and given integer (last-seen).
    HashMax {
        key: String,
        field: String,
        value: i64,
    },
    /// Move `value` to the front of a list, removing earlier copies, and keep at most `cap` entries.
    ListPushDistinct {
        key: String,
        value: String,
        cap: u32,
    },
    /// `ZINCRBY key by member`
    ZIncr {
        key: String,
        member: String,
        by: f64,
    },
    /// `EXPIRE key seconds`
    Expire { key: String, seconds: u64 },
}

impl WriteOp {
    pub fn key(&self) -> &str {
        match self {
            WriteOp::HashIncr { key, .. }
            | WriteOp::HashIncrFloat { key, .. }
            | WriteOp::HashSet { key, .. }
            | WriteOp::HashMin { key, .. }
            | WriteOp::HashMax { key, .. }
            | WriteOp::ListPushDistinct { key, .. }
            | WriteOp::ZIncr { key, .. }
            | WriteOp::Expire { key, .. } => key,
        }
    }
}

/// Where an update came from on the bus: the store records `offset` under `field` of the watermark hash
/// `key`, in the same atomic step as the update, and skips any update at or below the recorded offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub key: String,
    pub field: String,
    pub offset: i64,
}

/// All changes one event makes, applied atomically and at most once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// Set (with `marker_ttl_secs`) when the update is applied; an update whose marker exists is skipped.
    pub marker_key: String,
    pub marker_ttl_secs: u64,
    pub position: Option<Position>,
    pub ops: Vec<WriteOp>,
}

/// What the store did with one [`Update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// The ops were applied.
    Applied,
    /// The event id was seen before (a client retry or a replay).
    DuplicateEvent,
    /// The bus position is at or below the watermark (a redelivery after a crash or rebalance).
    BehindWatermark,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Applied => "applied",
            Applied::DuplicateEvent => "duplicate_event",
            Applied::BehindWatermark => "behind_watermark",
        }
    }
}
