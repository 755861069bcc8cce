//! The write-op language of profile updates.
//!
//! The processor decides *what* an event changes as a list of [`WriteOp`]s, with no I/O; a store
//! backend (Redis, in-process) only *interprets* them. This keeps one code path for business logic
//! whatever the backend, and lets the Redis backend apply one event's ops in a single atomic script.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
///
/// A merged update ([`merge`]) carries the messages of several offsets of one partition: `parts`
/// cuts its ops into consecutive runs, `(offset, ops)` each, offsets strictly ascending and the last
/// equal to `offset`. The store applies exactly the runs above the recorded watermark (a prefix of
/// them is behind it after a redelivery cut differently) and records `offset`. Empty `parts`: every
/// op is from `offset`.
///
/// A summed update ([`sum`]) carries the messages from `since` to `offset` with their increments
/// added up, so it cannot be cut: the store applies it whole when the recorded watermark is below
/// `since`, skips it at or above `offset`, and refuses it in between ([`Applied::Conflict`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub key: String,
    pub field: String,
    pub offset: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<(i64, usize)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

impl Position {
    /// The runs of ops of an update with this position and `ops` ops, as `(offset, ops)`.
    pub fn runs(&self, ops: usize) -> Vec<(i64, usize)> {
        if self.parts.is_empty() {
            vec![(self.offset, ops)]
        } else {
            self.parts.clone()
        }
    }
}

/// Merges positioned updates of the same partition's watermark (the site updates of one batch) into
/// one update each of at most `max_parts` messages, so a batch costs the store a few atomic steps
/// rather than one per event. Each message's ops stay a run of its own under its own offset, so what
/// was applied once is skipped again however a redelivered batch is cut. Bounds that only matter at
/// the end (`Expire`, `ZKeepTop`) run once per key, in the last run: the runs the store skips are a
/// prefix, so the last run is applied whenever any is. Updates with a guard, a marker or no position,
/// and a message whose offset does not follow its partition's last one, are left as they are; the
/// order of updates of one partition is kept.
pub fn merge(updates: Vec<Update>, max_parts: usize) -> Vec<Update> {
    let mut out: Vec<Update> = Vec::with_capacity(updates.len());
    // The open merged update of each (watermark key, partition), by index in `out`.
    let mut open: std::collections::HashMap<(String, String), usize> = Default::default();
    for u in updates {
        let Some(p) = u
            .position
            .as_ref()
            .filter(|_| u.guard.is_none() && u.marker.is_none())
        else {
            out.push(u);
            continue;
        };
        let id = (p.key.clone(), p.field.clone());
        let target = open.get(&id).copied().filter(|&i| {
            let q = out[i]
                .position
                .as_ref()
                .expect("merged updates have a position");
            q.offset < p.offset && q.parts.len().max(1) + p.parts.len().max(1) <= max_parts
        });
        match target {
            Some(i) => {
                let m = &mut out[i];
                let q = m.position.as_mut().expect("merged updates have a position");
                if q.parts.is_empty() {
                    q.parts = vec![(q.offset, m.ops.len())];
                }
                q.parts.extend(p.runs(u.ops.len()));
                q.offset = p.offset;
                m.ops.extend(u.ops);
            }
            None => {
                open.insert(id, out.len());
                out.push(u);
            }
        }
    }
    for i in open.into_values() {
        settle_bounds(&mut out[i]);
    }
    out
}

/// Moves the last `Expire` and `ZKeepTop` of each key to the end of a merged update's last run and
/// drops the earlier ones.
fn settle_bounds(u: &mut Update) {
    let Some(p) = u.position.as_mut().filter(|p| !p.parts.is_empty()) else {
        return;
    };
    let bound = |op: &WriteOp| matches!(op, WriteOp::Expire { .. } | WriteOp::ZKeepTop { .. });
    let mut kept: Vec<WriteOp> = Vec::new();
    let mut ops = Vec::with_capacity(u.ops.len());
    let mut runs = Vec::with_capacity(p.parts.len());
    let mut all = std::mem::take(&mut u.ops).into_iter();
    for (offset, n) in &p.parts {
        let mut own = 0;
        for op in all.by_ref().take(*n) {
            if bound(&op) {
                let same = |k: &WriteOp| {
                    std::mem::discriminant(k) == std::mem::discriminant(&op) && k.key() == op.key()
                };
                kept.retain(|k| !same(k));
                kept.push(op);
            } else {
                ops.push(op);
                own += 1;
            }
        }
        runs.push((*offset, own));
    }
    if let Some(last) = runs.last_mut() {
        last.1 += kept.len();
    }
    ops.extend(kept);
    u.ops = ops;
    p.parts = runs;
}

