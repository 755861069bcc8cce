//! The production bus: Kafka through rdkafka (librdkafka, bundled).
//!
//! The producer runs with `acks=all` and `enable.idempotence=true`: a record acknowledged to the
//! collector is on every in-sync replica and was written once, even if librdkafka retried internally.
//! The consumer belongs to a group, never auto-commits, and commits only the offsets the processor
//! hands back after its store writes succeeded.

use super::{
    pinned_partition, BusError, Consumer, Delivered, Message, Offsets, PartitionLag, Producer,
    TopicReader, Watermarks,
};
use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Connection settings shared by the producer, consumer and admin client.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    pub brokers: String,
    pub topic: String,
    pub delivery_timeout: Duration,
    /// How long the broker may hold a consumer's fetch waiting for records (`fetch.wait.max.ms`):
    /// the longest a record can wait to be fetched when the broker does not answer a fetch as soon
    /// as data arrives (the test broker holds every fetch for the full wait).
    pub fetch_wait: Duration,
}

/// The default `fetch_wait` (`kafka.fetch_wait_ms`).
pub const FETCH_WAIT: Duration = Duration::from_millis(10);

impl KafkaSettings {
    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "tailor")
            // Tansu and small clusters may not expose every broker API; never fail on a version probe.
            .set("api.version.request", "true");
        c
    }
}

/// The request id a record carries in its headers.
fn request_id(m: &impl rdkafka::message::Message) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == super::REQUEST_ID_HEADER)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn other(e: impl std::fmt::Display) -> BusError {
    BusError::Other(e.to_string())
}

/// Creates the topic if it does not exist, with the given topic configs (`retention.bytes`, ...);
/// an existing topic is left as it is.
pub async fn ensure_topic(
    s: &KafkaSettings,
    partitions: i32,
    replication: i32,
    configs: &[(&str, String)],
) -> Result<(), BusError> {
    let admin: AdminClient<DefaultClientContext> = s.client().create().map_err(other)?;
    let mut topic = NewTopic::new(&s.topic, partitions, TopicReplication::Fixed(replication));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics([&topic], &opts).await.map_err(other)?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                use RDKafkaErrorCode as C;
                let msg = format!("cannot create topic {t}: {code}");
                // What the configuration got wrong; anything else (a timeout, a coordinator moving)
                // may pass when asked again.
                return Err(match code {
                    C::InvalidReplicationFactor
                    | C::InvalidPartitions
                    | C::InvalidConfig
                    | C::InvalidTopic
                    | C::PolicyViolation
                    | C::TopicAuthorizationFailed
                    | C::ClusterAuthorizationFailed => BusError::Refused(msg),
                    _ => other(msg),
                });
            }
        }
    }
    Ok(())
}

/// Writes events to Kafka; see the module docs for the delivery guarantees.
pub struct KafkaProducer {
    producer: FutureProducer,
    settings: KafkaSettings,
    /// The topic's partition count, read once when a pinned key first needs it.
    partitions: tokio::sync::OnceCell<i32>,
}

impl KafkaProducer {
    async fn partitions(&self) -> Result<i32, BusError> {
        self.partitions
            .get_or_try_init(|| async {
                let p = self.producer.clone();
                let topic = self.settings.topic.clone();
                tokio::task::spawn_blocking(move || {
                    let meta = p
                        .client()
                        .fetch_metadata(Some(&topic), Duration::from_secs(5))
                        .map_err(other)?;
                    meta.topics()
                        .iter()
                        .find(|t| t.name() == topic)
                        .map(|t| t.partitions().len() as i32)
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            BusError::Delivery(format!("topic {topic} has no partitions yet"))
                        })
                })
                .await
                .map_err(other)?
            })
            .await
            .copied()
    }
}

