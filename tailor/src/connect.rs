//! Reaching Redis and Kafka at start-up, for services and operator commands alike, so neither hangs
//! silently.
//!
//! A service (`tailor run`, `processor`, `recommender`, `export`) waits for Redis, and a processor for
//! its Kafka topics, as long as it takes, logging what it is waiting for at every attempt, and stops
//! waiting on shutdown (an orchestrator restarting a processor while the broker is slow would
//! otherwise see it exit and restart it in a loop). An operator command (`tailor replay`) gives up
//! after its `--wait` with one message naming the address and the option to fix. Each attempt is
//! bounded by [`ATTEMPT`], as a connection to an address that drops packets would otherwise wait for
//! the operating system's timeout. An answer that says the configuration is wrong (Redis refusing the
//! password, a broker refusing the topic) ends the wait at once.

use anyhow::bail;
use std::time::{Duration, Instant};
use tailor_infra::bus::kafka::{ensure_topic, KafkaSettings};
use tailor_infra::bus::BusError;
use tailor_infra::store::redis::RedisStore;
use tailor_infra::store::StoreError;
use tailor_infra::Shutdown;

/// Longest one connection attempt may take.
const ATTEMPT: Duration = Duration::from_secs(5);
/// Pause between attempts.
const PAUSE: Duration = Duration::from_secs(1);

/// Who is waiting, which decides for how long.
#[derive(Debug, Clone)]
pub enum Patience {
    /// A service: until it answers, or until shutdown.
    Service(Shutdown),
    /// An operator command: at most this long.
    Operator(Duration),
}

/// `url` (or a comma-separated list of them, a cluster's nodes) with passwords replaced by `***`, for
/// logs and messages (`redis://:secret@host` is how a password-protected Redis is given).
pub fn redacted(urls: &str) -> String {
    urls.split(',')
        .map(redacted_one)
        .collect::<Vec<_>>()
        .join(",")
}

fn redacted_one(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &url[scheme_end..scheme_end + at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end],
                    &userinfo[..colon],
                    &url[scheme_end + at..]
                ),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// Connects to Redis at `url` (the nodes of a Redis Cluster when `cluster`); see the module docs.
pub async fn redis(url: &str, cluster: bool, patience: Patience) -> anyhow::Result<RedisStore> {
    let what = format!("Redis at {} (redis.url / --redis)", redacted(url));
    wait_for(&what, patience, ATTEMPT, || async {
        let connected = if cluster {
            RedisStore::connect_cluster(url).await
        } else {
            RedisStore::connect(url).await
        };
        connected.map_err(|e| match e {
            StoreError::Rejected(e) => Failed::Refused(e),
            e => Failed::Retry(e.to_string()),
        })
    })
    .await
}

/// Creates a Kafka topic unless it exists (`tailor_infra::bus::kafka::ensure_topic`), waiting for the
/// broker; see the module docs.
pub async fn kafka_topic(
    settings: &KafkaSettings,
    partitions: i32,
    replication: i32,
    configs: &[(&str, String)],
    patience: Patience,
) -> anyhow::Result<()> {
    let what = format!(
        "Kafka at {} (kafka.brokers / --kafka) to prepare topic {}",
        settings.brokers, settings.topic
    );
    // Longer than a Redis connection: the admin request itself waits up to 10 s for the broker.
    wait_for(&what, patience, ATTEMPT * 3, || async {
        ensure_topic(settings, partitions, replication, configs)
            .await
            .map_err(|e| match e {
                BusError::Refused(e) => Failed::Refused(e),
                e => Failed::Retry(e.to_string()),
            })
    })
    .await
}

/// Why an attempt failed.
enum Failed {
    /// It may answer next time.
    Retry(String),
    /// It answered no: waiting cannot help.
    Refused(String),
}

/// Tries `attempt`, each try bounded by `each`, until it succeeds, the patience runs out or an
/// answer refuses; logs every wait.
async fn wait_for<T, F, Fut>(
    what: &str,
    patience: Patience,
    each: Duration,
    mut attempt: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failed>>,
{
    let started = Instant::now();
    loop {
        let err = match tokio::time::timeout(each, attempt()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(Failed::Refused(e))) => bail!("{what}: refused: {e}"),
            Ok(Err(Failed::Retry(e))) => e,
            Err(_) => format!("no answer within {} s", each.as_secs()),
        };
        match &patience {
            Patience::Operator(limit) if started.elapsed() + PAUSE >= *limit => bail!(
                "cannot reach {what}: gave up after {} s ({err})",
                limit.as_secs()
            ),
            Patience::Operator(_) => {
                tracing::info!(error = %err, "waiting for {what}");
                tokio::time::sleep(PAUSE).await;
            }
            Patience::Service(shutdown) => {
                tracing::warn!(error = %err, waited_secs = started.elapsed().as_secs(),
                    "waiting for {what}; the service starts once it answers");
                tokio::select! {
                    _ = shutdown.cancelled() => bail!("shut down while waiting for {what}"),
                    _ = tokio::time::sleep(PAUSE) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_a_log() {
        assert_eq!(
            redacted("redis://:s3cret@redis.svc:6379/0"),
            "redis://:***@redis.svc:6379/0"
        );
        assert_eq!(
            redacted("rediss://app:p@ss:w@host:6380"),
            "rediss://app:***@host:6380"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted("redis://user@host/2"), "redis://user@host/2");
        assert_eq!(redacted("not a url"), "not a url");
        assert_eq!(
            redacted("redis://:a@n1:7000,redis://:b@n2:7001"),
            "redis://:***@n1:7000,redis://:***@n2:7001"
        );
    }
}
