//! A batch of one partition: load, fold, emit, write (the loop that feeds it: [`crate::lanes`]).
//!
//! Invariants:
//! * An offset is committed only after every event before it is durably applied (or recognised as
//!   applied before). A store failure is retried with backoff and never skipped, so a Redis outage
//!   stalls the partition instead of losing events.
//! * Each write is one atomic update in one hash slot: a subject's document (with its per-partition
//!   watermarks, under a revision guard) or the site-level effects of up to 64 consecutive messages
//!   of one partition, each message's ops a run of their own under the site's per-partition
//!   watermark ([`tailor_core::ops::merge`]). A crash between any two writes redelivers the batch;
//!   every write that landed recognises the redelivery from its own watermark (a merged update
//!   skips exactly the runs at or below it, however the redelivered batch is cut), and the rest are
//!   made now. Where the messages increment the same members (a popular item's views, a pair seen
//!   in several sessions), their sums go instead ([`tailor_core::ops::sum`]): applied whole when
//!   none of the messages was applied before, skipped when all were, and otherwise refused, then
//!   sent as the runs.
//! * Site updates are written before documents: if a document write lands, the site effects of its
//!   events have landed too, so skipping an already-applied event never skips its site effects.
//!   Sums go in a round trip of their own before the documents, so a refused one is re-sent as its
//!   runs before any document follows.
//! * Change events are produced before anything is written, with ids derived from the causing event,
//!   so a crash can repeat a change (same id) but never lose one.
//! * A guard conflict (another consumer wrote the same member, e.g. two devices in two partitions)
//!   re-reads and re-folds the batch; the documents already written skip their events by watermark.
//! * A payload that is not a valid event is counted, logged with its position, and skipped, so it
//!   can never block the partition.

use crate::fold::{Doc, Folder, Input, Loaded, Outcome, SiteCtx};
use futures::future::join_all;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailor_core::config::ProcessorConfig;
use tailor_core::event::Event;
use tailor_core::keys::{KeySpace, MarkerSlot};
use tailor_core::models::SiteModels;
use tailor_core::ops::{merge, sum, Applied, Guard, Update, WriteOp};
use tailor_core::segment::{self, SegmentDef};
use tailor_core::state::SubjectState;
use tailor_core::{MemberId, SiteId, Subject};
use tailor_infra::bus::{Message, Producer};
use tailor_infra::store::{Read, Store, StoreError, Value};
use tailor_infra::Shutdown;

/// Re-folds after guard conflicts before backing off.
const CONFLICT_RETRIES: u32 = 5;
/// At most this many messages' site updates in one atomic step: one Redis script of a few thousand
/// commands, so a batch never holds Redis for long.
const MERGED_MESSAGES: usize = 64;
/// Reads per event's marker: three generations' hashes and the legacy key (see `MarkerSlot`).
const MARKER_READS: usize = 4;

/// Everything the loop needs besides the consumer.
#[derive(Clone)]
pub struct Processor {
    pub store: Arc<dyn Store>,
    pub keys: KeySpace,
    pub config: ProcessorConfig,
    /// Segments from the configuration (the admin API adds more, stored per site).
    pub segments: Vec<SegmentDef>,
    /// Consumer group name (for logs).
    pub group: String,
    /// Where change events go (`kafka.changes_topic`); `None` drops them (tests of other parts).
    pub changes: Option<Arc<dyn Producer>>,
    /// `recommender.offer_secret`: campaign offer tokens that do not verify under it are not counted.
    pub offer_secret: String,
}

/// Why a batch attempt did not finish.
enum Retry {
    /// With the outcomes of the attempt (what it applied stays applied).
    Conflict(Vec<Outcome>),
    Failed(String),
}

impl From<StoreError> for Retry {
    fn from(e: StoreError) -> Self {
        Retry::Failed(e.to_string())
    }
}

