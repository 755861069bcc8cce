//! The in-process bus of embedded mode: a partitioned log in memory, with the same contract as Kafka
//! (ordered per key, offsets per partition, explicit commits) so the processor cannot tell the difference.
//!
//! It is bounded: a partition holds at most `capacity` uncommitted records and `send` waits (up to its
//! timeout) for the consumer to catch up, so a stalled processor pushes back on the collector instead of
//! growing memory. Committed records are dropped. It is not durable across a restart; that is what Kafka
//! is for.

use super::{
    partition_for, pinned_partition, BusError, Consumer, Delivered, Message, Offsets, PartitionLag,
    Producer, TopicReader, Watermarks,
};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
struct Log {
    /// Offset of `records[0]`.
    base: i64,
    records: VecDeque<Vec<u8>>,
    /// The request id of each record in `records`.
    request_ids: VecDeque<Option<String>>,
    /// Payload bytes in `records`.
    bytes: usize,
    /// The single consumer group's committed offset.
    committed: i64,
}

impl Log {
    fn end(&self) -> i64 {
        self.base + self.records.len() as i64
    }

    fn drop_oldest(&mut self) {
        if let Some(r) = self.records.pop_front() {
            self.request_ids.pop_front();
            self.bytes -= r.len();
            self.base += 1;
            self.committed = self.committed.max(self.base);
        }
    }
}

struct Inner {
    topic: String,
    logs: Vec<Mutex<Log>>,
    capacity: usize,
    /// Wakes consumers when records arrive.
    arrived: Notify,
    /// Wakes producers when commits free space.
    freed: Notify,
}

/// An in-process topic. Clone handles freely; all share one log.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
    send_timeout: Duration,
    /// Drop the oldest record instead of waiting when a partition is full (a topic with retention
    /// rather than a consumer to wait for, such as change events).
    retain_latest: bool,
    /// With `retain_latest`: also drop the oldest records while a partition holds more payload bytes
    /// than this (retention by size, as Kafka's `retention.bytes`).
    max_bytes: Option<usize>,
}

impl MemoryBus {
    pub fn new(topic: &str, partitions: usize, capacity: usize, send_timeout: Duration) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                topic: topic.to_string(),
                logs: (0..partitions.max(1)).map(|_| Mutex::default()).collect(),
                capacity: capacity.max(1),
                arrived: Notify::new(),
                freed: Notify::new(),
            }),
            send_timeout,
            retain_latest: false,
            max_bytes: None,
        }
    }

    /// A topic that keeps the latest `capacity` records per partition, dropping the oldest: sends
    /// never wait.
    pub fn retaining(topic: &str, partitions: usize, capacity: usize) -> Self {
        MemoryBus {
            retain_latest: true,
            ..MemoryBus::new(topic, partitions, capacity, Duration::ZERO)
        }
    }

    /// A topic that keeps, per partition, the latest records within `max_bytes` of payload,
    /// dropping the oldest (the newest record is always kept): sends never wait.
    pub fn retaining_bytes(topic: &str, partitions: usize, max_bytes: usize) -> Self {
        MemoryBus {
            max_bytes: Some(max_bytes),
            ..MemoryBus::retaining(topic, partitions, usize::MAX)
        }
    }

    /// The consumer of the (single) processor group. It starts from the committed offsets.
    pub fn consumer(&self) -> MemoryConsumer {
        let positions = self
            .inner
            .logs
            .iter()
            .map(|l| l.lock().expect("bus lock").committed)
            .collect();
        MemoryConsumer {
            bus: self.inner.clone(),
            positions,
            releases: true,
        }
    }

    /// A consumer of a retaining topic (such as the change events) that reads from the oldest
    /// retained record and whose commits release nothing: readers of the topic still see every
    /// retained record.
    pub fn follower(&self) -> MemoryConsumer {
        MemoryConsumer {
            bus: self.inner.clone(),
            positions: vec![0; self.inner.logs.len()],
            releases: false,
        }
    }

    fn try_append(
        &self,
        partition: usize,
        payload: &[u8],
        request_id: Option<&str>,
    ) -> Option<i64> {
        let mut log = self.inner.logs[partition].lock().expect("bus lock");
        if (log.end() - log.committed) as usize >= self.inner.capacity {
            if !self.retain_latest {
                return None;
            }
            log.drop_oldest();
        }
        log.records.push_back(payload.to_vec());
        log.request_ids.push_back(request_id.map(str::to_string));
        log.bytes += payload.len();
        if let Some(max) = self.max_bytes {
            while log.bytes > max && log.records.len() > 1 {
                log.drop_oldest();
            }
        }
        Some(log.end() - 1)
    }
}

