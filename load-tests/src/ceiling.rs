//! Same-run ceilings: what the machine gives each stage's bare work, measured beside the stage in
//! the same run, so the ratio between them says how much Tailor's own work costs.
//!
//! - [`serve`]: a bare server, built on the HTTP server Tailor runs (`tailor_infra::server`, same
//!   settings), with `POST /bare/events` (parse the JSON batch and answer 202: the collector's
//!   ceiling, without validation, enrichment or the bus), `POST /bare/produce` (parse the batch,
//!   write each event to a topic of its own with the collector's producer settings, `acks=all`,
//!   and answer 202 once all are acknowledged: the collector's durable ceiling on a broker) and
//!   `GET /bare/recommendations` (one
//!   pipelined store round trip of the shape of the recommender's main read, through the same
//!   store client, answering the site's popular items: the recommender's ceiling).
//! - [`processor`]: reads this run's events from the topic with a consumer group of its own and
//!   writes as many keys per event as the processor did (counted from Redis' own command
//!   statistics over the processor's drain) with plain pipelined commands, one pipeline per batch,
//!   committing after each: the processor's ceiling on Kafka and Redis.

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailor::traffic::{Catalogue, Rng};
use tailor_core::keys::KeySpace;
use tailor_core::{AnonymousId, SiteId, Subject};
use tailor_infra::bus::kafka::{KafkaConsumer, KafkaSettings};
use tailor_infra::bus::{Consumer, Offsets, Producer};
use tailor_infra::store::{Read, Store};
use tailor_infra::Shutdown;

/// Items whose neighbour lists the bare recommendation reads (the recommender reads co-visits and
/// followers of up to `recommender.seed_items` seeds, 5, `recommender.neighbours_per_seed` each,
/// 25).
const SEEDS: usize = 5;
const NEIGHBOURS: usize = 25;
/// Items whose recent sessions it reads (the recommender reads them for each session item).
const SESSION_ITEMS: usize = 5;

#[derive(Clone)]
struct Bare {
    store: Option<Arc<dyn Store>>,
    producer: Option<Arc<dyn Producer>>,
    keys: KeySpace,
    site: SiteId,
    catalogue: Arc<Catalogue>,
    seed: Arc<AtomicU64>,
}

/// Starts the bare server on an ephemeral loopback port; `store` enables the bare recommendation,
/// `producer` the bare producing handler.
pub async fn serve(
    store: Option<Arc<dyn Store>>,
    producer: Option<Arc<dyn Producer>>,
    namespace: &str,
    site: &str,
    items: u64,
    shutdown: Shutdown,
) -> anyhow::Result<SocketAddr> {
    let bare = Bare {
        store,
        producer,
        keys: KeySpace::new(namespace.to_string()),
        site: SiteId::parse(site.to_string()).map_err(|e| anyhow::anyhow!("--site: {e}"))?,
        catalogue: Arc::new(Catalogue::synthetic(items)),
        seed: Arc::new(AtomicU64::new(1)),
    };
    let router = Router::new()
        .route("/bare/events", post(events))
        .route("/bare/produce", post(produce))
        .route("/bare/recommendations", get(recommendations))
        .with_state(bare);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let http = tailor_core::config::Config::default().http;
    tokio::spawn(async move {
        let _ = tailor_infra::server::serve(listener, router, &http, async move {
            shutdown.cancelled().await
        })
        .await;
    });
    Ok(addr)
}

/// The collector's ceiling: the body parsed as JSON, counted, answered.
async fn events(Json(batch): Json<Value>) -> (StatusCode, Json<Value>) {
    let n = batch.as_array().map_or(1, Vec::len);
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": n})),
    )
}

/// The producer the collector would have on `brokers`, writing to `topic` (created with the
/// collector's default partitions if it does not exist).
pub async fn producer(brokers: &str, topic: String) -> anyhow::Result<Arc<dyn Producer>> {
    use tailor_infra::bus::kafka::{ensure_topic, KafkaProducer, KafkaSettings, FETCH_WAIT};
    let kafka = tailor_core::config::Config::default().kafka;
    let settings = KafkaSettings {
        brokers: brokers.to_string(),
        topic,
        delivery_timeout: Duration::from_millis(kafka.delivery_timeout_ms),
        fetch_wait: FETCH_WAIT,
    };
    ensure_topic(&settings, kafka.partitions, 1, &[]).await?;
    Ok(Arc::new(KafkaProducer::new(&settings)?))
}

/// The collector's durable ceiling: each event of the batch written to the broker as it came (keyed
/// by its visitor, as the collector keys them) and acknowledged before the 202.
async fn produce(
    State(b): State<Bare>,
    Json(batch): Json<Vec<Value>>,
) -> Result<(StatusCode, Json<Value>), (StatusCode, String)> {
    let Some(producer) = &b.producer else {
        return Err((StatusCode::NOT_FOUND, "no broker: give --kafka".into()));
    };
    let sends = batch.iter().map(|e| {
        let key = e["anonymous_id"].as_str().unwrap_or_default();
        producer.send(key, serde_json::to_vec(e).expect("JSON serialises"))
    });
    for r in futures::future::join_all(sends).await {
        r.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": batch.len()})),
    ))
}

