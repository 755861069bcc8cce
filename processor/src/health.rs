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
//! - A stuck group: when this member owns no partition, the group has a backlog, and nobody's
//!   committed offset has moved for [`REJOIN_AFTER`], nobody in the group is consuming (more
//!   members than partitions would still show someone's offsets moving). The loop then leaves and
//!   re-joins the group ([`GroupWatch`], `tailor_processor_rejoins_total`), which makes the
//!   coordinator hand the partitions out again. Seen with the test broker (Tansu 0.6), whose
//!   coordinator can leave a member that joined right after a killed one without partitions.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tailor_infra::bus::{Consumer, PartitionLag};

/// How long the loop may go without a beat before the process counts as stuck.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);
/// How long a group may sit on a backlog that nobody consumes before this member re-joins it.
pub const REJOIN_AFTER: Duration = Duration::from_secs(30);
/// How often a consuming loop reads its group's lag.
pub const LAG_EVERY: Duration = Duration::from_secs(5);

/// See the module docs. Clones share one state.
#[derive(Clone)]
pub struct Health(Arc<Mutex<State>>);

struct State {
    beat: Instant,
    limit: Duration,
    /// Partitions owned and the group's backlog over the whole topic, once looked at.
    consumption: Option<(usize, i64)>,
    group: GroupWatch,
}

/// Whether a consumer group sits on a backlog nobody consumes while this member owns nothing (see
/// the module docs); the actions stage keeps one for its own group.
#[derive(Debug, Default)]
pub struct GroupWatch {
    /// While this member owns nothing and the group has a backlog: the group's committed offsets
    /// (summed) and since when they have not moved.
    idle: Option<(i64, Instant)>,
}

impl GroupWatch {
    /// Looks at the lag of every partition of the topic.
    pub fn observe(&mut self, lags: &[PartitionLag]) {
        let owned = lags.iter().any(|l| l.assigned);
        let backlog: i64 = lags.iter().map(|l| l.lag).sum();
        let committed: i64 = lags.iter().map(|l| l.committed).sum();
        self.idle = match self.idle {
            _ if owned || backlog == 0 => None,
            Some((before, since)) if before == committed => Some((before, since)),
            _ => Some((committed, Instant::now())),
        };
    }

    /// Whether the group has been stuck for `after`. Asking resets the clock, so a member re-joins
    /// at most once per `after`.
    pub fn stuck(&mut self, after: Duration) -> bool {
        match self.idle {
            Some((_, since)) if since.elapsed() >= after => {
                self.idle = None;
                true
            }
            _ => false,
        }
    }
}

impl Health {
    /// A loop that counts as stuck after `limit` without a beat.
    pub fn new(limit: Duration) -> Health {
        Health(Arc::new(Mutex::new(State {
            beat: Instant::now(),
            limit,
            consumption: None,
            group: GroupWatch::default(),
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
        let mut s = self.0.lock().expect("health lock");
        s.consumption = Some((assigned, backlog));
        s.group.observe(lags);
    }

    /// Whether the processor's group has sat on a backlog nobody consumes, with this member owning
    /// nothing, for `after` (see [`GroupWatch`]).
    pub fn stuck_group(&self, after: Duration) -> bool {
        self.0.lock().expect("health lock").group.stuck(after)
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

/// Leaves and re-joins `consumer`'s group, which a [`GroupWatch`] found stuck; counted and logged
/// for `stage` (the processor, or the actions stage).
pub async fn rejoin(consumer: &mut dyn Consumer, stage: &str) {
    metrics::counter!("tailor_processor_rejoins_total").increment(1);
    tracing::warn!(
        stage,
        after_secs = REJOIN_AFTER.as_secs(),
        "the group has a backlog that nobody consumes and this member owns no partition: leaving and re-joining the group"
    );
    if let Err(e) = consumer.rejoin().await {
        tracing::warn!(stage, error = %e, "could not re-join the group; trying again later");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(partition: i32, lag: i64, assigned: bool) -> PartitionLag {
        PartitionLag {
            committed: 0,
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
    fn a_group_is_stuck_when_nobody_commits_while_it_has_a_backlog() {
        let at = |committed: i64, backlog: i64, assigned: bool| PartitionLag {
            partition: 0,
            lag: backlog,
            assigned,
            committed,
        };
        let h = Health::new(STALL_LIMIT);
        h.observe(&[at(10, 5, false)]);
        assert!(
            !h.stuck_group(Duration::from_millis(20)),
            "not for long yet"
        );
        std::thread::sleep(Duration::from_millis(25));
        h.observe(&[at(10, 5, false)]);
        assert!(h.stuck_group(Duration::from_millis(20)), "nobody moved");
        assert!(
            !h.stuck_group(Duration::ZERO),
            "once, then the clock restarts"
        );

        // Another member commits: the group is working, whatever this one owns.
        h.observe(&[at(10, 5, false)]);
        std::thread::sleep(Duration::from_millis(25));
        h.observe(&[at(12, 5, false)]);
        assert!(!h.stuck_group(Duration::from_millis(20)), "offsets moved");
        // Owning a partition, or nothing to do, is never stuck.
        h.observe(&[at(12, 5, true)]);
        std::thread::sleep(Duration::from_millis(25));
        assert!(!h.stuck_group(Duration::from_millis(20)));
        h.observe(&[at(12, 0, false)]);
        std::thread::sleep(Duration::from_millis(25));
        assert!(!h.stuck_group(Duration::from_millis(20)));
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
