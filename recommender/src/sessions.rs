//! Past sessions' item lists kept in memory across requests.
//!
//! Session-based neighbours read the items of up to `recommender.session_sample` past sessions per
//! request: the largest read of a recommendation, and nearly always the same lists, since a past
//! session's list changes only with its next click. The session index the sample comes from scores
//! each session by its last click, so a cached list is current exactly when it was read at the
//! sampled last click: only the sessions that moved since (and those never seen) are read. (Two
//! clicks of one session in the same millisecond share a last click: a list read between them is
//! served without the second until the session's next click.)
//!
//! Bounded at `recommender.session_cache` entries in two generations: new and used entries go to
//! the young one, and when it holds half the bound it becomes the old one (whose entries, unused
//! for a whole generation, are dropped). An approximate least-recently-used cache with a hash map's
//! cost per lookup and no per-entry bookkeeping.

use crate::rank::session_knn::PastSession;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tailor_core::SiteId;

type Key = (SiteId, String);

#[derive(Default)]
struct Generations {
    young: HashMap<Key, Arc<PastSession>>,
    old: HashMap<Key, Arc<PastSession>>,
}

pub struct SessionCache {
    bound: usize,
    inner: Mutex<Generations>,
}

impl SessionCache {
    /// A cache of at most `bound` sessions (0 keeps none).
    pub fn new(bound: usize) -> SessionCache {
        SessionCache {
            bound,
            inner: Mutex::default(),
        }
    }

    /// The cached sessions among `sampled` (session id, last click) that are current, in the
    /// sample's order, `None` where the store must be read.
    pub fn lookup(
        &self,
        site: &SiteId,
        sampled: &[(String, f64)],
    ) -> Vec<Option<Arc<PastSession>>> {
        if self.bound == 0 {
            return vec![None; sampled.len()];
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut promoted = Vec::new();
        let found = sampled
            .iter()
            .map(|(id, last_ms)| {
                let key = (site.clone(), id.clone());
                let hit = match g.young.get(&key) {
                    Some(s) => Some(s.clone()),
                    None => g
                        .old
                        .get(&key)
                        .cloned()
                        .inspect(|s| promoted.push((key, s.clone()))),
                };
                hit.filter(|s| s.last_ms == *last_ms)
            })
            .collect();
        for (key, s) in promoted {
            g.old.remove(&key);
            Self::put(&mut g, self.bound, key, s);
        }
        found
    }

    /// Keeps sessions just read from the store.
    pub fn store(&self, site: &SiteId, read: &[Arc<PastSession>]) {
        if self.bound == 0 || read.is_empty() {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for s in read {
            Self::put(&mut g, self.bound, (site.clone(), s.id.clone()), s.clone());
        }
    }

    fn put(g: &mut Generations, bound: usize, key: Key, s: Arc<PastSession>) {
        if g.young.len() >= bound.div_ceil(2) {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(key, s);
    }

    /// Sessions held (both generations; an entry may be in both briefly).
    pub fn held(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.young.len() + g.old.len()
    }
}

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

    #[test]
    fn a_session_is_served_from_memory_until_its_next_click() {
        let c = SessionCache::new(10);
        let demo = site("demo");
        c.store(&demo, &[session("a", 100.0, &["x", "y"])]);
        let hit = c.lookup(&demo, &[("a".into(), 100.0), ("b".into(), 50.0)]);
        assert_eq!(hit[0].as_ref().unwrap().items, ["x", "y"]);
        assert!(hit[1].is_none(), "never read");
        // The session clicked again: the index shows a later last click, so the list is stale.
        assert!(c.lookup(&demo, &[("a".into(), 120.0)])[0].is_none());
        // Another site's session of the same id is another session.
        assert!(c.lookup(&site("other"), &[("a".into(), 100.0)])[0].is_none());
    }

    #[test]
    fn the_cache_stays_within_its_bound_and_keeps_what_is_used() {
        let c = SessionCache::new(4);
        let demo = site("demo");
        c.store(&demo, &[session("hot", 1.0, &["x"])]);
        for i in 0..100 {
            c.store(&demo, &[session(&format!("s{i}"), 1.0, &["y"])]);
            // Used on every request: it survives every generation change.
            assert!(
                c.lookup(&demo, &[("hot".into(), 1.0)])[0].is_some(),
                "after {i}"
            );
            assert!(c.held() <= 4 + 1, "{} held", c.held());
        }
        assert!(
            c.lookup(&demo, &[("s0".into(), 1.0)])[0].is_none(),
            "long unused: dropped"
        );
    }

    #[test]
    fn a_bound_of_zero_keeps_nothing() {
        let c = SessionCache::new(0);
        let demo = site("demo");
        c.store(&demo, &[session("a", 1.0, &["x"])]);
        assert_eq!(c.held(), 0);
        assert!(c.lookup(&demo, &[("a".into(), 1.0)])[0].is_none());
    }
}