/// The recommender's ceiling: one pipelined round trip (the visitor's summary, the popular list,
/// co-visits and followers of `SEEDS` items, recent sessions of `SESSION_ITEMS` items), answered
/// with the popular items.
async fn recommendations(
    State(b): State<Bare>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let Some(store) = &b.store else {
        return Err((StatusCode::NOT_FOUND, "no store: give --redis".into()));
    };
    let anonymous = q.get("anonymous").cloned().unwrap_or_else(|| "v0".into());
    let subject = Subject::Anonymous(
        AnonymousId::parse(anonymous).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?,
    );
    let mut rng = Rng::new(b.seed.fetch_add(1, Ordering::Relaxed));
    let k = &b.keys;
    let mut reads = vec![
        Read::Field(k.state(&b.site, &subject), "reco".into()),
        Read::Top(k.popular(&b.site), 50),
    ];
    for _ in 0..SEEDS {
        let item = &b.catalogue.popular(&mut rng).id;
        reads.push(Read::Top(k.covisits(&b.site, item), NEIGHBOURS));
        reads.push(Read::Top(k.followers(&b.site, item), NEIGHBOURS));
    }
    for _ in 0..SESSION_ITEMS {
        let item = &b.catalogue.popular(&mut rng).id;
        reads.push(Read::Top(k.item_sessions(&b.site, item), 100));
    }
    let mut values = store
        .read(&reads)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    let popular = values.swap_remove(1).into_top();
    let items: Vec<Value> = popular
        .iter()
        .take(10)
        .map(|(i, s)| serde_json::json!({"item_id": i, "score": s}))
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

/// Redis commands that write, as `INFO commandstats` names them (calls from scripts included).
const WRITES: &[&str] = &[
    "set",
    "setex",
    "psetex",
    "setnx",
    "getset",
    "hset",
    "hmset",
    "hsetnx",
    "hdel",
    "hincrby",
    "hincrbyfloat",
    "zadd",
    "zincrby",
    "zrem",
    "zremrangebyrank",
    "zremrangebyscore",
    "sadd",
    "srem",
    "del",
    "unlink",
    "expire",
    "pexpire",
    "expireat",
    "pexpireat",
    "rpush",
    "lpush",
    "ltrim",
    "lrem",
    "incr",
    "incrby",
    "incrbyfloat",
    "decr",
    "decrby",
    "append",
];

/// Write commands Redis has executed so far (`INFO commandstats`).
pub async fn writes_so_far(redis: &redis::Client) -> anyhow::Result<u64> {
    let mut c = redis.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            if !WRITES.contains(&name) {
                return None;
            }
            stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse::<u64>()
                .ok()
        })
        .sum())
}

/// What the processor ceiling did.
pub struct Ceiling {
    pub events: u64,
    pub writes: u64,
    pub secs: f64,
}

/// Reads `events` events of `topic` from the start with a fresh consumer group, and writes
/// `writes_per_event` keys per event (a running total, so a fractional rate is kept exactly) with
/// plain commands, one pipeline per batch, committing each batch's offsets.
pub async fn processor(
    brokers: &str,
    topic: &str,
    redis: &redis::Client,
    events: u64,
    writes_per_event: f64,
    run: &str,
) -> anyhow::Result<Ceiling> {
    let settings = KafkaSettings {
        brokers: brokers.to_string(),
        topic: topic.to_string(),
        delivery_timeout: Duration::from_secs(30),
        fetch_wait: tailor_infra::bus::kafka::FETCH_WAIT,
    };
    let mut consumer = KafkaConsumer::new(&settings, &format!("tailor-load-ceiling-{run}"))
        .context("the ceiling's consumer")?;
    let mut conn = redis.get_multiplexed_async_connection().await?;
    let (mut read, mut written, mut owed) = (0u64, 0u64, 0.0f64);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut started = None;
    while read < events {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the ceiling read {read} of {events} events in 600 s"
        );
        let batch = consumer.poll(500, Duration::from_millis(200)).await?;
        if batch.is_empty() {
            continue;
        }
        started.get_or_insert_with(Instant::now);
        let mut pipe = redis::pipe();
        for m in &batch {
            let e: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            let id = e["event_id"].as_str().unwrap_or("?");
            let who = e["anonymous_id"].as_str().unwrap_or("?");
            owed += writes_per_event;
            let mut k = 0u64;
            while owed >= 1.0 {
                owed -= 1.0;
                match k {
                    // The event's dedupe marker: a field of its device's marker hash.
                    0 => pipe
                        .cmd("HSET")
                        .arg(format!("ceiling:{run}:evd:{who}"))
                        .arg(id)
                        .arg(1)
                        .ignore(),
                    _ => pipe
                        .cmd("HINCRBY")
                        .arg(format!("ceiling:{run}:{who}:{}", k % 16))
                        .arg(k)
                        .arg(1)
                        .ignore(),
                };
                k += 1;
                written += 1;
            }
        }
        let _: () = pipe.query_async(&mut conn).await?;
        consumer.commit(&Offsets::after(&batch)).await?;
        read += batch.len() as u64;
    }
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    consumer.flush().await?;
    Ok(Ceiling {
        events: read,
        writes: written,
        secs,
    })
}
