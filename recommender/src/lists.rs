//! The site's shared ranked lists (co-visits, followers, co-purchases, an item's recent sessions,
//! popular and trending items), each kept in memory for a moment after a store read.
//!
//! Every recommendation reads some twenty of these lists, and on a shop's traffic most requests ask
//! for the same popular items' lists: read from the store each time, their members were copied out
//! of the store (about a quarter of an embedded recommendation's CPU) or parsed from Redis' replies.
//! A list changes with every click on its item, so it is kept for a bounded time only
//! (`recommender.shared_list_cache_ms`, `recommender.session_index_cache_ms` for the session index):
//! an answer then reflects the shared models as they were at most that long ago. The member's own
//! summary (round trip 1: the session in progress, recent and bought items) is never cached, so a
//! visitor's own clicks show in the very next answer.
//!
//! Bounded ([`Generations`]: an approximate least-recently-used cache), keyed by the store key
//! (which names the site).

use metrics::Counter;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tailor_core::generations::Generations;

/// A ranked list as the store answered it (member, score), best first.
pub type SharedList = Arc<[(String, f64)]>;

/// Shared lists read a moment ago (see the module docs).
pub struct ListCache {
    ttl: Duration,
    // (read at, how many were asked for, the list)
    inner: Mutex<Generations<String, (Instant, usize, SharedList)>>,
    /// The cache's name in `tailor_recommender_cache_entries`.
    name: &'static str,
    /// `tailor_recommender_list_reads_total` from memory and from the store: taken on the first
    /// lookup (the recorder is installed by then), not looked up in the registry on each.
    reads: OnceLock<[Counter; 2]>,
}

impl ListCache {
    /// A cache of at most `bound` lists, each kept for `ttl` (a zero bound or ttl keeps none).
    pub fn new(name: &'static str, bound: usize, ttl: Duration) -> ListCache {
        let bound = if ttl.is_zero() { 0 } else { bound };
        ListCache {
            ttl,
            inner: Mutex::new(Generations::new(bound)),
            name,
            reads: OnceLock::new(),
        }
    }

    /// The list of `key` if it was read less than the ttl ago asking for at least `want` members
    /// (a list read for fewer may lack some of the ones wanted).
    pub fn lookup(&self, key: &str, want: usize) -> Option<SharedList> {
        let found = lock(&self.inner)
            .get(key)
            .filter(|(at, asked, _)| at.elapsed() < self.ttl && *asked >= want)
            .map(|(_, _, list)| list);
        let [memory, store] = self.reads.get_or_init(|| {
            ["memory", "store"].map(|from| {
                metrics::counter!("tailor_recommender_list_reads_total", "cache" => self.name, "from" => from)
            })
        });
        if found.is_some() { memory } else { store }.increment(1);
        found
    }

    /// Keeps a list just read from the store, asking for `asked` members.
    pub fn store(&self, key: String, asked: usize, list: SharedList) {
        let mut g = lock(&self.inner);
        g.put(key, (Instant::now(), asked, list));
        metrics::gauge!("tailor_recommender_cache_entries", "cache" => self.name)
            .set(g.len() as f64);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_kept_for_the_ttl_only_and_for_as_many_as_were_read() {
        let c = ListCache::new("t", 10, Duration::from_millis(50));
        c.store("demo:x".into(), 5, Arc::from(vec![("a".to_string(), 1.0)]));
        assert_eq!(c.lookup("demo:x", 5).unwrap()[0].0, "a");
        assert!(
            c.lookup("demo:x", 3).is_some(),
            "a shorter list is served from it"
        );
        assert!(
            c.lookup("demo:x", 10).is_none(),
            "read for 5, it may lack the 6th to 10th"
        );
        assert!(c.lookup("demo:y", 5).is_none());
        assert!(c.lookup("other:x", 5).is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.lookup("demo:x", 5).is_none(), "expired");
    }

    #[test]
    fn a_zero_ttl_or_bound_keeps_nothing() {
        for c in [
            ListCache::new("t", 10, Duration::ZERO),
            ListCache::new("t", 0, Duration::from_secs(1)),
        ] {
            c.store("demo:x".into(), 5, Arc::from(vec![("a".to_string(), 1.0)]));
            assert!(c.lookup("demo:x", 5).is_none());
        }
    }
}
