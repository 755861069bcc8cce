//! Measurements that are not a request rate: freshness (how soon an acknowledged event shows in
//! the visitor's recommendations, under load) and Redis memory per member (`MEMORY USAGE` over a
//! sample of the load's visitors).

use crate::{Args, Shopper};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tailor::traffic::{Catalogue, Rng};

/// How long a probe waits for its event to show before it counts as not reflected.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the freshness probes saw.
pub struct Freshness {
    /// From the 2xx of a probe's event to the first recommendation answer that holds its item, µs.
    pub hist: Histogram<u64>,
    pub probes: u64,
    /// Probes whose item did not show within `PROBE_TIMEOUT`.
    pub missed: u64,
    /// Page views acknowledged by the background load, per second.
    pub background_per_sec: f64,
}

/// For `seconds`, sends background page views open loop at `rate` a second (in requests of
/// `--batch`) and, one after the other, probes: a new visitor views one item (`POST /v1/events`),
/// then asks for its recommendations every 2 ms until the item is among them (the session's own
/// items are a candidate source, `reminder`), timing from the event's 2xx.
pub async fn freshness(
    base: &str,
    a: Arc<Args>,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<Freshness> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let end = Instant::now() + Duration::from_secs(seconds);
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let background = (rate > 0.0).then(|| {
        tokio::spawn(open_loop_ingest(
            client.clone(),
            base.to_string(),
            a.clone(),
            rate,
            end,
            acked.clone(),
            None,
        ))
    });
    let catalogue = Catalogue::synthetic(a.items);
    let mut rng = Rng::new(4242);
    let mut out = Freshness {
        hist: Histogram::new(3)?,
        probes: 0,
        missed: 0,
        background_per_sec: 0.0,
    };
    while Instant::now() < end {
        let visitor = format!("fresh-{}-{}", crate::run_id(), out.probes);
        let item = catalogue.popular(&mut rng).id.clone();
        let event = serde_json::json!([{
            "type": "page_view", "site_id": a.site, "anonymous_id": visitor,
            "event_id": format!("{visitor}-1"), "item_id": item,
        }]);
        let r = crate::with_key(client.post(format!("{base}/v1/events")), &a)
            .json(&event)
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "a probe's event was refused: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
        let acked_at = Instant::now();
        out.probes += 1;
        let url = format!(
            "{base}/v1/recommendations?site={}&anonymous={visitor}&limit=50",
            a.site
        );
        loop {
            let answer: serde_json::Value = client.get(&url).send().await?.json().await?;
            let shown = answer["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["item_id"] == item.as_str()));
            if shown {
                out.hist.record(acked_at.elapsed().as_micros() as u64).ok();
                break;
            }
            if acked_at.elapsed() > PROBE_TIMEOUT {
                out.missed += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Probes are spaced so they are a small part of the load.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(b) = background {
        b.await?;
    }
    out.background_per_sec = acked.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    Ok(out)
}

/// Sends page views to `/v1/events` open loop at `rate` a second (requests of `--batch` on a fixed
/// schedule, whether or not earlier ones came back) until `end`, counting what was acknowledged;
/// with `latency`, records each request's time from when it was due (so a stall shows in full).
pub async fn open_loop_ingest(
    client: reqwest::Client,
    base: String,
    a: Arc<Args>,
    rate: f64,
    end: Instant,
    acked: Arc<AtomicU64>,
    latency: Option<Arc<Mutex<Histogram<u64>>>>,
) {
    let every = Duration::from_secs_f64(a.batch as f64 / rate);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut shopper = Shopper::new(99, &a, format!("open-{}", crate::run_id()));
    let mut inflight = tokio::task::JoinSet::new();
    while Instant::now() < end {
        let due = tick.tick().await.into_std();
        let req = shopper.ingest(&client, &base, &a);
        let (acked, n, latency) = (acked.clone(), a.batch as u64, latency.clone());
        inflight.spawn(async move {
            if matches!(req.send().await, Ok(r) if r.status().is_success()) {
                acked.fetch_add(n, Ordering::Relaxed);
            }
            if let Some(h) = latency {
                h.lock()
                    .unwrap()
                    .record(due.elapsed().as_micros().max(1) as u64)
                    .ok();
            }
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
}

/// The ingest scenario open loop at `rate` page views a second for `seconds`: the acknowledgement
/// latency of each request from when it was due, and the page views acknowledged per second.
pub async fn ingest_open(
    base: &str,
    a: Arc<Args>,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<(Histogram<u64>, f64)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 4)
        .timeout(Duration::from_secs(30))
        .build()?;
    let acked = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(Histogram::new(3)?));
    let started = Instant::now();
    open_loop_ingest(
        client,
        base.to_string(),
        a,
        rate,
        started + Duration::from_secs(seconds),
        acked.clone(),
        Some(latency.clone()),
    )
    .await;
    let per_sec = acked.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let h = latency.lock().unwrap().clone();
    Ok((h, per_sec))
}

/// Redis memory of a sample of members.
pub struct Memory {
    /// Bytes per sampled member (every key in the member's slot, plus its sessions' item lists).
    pub per_member: Vec<u64>,
    /// Bytes by kind of key over the sample: `state` (the document), `ev` (dedupe markers),
    /// `sess` (session item lists), `other`.
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Keys in the database.
    pub keys: u64,
}

/// Samples `sample` of the load's visitors (`v<n>`) that Redis holds: one `SCAN` pass over the
/// database picks their keys (`<ns>:{<site>:a:v<n>}:*` and `<ns>:{<site>}:si:v<n>/*`, or `:sess:` as
/// earlier versions stored a session), then `MEMORY USAGE` sizes each (pipelined).
pub async fn memory(
    redis: &redis::Client,
    namespace: &str,
    site: &str,
    visitors: u64,
    sample: u64,
) -> anyhow::Result<Memory> {
    let mut c = redis.get_multiplexed_async_connection().await?;
    let step = (visitors / sample.max(1)).max(1);
    let wanted = |v: u64| v.is_multiple_of(step);
    let subject_prefix = format!("{namespace}:{{{site}:a:v");
    let session_prefixes = [
        format!("{namespace}:{{{site}}}:si:v"),
        format!("{namespace}:{{{site}}}:sess:v"),
    ];
    let mut keys_of: HashMap<u64, Vec<String>> = HashMap::new();
    let mut cursor: u64 = 0;
    let mut total = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut c)
            .await?;
        total += batch.len() as u64;
        for k in batch {
            let visitor = if let Some(rest) = k.strip_prefix(&subject_prefix) {
                rest.split('}').next()
            } else if let Some(rest) = session_prefixes.iter().find_map(|p| k.strip_prefix(p)) {
                rest.split('/').next()
            } else {
                None
            };
            if let Some(v) = visitor.and_then(|v| v.parse::<u64>().ok()) {
                if wanted(v) {
                    keys_of.entry(v).or_default().push(k);
                }
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut out = Memory {
        per_member: Vec::new(),
        by_kind: BTreeMap::new(),
        keys: total,
    };
    for keys in keys_of.values() {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
        }
        let sizes: Vec<Option<u64>> = pipe.query_async(&mut c).await?;
        let mut member = 0;
        for (k, size) in keys.iter().zip(sizes) {
            let size = size.unwrap_or(0);
            member += size;
            let kind = if k.ends_with(":state") {
                "state"
            } else if k.contains("}:evd:") || k.contains("}:ev:") {
                "ev"
            } else if k.contains("}:si:") || k.contains("}:sess:") {
                "sess"
            } else {
                "other"
            };
            *out.by_kind.entry(kind).or_default() += size;
        }
        out.per_member.push(member);
    }
    out.per_member.sort_unstable();
    Ok(out)
}