/// A state document as stored: (revision, document) or a quarantine note for one that does not parse.
pub fn parse_doc(
    keys: &KeySpace,
    site: &SiteId,
    subject: &Subject,
    hash: HashMap<String, String>,
) -> Doc {
    let rev = hash.get("rev").and_then(|r| r.parse::<u64>().ok());
    let mut extra = Vec::new();
    let state = match hash.get("doc") {
        None => SubjectState::default(),
        Some(raw) => SubjectState::from_stored(raw).unwrap_or_else(|err| {
            // Never silently lose a profile: keep the unreadable document aside and start afresh.
            metrics::counter!("tailor_processor_corrupt_documents_total").increment(1);
            tracing::error!(%site, %subject, error = %err, "state document does not parse; quarantined");
            extra.push(WriteOp::Put {
                key: format!("{}:quarantine", keys.state(site, subject)),
                value: raw.clone(),
                ttl_secs: None,
            });
            SubjectState::default()
        }),
    };
    Doc {
        site: site.clone(),
        subject: subject.clone(),
        state,
        rev,
        dirty: false,
        extra,
    }
}

/// The guarded write of a document (and the subject-slot ops that go with it).
pub fn doc_update(keys: &KeySpace, doc: &Doc, compact: bool) -> Update {
    let key = keys.state(&doc.site, &doc.subject);
    // The document and the summary in the stored form (`processor.compact_storage`), or as JSON.
    let encode = |json: String| {
        if compact {
            tailor_core::stored::compress(&json)
        } else {
            json
        }
    };
    let mut ops = vec![
        WriteOp::HashSet {
            key: key.clone(),
            field: "doc".into(),
            value: encode(doc.state.to_json()),
        },
        WriteOp::HashSet {
            key: key.clone(),
            field: "reco".into(),
            value: encode(serde_json::to_string(&doc.state.reco_view()).expect("serialises")),
        },
        WriteOp::HashSet {
            key: key.clone(),
            field: "rev".into(),
            value: (doc.rev.unwrap_or(0) + 1).to_string(),
        },
    ];
    ops.extend(doc.extra.iter().cloned());
    Update {
        guard: Some(Guard {
            key,
            field: "rev".into(),
            expected: doc.rev.map(|r| r.to_string()),
        }),
        ops,
        ..Default::default()
    }
}

/// Compiles the segments that apply to a site: configured ones and those stored through the API.
///
/// A stored definition that no longer loads (unreadable, or refused by today's checks, such as a rule
/// stored before rules were bounded) is set aside: logged, counted in
/// `tailor_processor_segments_set_aside{site}`, listed with its error by `GET /admin/segments`, and
/// never evaluated, so it cannot fail a batch or a start-up (members leave it as they are next judged).
pub fn site_segments(
    configured: &[SegmentDef],
    stored: &HashMap<String, String>,
    site: &SiteId,
) -> Vec<(String, segment::Rule)> {
    let mut defs: Vec<SegmentDef> = configured
        .iter()
        .filter(|d| d.site.as_deref().is_none_or(|s| s == site.as_str()))
        .cloned()
        .collect();
    let mut set_aside = 0usize;
    for (name, raw) in stored {
        match serde_json::from_str::<SegmentDef>(raw) {
            Ok(d) => {
                defs.retain(|c| c.name != d.name);
                defs.push(d);
            }
            Err(e) => {
                set_aside += 1;
                tracing::warn!(%site, segment = %name, error = %e, "setting aside an unreadable stored segment")
            }
        }
    }
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    let rules: Vec<_> = defs
        .into_iter()
        .filter_map(|d| match segment::check(&d) {
            Ok(rule) => Some((d.name, rule)),
            Err(e) => {
                set_aside += 1;
                tracing::warn!(%site, error = %e, "setting aside a segment that no longer loads");
                None
            }
        })
        .collect();
    metrics::gauge!("tailor_processor_segments_set_aside", "site" => site.to_string())
        .set(set_aside as f64);
    rules
}

