//! What session-based neighbours read, kept in memory across requests: the session index's lists
//! (an item's most recent sessions) for a moment, and past sessions' item lists until they change.
//!
//! Session-based neighbours are the largest reads of a recommendation: per session item its
//! `recommender.session_sample` most recent sessions (round trip 2), then the item lists of up to
//! that many sampled sessions (round trip 3).
//!
//! - [`SessionCache`]: a past session's list changes only with its next click. The session index
//!   scores a session, in each item's list, by its last click on that item, so a later score than
//!   the cached list's last click shows the list is stale; a click on an item the sample did not go
//!   through shows nowhere. So a cached list serves a session that has ended (no click for
//!   `recommender.session_timeout_mins` before the request) for as long as it is cached, and one
//!   that may still be going on for `recommender.session_index_cache_ms` after it was read, like
//!   the index's own lists.
//!
//! The session index's lists themselves are shared lists (`crate::lists`), kept for
//! `recommender.session_index_cache_ms`.
//!
//! Bounded ([`Generations`]: an approximate least-recently-used cache).

use crate::rank::session_knn::PastSession;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tailor_core::generations::Generations;
use tailor_core::SiteId;

/// A session's key: its site and id, apart by a character no id holds.
fn key_into(buf: &mut String, site: &SiteId, id: &str) {
    buf.clear();
    buf.push_str(site.as_str());
    buf.push('\0');
    buf.push_str(id);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Past sessions' item lists (see the module docs).
pub struct SessionCache {
    /// How long a list of a session that may still be going on is served.
    fresh: Duration,
    /// Quiet that ends a session (ms).
    ended_ms: f64,
    // (read at, the session)
    inner: Mutex<Generations<String, (Instant, Arc<PastSession>)>>,
}

impl SessionCache {
    /// A cache of at most `bound` sessions (0 keeps none), serving a session that may still be going
    /// on (a click less than `ended_ms` before the request) for `fresh` after it was read.
    pub fn new(bound: usize, fresh: Duration, ended_ms: f64) -> SessionCache {
        SessionCache {
            fresh,
            ended_ms,
            inner: Mutex::new(Generations::new(bound)),
        }
    }

    /// The cached sessions among `sampled` (session id, its latest score in the index) that are
    /// current at `now_ms`, in the sample's order, `None` where the store must be read.
    pub fn lookup(
        &self,
        site: &SiteId,
        sampled: &[(String, f64)],
        now_ms: f64,
    ) -> Vec<Option<Arc<PastSession>>> {
        let mut g = lock(&self.inner);
        let mut key = String::new();
        sampled
            .iter()
            .map(|(id, score)| {
                key_into(&mut key, site, id);
                g.get(key.as_str())
                    .filter(|(at, s)| {
                        s.last_ms >= *score
                            && (now_ms - s.last_ms > self.ended_ms || at.elapsed() < self.fresh)
                    })
                    .map(|(_, s)| s)
            })
            .collect()
    }

    /// Keeps sessions just read from the store.
    pub fn store(&self, site: &SiteId, read: &[Arc<PastSession>]) {
        let mut g = lock(&self.inner);
        let now = Instant::now();
        for s in read {
            let mut key = String::new();
            key_into(&mut key, site, &s.id);
            g.put(key, (now, s.clone()));
        }
        metrics::gauge!("tailor_recommender_cache_entries", "cache" => "sessions")
            .set(g.len() as f64);
    }

    /// Sessions held (both generations; an entry may be in both briefly).
    pub fn held(&self) -> usize {
        lock(&self.inner).len()
    }
}

/// An item's most recent sessions (session id, last click), newest first.
pub type RecentSessions = crate::lists::SharedList;

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, last_ms: f64, items: &[&str]) -> Arc<PastSession> {
        Arc::new(PastSession {
            id: id.into(),
            last_ms,
            items: items.iter().map(|i| i.to_string()).collect(),
        })
    }

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).unwrap()
    }

    /// Sessions end after 1,000 ms of quiet; one still going on is served for 50 ms.
    fn cache(bound: usize) -> SessionCache {
        SessionCache::new(bound, Duration::from_millis(50), 1_000.0)
    }

    #[test]
    fn an_ended_session_is_served_from_memory_until_it_shows_a_later_click() {
        let c = cache(10);
        let demo = site("demo");
        c.store(&demo, &[session("a", 100.0, &["x", "y"])]);
        let now = 5_000.0;
        let hit = c.lookup(&demo, &[("a".into(), 100.0), ("b".into(), 50.0)], now);
        assert_eq!(hit[0].as_ref().unwrap().items, ["x", "y"]);
        assert!(hit[1].is_none(), "never read");
        assert!(
            c.lookup(&demo, &[("a".into(), 90.0)], now)[0].is_some(),
            "sampled through an item it clicked before its last click"
        );
        // The session clicked again: the index shows a later click, so the list is stale.
        assert!(c.lookup(&demo, &[("a".into(), 120.0)], now)[0].is_none());
        // Another site's session of the same id is another session.
        assert!(c.lookup(&site("other"), &[("a".into(), 100.0)], now)[0].is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            c.lookup(&demo, &[("a".into(), 100.0)], now)[0].is_some(),
            "ended: kept however long ago it was read"
        );
    }

    #[test]
    fn a_session_that_may_still_be_going_on_is_served_for_a_moment_only() {
        let c = cache(10);
        let demo = site("demo");
        c.store(&demo, &[session("a", 100.0, &["x"])]);
        // 500 ms after its last click it may have clicked an item the sample did not go through.
        assert!(c.lookup(&demo, &[("a".into(), 100.0)], 600.0)[0].is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.lookup(&demo, &[("a".into(), 100.0)], 600.0)[0].is_none());
        assert!(
            c.lookup(&demo, &[("a".into(), 100.0)], 1_200.0)[0].is_some(),
            "once over, the list cannot change"
        );
    }

    #[test]
    fn the_cache_stays_within_its_bound_and_keeps_what_is_used() {
        let c = cache(4);
        let demo = site("demo");
        c.store(&demo, &[session("hot", 1.0, &["x"])]);
        for i in 0..100 {
            c.store(&demo, &[session(&format!("s{i}"), 1.0, &["y"])]);
            // Used on every request: it survives every generation change.
            assert!(
                c.lookup(&demo, &[("hot".into(), 1.0)], 5_000.0)[0].is_some(),
                "after {i}"
            );
            assert!(c.held() <= 4 + 1, "{} held", c.held());
        }
        assert!(
            c.lookup(&demo, &[("s0".into(), 1.0)], 5_000.0)[0].is_none(),
            "long unused: dropped"
        );
    }

    #[test]
    fn a_bound_of_zero_keeps_nothing() {
        let c = cache(0);
        let demo = site("demo");
        c.store(&demo, &[session("a", 1.0, &["x"])]);
        assert_eq!(c.held(), 0);
        assert!(c.lookup(&demo, &[("a".into(), 1.0)], 5_000.0)[0].is_none());
    }
}