impl KafkaProducer {
    pub fn new(s: &KafkaSettings) -> Result<Self, BusError> {
        let producer: FutureProducer = s
            .client()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "2")
            .set("compression.type", "lz4")
            .set(
                "message.timeout.ms",
                s.delivery_timeout.as_millis().to_string(),
            )
            .create()
            .map_err(other)?;
        Ok(KafkaProducer {
            producer,
            settings: s.clone(),
            partitions: tokio::sync::OnceCell::new(),
        })
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn send_traced(
        &self,
        key: &str,
        payload: Vec<u8>,
        request_id: Option<&str>,
    ) -> Result<Delivered, BusError> {
        let mut record = FutureRecord::to(&self.settings.topic)
            .key(key)
            .payload(&payload);
        if let Some(id) = request_id {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: super::REQUEST_ID_HEADER,
                value: Some(id),
            }));
        }
        if let Some(p) = pinned_partition(key) {
            record = record.partition(p % self.partitions().await?);
        }
        match self
            .producer
            .send(record, self.settings.delivery_timeout)
            .await
        {
            Ok(d) => Ok(Delivered {
                partition: d.partition,
                offset: d.offset,
            }),
            Err((e, _)) => Err(BusError::Delivery(e.to_string())),
        }
    }

    async fn check(&self) -> Result<(), BusError> {
        let p = self.producer.clone();
        let topic = self.settings.topic.clone();
        tokio::task::spawn_blocking(move || {
            p.client()
                .fetch_metadata(Some(&topic), Duration::from_secs(3))
                .map(|_| ())
                .map_err(other)
        })
        .await
        .map_err(other)?
    }

    async fn flush(&self, timeout: Duration) -> Result<(), BusError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || p.flush(timeout).map_err(other))
            .await
            .map_err(other)?
    }
}

/// A member of the processor's consumer group.
pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer>,
    topic: String,
    /// Next offset committed per partition, for lag.
    committed: BTreeMap<i32, i64>,
}

impl KafkaConsumer {
    pub fn new(s: &KafkaSettings, group: &str) -> Result<Self, BusError> {
        let consumer: StreamConsumer = s
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", s.fetch_wait.as_millis().to_string())
            .create()
            .map_err(other)?;
        consumer.subscribe(&[&s.topic]).map_err(other)?;
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            topic: s.topic.clone(),
            committed: BTreeMap::new(),
        })
    }

    /// The (low, high) watermarks of every partition of the topic, whoever owns them: what a job that
    /// reads the whole topic (replay) has to reach.
    pub async fn watermarks(&self) -> Result<BTreeMap<i32, (i64, i64)>, BusError> {
        let c = self.consumer.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let md = c
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .map_err(other)?;
            let mut out = BTreeMap::new();
            for t in md.topics().iter().filter(|t| t.name() == topic) {
                for p in t.partitions() {
                    let w = c
                        .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
                        .map_err(other)?;
                    out.insert(p.id(), w);
                }
            }
            Ok(out)
        })
        .await
        .map_err(other)?
    }
}

/// The next offset to read of each partition of `topic`, as rdkafka commits them.
fn positions(topic: &str, next: &BTreeMap<i32, i64>) -> Result<TopicPartitionList, BusError> {
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in next {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .map_err(other)?;
    }
    Ok(tpl)
}