impl Processor {
    pub fn folder(&self) -> Folder<'_> {
        Folder {
            keys: &self.keys,
            config: &self.config,
            offer_secret: &self.offer_secret,
        }
    }

    /// Decodes a batch, dropping (and counting) payloads that are not events.
    fn decode(batch: &[Message]) -> Vec<(&Message, Event)> {
        batch
            .iter()
            .filter_map(|m| match serde_json::from_slice::<Event>(&m.payload) {
                Ok(e) => Some((m, e)),
                Err(err) => {
                    metrics::counter!("tailor_processor_events_total", "outcome" => "malformed")
                        .increment(1);
                    tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset,
                        request_id = ?m.request_id, error = %err,
                        "skipping a payload that is not a Tailor event");
                    None
                }
            })
            .collect()
    }

    fn site_reads(&self, sites: &[SiteId]) -> Vec<Read> {
        sites
            .iter()
            .flat_map(|s| {
                [
                    Read::Hash(self.keys.models(s)),
                    Read::Hash(self.keys.segment_defs(s)),
                ]
            })
            .collect()
    }

    fn parse_sites(
        &self,
        sites: &[SiteId],
        values: &mut impl Iterator<Item = Value>,
    ) -> HashMap<SiteId, SiteCtx> {
        let mut out = HashMap::new();
        for site in sites {
            let models =
                SiteModels::from_hash(&values.next().map(Value::into_hash).unwrap_or_default());
            let stored = values.next().map(Value::into_hash).unwrap_or_default();
            out.insert(
                site.clone(),
                SiteCtx {
                    models,
                    segments: site_segments(&self.segments, &stored, site),
                },
            );
        }
        out
    }

    /// Reads the models and segment definitions of each site.
    pub async fn load_sites(
        &self,
        sites: &[SiteId],
    ) -> Result<HashMap<SiteId, SiteCtx>, StoreError> {
        let values = self.store.read(&self.site_reads(sites)).await?;
        Ok(self.parse_sites(sites, &mut values.into_iter()))
    }

    fn doc_reads(&self, wanted: &[(String, SiteId, Subject)]) -> Vec<Read> {
        wanted
            .iter()
            .flat_map(|(key, site, subject)| {
                [
                    Read::Hash(key.clone()),
                    Read::Get(self.keys.erased(site, subject)),
                ]
            })
            .collect()
    }

    fn parse_docs(
        &self,
        loaded: &mut Loaded,
        wanted: Vec<(String, SiteId, Subject)>,
        values: &mut impl Iterator<Item = Value>,
    ) {
        for (key, site, subject) in wanted {
            let hash = values.next().map(Value::into_hash).unwrap_or_default();
            if let Some(at) = values
                .next()
                .and_then(Value::into_text)
                .and_then(|t| t.parse().ok())
            {
                loaded.erased.insert(key.clone(), at);
            }
            loaded
                .docs
                .insert(key, parse_doc(&self.keys, &site, &subject, hash));
        }
    }

    /// Loads documents (with their erasure tombstones) into `loaded`.
    pub async fn load_docs(
        &self,
        loaded: &mut Loaded,
        wanted: Vec<(String, SiteId, Subject)>,
    ) -> Result<(), StoreError> {
        let values = self.store.read(&self.doc_reads(&wanted)).await?;
        self.parse_docs(loaded, wanted, &mut values.into_iter());
        Ok(())
    }

    async fn attempt(&self, events: &[(&Message, Event)]) -> Result<Vec<Outcome>, Retry> {
        let folder = self.folder();
        let mut sites: Vec<SiteId> = events.iter().map(|(_, e)| e.site_id.clone()).collect();
        sites.sort();
        sites.dedup();
        let mut loaded = Loaded::default();
        let mut seen = HashSet::new();
        let wanted: Vec<(String, SiteId, Subject)> = events
            .iter()
            .flat_map(|(_, e)| folder.keys_needed(e))
            .filter(|(k, _, _)| seen.insert(k.clone()))
            .collect();
        // Each event's marker is looked for in three generations' hashes and under its legacy key.
        let markers: Vec<MarkerSlot> = events.iter().map(|(_, e)| folder.marker(e)).collect();
        // One round trip for the sites, the documents with their tombstones, and the markers.
        let mut reads = self.site_reads(&sites);
        reads.extend(self.doc_reads(&wanted));
        for slot in &markers {
            reads.extend(
                slot.buckets
                    .iter()
                    .map(|b| Read::Field(b.clone(), slot.field.clone())),
            );
            reads.push(Read::Get(slot.legacy.clone()));
        }
        let mut values = self.store.read(&reads).await?.into_iter();
        loaded.sites = self.parse_sites(&sites, &mut values);
        self.parse_docs(&mut loaded, wanted, &mut values);
        let marked: Vec<Vec<String>> = markers
            .iter()
            .map(|_| {
                values
                    .by_ref()
                    .take(MARKER_READS)
                    .filter_map(|v| v.into_text())
                    .collect()
            })
            .collect();
        // Members that anonymous-only events resolve to through their device's stitch.
        let second: Vec<(String, SiteId, Subject)> = events
            .iter()
            .filter(|(_, e)| e.member_id.is_none())
            .filter_map(|(_, e)| {
                let device = self
                    .keys
                    .state(&e.site_id, &Subject::Anonymous(e.anonymous_id.clone()));
                let m = loaded.docs.get(&device)?.state.stitched_to.clone()?;
                let s = Subject::Member(MemberId::parse(m).ok()?);
                let key = self.keys.state(&e.site_id, &s);
                (!loaded.docs.contains_key(&key)).then_some((key, e.site_id.clone(), s))
            })
            .filter(|(k, _, _)| seen.insert(k.clone()))
            .collect();
        if !second.is_empty() {
            self.load_docs(&mut loaded, second).await?;
        }

        let inputs: Vec<Input<'_>> = events
            .iter()
            .zip(markers.into_iter().zip(marked))
            .map(|((m, e), (marker, marked))| Input {
                tp: format!("{}/{}", m.topic, m.partition),
                offset: m.offset,
                event: e,
                marker,
                marked,
            })
            .collect();
        let folded = folder.fold(&mut loaded, &inputs);

        if let Some(producer) = &self.changes {
            let sends = folded.changes.iter().map(|c| {
                let payload = serde_json::to_vec(c).expect("a change serialises");
                let key = format!("{}/{}", c.site_id, c.subject);
                async move { producer.send(&key, payload).await }
            });
            for r in join_all(sends).await {
                r.map_err(|e| Retry::Failed(format!("change event not delivered: {e}")))?;
            }
        }
        for c in &folded.changes {
            metrics::counter!("tailor_processor_changes_total", "kind" => c.kind.name())
                .increment(1);
        }

        // One pipeline, in this order: site updates, then documents (anonymous ones first: a stitch
        // must be visible before the member it points to absorbs it, see `fold`), then markers. A
        // marker names the message that set it, so one that lands while its document conflicts does
        // not turn the re-fold of the same message into a duplicate.
        let mut dirty: Vec<&Doc> = loaded.docs.values().filter(|d| d.dirty).collect();
        dirty.sort_by_key(|d| matches!(d.subject, Subject::Member(_)));
        // A site's updates go as one atomic step per partition and run of messages, each message's
        // ops still applied at most once under the site's watermark; where the run's messages
        // increment the same members, their sums go instead (`sum`), applied whole or refused.
        let (site_updates, runs): (Vec<Update>, Vec<Option<Update>>) =
            merge(folded.site_updates, MERGED_MESSAGES)
                .into_iter()
                .map(|u| match sum(&u) {
                    Some(summed) => (summed, Some(u)),
                    None => (u, None),
                })
                .unzip();
        if tailor_infra::failpoint("processor-after-site-updates") && !site_updates.is_empty() {
            // Tests: die where only the site's watermark prevents double counting on redelivery.
            self.store.apply(&site_updates).await?;
            tracing::warn!("failpoint processor-after-site-updates: aborting");
            std::process::abort();
        }
        let mut updates = Vec::new();
        if runs.iter().any(Option::is_some) {
            // Sums go first, in a round trip of their own: one refused because some of its messages
            // were applied before (a redelivery cut differently) goes again as its runs, so every
            // site effect has landed before any document of the batch does.
            let outcomes = self.store.apply(&site_updates).await?;
            let refused: Vec<Update> = outcomes
                .iter()
                .zip(runs)
                .filter(|(o, _)| **o == Applied::Conflict)
                .filter_map(|(_, r)| r)
                .collect();
            if !refused.is_empty() {
                metrics::counter!("tailor_processor_site_sums_refused_total")
                    .increment(refused.len() as u64);
                self.store.apply(&refused).await?;
            }
        } else {
            updates = site_updates;
        }
        let first_doc = updates.len();
        updates.extend(
            dirty
                .iter()
                .map(|d| doc_update(&self.keys, d, self.config.compact_storage)),
        );
        let docs = first_doc..updates.len();
        updates.extend(folded.markers);
        let outcomes = self.store.apply(&updates).await?;
        if outcomes[docs].contains(&Applied::Conflict) {
            metrics::counter!("tailor_processor_conflicts_total").increment(1);
            return Err(Retry::Conflict(folded.outcomes));
        }
        // Each event's fate under the id of the request that brought it (`X-Request-Id`), so one
        // event can be followed from the collector's log to here (RUST_LOG=tailor_processor=debug).
        for ((m, e), outcome) in events.iter().zip(&folded.outcomes) {
            if let Some(id) = &m.request_id {
                tracing::debug!(request_id = %id, event_id = %e.event_id, site = %e.site_id,
                    outcome = ?outcome, "event applied");
            }
        }
        Ok(folded.outcomes)
    }

    /// Processes one batch, retrying store failures until they succeed or shutdown is requested.
    /// Returns the outcome of each decodable event, or `None` if it gave up because of shutdown (then
    /// nothing may be committed).
    pub async fn apply_batch(
        &self,
        batch: &[Message],
        shutdown: &Shutdown,
    ) -> Option<Vec<Outcome>> {
        let events = Self::decode(batch);
        let mut backoff = Duration::from_millis(100);
        let mut conflicts = 0;
        // Outcomes of an earlier attempt cut short by a conflict: what it applied stays applied.
        let mut earlier: Option<Vec<Outcome>> = None;
        loop {
            let started = Instant::now();
            match self.attempt(&events).await {
                Ok(mut outcomes) => {
                    if let Some(prev) = earlier {
                        for (o, p) in outcomes.iter_mut().zip(prev) {
                            if *o == Outcome::BehindWatermark && p == Outcome::Applied {
                                *o = Outcome::Applied;
                            }
                        }
                    }
                    metrics::histogram!("tailor_processor_batch_duration_seconds")
                        .record(started.elapsed().as_secs_f64());
                    let now = chrono::Utc::now();
                    for ((_, e), outcome) in events.iter().zip(outcomes.iter().copied()) {
                        metrics::counter!("tailor_processor_events_total", "outcome" => outcome.as_str()).increment(1);
                        if outcome == Outcome::Applied {
                            let lag = (now - e.received_at).num_microseconds().unwrap_or(0).max(0)
                                as f64
                                / 1e6;
                            metrics::histogram!("tailor_processor_end_to_end_duration_seconds")
                                .record(lag);
                        }
                    }
                    return Some(outcomes);
                }
                Err(Retry::Conflict(outcomes)) if conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                    tracing::debug!(
                        conflicts,
                        "a document changed under the batch; folding again"
                    );
                    if earlier.is_none() {
                        earlier = Some(outcomes);
                    }
                }
                Err(err) => {
                    let reason = match err {
                        Retry::Conflict(_) => "documents kept changing under the batch".to_string(),
                        Retry::Failed(r) => r,
                    };
                    metrics::counter!("tailor_processor_store_retries_total").increment(1);
                    tracing::error!(error = %reason, retry_in_ms = backoff.as_millis() as u64, events = events.len(),
                        "batch not applied; retrying it (nothing is committed meanwhile)");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    conflicts = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_segments_that_no_longer_load_are_set_aside() {
        let site = SiteId::parse("demo".to_string()).unwrap();
        let def = |name: &str, rule: &str| {
            serde_json::to_string(&SegmentDef {
                name: name.into(),
                rule: rule.into(),
                description: None,
                site: Some("demo".into()),
            })
            .unwrap()
        };
        // Stored before rules were bounded: 21,000 `or` terms aborted the processor on the next event.
        let flat = vec!["member"; 21_000].join(" or ");
        let stored = HashMap::from([
            ("flood".to_string(), def("flood", &flat)),
            ("broken".to_string(), "{not json".to_string()),
            ("fine".to_string(), def("fine", "orders > 1")),
        ]);
        let names: Vec<String> = site_segments(&[], &stored, &site)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["fine"]);
    }

    /// On one backend, writing the compact forms or the earlier ones (`compact_storage`): a retry
    /// of an event (same id, another message) is dropped wherever its marker is, in the device's
    /// marker hash or under the key markers had before; the message that set a marker, redelivered,
    /// is not a duplicate of itself.
    async fn an_event_counts_once_whatever_message_brings_it(store: Arc<dyn Store>, compact: bool) {
        use tailor_core::event::RawEvent;
        let p = Processor {
            store,
            keys: KeySpace::new(tailor_infra::testkit::unique("ns")),
            config: ProcessorConfig {
                compact_storage: compact,
                ..Default::default()
            },
            segments: vec![],
            group: "g".into(),
            changes: None,
            offer_secret: tailor_core::config::DEV_OFFER_SECRET.into(),
        };
        let site = SiteId::parse("demo".to_string()).unwrap();
        let view = |id: &str| {
            RawEvent::from_json(serde_json::json!({"type": "page_view", "site_id": "demo",
                "anonymous_id": "dev", "event_id": id, "item_id": "sku"}))
            .unwrap()
            .validate(chrono::Utc::now())
            .unwrap()
        };
        let message = |offset: i64, e: &Event| Message {
            topic: "t".into(),
            partition: 3,
            offset,
            payload: serde_json::to_vec(e).unwrap(),
            request_id: None,
        };
        let shutdown = Shutdown::new();
        let first = view("e1");
        let out = p.apply_batch(&[message(1, &first)], &shutdown).await;
        assert_eq!(out, Some(vec![Outcome::Applied]));
        let slot = p.folder().marker(&first);
        let stored = p
            .store
            .read(&[
                Read::Hash(slot.own().to_string()),
                Read::Get(slot.legacy.clone()),
            ])
            .await
            .unwrap();
        if compact {
            let marker = HashMap::from([(slot.field.clone(), "3@1".to_string())]);
            assert_eq!(stored, [Value::Hash(marker), Value::Text(None)]);
        } else {
            let marker = Some("t/3@1".to_string());
            assert_eq!(stored, [Value::Hash(HashMap::new()), Value::Text(marker)]);
        }
        // A retry: the same event at a later offset, received again by the collector.
        let retry = view("e1");
        let out = p.apply_batch(&[message(7, &retry)], &shutdown).await;
        assert_eq!(out, Some(vec![Outcome::DuplicateEvent]));
        // An event whose marker was written by an earlier version, as a key of its own.
        let old = view("e2");
        let slot = p.folder().marker(&old);
        p.store
            .apply(&[Update {
                ops: vec![WriteOp::Put {
                    key: slot.legacy.clone(),
                    value: "t/3@2".into(),
                    ttl_secs: Some(60),
                }],
                ..Default::default()
            }])
            .await
            .unwrap();
        let out = p
            .apply_batch(&[message(8, &old), message(9, &view("e3"))], &shutdown)
            .await;
        assert_eq!(out, Some(vec![Outcome::DuplicateEvent, Outcome::Applied]));
        // The message that wrote the marker is not a duplicate of itself (its document decides:
        // already applied, so it is behind the document's watermark).
        let out = p.apply_batch(&[message(1, &first)], &shutdown).await;
        assert_ne!(out, Some(vec![Outcome::DuplicateEvent]));
        let state_key = p.keys.state(&site, &Subject::parse("a:dev").unwrap());
        let mut stored = p
            .store
            .read(&[
                Read::Field(state_key.clone(), "doc".into()),
                Read::Field(state_key, "reco".into()),
            ])
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.into_text().unwrap());
        let (doc, reco) = (stored.next().unwrap(), stored.next().unwrap());
        assert_eq!(
            doc.starts_with(tailor_core::stored::TAG),
            compact,
            "{doc:?}"
        );
        assert_eq!(
            reco.starts_with(tailor_core::stored::TAG),
            compact,
            "{reco:?}"
        );
        let summary: tailor_core::state::RecoView = tailor_core::stored::parse(&reco).unwrap();
        assert_eq!(summary.recent, ["sku"]);
        let state = SubjectState::from_stored(&doc).unwrap();
        assert_eq!(state.events["page_view"], 2, "e1 and e3, once each");
    }

    #[tokio::test]
    async fn a_retried_event_counts_once_embedded_and_on_redis() {
        for compact in [true, false] {
            let memory = tailor_infra::store::memory::MemoryStore::new();
            an_event_counts_once_whatever_message_brings_it(Arc::new(memory), compact).await;
            let redis = tailor_infra::store::redis::RedisStore::connect(
                &tailor_infra::testkit::redis_url(),
            )
            .await
            .unwrap();
            an_event_counts_once_whatever_message_brings_it(Arc::new(redis), compact).await;
        }
    }

    /// A batch's site effects go summed (one view of a popular item by each of several visitors is
    /// one increment of it); redelivered cut differently after a crash between the site's writes and
    /// the documents', the sum is refused and its runs count exactly the new messages.
    async fn a_summed_batch_redelivered_cut_differently_counts_each_view_once(
        store: Arc<dyn Store>,
    ) {
        use tailor_core::event::RawEvent;
        let p = Processor {
            store,
            keys: KeySpace::new(tailor_infra::testkit::unique("ns")),
            config: ProcessorConfig::default(),
            segments: vec![],
            group: "g".into(),
            changes: None,
            offer_secret: tailor_core::config::DEV_OFFER_SECRET.into(),
        };
        let site = SiteId::parse("demo".to_string()).unwrap();
        let message = |offset: i64| {
            let e = RawEvent::from_json(serde_json::json!({"type": "page_view", "site_id": "demo",
                "anonymous_id": format!("dev{offset}"), "event_id": format!("e{offset}"),
                "item_id": "sku"}))
            .unwrap()
            .validate(chrono::Utc::now())
            .unwrap();
            Message {
                topic: "t".into(),
                partition: 0,
                offset,
                payload: serde_json::to_vec(&e).unwrap(),
                request_id: None,
            }
        };
        let popular = || async {
            let got = p
                .store
                .read(&[Read::Top(p.keys.popular(&site), 5)])
                .await
                .unwrap();
            match &got[0] {
                Value::Top(top) => {
                    assert_eq!(top.len(), 1, "{top:?}");
                    top[0].1
                }
                other => panic!("{other:?}"),
            }
        };
        let shutdown = Shutdown::new();
        let batch: Vec<Message> = (1..=4).map(message).collect();
        let out = p.apply_batch(&batch, &shutdown).await.unwrap();
        assert_eq!(out, vec![Outcome::Applied; 4]);
        let view = popular().await / 4.0;
        assert!(view > 0.0);
        // As if the process had died after the site's writes and before two of the documents'.
        let lost: Vec<WriteOp> = [3, 4]
            .iter()
            .map(|n| WriteOp::Delete {
                key: p
                    .keys
                    .state(&site, &Subject::parse(&format!("a:dev{n}")).unwrap()),
            })
            .collect();
        for op in lost {
            let update = Update {
                ops: vec![op],
                ..Default::default()
            };
            p.store.apply(&[update]).await.unwrap();
        }
        let again: Vec<Message> = (3..=6).map(message).collect();
        let out = p.apply_batch(&again, &shutdown).await.unwrap();
        assert_eq!(
            out,
            vec![Outcome::Applied; 4],
            "3 and 4 are applied again to their documents"
        );
        assert_eq!(popular().await, 6.0 * view, "views 1 to 6 once each");
    }

    #[tokio::test]
    async fn a_summed_batch_redelivered_counts_once_embedded_and_on_redis() {
        let memory = tailor_infra::store::memory::MemoryStore::new();
        a_summed_batch_redelivered_cut_differently_counts_each_view_once(Arc::new(memory)).await;
        let redis =
            tailor_infra::store::redis::RedisStore::connect(&tailor_infra::testkit::redis_url())
                .await
                .unwrap();
        a_summed_batch_redelivered_cut_differently_counts_each_view_once(Arc::new(redis)).await;
    }
}
