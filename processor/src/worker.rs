//! The consumer loop: poll, plan, apply, commit, in that order.
//!
//! Invariant: an offset is committed only after the store has durably applied (or recognised as already
//! applied) every event before it. A store failure is retried with backoff and never skipped, so a Redis
//! outage stalls the partition instead of losing events. A crash between apply and commit redelivers the
//! batch, and the store's watermark and per-event markers turn the redelivery into no-ops.
//! A payload that is not a valid event (impossible from our collector, possible from a foreign producer)
//! is counted, logged with its position, and skipped, so it can never block the partition.

use crate::plan::{push_session_item, Planner};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailor_core::config::ProcessorConfig;
use tailor_core::event::Event;
use tailor_core::keys::KeySpace;
use tailor_core::ops::{Applied, Position, Update};
use tailor_infra::bus::{Consumer, Message, Offsets};
use tailor_infra::store::{Read, Store};
use tailor_infra::Shutdown;

/// How long an idle poll waits before checking for shutdown.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How often consumer lag is refreshed.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Everything the loop needs besides the consumer.
#[derive(Clone)]
pub struct Processor {
    pub store: Arc<dyn Store>,
    pub keys: KeySpace,
    pub config: ProcessorConfig,
    /// Consumer group name; with the topic and partition it names the watermark field.
    pub group: String,
}

impl Processor {
    fn planner(&self) -> Planner<'_> {
        Planner {
            keys: &self.keys,
            config: &self.config,
        }
    }

    /// Decodes a batch, dropping (and counting) payloads that are not events.
    fn decode(batch: &[Message]) -> Vec<(&Message, Event)> {
        batch
            .iter()
            .filter_map(|m| match serde_json::from_slice::<Event>(&m.payload) {
                Ok(e) => Some((m, e)),
                Err(err) => {
                    metrics::counter!("tailor_processor_events_total", "outcome" => "malformed").increment(1);
                    tracing::warn!(topic = %m.topic, partition = m.partition, offset = m.offset, error = %err,
                        "skipping a payload that is not a Tailor event");
                    None
                }
            })
            .collect()
    }

    /// Plans the updates of a batch, in order. Session lists are read once per batch and then carried
    /// forward in memory, so two views in one batch see each other.
    pub async fn plan_batch(
        &self,
        events: &[(&Message, Event)],
    ) -> Result<Vec<Update>, tailor_infra::store::StoreError> {
        let planner = self.planner();
        let mut session_keys: Vec<String> = events
            .iter()
            .filter_map(|(_, e)| planner.session_key(e))
            .collect();
        session_keys.sort();
        session_keys.dedup();
        let reads: Vec<Read> = session_keys
            .iter()
            .map(|k| Read::List(k.clone(), self.config.session_items as usize))
            .collect();
        let values = self.store.read(&reads).await?;
        let mut sessions: HashMap<String, Vec<String>> = session_keys
            .into_iter()
            .zip(values.into_iter().map(|v| v.into_list()))
            .collect();
        let mut updates = Vec::with_capacity(events.len());
        for (m, e) in events {
            let position = Some(Position {
                key: self.keys.offsets(&self.group),
                field: format!("{}/{}", m.topic, m.partition),
                offset: m.offset,
            });
            match planner.session_key(e) {
                Some(sk) => {
                    let list = sessions.entry(sk).or_default();
                    updates.push(planner.plan(e, list, position));
                    if let Some((item, _)) = e.item() {
                        push_session_item(list, item.as_str(), self.config.session_items);
                    }
                }
                None => updates.push(planner.plan(e, &[], position)),
            }
        }
        Ok(updates)
    }

    /// Plans and applies one batch, retrying store failures until they succeed or shutdown is requested.
    /// Returns false if it gave up because of shutdown (then nothing may be committed).
    async fn apply_batch(&self, batch: &[Message], shutdown: &Shutdown) -> bool {
        let events = Self::decode(batch);
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let result = match self.plan_batch(&events).await {
                Ok(updates) => self.store.apply(&updates).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(outcomes) => {
                    metrics::histogram!("tailor_processor_batch_duration_seconds")
                        .record(started.elapsed().as_secs_f64());
                    let now = chrono::Utc::now();
                    for ((_, e), outcome) in events.iter().zip(outcomes) {
                        metrics::counter!("tailor_processor_events_total", "outcome" => outcome.as_str()).increment(1);
                        if outcome == Applied::Applied {
                            let lag = (now - e.received_at).num_microseconds().unwrap_or(0).max(0)
                                as f64
                                / 1e6;
                            metrics::histogram!("tailor_processor_end_to_end_duration_seconds")
                                .record(lag);
                        }
                    }
                    return true;
                }
                Err(err) => {
                    metrics::counter!("tailor_processor_store_retries_total").increment(1);
                    tracing::error!(error = %err, retry_in_ms = backoff.as_millis() as u64, events = events.len(),
                        "profile store write failed; retrying the batch (nothing is committed meanwhile)");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Runs the loop until `shutdown`; on shutdown the batch in hand is finished and committed first.
pub async fn run(
    processor: Processor,
    mut consumer: Box<dyn Consumer>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    tracing::info!(topic = consumer.topic(), group = %processor.group, "processor started");
    let mut last_lag = Instant::now() - LAG_EVERY;
    while !shutdown.is_cancelled() {
        let batch = match consumer.poll(processor.config.batch_size, IDLE_POLL).await {
            Ok(b) => b,
            Err(e) => {
                metrics::counter!("tailor_processor_poll_errors_total").increment(1);
                tracing::warn!(error = %e, "poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if !batch.is_empty() {
            if !processor.apply_batch(&batch, &shutdown).await {
                break;
            }
            if let Err(e) = consumer.commit(&Offsets::after(&batch)).await {
                // Not fatal: the next commit covers these offsets, and a redelivery is a no-op.
                metrics::counter!("tailor_processor_commit_errors_total").increment(1);
                tracing::warn!(error = %e, "offset commit failed; it will be retried with the next batch");
            }
        }
        if last_lag.elapsed() >= LAG_EVERY {
            last_lag = Instant::now();
            match consumer.lag().await {
                Ok(lags) => {
                    for l in lags {
                        metrics::gauge!("tailor_processor_consumer_lag", "partition" => l.partition.to_string())
                            .set(l.lag as f64);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "could not read consumer lag"),
            }
        }
    }
    tracing::info!("processor stopped");
    Ok(())
}