#[async_trait]
impl Consumer for KafkaConsumer {
    fn topic(&self) -> &str {
        &self.topic
    }

    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>, BusError> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while out.len() < max {
            // After the first record, only drain what is already buffered (short wait) so a lone event
            // is not held back for the whole batch window.
            let until = if out.is_empty() {
                deadline
            } else {
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(5))
            };
            match tokio::time::timeout_at(until, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(other(e)),
                Ok(Ok(m)) => out.push(Message {
                    topic: m.topic().to_string(),
                    partition: m.partition(),
                    offset: m.offset(),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    request_id: request_id(&m),
                }),
            }
        }
        Ok(out)
    }

    async fn commit(&mut self, offsets: &Offsets) -> Result<(), BusError> {
        let tpl = positions(&self.topic, &offsets.0)?;
        // Asynchronous: the broker's answer is not waited for (see the trait); an error here is
        // one rdkafka could not even queue.
        self.consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(other)?;
        self.committed
            .extend(offsets.0.iter().map(|(&p, &o)| (p, o)));
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BusError> {
        let tpl = positions(&self.topic, &self.committed)?;
        if tpl.count() == 0 {
            return Ok(());
        }
        let c = self.consumer.clone();
        tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(other)?
            .map_err(other)
    }

    async fn rejoin(&mut self) -> Result<(), BusError> {
        self.consumer.unsubscribe();
        self.consumer.subscribe(&[&self.topic]).map_err(other)
    }

    async fn lag(&mut self) -> Result<Vec<PartitionLag>, BusError> {
        let c = self.consumer.clone();
        let topic = self.topic.clone();
        let committed = self.committed.clone();
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(2);
            let owned = c.assignment().map_err(other)?;
            let owned: Vec<i32> = owned
                .elements_for_topic(&topic)
                .iter()
                .map(|el| el.partition())
                .collect();
            let md = c.fetch_metadata(Some(&topic), timeout).map_err(other)?;
            let mut all = TopicPartitionList::new();
            for t in md.topics().iter().filter(|t| t.name() == topic) {
                for p in t.partitions() {
                    all.add_partition(&topic, p.id());
                }
            }
            // The group's committed offsets, whoever owns the partitions.
            let group = c.committed_offsets(all.clone(), timeout).map_err(other)?;
            let mut out = Vec::new();
            for el in all.elements_for_topic(&topic) {
                let p = el.partition();
                let (low, high) = c.fetch_watermarks(&topic, p, timeout).map_err(other)?;
                let remote = group
                    .find_partition(&topic, p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    });
                let done = committed
                    .get(&p)
                    .copied()
                    .max(remote)
                    .unwrap_or(low)
                    .max(low);
                out.push(PartitionLag {
                    partition: p,
                    lag: (high - done).max(0),
                    assigned: owned.contains(&p),
                    committed: done,
                });
            }
            Ok(out)
        })
        .await
        .map_err(other)?
    }
}

/// Reads a topic from the beginning with a throw-away consumer that never commits.
pub struct KafkaTopicReader {
    settings: KafkaSettings,
}

impl KafkaTopicReader {
    pub fn new(s: &KafkaSettings) -> Self {
        KafkaTopicReader {
            settings: s.clone(),
        }
    }
}

#[async_trait]
impl TopicReader for KafkaTopicReader {
    async fn read_all(&self, max: usize) -> Result<Vec<Message>, BusError> {
        let s = self.settings.clone();
        tokio::task::spawn_blocking(move || read_topic(&s, max))
            .await
            .map_err(other)?
    }

    async fn watermarks(&self) -> Result<Vec<Watermarks>, BusError> {
        let s = self.settings.clone();
        tokio::task::spawn_blocking(move || partition_watermarks(&reader(&s)?, &s))
            .await
            .map_err(other)?
    }

    async fn read_range(
        &self,
        partition: i32,
        from: i64,
        to: i64,
        max_bytes: usize,
    ) -> Result<Vec<Message>, BusError> {
        let s = self.settings.clone();
        tokio::task::spawn_blocking(move || read_partition(&s, partition, from, to, max_bytes))
            .await
            .map_err(other)?
    }
}

