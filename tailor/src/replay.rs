//! `tailor replay`: rebuilds every profile and shared model from the event log.
//!
//! 1. Deletes everything the processor derived in the key namespace, keeping what is not derived from
//!    events: erasure tombstones (so erased people stay erased), segment definitions, the product
//!    catalog and business rules.
//! 2. Reads the events topic from its beginning with a fresh consumer group (or, with `--from-parquet`,
//!    the warehouse files, at their original bus positions) through the processor's own batch path
//!    (the same fold, guards and watermarks as live processing), with a progress bar.
//! 3. Refreshes the site models (RFM cut points, lifetime-value fit, the life-cycle sweep) and prints a
//!    summary.
//!
//! Both backends are reached before anything is deleted: Redis within `--wait` seconds, and the
//! topic's partitions read within the delivery timeout; each failure is one message.
//!
//! Stop the live processors first: a processor writing while the keys are deleted would leave a
//! partial profile. When they restart, the events they had not committed are behind the rebuilt
//! documents' watermarks and are skipped.

use crate::cli::Replay;
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailor_core::config::Config;
use tailor_core::keys::KeySpace;
use tailor_core::ops::{Update, WriteOp};
use tailor_core::SiteId;
use tailor_infra::bus::kafka::{KafkaConsumer, KafkaSettings};
use tailor_infra::bus::{Consumer, Message, Offsets};
use tailor_infra::store::Store;
use tailor_infra::Shutdown;
use tailor_processor::Processor;

/// Keys deleted per round trip.
const DELETE_CHUNK: usize = 1000;

/// Whether a key survives a rebuild: erasure tombstones, segment definitions, the product catalog
/// and business rules are not derived from events.
pub fn kept_on_rebuild(key: &str) -> bool {
    // The site keys' suffixes start at the hash tag's `}`, which no id may contain, so no event
    // marker (`...:ev:<event_id>`) can end like them.
    [
        ":erased",
        ":segdefs",
        "}:catalog",
        "}:catalog:meta",
        "}:rules",
    ]
    .iter()
    .any(|suffix| key.ends_with(suffix))
}

/// Deletes the derived keys of a namespace; returns how many.
pub async fn clear_derived(store: &dyn Store, keys: &KeySpace) -> anyhow::Result<usize> {
    let all = store
        .scan(&format!("{}:", keys.namespace()))
        .await
        .context("listing the namespace's keys")?;
    let doomed: Vec<String> = all.into_iter().filter(|k| !kept_on_rebuild(k)).collect();
    for chunk in doomed.chunks(DELETE_CHUNK) {
        let updates: Vec<Update> = chunk
            .iter()
            .map(|k| Update {
                ops: vec![WriteOp::Delete { key: k.clone() }],
                ..Default::default()
            })
            .collect();
        store.apply(&updates).await?;
    }
    Ok(doomed.len())
}

pub async fn run(config: Config, args: Replay) -> anyhow::Result<()> {
    config.validate()?;
    let Some(url) = &config.redis.url else {
        bail!("replay rebuilds a deployment's Redis: give --redis (embedded mode keeps nothing to replay)");
    };
    let source = match (&args.from_parquet, &config.kafka.brokers) {
        (Some(dir), _) => format!("the files in {}", dir.display()),
        (None, Some(_)) => format!("topic {:?}", config.kafka.topic),
        (None, None) => bail!("replay reads the Kafka topic: give --kafka, or --from-parquet DIR"),
    };
    if !args.yes {
        bail!(
            "replay deletes every profile in namespace {:?} of {url} and rebuilds it from {source}; stop the processors, then run again with --yes",
            config.redis.namespace,
            url = crate::connect::redacted(url),
        );
    }
    let started = Instant::now();
    let keys = KeySpace::new(config.redis.namespace.clone());
    let store: Arc<dyn Store> = Arc::new(
        crate::connect::redis(
            url,
            config.redis.cluster,
            crate::connect::Patience::Operator(Duration::from_secs(args.wait)),
        )
        .await?,
    );
    let topic = match (&args.from_parquet, &config.kafka.brokers) {
        (None, Some(brokers)) => Some(open_topic(&config, brokers).await?),
        _ => None,
    };
    let deleted = clear_derived(store.as_ref(), &keys).await?;
    eprintln!("deleted {deleted} derived keys; replaying {source}");
    let processor = Processor {
        store: store.clone(),
        keys: keys.clone(),
        config: config.processor.clone(),
        segments: config.segments.clone(),
        group: "replay".into(),
        // Changes describe live transitions; a rebuild re-derives state without re-announcing history.
        changes: None,
        offer_secret: config.recommender.offer_secret.clone(),
    };
    let (seen, outcomes) = match (&args.from_parquet, topic) {
        (Some(dir), _) => from_parquet(&processor, &config, dir).await?,
        (None, Some(topic)) => from_kafka(&processor, &config, topic).await?,
        (None, None) => unreachable!("checked above"),
    };
    let mut sites = Vec::new();
    for s in &config.sites {
        let site = SiteId::parse(s.id.clone())?;
        let r = processor
            .refresh_site(&site, chrono::Utc::now().timestamp_millis())
            .await?;
        sites.push(
            serde_json::json!({"site": s.id, "customers": r.customers, "clv_fitted": r.fitted}),
        );
    }
    let summary = serde_json::json!({
        "source": source,
        "events": seen,
        "outcomes": outcomes,
        "deleted_keys": deleted,
        "sites": sites,
        "seconds": started.elapsed().as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn progress(total: u64) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .expect("valid template"),
    )
}

type Outcomes = BTreeMap<&'static str, u64>;

async fn apply(
    processor: &Processor,
    batch: &[Message],
    outcomes: &mut Outcomes,
) -> anyhow::Result<()> {
    for o in processor
        .apply_batch(batch, &Shutdown::new())
        .await
        .context("replay interrupted")?
    {
        *outcomes.entry(o.as_str()).or_default() += 1;
    }
    Ok(())
}

/// Replays the warehouse files in partition and offset order, at their original bus positions (so
/// the watermarks match what the live processors will see).
async fn from_parquet(
    processor: &Processor,
    config: &Config,
    dir: &std::path::Path,
) -> anyhow::Result<(u64, Outcomes)> {
    let dir = dir.to_path_buf();
    let mut rows = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<_>> {
        let mut rows = Vec::new();
        for f in tailor_processor::export::data_files(&dir)? {
            rows.extend(tailor_processor::export::read_file(&f)?);
        }
        Ok(rows)
    })
    .await??;
    rows.sort_by_key(|(p, o, _)| (*p, *o));
    rows.dedup_by_key(|(p, o, _)| (*p, *o));
    let bar = progress(rows.len() as u64);
    let mut outcomes = Outcomes::new();
    let mut seen = 0u64;
    for chunk in rows.chunks(config.processor.batch_size) {
        let batch: Vec<Message> = chunk
            .iter()
            .map(|(p, o, e)| Message {
                topic: config.kafka.topic.clone(),
                partition: *p,
                offset: *o,
                payload: serde_json::to_vec(e).expect("an event serialises"),
                request_id: None,
            })
            .collect();
        apply(processor, &batch, &mut outcomes).await?;
        seen += batch.len() as u64;
        bar.set_position(seen);
    }
    bar.finish();
    Ok((seen, outcomes))
}