#[async_trait]
impl Producer for MemoryBus {
    async fn send_traced(
        &self,
        key: &str,
        payload: Vec<u8>,
        request_id: Option<&str>,
    ) -> Result<Delivered, BusError> {
        let n = self.inner.logs.len();
        let partition =
            pinned_partition(key).map_or_else(|| partition_for(key, n), |p| p as usize % n);
        let deadline = tokio::time::Instant::now() + self.send_timeout;
        loop {
            // Register interest before checking, so a commit between check and wait is not missed.
            let freed = self.inner.freed.notified();
            if let Some(offset) = self.try_append(partition, &payload, request_id) {
                self.inner.arrived.notify_waiters();
                return Ok(Delivered {
                    partition: partition as i32,
                    offset,
                });
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(BusError::Delivery(format!(
                    "in-process bus partition {partition} is full ({} uncommitted records); is the processor running?",
                    self.inner.capacity
                )));
            }
        }
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn flush(&self, _timeout: Duration) -> Result<(), BusError> {
        Ok(())
    }
}

#[async_trait]
impl TopicReader for MemoryBus {
    async fn read_all(&self, max: usize) -> Result<Vec<Message>, BusError> {
        let mut out = Vec::new();
        for (p, log) in self.inner.logs.iter().enumerate() {
            let log = log.lock().expect("bus lock");
            for (i, payload) in log.records.iter().enumerate() {
                if out.len() >= max {
                    return Ok(out);
                }
                out.push(Message {
                    topic: self.inner.topic.clone(),
                    partition: p as i32,
                    offset: log.base + i as i64,
                    payload: payload.clone(),
                    request_id: log.request_ids[i].clone(),
                });
            }
        }
        Ok(out)
    }

    async fn watermarks(&self) -> Result<Vec<Watermarks>, BusError> {
        Ok(self
            .inner
            .logs
            .iter()
            .enumerate()
            .map(|(p, log)| {
                let log = log.lock().expect("bus lock");
                Watermarks {
                    partition: p as i32,
                    low: log.base,
                    high: log.end(),
                }
            })
            .collect())
    }