/// A consumer outside any group, for reading a topic without committing.
fn reader(s: &KafkaSettings) -> Result<rdkafka::consumer::BaseConsumer, BusError> {
    s.client()
        .set("group.id", format!("tailor-reader-{}", uuid_like()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .map_err(other)
}

fn read_partition(
    s: &KafkaSettings,
    partition: i32,
    from: i64,
    to: i64,
    max_bytes: usize,
) -> Result<Vec<Message>, BusError> {
    let consumer = reader(s)?;
    let timeout = Duration::from_secs(5);
    let (low, high) = consumer
        .fetch_watermarks(&s.topic, partition, timeout)
        .map_err(other)?;
    let (from, to) = (from.max(low), to.min(high));
    if from >= to {
        return Ok(vec![]);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&s.topic, partition, Offset::Offset(from))
        .map_err(other)?;
    consumer.assign(&tpl).map_err(other)?;
    let mut out = Vec::new();
    let mut bytes = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while bytes < max_bytes {
        if std::time::Instant::now() > deadline {
            return Err(other(format!("reading {} timed out", s.topic)));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(e)) => return Err(other(e)),
            Some(Ok(m)) => {
                if m.offset() >= to {
                    break;
                }
                let payload = m.payload().unwrap_or_default().to_vec();
                bytes += payload.len();
                out.push(Message {
                    topic: m.topic().to_string(),
                    partition,
                    offset: m.offset(),
                    payload,
                    request_id: request_id(&m),
                });
                if m.offset() + 1 >= to {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The retained offsets of every partition of the topic (none while it does not exist).
fn partition_watermarks(
    consumer: &rdkafka::consumer::BaseConsumer,
    s: &KafkaSettings,
) -> Result<Vec<Watermarks>, BusError> {
    let timeout = Duration::from_secs(5);
    let meta = consumer
        .fetch_metadata(Some(&s.topic), timeout)
        .map_err(other)?;
    let Some(topic) = meta.topics().iter().find(|t| t.name() == s.topic) else {
        return Ok(vec![]);
    };
    topic
        .partitions()
        .iter()
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(&s.topic, p.id(), timeout)
                .map_err(other)?;
            Ok(Watermarks {
                partition: p.id(),
                low,
                high,
            })
        })
        .collect()
}

fn read_topic(s: &KafkaSettings, max: usize) -> Result<Vec<Message>, BusError> {
    let consumer = reader(s)?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = BTreeMap::new();
    for w in partition_watermarks(&consumer, s)? {
        if w.high > w.low {
            tpl.add_partition_offset(&s.topic, w.partition, Offset::Offset(w.low))
                .map_err(other)?;
            remaining.insert(w.partition, w.high);
        }
    }
    if remaining.is_empty() {
        return Ok(vec![]);
    }
    consumer.assign(&tpl).map_err(other)?;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !remaining.is_empty() && out.len() < max {
        if std::time::Instant::now() > deadline {
            return Err(other(format!(
                "reading {} timed out with {} partition(s) unfinished",
                s.topic,
                remaining.len()
            )));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(e)) => return Err(other(e)),
            Some(Ok(m)) => {
                let p = m.partition();
                if let Some(&high) = remaining.get(&p) {
                    if m.offset() < high {
                        out.push(Message {
                            topic: m.topic().to_string(),
                            partition: p,
                            offset: m.offset(),
                            payload: m.payload().unwrap_or_default().to_vec(),
                            request_id: request_id(&m),
                        });
                    }
                    if m.offset() + 1 >= high {
                        remaining.remove(&p);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A unique suffix for throw-away group ids.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn settings() -> KafkaSettings {
        KafkaSettings {
            brokers: testkit::kafka_brokers(),
            topic: testkit::unique("bus"),
            delivery_timeout: Duration::from_secs(10),
            fetch_wait: FETCH_WAIT,
        }
    }

    async fn drain(c: &mut KafkaConsumer, want: usize) -> Vec<Message> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while got.len() < want && tokio::time::Instant::now() < deadline {
            got.extend(c.poll(100, Duration::from_millis(500)).await.unwrap());
        }
        got
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn produces_durably_and_a_new_group_member_resumes_after_the_commit() {
        let s = settings();
        ensure_topic(&s, 3, 1, &[]).await.unwrap();
        ensure_topic(&s, 3, 1, &[]).await.unwrap(); // idempotent
        let p = KafkaProducer::new(&s).unwrap();
        p.check().await.unwrap();
        let mut last = None;
        for i in 0..20u8 {
            let d = p.send("same-key", vec![i]).await.unwrap();
            if let Some(prev) = last {
                assert!(d.offset > prev, "one key stays in one partition, in order");
            }
            last = Some(d.offset);
        }
        let group = testkit::unique("group");
        let mut c = KafkaConsumer::new(&s, &group).unwrap();
        let got = drain(&mut c, 20).await;
        assert_eq!(
            got.iter().map(|m| m.payload[0]).collect::<Vec<_>>(),
            (0..20).collect::<Vec<u8>>()
        );
        c.commit(&Offsets::after(&got[..15])).await.unwrap();
        drop(c);

        let mut c2 = KafkaConsumer::new(&s, &group).unwrap();
        let rest = drain(&mut c2, 5).await;
        assert_eq!(
            rest.iter().map(|m| m.payload[0]).collect::<Vec<_>>(),
            vec![15, 16, 17, 18, 19]
        );
        c2.commit(&Offsets::after(&rest)).await.unwrap();
        let lag: i64 = c2.lag().await.unwrap().iter().map(|l| l.lag).sum();
        assert_eq!(lag, 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_member_without_partitions_sees_the_groups_backlog() {
        let s = settings();
        ensure_topic(&s, 1, 1, &[]).await.unwrap();
        let p = KafkaProducer::new(&s).unwrap();
        for i in 0..6u8 {
            p.send("k", vec![i]).await.unwrap();
        }
        // Two members of one group on a one-partition topic: one owns it, the other nothing.
        let group = testkit::unique("group");
        let mut a = KafkaConsumer::new(&s, &group).unwrap();
        let mut b = KafkaConsumer::new(&s, &group).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let (owner, idle) = loop {
            a.poll(1, Duration::from_millis(200)).await.unwrap();
            b.poll(1, Duration::from_millis(200)).await.unwrap();
            // Errors while the group forms (no coordinator yet) are retried.
            let (la, lb) = (a.lag().await, b.lag().await);
            let owns = |l: &[PartitionLag]| l.iter().any(|p| p.assigned);
            match (&la, &lb) {
                (Ok(x), Ok(y)) if owns(x) && !owns(y) => break (la.unwrap(), lb.unwrap()),
                (Ok(x), Ok(y)) if owns(y) && !owns(x) => break (lb.unwrap(), la.unwrap()),
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the group never settled: {la:?} {lb:?}"
            );
        };
        assert_eq!(owner.len(), 1);
        assert!(owner[0].assigned);
        assert_eq!(idle.len(), 1, "every partition of the topic is reported");
        assert!(!idle[0].assigned);
        assert_eq!(
            idle[0].lag, 6,
            "nothing committed: the whole topic is backlog"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_topic_reader_sees_every_record_without_committing() {
        let s = settings();
        ensure_topic(&s, 2, 1, &[]).await.unwrap();
        let reader = KafkaTopicReader::new(&s);
        assert!(reader.read_all(10).await.unwrap().is_empty());
        let p = KafkaProducer::new(&s).unwrap();
        for i in 0..7u8 {
            p.send(&format!("k{i}"), vec![i]).await.unwrap();
        }
        let mut got: Vec<u8> = reader
            .read_all(100)
            .await
            .unwrap()
            .iter()
            .map(|m| m.payload[0])
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..7).collect::<Vec<u8>>());
        assert_eq!(reader.read_all(3).await.unwrap().len(), 3);
        assert_eq!(
            reader.read_all(100).await.unwrap().len(),
            7,
            "reading twice sees the same"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_unreachable_broker_fails_delivery_within_the_timeout() {
        let s = KafkaSettings {
            brokers: "127.0.0.1:1".into(),
            topic: "nowhere".into(),
            delivery_timeout: Duration::from_millis(1500),
            fetch_wait: FETCH_WAIT,
        };
        let p = KafkaProducer::new(&s).unwrap();
        assert!(matches!(
            p.send("k", vec![1]).await,
            Err(BusError::Delivery(_))
        ));
        assert!(p.check().await.is_err());
    }

    #[tokio::test]
    async fn pinned_keys_choose_the_partition_and_ranges_read_in_bounded_pages() {
        let s = settings();
        ensure_topic(&s, 2, 1, &[("retention.bytes", "1048576".to_string())])
            .await
            .unwrap();
        let p = KafkaProducer::new(&s).unwrap();
        for i in 0..5u8 {
            let d = p
                .send(&crate::bus::pinned_key(1), vec![i; 10])
                .await
                .unwrap();
            assert_eq!(d.partition, 1);
        }
        assert_eq!(
            p.send(&crate::bus::pinned_key(2), vec![9])
                .await
                .unwrap()
                .partition,
            0,
            "modulo the partitions"
        );
        let reader = KafkaTopicReader::new(&s);
        let marks = reader.watermarks().await.unwrap();
        let one = marks.iter().find(|w| w.partition == 1).unwrap();
        assert_eq!(one.high - one.low, 5);
        let page = reader
            .read_range(1, one.low + 1, one.high, 15)
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|m| m.payload[0]).collect::<Vec<_>>(),
            [1, 2],
            "stops once the byte budget is crossed"
        );
        assert!(reader
            .read_range(1, one.high, one.high + 10, 1000)
            .await
            .unwrap()
            .is_empty());
    }
}
