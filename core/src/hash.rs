//! The hasher of in-memory maps keyed by ids (items, sessions, store keys): foldhash, several times
//! faster than the standard library's SipHash on short keys, seeded per process so that crafted ids
//! cannot be aimed at one bucket from outside. SipHash was 15% of a recommendation's CPU.

use std::collections::{HashMap, HashSet};

pub type FastHash = foldhash::fast::RandomState;
pub type FastMap<K, V> = HashMap<K, V, FastHash>;
pub type FastSet<K> = HashSet<K, FastHash>;

/// An empty map with room for `n` entries.
pub fn map_with_capacity<K, V>(n: usize) -> FastMap<K, V> {
    HashMap::with_capacity_and_hasher(n, FastHash::default())
}

/// An empty set with room for `n` entries.
pub fn set_with_capacity<K>(n: usize) -> FastSet<K> {
    HashSet::with_capacity_and_hasher(n, FastHash::default())
}