    async fn read_range(
        &self,
        partition: i32,
        from: i64,
        to: i64,
        max_bytes: usize,
    ) -> Result<Vec<Message>, BusError> {
        let Some(log) = self.inner.logs.get(partition as usize) else {
            return Err(BusError::Other(format!("no partition {partition}")));
        };
        let log = log.lock().expect("bus lock");
        let mut out = Vec::new();
        let mut bytes = 0;
        for offset in from.max(log.base)..to.min(log.end()) {
            if bytes >= max_bytes {
                break;
            }
            let at = (offset - log.base) as usize;
            let payload = log.records[at].clone();
            bytes += payload.len();
            out.push(Message {
                topic: self.inner.topic.clone(),
                partition,
                offset,
                payload,
                request_id: log.request_ids[at].clone(),
            });
        }
        Ok(out)
    }
}

/// Reads the in-process bus; see [`MemoryBus::consumer`].
pub struct MemoryConsumer {
    bus: Arc<Inner>,
    /// Next offset to read, per partition.
    positions: Vec<i64>,
    /// Whether commits release records (the one group of the topic) or only move this consumer
    /// (a second reader of a retaining topic, whose records others still read).
    releases: bool,
}

impl MemoryConsumer {
    fn take(&mut self, max: usize) -> Vec<Message> {
        let mut out = Vec::new();
        for (p, log) in self.bus.logs.iter().enumerate() {
            let log = log.lock().expect("bus lock");
            // A rewind below the retained base (records already committed and dropped) resumes at base.
            let mut pos = self.positions[p].max(log.base);
            while pos < log.end() && out.len() < max {
                let at = (pos - log.base) as usize;
                out.push(Message {
                    topic: self.bus.topic.clone(),
                    partition: p as i32,
                    offset: pos,
                    payload: log.records[at].clone(),
                    request_id: log.request_ids[at].clone(),
                });
                pos += 1;
            }
            self.positions[p] = pos;
            if out.len() >= max {
                break;
            }
        }
        out
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    fn topic(&self) -> &str {
        &self.bus.topic
    }

    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, BusError> {
        let bus = self.bus.clone();
        let arrived = bus.arrived.notified();
        let got = self.take(max);
        if !got.is_empty() {
            return Ok(got);
        }
        let _ = tokio::time::timeout(wait, arrived).await;
        Ok(self.take(max))
    }

    async fn commit(&mut self, offsets: &Offsets) -> Result<(), BusError> {
        if !self.releases {
            return Ok(());
        }
        for (&p, &next) in &offsets.0 {
            let Some(log) = self.bus.logs.get(p as usize) else {
                return Err(BusError::Other(format!("no partition {p}")));
            };
            let mut log = log.lock().expect("bus lock");
            log.committed = log.committed.max(next);
            while log.base < log.committed && !log.records.is_empty() {
                log.drop_oldest();
            }
        }
        self.bus.freed.notify_waiters();
        Ok(())
    }

    async fn lag(&mut self) -> Result<Vec<PartitionLag>, BusError> {
        Ok(self
            .bus
            .logs
            .iter()
            .enumerate()
            .map(|(p, l)| {
                let l = l.lock().expect("bus lock");
                PartitionLag {
                    partition: p as i32,
                    lag: l.end() - l.committed,
                    assigned: true,
                    committed: l.committed,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_keep_the_request_id_they_were_sent_with() {
        let bus = MemoryBus::new("t", 1, 10, Duration::from_millis(100));
        bus.send_traced("k", vec![1], Some("req-1")).await.unwrap();
        bus.send("k", vec![2]).await.unwrap();
        let got = bus
            .consumer()
            .poll(10, Duration::from_millis(10))
            .await
            .unwrap();
        let ids: Vec<Option<&str>> = got.iter().map(|m| m.request_id.as_deref()).collect();
        assert_eq!(ids, [Some("req-1"), None]);
        let read = bus.read_all(10).await.unwrap();
        assert_eq!(read[0].request_id.as_deref(), Some("req-1"));
    }

    #[tokio::test]
    async fn keeps_order_per_key_and_resumes_from_commit() {
        let bus = MemoryBus::new("t", 3, 100, Duration::from_millis(100));
        for i in 0..10 {
            bus.send("k", vec![i]).await.unwrap();
        }
        let mut c = bus.consumer();
        let got = c.poll(4, Duration::from_millis(10)).await.unwrap();
        assert_eq!(
            got.iter().map(|m| m.payload[0]).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        c.commit(&Offsets::after(&got[..2])).await.unwrap();
        // A new consumer (a restarted processor) resumes after the commit, redelivering 2 and 3.
        let mut c2 = bus.consumer();
        let got = c2.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(got.first().unwrap().payload[0], 2);
        assert_eq!(got.len(), 8);
        assert_eq!(
            c2.lag().await.unwrap().iter().map(|l| l.lag).sum::<i64>(),
            8
        );
    }

    #[tokio::test]
    async fn a_full_partition_pushes_back_until_committed() {
        let bus = MemoryBus::new("t", 1, 2, Duration::from_millis(50));
        bus.send("k", vec![1]).await.unwrap();
        bus.send("k", vec![2]).await.unwrap();
        assert!(matches!(
            bus.send("k", vec![3]).await,
            Err(BusError::Delivery(_))
        ));
        let mut c = bus.consumer();
        let got = c.poll(10, Duration::from_millis(10)).await.unwrap();
        let sender = {
            let bus = bus.clone();
            tokio::spawn(async move { bus.send("k", vec![3]).await })
        };
        c.commit(&Offsets::after(&got)).await.unwrap();
        assert_eq!(sender.await.unwrap().unwrap().offset, 2);
    }

    #[tokio::test]
    async fn poll_wakes_on_arrival() {
        let bus = MemoryBus::new("t", 2, 10, Duration::from_millis(50));
        let mut c = bus.consumer();
        let b = bus.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            b.send("k", vec![9]).await.unwrap();
        });
        let got = c.poll(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn retention_by_bytes_keeps_the_newest_within_the_budget_per_partition() {
        let bus = MemoryBus::retaining_bytes("t", 2, 100);
        let small = crate::bus::pinned_key(0);
        let large = crate::bus::pinned_key(1);
        for i in 0..5u8 {
            bus.send(&small, vec![i; 10]).await.unwrap();
        }
        // A flood of big records in the other partition.
        for i in 0..50u8 {
            bus.send(&large, vec![i; 60]).await.unwrap();
        }
        let w = bus.watermarks().await.unwrap();
        assert_eq!(
            (w[0].low, w[0].high),
            (0, 5),
            "the small partition is untouched"
        );
        assert_eq!(
            (w[1].low, w[1].high),
            (49, 50),
            "only the newest big record fits"
        );
        // A page stops at its byte budget and a range beyond the retained part is empty.
        let page = bus.read_range(0, 0, 5, 25).await.unwrap();
        assert_eq!(page.iter().map(|m| m.offset).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(bus.read_range(1, 0, 49, 1000).await.unwrap().is_empty());
        // Pinning is modulo the partitions.
        assert_eq!(
            bus.send(&crate::bus::pinned_key(3), vec![1])
                .await
                .unwrap()
                .partition,
            1
        );
    }
}