/// The summed form of a merged update ([`merge`], two runs or more): each increment of one key's
/// member or field (`ZIncr`, `HashIncr`, `HashIncrFloat`) added into the first, so the store runs one
/// command where the runs ran one per message: a batch's views of one popular item, its
/// co-visitation pairs seen in several sessions. A key is summed only when every op on it is
/// increments of one kind (bounds aside, which [`merge`] already runs once at the end), so the
/// result is the runs' result (up to the rounding of the floats' order of addition).
///
/// It cannot be cut like the runs: the store applies it whole, skips it, or refuses it when part
/// of it was applied before ([`Position::since`]); the caller then sends `u` itself. `None` when
/// summing saves no op, or `u` is not a merged update.
pub fn sum(u: &Update) -> Option<Update> {
    let p = u.position.as_ref()?;
    if p.parts.len() < 2 || u.guard.is_some() || u.marker.is_some() {
        return None;
    }
    #[derive(PartialEq, Clone, Copy)]
    enum Kind {
        ZIncr,
        HashIncr,
        HashIncrFloat,
        Other,
    }
    let kind = |op: &WriteOp| match op {
        WriteOp::ZIncr { .. } => Some(Kind::ZIncr),
        WriteOp::HashIncr { .. } => Some(Kind::HashIncr),
        WriteOp::HashIncrFloat { .. } => Some(Kind::HashIncrFloat),
        WriteOp::Expire { .. } | WriteOp::ZKeepTop { .. } => None,
        _ => Some(Kind::Other),
    };
    // Each key's one kind of op, or `Other` once two kinds (or a non-increment) touch it.
    let mut keys: HashMap<&str, Kind> = HashMap::new();
    for op in &u.ops {
        if let Some(k) = kind(op) {
            keys.entry(op.key())
                .and_modify(|had| {
                    if *had != k {
                        *had = Kind::Other
                    }
                })
                .or_insert(k);
        }
    }
    let mut ops: Vec<WriteOp> = Vec::with_capacity(u.ops.len());
    // The op a key's member or field was first incremented in, by its place in `ops`.
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for op in &u.ops {
        let (key, member) = match op {
            WriteOp::ZIncr { key, member, .. } => (key, member),
            WriteOp::HashIncr { key, field, .. } | WriteOp::HashIncrFloat { key, field, .. } => {
                (key, field)
            }
            _ => {
                ops.push(op.clone());
                continue;
            }
        };
        if keys[key.as_str()] == Kind::Other {
            ops.push(op.clone());
            continue;
        }
        match first.get(&(key.as_str(), member.as_str())) {
            None => {
                first.insert((key.as_str(), member.as_str()), ops.len());
                ops.push(op.clone());
            }
            Some(&i) => match (&mut ops[i], op) {
                (WriteOp::ZIncr { by, .. }, WriteOp::ZIncr { by: more, .. })
                | (WriteOp::HashIncrFloat { by, .. }, WriteOp::HashIncrFloat { by: more, .. }) => {
                    *by += more
                }
                (WriteOp::HashIncr { by, .. }, WriteOp::HashIncr { by: more, .. }) => {
                    *by = by.saturating_add(*more)
                }
                _ => unreachable!("a summed key has one kind of op"),
            },
        }
    }
    if ops.len() == u.ops.len() {
        return None;
    }
    Some(Update {
        position: Some(Position {
            parts: Vec::new(),
            since: p.parts.first().map(|(offset, _)| *offset),
            ..p.clone()
        }),
        ops,
        ..Default::default()
    })
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
    /// The guarded document changed since it was read: re-read and plan again. For a summed
    /// update ([`sum`]): some of its messages were applied before (the watermark is between its
    /// `since` and its `offset`), so nothing was applied: send its runs instead.
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

    fn at(field: &str, offset: i64, ops: Vec<WriteOp>) -> Update {
        Update {
            position: Some(Position {
                key: "wm".into(),
                field: field.into(),
                offset,
                parts: Vec::new(),
                since: None,
            }),
            ops,
            ..Default::default()
        }
    }

    fn incr(key: &str) -> WriteOp {
        WriteOp::HashIncr {
            key: key.into(),
            field: "n".into(),
            by: 1,
        }
    }

    fn expire(key: &str, seconds: u64) -> WriteOp {
        WriteOp::Expire {
            key: key.into(),
            seconds,
        }
    }

    #[test]
    fn merge_keeps_each_message_a_run_of_its_own_per_partition() {
        let marked = Update {
            marker: Some(Marker {
                key: "m".into(),
                ttl_secs: 1,
            }),
            ops: vec![incr("x")],
            ..Default::default()
        };
        let merged = merge(
            vec![
                at("t/0", 5, vec![incr("a"), incr("b")]),
                at("t/1", 3, vec![incr("c")]),
                marked.clone(),
                at("t/0", 6, vec![]),
                at("t/0", 8, vec![incr("d")]),
                at("t/1", 4, vec![incr("e")]),
            ],
            10,
        );
        assert_eq!(merged.len(), 3, "{merged:#?}");
        let p0 = merged[0].position.as_ref().unwrap();
        assert_eq!((p0.field.as_str(), p0.offset), ("t/0", 8));
        assert_eq!(p0.parts, vec![(5, 2), (6, 0), (8, 1)]);
        assert_eq!(merged[0].ops, vec![incr("a"), incr("b"), incr("d")]);
        let p1 = merged[1].position.as_ref().unwrap();
        assert_eq!((p1.offset, p1.parts.clone()), (4, vec![(3, 1), (4, 1)]));
        assert_eq!(merged[2], marked, "an update with a marker is left alone");
    }

    #[test]
    fn merge_cuts_at_max_parts_and_at_an_offset_out_of_order() {
        let ups: Vec<Update> = (1..=5).map(|o| at("t/0", o, vec![incr("a")])).collect();
        let merged = merge(ups, 2);
        let runs: Vec<Vec<(i64, usize)>> = merged
            .iter()
            .map(|u| u.position.as_ref().unwrap().runs(u.ops.len()))
            .collect();
        assert_eq!(
            runs,
            vec![vec![(1, 1), (2, 1)], vec![(3, 1), (4, 1)], vec![(5, 1)]]
        );
        let back = merge(
            vec![at("t/0", 7, vec![incr("a")]), at("t/0", 7, vec![incr("b")])],
            10,
        );
        assert_eq!(back.len(), 2, "the same offset twice is not merged");
    }

    #[test]
    fn merge_runs_each_bound_once_at_the_end() {
        let merged = merge(
            vec![
                at("t/0", 1, vec![incr("a"), expire("a", 60)]),
                at("t/0", 2, vec![expire("a", 90), incr("b"), expire("b", 60)]),
                at("t/0", 3, vec![incr("a")]),
            ],
            10,
        );
        let u = &merged[0];
        assert_eq!(
            u.ops,
            vec![
                incr("a"),
                incr("b"),
                incr("a"),
                expire("a", 90),
                expire("b", 60)
            ]
        );
        assert_eq!(
            u.position.as_ref().unwrap().parts,
            vec![(1, 1), (2, 1), (3, 3)]
        );
    }

    fn zincr(key: &str, member: &str, by: f64) -> WriteOp {
        WriteOp::ZIncr {
            key: key.into(),
            member: member.into(),
            by,
        }
    }

    #[test]
    fn sum_adds_each_keys_increments_into_one_op_and_leaves_the_rest() {
        let set = |key: &str| WriteOp::HashSet {
            key: key.into(),
            field: "n".into(),
            value: "1".into(),
        };
        let merged = merge(
            vec![
                at(
                    "t/0",
                    4,
                    vec![
                        zincr("z", "a", 1.0),
                        incr("h"),
                        zincr("z", "b", 0.5),
                        expire("z", 60),
                    ],
                ),
                at(
                    "t/0",
                    5,
                    vec![zincr("z", "a", 2.0), incr("h"), set("mixed"), incr("mixed")],
                ),
                at(
                    "t/0",
                    7,
                    vec![zincr("z", "b", 0.25), incr("h"), incr("mixed")],
                ),
            ],
            10,
        );
        let summed = sum(&merged[0]).expect("fewer ops");
        assert_eq!(
            summed.ops,
            vec![
                zincr("z", "a", 3.0),
                WriteOp::HashIncr {
                    key: "h".into(),
                    field: "n".into(),
                    by: 3
                },
                zincr("z", "b", 0.75),
                set("mixed"),
                incr("mixed"),
                incr("mixed"),
                expire("z", 60),
            ],
            "a key with a set among its increments is left as it was"
        );
        let p = summed.position.unwrap();
        assert_eq!((p.since, p.offset, p.parts), (Some(4), 7, vec![]));
    }

    #[test]
    fn sum_leaves_single_messages_and_updates_without_repeats() {
        let one = at("t/0", 3, vec![incr("h"), incr("h")]);
        assert_eq!(sum(&one), None, "one message is not a merged update");
        let distinct = merge(
            vec![at("t/0", 1, vec![incr("a")]), at("t/0", 2, vec![incr("b")])],
            10,
        );
        assert_eq!(sum(&distinct[0]), None, "nothing to add up");
    }
}
