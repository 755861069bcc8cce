//! Helpers for tests that talk to the real Redis and Kafka-protocol broker.
//!
//! `scripts/test.sh` starts one redis-server and one broker on ephemeral loopback ports for the whole
//! suite and exports their addresses; tests isolate themselves with unique key namespaces, topics and
//! consumer groups ([`unique`]) so they run in parallel. A test that needs a backend fails (it is never
//! silently skipped) when the address is missing.

use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable holding the test Redis URL.
pub const REDIS_ENV: &str = "TAILOR_TEST_REDIS";
/// Environment variable holding the test Redis Cluster's nodes (`redis://host:port`, comma-separated).
pub const REDIS_CLUSTER_ENV: &str = "TAILOR_TEST_REDIS_CLUSTER";
/// Environment variable holding the test broker's bootstrap address.
pub const KAFKA_ENV: &str = "TAILOR_TEST_KAFKA";

fn required(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with scripts/test.sh, which starts redis-server and the broker")
    })
}

/// The suite's Redis, e.g. `redis://127.0.0.1:40123`.
pub fn redis_url() -> String {
    required(REDIS_ENV)
}

/// The suite's three-node Redis Cluster, e.g. `redis://127.0.0.1:40125,redis://127.0.0.1:40126,...`.
pub fn redis_cluster_urls() -> String {
    required(REDIS_CLUSTER_ENV)
}

/// The suite's Kafka-protocol broker, e.g. `127.0.0.1:40124`.
pub fn kafka_brokers() -> String {
    required(KAFKA_ENV)
}

/// A name no other test in this run (or an earlier run against the same servers) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(prefix: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

/// A configuration on the suite's real broker and Redis, isolated from every other test: its own
/// topics, consumer group, key namespace and spool directory.
pub fn real_config() -> tailor_core::config::Config {
    let mut c = tailor_core::config::Config::default();
    c.kafka.brokers = Some(kafka_brokers());
    c.kafka.topic = unique("events");
    c.kafka.dead_letter_topic = unique("dead-letters");
    c.kafka.changes_topic = unique("changes");
    c.kafka.actions_topic = unique("actions");
    c.kafka.group = unique("group");
    c.kafka.partitions = 3;
    c.redis.url = Some(redis_url());
    c.redis.namespace = unique("ns");
    c.collector.spool_dir = temp_dir("spool");
    c
}

/// A file of the shared evaluation data (`../shared/data/` next to the repository, read-only), found
/// from `TAILOR_SHARED_DATA`, else next to this checkout, else at `/work/shared/data`.
pub fn shared_data(relative: &str) -> std::path::PathBuf {
    let candidates = [
        std::env::var_os("TAILOR_SHARED_DATA").map(std::path::PathBuf::from),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")),
        Some(std::path::PathBuf::from("/work/shared/data")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|dir| dir.join(relative))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("shared data {relative} not found: set TAILOR_SHARED_DATA to the shared/data folder")
        })
}
