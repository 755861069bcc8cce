//! What the processor's loop says about itself, for `/healthz` and `/readyz`, and the one place its
//! partition gauges are emitted.
//!
//! - Liveness: the loop beats on every turn (a poll that returned, a batch applied and committed). A
//!   loop that has not beaten for its limit ([`STALL_LIMIT`] in production) is stuck: a batch retried
//!   against a store that never comes back, or a call that never returns. Then `/healthz` answers 503,
//!   so an orchestrator restarts the process rather than leaving it idle forever.
//! - Readiness means consuming: a member that owns no partition of the topic while its group has a
//!   backlog (records written and not committed) is not ready, and says so in
//!   `tailor_processor_assigned_partitions` and `tailor_processor_backlog`. Until the loop has looked
//!   at its partitions once, it is not ready either.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tailor_infra::bus::PartitionLag;

/// How long the loop may go without a beat before the process counts as stuck.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

/// See the module docs. Clones share one state.
#[derive(Clone)]
pub struct Health(Arc<Mutex<State>>);

struct State {
    beat: Instant,
    limit: Duration,
    /// Partitions owned and the group's backlog over the whole topic, once looked at.
    consumption: Option<(usize, i64)>,
}

impl Health {
    /// A loop that counts as stuck after `limit` without a beat.
    pub fn new(limit: Duration) -> Health {
        Health(Arc::new(Mutex::new(State {
            beat: Instant::now(),
            limit,
            consumption: None,
        })))
    }

    /// The loop made a turn.
    pub fn beat(&self) {
        self.0.lock().expect("health lock").beat = Instant::now();
    }

    /// Records the lag of every partition of the topic, and emits the partition gauges.
    pub fn observe(&self, lags: &[PartitionLag]) {
        let mut assigned = 0;
        let mut backlog = 0;
        for l in lags {
            backlog += l.lag;
            if l.assigned {
                assigned += 1;
                metrics::gauge!("tailor_processor_consumer_lag", "partition" => l.partition.to_string())
                    .set(l.lag as f64);
            }
        }
        metrics::gauge!("tailor_processor_assigned_partitions").set(assigned as f64);
        metrics::gauge!("tailor_processor_backlog").set(backlog as f64);
        self.0.lock().expect("health lock").consumption = Some((assigned, backlog));
    }

    /// Liveness: fails once the loop has not beaten within its limit.
    pub fn live(&self) -> Result<(), String> {
        let s = self.0.lock().expect("health lock");
        let quiet = s.beat.elapsed();
        if quiet > s.limit {
            return Err(format!(
                "the processor loop has made no progress for {} s (limit {} s)",
                quiet.as_secs(),
                s.limit.as_secs()
            ));
        }
        Ok(())
    }

    /// Readiness: fails unless the member is consuming (see the module docs).
    pub fn consuming(&self) -> Result<(), String> {
        match self.0.lock().expect("health lock").consumption {
            None => Err("the processor has not seen its partitions yet".into()),
            Some((0, backlog)) if backlog > 0 => Err(format!(
                "the processor owns no partition while its group has {backlog} records to process"
            )),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(partition: i32, lag: i64, assigned: bool) -> PartitionLag {
        PartitionLag {
            partition,
            lag,
            assigned,
        }
    }

    #[test]
    fn ready_only_when_consuming() {
        let h = Health::new(STALL_LIMIT);
        assert!(h.consuming().is_err(), "not looked yet");
        h.observe(&[lag(0, 0, false), lag(1, 0, false)]);
        assert!(h.consuming().is_ok(), "no partition but nothing to do");
        h.observe(&[lag(0, 7, false), lag(1, 0, false)]);
        let err = h.consuming().unwrap_err();
        assert!(
            err.contains("owns no partition") && err.contains('7'),
            "{err}"
        );
        h.observe(&[lag(0, 7, true), lag(1, 0, false)]);
        assert!(h.consuming().is_ok(), "owns a partition: working on it");
    }

    #[test]
    fn a_loop_without_beats_beyond_its_limit_is_stuck() {
        assert!(Health::new(STALL_LIMIT).live().is_ok());
        let stuck = Health::new(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        let err = stuck.live().unwrap_err();
        assert!(err.contains("no progress"), "{err}");
    }
}
