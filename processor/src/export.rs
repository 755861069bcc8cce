//! The warehouse sink: the enriched event stream as Parquet files partitioned by site and day,
//! `DIR/site=<site>/date=<YYYY-MM-DD>/part-p<partition>-<first>-<last>.parquet`, ready for DuckDB,
//! Spark or Trino (`read_parquet('DIR/site=*/date=*/*.parquet', hive_partitioning = true)`).
//!
//! Exactly once in the files, whatever crashes: a flush writes each partition's rows into staging
//! files, fsyncs them, then writes a manifest (`_manifests/p<partition>-<first>-<last>.json`, the
//! commit point) listing where each staging file goes, then renames them into place, and only then
//! commits the Kafka offsets. On start, [`recover`] rolls every manifest forward (finishing renames a
//! crash interrupted), deletes staging files no manifest names, and reads from the manifests the last
//! offset exported per partition: records at or below it are skipped when Kafka redelivers them.
//!
//! Events of erased subjects (see `POST /admin/erase`) are not exported; `tailor erase --warehouse`
//! rewrites the files already written.

use anyhow::Context;
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailor_core::event::{Event, EventBody};
use tailor_core::keys::KeySpace;
use tailor_core::Subject;
use tailor_infra::bus::{Consumer, Message, Offsets};
use tailor_infra::store::Store;
use tailor_infra::Shutdown;

/// The columns of every file.
pub fn schema() -> Arc<Schema> {
    let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let s = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        s("event_id", false),
        s("site_id", false),
        s("event_type", false),
        Field::new("timestamp", ts(), false),
        Field::new("received_at", ts(), false),
        s("anonymous_id", false),
        s("member_id", true),
        s("session_id", true),
        s("url", true),
        s("referrer", true),
        s("item_id", true),
        s("category", true),
        s("brand", true),
        s("order_id", true),
        Field::new("revenue", DataType::Float64, true),
        s("currency", true),
        Field::new("units", DataType::Int64, true),
        s("source", true),
        s("referrer_class", true),
        s("referrer_source", true),
        s("campaign_source", true),
        s("campaign_medium", true),
        s("campaign_name", true),
        s("device", true),
        s("browser", true),
        s("os", true),
        Field::new("bot", DataType::Boolean, false),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
        s("event", false),
    ]))
}

/// One exported record.
pub struct Row {
    pub partition: i32,
    pub offset: i64,
    pub event: Event,
}

fn text<T: Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
}

/// Rows as one Arrow batch in the [`schema`].
pub fn to_batch(rows: &[Row]) -> RecordBatch {
    let n = rows.len();
    let strings = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        for r in rows {
            b.append_option(f(r));
        }
        Arc::new(b.finish())
    };
    let times = |f: &dyn Fn(&Row) -> i64| -> ArrayRef {
        let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let order = |r: &Row| match &r.event.body {
        EventBody::Purchase { order } => Some(order.clone()),
        _ => None,
    };
    let item = |r: &Row| -> (Option<String>, Option<String>, Option<String>) {
        match &r.event.body {
            EventBody::PageView {
                item_id,
                category,
                brand,
                ..
            }
            | EventBody::Click {
                item_id,
                category,
                brand,
                ..
            } => (
                item_id.as_ref().map(|i| i.to_string()),
                category.as_ref().map(|c| c.to_string()),
                brand.clone(),
            ),
            EventBody::AddToCart {
                item_id,
                category,
                brand,
                ..
            } => (
                Some(item_id.to_string()),
                category.as_ref().map(|c| c.to_string()),
                brand.clone(),
            ),
            EventBody::OfferClick { item_id, .. } => {
                (item_id.as_ref().map(|i| i.to_string()), None, None)
            }
            _ => (None, None, None),
        }
    };
    let mut revenue = Float64Builder::with_capacity(n);
    let mut units = Int64Builder::with_capacity(n);
    let mut bot = BooleanBuilder::with_capacity(n);
    let mut partition = Int32Builder::with_capacity(n);
    let mut offset = Int64Builder::with_capacity(n);
    for r in rows {
        let o = order(r);
        revenue.append_option(o.as_ref().map(|o| o.revenue));
        units.append_option(
            o.as_ref()
                .map(|o| o.lines.iter().map(|l| i64::from(l.quantity)).sum()),
        );
        bot.append_value(r.event.context.bot);
        partition.append_value(r.partition);
        offset.append_value(r.offset);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| Some(r.event.event_id.to_string())),
        strings(&|r| Some(r.event.site_id.to_string())),
        strings(&|r| Some(r.event.event_type().as_str().to_string())),
        times(&|r| r.event.timestamp.timestamp_millis()),
        times(&|r| r.event.received_at.timestamp_millis()),
        strings(&|r| Some(r.event.anonymous_id.to_string())),
        strings(&|r| r.event.member_id.as_ref().map(|m| m.to_string())),
        strings(&|r| r.event.session_id.as_ref().map(|s| s.to_string())),
        strings(&|r| r.event.url.clone()),
        strings(&|r| r.event.referrer.clone()),
        strings(&|r| item(r).0),
        strings(&|r| item(r).1),
        strings(&|r| item(r).2),
        strings(&|r| order(r).map(|o| o.id)),
        Arc::new(revenue.finish()),
        strings(&|r| order(r).map(|o| o.currency)),
        Arc::new(units.finish()),
        strings(&|r| r.event.context.source.map(|s| s.as_str().to_string())),
        strings(&|r| {
            r.event
                .context
                .referrer_class
                .map(|c| c.as_str().to_string())
        }),
        strings(&|r| r.event.context.referrer_source.clone()),
        strings(&|r| r.event.context.campaign.source.clone()),
        strings(&|r| r.event.context.campaign.medium.clone()),
        strings(&|r| r.event.context.campaign.name.clone()),
        strings(&|r| r.event.context.device.as_ref().and_then(text)),
        strings(&|r| r.event.context.browser.clone()),
        strings(&|r| r.event.context.os.clone()),
        Arc::new(bot.finish()),
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        strings(&|r| Some(serde_json::to_string(&r.event).expect("an event serialises"))),
    ];
    RecordBatch::try_new(schema(), columns).expect("columns match the schema")
}

