//! The event bus seam: a durable, partitioned, ordered log with consumer-group offsets.
//!
//! The collector holds a [`Producer`]; the processor a [`Consumer`]. A producer's `send` resolves only
//! once the record is durable (Kafka: acknowledged by all in-sync replicas), which is what lets the
//! collector answer 202. A consumer commits offsets explicitly, after its effects are stored.

pub mod kafka;
pub mod memory;
pub mod spool;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

/// Bus failures. Both are retryable from the caller's point of view.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the event bus did not confirm delivery: {0}")]
    Delivery(String),
    #[error("event bus error: {0}")]
    Other(String),
    /// The broker answered that the request cannot succeed as configured (asking again cannot help).
    #[error("the broker refused: {0}")]
    Refused(String),
}

/// Where a produced record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// A consumed record.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
    /// The id of the HTTP request the record came from, when its producer knew it.
    pub request_id: Option<String>,
}

/// The record header that carries the id of the request an event came in with.
pub const REQUEST_ID_HEADER: &str = "request_id";

/// The next offset to read per partition: what a consumer commits after processing messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offsets(pub BTreeMap<i32, i64>);

impl Offsets {
    /// The offsets just past every message given.
    pub fn after(messages: &[Message]) -> Offsets {
        let mut o = Offsets(BTreeMap::new());
        for msg in messages {
            o.advance(msg.partition, msg.offset + 1);
        }
        o
    }

    /// Moves `partition`'s next offset to `next` unless it is already further.
    pub fn advance(&mut self, partition: i32, next: i64) {
        let at = self.0.entry(partition).or_insert(next);
        *at = (*at).max(next);
    }
}

/// Lag of one partition: records written but not yet committed by the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    pub lag: i64,
    /// Whether this consumer owns the partition (else another member does, or nobody yet).
    pub assigned: bool,
    /// The group's committed offset (the next record it will process): whether anyone in the group
    /// is making progress shows in it.
    pub committed: i64,
}

#[async_trait]
pub trait Producer: Send + Sync {
    /// Writes one record; resolves once it is durable. Records with the same key stay in order.
    async fn send(&self, key: &str, payload: Vec<u8>) -> Result<Delivered, BusError> {
        self.send_traced(key, payload, None).await
    }
    /// [`Producer::send`] with the id of the HTTP request the record came from, carried to the
    /// consumers (a Kafka header, [`REQUEST_ID_HEADER`]) so every stage's logs can follow one event.
    async fn send_traced(
        &self,
        key: &str,
        payload: Vec<u8>,
        request_id: Option<&str>,
    ) -> Result<Delivered, BusError>;
    /// Whether the bus can be reached (readiness).
    async fn check(&self) -> Result<(), BusError>;
    /// Waits for in-flight records on shutdown.
    async fn flush(&self, timeout: Duration) -> Result<(), BusError>;
}

#[async_trait]
pub trait Consumer: Send {
    /// The topic consumed; with the group it names the offsets watermark.
    fn topic(&self) -> &str;
    /// Up to `max` records; waits at most `wait` for the first one, returning empty if none came.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, BusError>;
    /// Records that everything before `offsets` is processed. It may return before the broker has
    /// the commit (Kafka commits asynchronously, so the loop never waits on it): a commit lost in
    /// a crash only redelivers records that were applied, which applying skips; [`flush`] makes
    /// them durable at a graceful stop.
    ///
    /// [`flush`]: Consumer::flush
    async fn commit(&mut self, offsets: &Offsets) -> Result<(), BusError>;
    /// Waits until every commit so far is with the broker (graceful shutdown).
    async fn flush(&mut self) -> Result<(), BusError> {
        Ok(())
    }
    /// Current lag of every partition of the topic, saying which ones this consumer owns: a member
    /// that owns none while the group has a backlog is not consuming.
    async fn lag(&mut self) -> Result<Vec<PartitionLag>, BusError>;
    /// Leaves the group and joins it again, which makes the group coordinator hand the partitions
    /// out anew (for a group stuck with a backlog nobody consumes; see `tailor_processor::health`).
    async fn rejoin(&mut self) -> Result<(), BusError> {
        Ok(())
    }
}

/// The offsets a partition holds: `low..high` (`high` is the offset the next record gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

/// Reads a topic outside any consumer group (for operators' tools such as listing dead letters;
/// never for the processing path, which commits offsets).
#[async_trait]
pub trait TopicReader: Send + Sync {
    /// The records currently in the topic, in offset order per partition, at most `max`.
    async fn read_all(&self, max: usize) -> Result<Vec<Message>, BusError>;
    /// The retained offsets of every partition.
    async fn watermarks(&self) -> Result<Vec<Watermarks>, BusError>;
    /// The records of `partition` with offsets in `from..to`, in order, stopping once `max_bytes`
    /// of payload are read (the record that crosses the limit included, so a page always moves on).
    async fn read_range(
        &self,
        partition: i32,
        from: i64,
        to: i64,
        max_bytes: usize,
    ) -> Result<Vec<Message>, BusError>;
}

/// What a key starts with to pin its record to one partition instead of hashing.
const PINNED: &str = "#partition:";

/// A key that sends its record to `partition` (modulo the topic's partitions), on every backend and
/// through the spool: for topics whose partitions mean something, such as the dead-letter lanes.
pub fn pinned_key(partition: i32) -> String {
    format!("{PINNED}{partition}")
}

/// The partition a key pins, if it is a [`pinned_key`].
pub fn pinned_partition(key: &str) -> Option<i32> {
    key.strip_prefix(PINNED)?.parse().ok().filter(|p| *p >= 0)
}

/// Partition for a key: FNV-1a, stable across runs and platforms (used by the in-process bus;
/// Kafka uses its own partitioner, murmur2-compatible via librdkafka).
pub fn partition_for(key: &str, partitions: usize) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % partitions as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(partition: i32, offset: i64) -> Message {
        Message {
            topic: "t".into(),
            partition,
            offset,
            payload: vec![],
            request_id: None,
        }
    }

    #[test]
    fn offsets_after_take_the_max_per_partition() {
        let o = Offsets::after(&[msg(0, 5), msg(1, 2), msg(0, 7), msg(0, 6)]);
        assert_eq!(o.0.get(&0), Some(&8));
        assert_eq!(o.0.get(&1), Some(&3));
    }

    #[test]
    fn partitioning_is_stable() {
        assert_eq!(partition_for("demo/a1", 6), partition_for("demo/a1", 6));
        assert!(partition_for("x", 3) < 3);
    }
}
