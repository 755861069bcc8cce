//! A bounded map in two generations, the in-memory caches' eviction (the recommender's session
//! caches, the collector's parsed user agents): new and used entries go to a young generation, and
//! when it holds half the bound it becomes the old one, whose entries (unused for a whole generation)
//! are dropped. An approximate least-recently-used cache with a hash map's cost per lookup.

use crate::hash::FastMap;
use std::borrow::Borrow;
use std::hash::Hash;

pub struct Generations<K, V> {
    bound: usize,
    young: FastMap<K, V>,
    old: FastMap<K, V>,
}

impl<K: Hash + Eq, V: Clone> Generations<K, V> {
    /// At most `bound` entries (0 keeps none).
    pub fn new(bound: usize) -> Self {
        Generations {
            bound,
            young: FastMap::default(),
            old: FastMap::default(),
        }
    }

    /// The entry of `key`, made young again.
    pub fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.young.get(key) {
            return Some(v.clone());
        }
        let (k, v) = self.old.remove_entry(key)?;
        self.put(k, v.clone());
        Some(v)
    }

    pub fn put(&mut self, key: K, v: V) {
        if self.bound == 0 {
            return;
        }
        if self.young.len() >= self.bound.div_ceil(2) {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key, v);
    }

    /// Entries held (both generations).
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_entries_survive_and_the_bound_holds() {
        let mut g: Generations<String, u32> = Generations::new(4);
        g.put("hot".into(), 0);
        for i in 0..100 {
            g.put(format!("k{i}"), i);
            assert_eq!(g.get("hot"), Some(0), "after {i}");
            assert!(g.len() <= 4, "{} held", g.len());
        }
        assert_eq!(g.get("k0"), None, "long unused: dropped");
        let mut none: Generations<String, u32> = Generations::new(0);
        none.put("a".into(), 1);
        assert!(none.is_empty());
    }
}