/// Writes `rows` to `path` as one Parquet file and fsyncs it.
pub fn write_file(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file.try_clone()?, schema(), Some(props))?;
    writer.write(&to_batch(rows))?;
    writer.close()?;
    file.sync_all()?;
    Ok(())
}

/// Reads back the exported events of one file: (partition, offset, event).
pub fn read_file(path: &Path) -> anyhow::Result<Vec<(i32, i64, Event)>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type};
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .with_context(|| format!("{} has no column {name}", path.display()))
        };
        let partitions = col("kafka_partition")?.as_primitive::<Int32Type>().clone();
        let offsets = col("kafka_offset")?.as_primitive::<Int64Type>().clone();
        let events = col("event")?.as_string::<i32>().clone();
        for i in 0..batch.num_rows() {
            let e: Event = serde_json::from_str(events.value(i))
                .with_context(|| format!("{} row {i}", path.display()))?;
            out.push((partitions.value(i), offsets.value(i), e));
        }
    }
    Ok(out)
}

/// Removes from the files under `dir` the events of `subjects` (`m:<id>`/`a:<id>`) received up to
/// `until_ms`, rewriting each affected file atomically; returns (files rewritten, rows removed).
pub fn erase(dir: &Path, subjects: &[String], until_ms: i64) -> anyhow::Result<(usize, usize)> {
    let (mut files, mut removed) = (0, 0);
    for path in data_files(dir)? {
        let rows = read_file(&path)?;
        let before = rows.len();
        let kept: Vec<Row> = rows
            .into_iter()
            .filter(|(_, _, e)| {
                let mine = subjects.contains(&format!("a:{}", e.anonymous_id))
                    || e.member_id
                        .as_ref()
                        .is_some_and(|m| subjects.contains(&format!("m:{m}")));
                !(mine && e.received_at.timestamp_millis() <= until_ms)
            })
            .map(|(partition, offset, event)| Row {
                partition,
                offset,
                event,
            })
            .collect();
        if kept.len() == before {
            continue;
        }
        removed += before - kept.len();
        files += 1;
        if kept.is_empty() {
            fs::remove_file(&path)?;
        } else {
            let tmp = path.with_extension("parquet.tmp");
            write_file(&tmp, &kept)?;
            fs::rename(&tmp, &path)?;
        }
    }
    Ok((files, removed))
}

