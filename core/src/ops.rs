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
    /// `SET key value [EX ttl]`
    Put {
        key: String,
        value: String,
        ttl_secs: Option<u64>,
    },
    /// `ZADD key score member`
    ZSet {
        key: String,
        member: String,
        score: f64,
    },
    /// `ZREM key member`
    ZRemove { key: String, member: String },
    /// `SADD key member`
    SetAdd { key: String, member: String },
    /// `SREM key member`
    SetRemove { key: String, member: String },
    /// `DEL key`
    Delete { key: String },
    /// `HDEL key field`
    HashDelete { key: String, field: String },
    /// Keep only the `keep` highest-scored members of a sorted set (`ZREMRANGEBYRANK key 0 -(keep+1)`):
    /// bounded indexes such as the most recent sessions of an item.
    ZKeepTop { key: String, keep: u32 },
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
            | WriteOp::Expire { key, .. }
            | WriteOp::Put { key, .. }
            | WriteOp::ZSet { key, .. }
            | WriteOp::ZRemove { key, .. }
            | WriteOp::SetAdd { key, .. }
            | WriteOp::SetRemove { key, .. }
            | WriteOp::Delete { key }
            | WriteOp::HashDelete { key, .. }
            | WriteOp::ZKeepTop { key, .. } => key,
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

/// A dedupe marker: an update whose marker key exists is skipped; applying it sets the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub key: String,
    pub ttl_secs: u64,
}

/// Optimistic concurrency: the update applies only while hash field `field` of `key` still holds
/// `expected` (`None`: the field is absent), i.e. nobody wrote the document since it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    pub key: String,
    pub field: String,
    pub expected: Option<String>,
}

/// A set of changes applied atomically and at most once. All keys of one update must share a Redis
/// Cluster hash slot (one `{tag}`): the Redis backend runs an update as one script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Update {
    pub guard: Option<Guard>,
    pub marker: Option<Marker>,
    pub position: Option<Position>,
    pub ops: Vec<WriteOp>,
}

impl Update {
    /// Every key the update reads or writes.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.guard
            .iter()
            .map(|g| g.key.as_str())
            .chain(self.marker.iter().map(|m| m.key.as_str()))
            .chain(self.position.iter().map(|p| p.key.as_str()))
            .chain(self.ops.iter().map(|o| o.key()))
    }

    /// The Redis Cluster hash tag shared by all keys, or a description of the first key that differs.
    pub fn slot_tag(&self) -> Result<Option<&str>, String> {
        let mut tag: Option<&str> = None;
        for k in self.keys() {
            let t = hash_tag(k);
            match tag {
                None => tag = Some(t),
                Some(first) if first != t => {
                    return Err(format!("key {k} is outside hash tag {{{first}}}"))
                }
                _ => {}
            }
        }
        Ok(tag)
    }
}

/// The part of a key Redis Cluster hashes: the text between the first `{` and the next `}` when
/// non-empty, else the whole key.
pub fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
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
    /// The guarded document changed since it was read: re-read and plan again.
    Conflict,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Applied => "applied",
            Applied::DuplicateEvent => "duplicate_event",
            Applied::BehindWatermark => "behind_watermark",
            Applied::Conflict => "conflict",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_follow_redis_cluster_rules() {
        assert_eq!(hash_tag("tailor:{demo:m:a}:state"), "demo:m:a");
        assert_eq!(hash_tag("tailor:{}:x"), "tailor:{}:x");
        assert_eq!(hash_tag("plain"), "plain");
        let u = Update {
            ops: vec![
                WriteOp::Delete {
                    key: "t:{s}:a".into(),
                },
                WriteOp::Delete {
                    key: "t:{s}:b".into(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(u.slot_tag(), Ok(Some("s")));
        let mut bad = u.clone();
        bad.ops.push(WriteOp::Delete {
            key: "t:{other}:c".into(),
        });
        assert!(bad.slot_tag().unwrap_err().contains("t:{other}:c"));
    }
}