/// A fresh consumer group on the topic, and the end of every partition as it is now.
struct Topic {
    consumer: KafkaConsumer,
    ends: BTreeMap<i32, (i64, i64)>,
}

/// Opens the topic for [`from_kafka`]: fails (within the delivery timeout) when the broker does not
/// answer, before anything was deleted.
async fn open_topic(config: &Config, brokers: &str) -> anyhow::Result<Topic> {
    let settings = KafkaSettings {
        brokers: brokers.to_string(),
        topic: config.kafka.topic.clone(),
        delivery_timeout: Duration::from_millis(config.kafka.delivery_timeout_ms),
        fetch_wait: Duration::from_millis(config.kafka.fetch_wait_ms),
    };
    let group = format!(
        "{}-replay-{}",
        config.kafka.group,
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    );
    let consumer = KafkaConsumer::new(&settings, &group)?;
    // What to reach: the end of every partition as it is now (events arriving meanwhile are left to
    // the live processors, which skip whatever the rebuild already applied).
    let ends = consumer.watermarks().await.with_context(|| {
        format!(
            "cannot read topic {:?} on Kafka at {brokers} (kafka.brokers / --kafka); nothing was deleted",
            config.kafka.topic
        )
    })?;
    Ok(Topic { consumer, ends })
}

/// Replays the topic from its beginning with a fresh consumer group.
async fn from_kafka(
    processor: &Processor,
    config: &Config,
    topic: Topic,
) -> anyhow::Result<(u64, Outcomes)> {
    let Topic { mut consumer, ends } = topic;
    let total: i64 = ends.values().map(|(low, high)| high - low).sum();
    let mut next: BTreeMap<i32, i64> = ends.iter().map(|(p, (low, _))| (*p, *low)).collect();
    let bar = progress(total.max(0) as u64);
    let mut outcomes = Outcomes::new();
    let mut seen = 0u64;
    let mut last_progress = Instant::now();
    while ends.iter().any(|(p, (_, high))| next[p] < *high) {
        let batch = consumer
            .poll(config.processor.batch_size, Duration::from_millis(500))
            .await?;
        if batch.is_empty() {
            if last_progress.elapsed() > Duration::from_secs(120) {
                bail!("no progress for two minutes (is another consumer holding the partitions?); positions {next:?}, ends {ends:?}");
            }
            continue;
        }
        last_progress = Instant::now();
        seen += batch.len() as u64;
        apply(processor, &batch, &mut outcomes).await?;
        let done = Offsets::after(&batch);
        consumer.commit(&done).await?;
        for (p, o) in done.0 {
            next.insert(p, o.max(next.get(&p).copied().unwrap_or(0)));
        }
        bar.set_position(seen);
    }
    consumer.flush().await?;
    bar.finish();
    Ok((seen, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_core::ids::{EventId, MemberId, Subject};

    #[test]
    fn definitions_survive_a_rebuild_and_derived_keys_do_not() {
        let k = KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        for kept in [
            k.catalog(&site),
            k.catalog_meta(&site),
            k.rules(&site),
            k.segment_defs(&site),
        ] {
            assert!(kept_on_rebuild(&kept), "{kept}");
        }
        let who = Subject::Member(MemberId::parse("m").unwrap());
        for gone in [
            k.popular(&site),
            k.state(&site, &who),
            k.legacy_marker(&site, &who, &EventId::parse("x:catalog").unwrap()),
            k.legacy_marker(&site, &who, &EventId::parse("x:rules").unwrap()),
            k.marker(&site, &who, &EventId::parse("x").unwrap(), 0, 1)
                .own()
                .to_string(),
        ] {
            assert!(!kept_on_rebuild(&gone), "{gone}");
        }
    }
}