/// Every data file under `dir`.
pub fn data_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(sites) = fs::read_dir(dir) else {
        return Ok(out);
    };
    for site in sites.flatten() {
        if !site.file_name().to_string_lossy().starts_with("site=") {
            continue;
        }
        for day in fs::read_dir(site.path())?.flatten() {
            for f in fs::read_dir(day.path())?.flatten() {
                if f.path().extension().is_some_and(|e| e == "parquet") {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A flush of one partition's contiguous offsets: the commit point of those files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    /// (staging file, final file), relative to the export directory.
    pub files: Vec<(String, String)>,
}

/// Finishes or discards interrupted flushes; returns the last exported offset per partition.
pub fn recover(dir: &Path) -> anyhow::Result<BTreeMap<i32, i64>> {
    let manifests = dir.join("_manifests");
    fs::create_dir_all(&manifests)?;
    let mut written: BTreeMap<i32, i64> = BTreeMap::new();
    let mut named = std::collections::HashSet::new();
    for entry in fs::read_dir(&manifests)?.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            let _ = fs::remove_file(&path); // a manifest that never finished being written
            continue;
        }
        let m: Manifest = serde_json::from_slice(&fs::read(&path)?)
            .with_context(|| format!("reading {}", path.display()))?;
        for (staging, fin) in &m.files {
            let (staging, fin) = (dir.join(staging), dir.join(fin));
            named.insert(staging.clone());
            if staging.exists() {
                if let Some(parent) = fin.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::rename(&staging, &fin)?;
            }
        }
        let w = written.entry(m.partition).or_insert(m.last);
        *w = (*w).max(m.last);
    }
    let staging = dir.join("_staging");
    if let Ok(entries) = fs::read_dir(&staging) {
        for e in entries.flatten() {
            if !named.contains(&e.path()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(written)
}

/// Writes one partition's rows (sorted by offset) as files per site and day, atomically as a whole.
pub fn flush_partition(dir: &Path, partition: i32, rows: Vec<Row>) -> anyhow::Result<i64> {
    let first = rows.first().map(|r| r.offset).expect("non-empty");
    let last = rows.last().map(|r| r.offset).expect("non-empty");
    let name = format!("p{partition}-{first}-{last}");
    let mut groups: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
    for r in rows {
        let key = (
            r.event.site_id.to_string(),
            r.event.timestamp.format("%Y-%m-%d").to_string(),
        );
        groups.entry(key).or_default().push(r);
    }
    let mut files = Vec::new();
    for (i, ((site, day), rows)) in groups.iter().enumerate() {
        let staging = format!("_staging/{name}-{i}.parquet");
        write_file(&dir.join(&staging), rows)?;
        files.push((
            staging,
            format!("site={site}/date={day}/part-{name}.parquet"),
        ));
    }
    let manifest = Manifest {
        partition,
        first,
        last,
        files,
    };
    let tmp = dir.join(format!("_manifests/{name}.tmp"));
    let file = fs::File::create(&tmp)?;
    serde_json::to_writer(&file, &manifest)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(format!("_manifests/{name}.json")))?;
    for (staging, fin) in &manifest.files {
        let fin = dir.join(fin);
        fs::create_dir_all(fin.parent().expect("has a parent"))?;
        fs::rename(dir.join(staging), fin)?;
    }
    Ok(last)
}

/// The sink's settings.
#[derive(Clone)]
pub struct Exporter {
    pub dir: PathBuf,
    pub store: Arc<dyn Store>,
    pub keys: KeySpace,
    pub max_rows: usize,
    pub max_age: Duration,
}

impl Exporter {
    /// Drops the events of erased subjects (received before their erasure).
    async fn drop_erased(&self, rows: &mut Vec<Row>) -> anyhow::Result<usize> {
        let mut keys: Vec<String> = Vec::new();
        for r in rows.iter() {
            let e = &r.event;
            keys.push(
                self.keys
                    .erased(&e.site_id, &Subject::Anonymous(e.anonymous_id.clone())),
            );
            if let Some(m) = &e.member_id {
                keys.push(self.keys.erased(&e.site_id, &Subject::Member(m.clone())));
            }
        }
        let erased = crate::erasure::erased_at(self.store.as_ref(), keys).await?;
        if erased.is_empty() {
            return Ok(0);
        }
        let before = rows.len();
        rows.retain(|r| {
            let e = &r.event;
            let received = e.received_at.timestamp_millis();
            let gone = |s: Subject| {
                erased
                    .get(&self.keys.erased(&e.site_id, &s))
                    .is_some_and(|at| *at >= received)
            };
            !(gone(Subject::Anonymous(e.anonymous_id.clone()))
                || e.member_id
                    .clone()
                    .is_some_and(|m| gone(Subject::Member(m))))
        });
        Ok(before - rows.len())
    }

    fn flush(&self, buffer: &mut Vec<Row>, written: &mut BTreeMap<i32, i64>) -> anyhow::Result<()> {
        let mut by_partition: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
        for r in buffer.drain(..) {
            by_partition.entry(r.partition).or_default().push(r);
        }
        for (p, mut rows) in by_partition {
            rows.sort_by_key(|r| r.offset);
            let n = rows.len();
            let last = flush_partition(&self.dir, p, rows)?;
            written.insert(p, last);
            metrics::counter!("tailor_export_rows_total").increment(n as u64);
        }
        metrics::counter!("tailor_export_flushes_total").increment(1);
        Ok(())
    }
}

/// Runs the sink until shutdown; the rows in hand are flushed (and committed) first.
pub async fn run(
    exporter: Exporter,
    mut consumer: Box<dyn Consumer>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    fs::create_dir_all(&exporter.dir)
        .with_context(|| format!("creating the export directory {}", exporter.dir.display()))?;
    let mut written = recover(&exporter.dir)?;
    tracing::info!(dir = %exporter.dir.display(), ?written, "warehouse export started");
    let mut buffer: Vec<Row> = Vec::new();
    let mut pending = Offsets::default();
    let mut oldest: Option<Instant> = None;
    loop {
        let stopping = shutdown.is_cancelled();
        let batch: Vec<Message> = if stopping {
            Vec::new()
        } else {
            consumer
                .poll(exporter.max_rows, Duration::from_millis(200))
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "export poll failed; retrying");
                    Vec::new()
                })
        };
        for m in &batch {
            pending.advance(m.partition, m.offset + 1);
        }
        let mut rows: Vec<Row> = batch
            .into_iter()
            .filter(|m| written.get(&m.partition).is_none_or(|w| m.offset > *w))
            .filter_map(|m| match serde_json::from_slice::<Event>(&m.payload) {
                Ok(event) => Some(Row {
                    partition: m.partition,
                    offset: m.offset,
                    event,
                }),
                Err(_) => {
                    metrics::counter!("tailor_export_malformed_total").increment(1);
                    None
                }
            })
            .collect();
        if !rows.is_empty() {
            let dropped = exporter.drop_erased(&mut rows).await?;
            metrics::counter!("tailor_export_erased_total").increment(dropped as u64);
            oldest.get_or_insert_with(Instant::now);
            buffer.extend(rows);
        }
        let due = buffer.len() >= exporter.max_rows
            || oldest.is_some_and(|o| o.elapsed() >= exporter.max_age)
            || stopping;
        if due {
            if !buffer.is_empty() {
                let dir = exporter.clone();
                let mut taken = std::mem::take(&mut buffer);
                let mut w = written.clone();
                written =
                    tokio::task::spawn_blocking(move || dir.flush(&mut taken, &mut w).map(|_| w))
                        .await??;
            }
            oldest = None;
            if tailor_infra::failpoint("export-before-commit") {
                // Tests: die where a crash hurts most, files written and offsets not committed.
                tracing::warn!("failpoint export-before-commit: aborting");
                std::process::abort();
            }
            if !pending.0.is_empty() {
                if let Err(e) = consumer.commit(&pending).await {
                    tracing::warn!(error = %e, "export offset commit failed; the manifests keep the files exact");
                }
                pending = Offsets::default();
            }
        }
        if stopping {
            break;
        }
    }
    if let Err(e) = consumer.flush().await {
        tracing::warn!(error = %e, "final export offset commit failed; the manifests keep the files exact");
    }
    tracing::info!("warehouse export stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(partition: i32, offset: i64, day: &str) -> Row {
        let event = tailor_core::event::RawEvent::from_json(json!({"type": "purchase", "site_id": "demo",
            "anonymous_id": "a", "member_id": "m", "timestamp": format!("{day}T10:00:00Z"),
            "order": {"id": "o", "currency": "EUR", "lines": [{"item_id": "x", "price": 2.5, "quantity": 2}]}}))
        .unwrap()
        .validate(chrono::Utc::now())
        .unwrap();
        Row {
            partition,
            offset,
            event,
        }
    }

    #[test]
    fn files_round_trip_and_interrupted_flushes_are_rolled_forward_or_back() {
        let dir = tailor_infra::testkit::temp_dir("export");
        fs::create_dir_all(dir.join("_manifests")).unwrap();
        let last = flush_partition(
            &dir,
            0,
            vec![row(0, 5, "2026-01-01"), row(0, 6, "2026-01-02")],
        )
        .unwrap();
        assert_eq!(last, 6);
        let files = data_files(&dir).unwrap();
        assert_eq!(files.len(), 2, "one file per day: {files:?}");
        assert!(files[0].ends_with("site=demo/date=2026-01-01/part-p0-5-6.parquet"));
        let back = read_file(&files[1]).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].0, back[0].1), (0, 6));

        // A crash after the manifest, before the renames: recovery finishes the renames.
        let staged = "_staging/p1-7-7-0.parquet";
        write_file(&dir.join(staged), &[row(1, 7, "2026-01-03")]).unwrap();
        let m = Manifest {
            partition: 1,
            first: 7,
            last: 7,
            files: vec![(
                staged.into(),
                "site=demo/date=2026-01-03/part-p1-7-7.parquet".into(),
            )],
        };
        fs::write(
            dir.join("_manifests/p1-7-7.json"),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        // A crash before the manifest: the staged file is discarded.
        write_file(
            &dir.join("_staging/p1-8-8-0.parquet"),
            &[row(1, 8, "2026-01-03")],
        )
        .unwrap();
        let written = recover(&dir).unwrap();
        assert_eq!(written, BTreeMap::from([(0, 6), (1, 7)]));
        assert_eq!(data_files(&dir).unwrap().len(), 3);
        assert!(!dir.join("_staging/p1-8-8-0.parquet").exists());
    }
}
