//! The consumer loop: poll, hand each partition's slice of the batch to that partition's lane, and
//! commit what the lanes have applied.
//!
//! A lane is a task of its own per partition that applies its slices one after the other
//! ([`Processor::apply_batch`]: load, fold, emit, write). Lanes of different partitions run at the
//! same time, and the loop polls the next batch while they work, so one batch's store round trips
//! overlap the next one's read and fold (the processor was latency-bound: waiting on Redis and the
//! broker in turn, it used about half of each).
//!
//! Invariants:
//! * Within a partition, order is kept: a lane takes its slices in the order they were polled, and
//!   applies one only after the one before it is applied.
//! * An offset is committed only once its lane has applied every slice up to it: lanes report each
//!   slice applied, in their order, and the loop commits what was reported.
//! * Each lane holds at most `LANE_DEPTH` slices waiting: a slow partition holds the poll back
//!   instead of filling memory.
//! * On shutdown the loop stops polling, every lane finishes the slice it is applying (a lane that
//!   has not started a slice drops it: it is redelivered), and what was applied is committed.

use crate::worker::Processor;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailor_infra::bus::{Consumer, Message, Offsets};
use tailor_infra::Shutdown;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long an idle poll waits before checking for shutdown.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Slices a lane holds waiting beside the one it is applying.
const LANE_DEPTH: usize = 2;

/// What a lane reports after each slice: the offsets just past it, or `None` when it stopped
/// without applying it (shutdown during a store outage).
type Report = Option<Offsets>;

/// One partition's lane: where its slices go, and its task.
struct Lane {
    slices: mpsc::Sender<Vec<Message>>,
    task: JoinHandle<()>,
}

fn lane(
    processor: Arc<Processor>,
    shutdown: Shutdown,
    done: mpsc::UnboundedSender<Report>,
) -> Lane {
    let (slices, mut rx) = mpsc::channel::<Vec<Message>>(LANE_DEPTH);
    let task = tokio::spawn(async move {
        while let Some(slice) = rx.recv().await {
            if shutdown.is_cancelled() {
                break;
            }
            let offsets = Offsets::after(&slice);
            let applied = processor.apply_batch(&slice, &shutdown).await.is_some();
            let _ = done.send(applied.then_some(offsets));
            if !applied {
                break;
            }
        }
    });
    Lane { slices, task }
}

/// A batch cut per partition, each slice in its original order.
fn by_partition(batch: Vec<Message>) -> Vec<Vec<Message>> {
    let mut parts: Vec<Vec<Message>> = Vec::new();
    for m in batch {
        match parts.iter_mut().find(|p| p[0].partition == m.partition) {
            Some(p) => p.push(m),
            None => parts.push(vec![m]),
        }
    }
    parts
}

/// Takes the lanes' reports so far into `applied`; false if a lane stopped short.
fn collect(done: &mut mpsc::UnboundedReceiver<Report>, applied: &mut Offsets) -> bool {
    let mut ok = true;
    while let Ok(report) = done.try_recv() {
        match report {
            Some(o) => {
                for (p, next) in o.0 {
                    applied.advance(p, next);
                }
            }
            None => ok = false,
        }
    }
    ok
}

async fn commit(consumer: &mut dyn Consumer, applied: &mut Offsets) {
    if applied.0.is_empty() {
        return;
    }
    if let Err(e) = consumer.commit(applied).await {
        // Not fatal: the next commit covers these offsets, and a redelivery is a no-op.
        metrics::counter!("tailor_processor_commit_errors_total").increment(1);
        tracing::warn!(error = %e, "offset commit failed; it will be retried with the next batch");
    }
    applied.0.clear();
}

/// Runs the loop until `shutdown` (see the module docs). Every turn beats `health`, and the
/// partitions' lag is reported to it (see [`crate::health`]).
pub async fn run(
    processor: Processor,
    mut consumer: Box<dyn Consumer>,
    shutdown: Shutdown,
    health: crate::Health,
) -> anyhow::Result<()> {
    tracing::info!(topic = consumer.topic(), group = %processor.group, "processor started");
    let processor = Arc::new(processor);
    let (done_tx, mut done) = mpsc::unbounded_channel::<Report>();
    let mut lanes: HashMap<i32, Lane> = HashMap::new();
    let mut applied = Offsets::default();
    let mut last_lag = Instant::now() - crate::health::LAG_EVERY;
    while !shutdown.is_cancelled() {
        health.beat();
        if !collect(&mut done, &mut applied) {
            break;
        }
        commit(consumer.as_mut(), &mut applied).await;
        let batch = match consumer.poll(processor.config.batch_size, IDLE_POLL).await {
            Ok(b) => b,
            Err(e) => {
                metrics::counter!("tailor_processor_poll_errors_total").increment(1);
                tracing::warn!(error = %e, "poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        for slice in by_partition(batch) {
            let p = slice[0].partition;
            let lane = lanes
                .entry(p)
                .or_insert_with(|| lane(processor.clone(), shutdown.clone(), done_tx.clone()));
            // Waits while the lane is full; fails only if the lane stopped (it reported why).
            let _ = lane.slices.send(slice).await;
        }
        if last_lag.elapsed() >= crate::health::LAG_EVERY {
            last_lag = Instant::now();
            match consumer.lag().await {
                Ok(lags) => health.observe(&lags),
                Err(e) => tracing::debug!(error = %e, "could not read consumer lag"),
            }
            if health.stuck_group(crate::health::REJOIN_AFTER) {
                crate::health::rejoin(consumer.as_mut(), "processor").await;
            }
        }
    }
    // Each lane finishes the slice in hand; then what was applied is committed.
    for (_, l) in lanes.drain() {
        drop(l.slices);
        if let Err(e) = l.task.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
    collect(&mut done, &mut applied);
    commit(consumer.as_mut(), &mut applied).await;
    if let Err(e) = consumer.flush().await {
        tracing::warn!(error = %e, "final offset commit failed; the next start redelivers (and skips) what was applied");
    }
    tracing::info!("processor stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_cut_per_partition_in_order() {
        let m = |partition: i32, offset: i64| Message {
            topic: "t".into(),
            partition,
            offset,
            payload: Vec::new(),
            request_id: None,
        };
        let parts = by_partition(vec![m(1, 5), m(0, 9), m(1, 6), m(2, 1), m(0, 10)]);
        let cut: Vec<Vec<(i32, i64)>> = parts
            .iter()
            .map(|p| p.iter().map(|m| (m.partition, m.offset)).collect())
            .collect();
        assert_eq!(
            cut,
            vec![vec![(1, 5), (1, 6)], vec![(0, 9), (0, 10)], vec![(2, 1)]]
        );
    }

    #[test]
    fn reports_are_committed_as_the_furthest_offset_per_partition_and_a_stop_is_noticed() {
        let (tx, mut rx) = mpsc::unbounded_channel::<Report>();
        let at = |p: i32, next: i64| Some(Offsets([(p, next)].into_iter().collect()));
        tx.send(at(0, 10)).unwrap();
        tx.send(at(1, 4)).unwrap();
        tx.send(at(0, 25)).unwrap();
        let mut applied = Offsets::default();
        assert!(collect(&mut rx, &mut applied));
        assert_eq!(applied.0, [(0, 25), (1, 4)].into_iter().collect());
        tx.send(None).unwrap();
        assert!(!collect(&mut rx, &mut applied), "a lane stopped short");
    }
}
