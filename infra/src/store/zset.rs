//! The embedded store's sorted set: Redis' semantics (members ranked by score, ties by member) with
//! its costs: O(log n) to add, change or remove a member, O(log n + k) for the k highest, O(excess
//! · log n) to keep the top. A member's score in a hash map, and the ranking in an ordered set; the
//! two share one allocation of the member (`Arc<str>`), so changing a member's score allocates
//! nothing. Shared models' scores tie constantly (co-visit counts are small integers), so ties are
//! ranked first by the member's first eight bytes as an integer, which orders as the bytes do, and
//! only then by the whole member: most tie-breaks compare two integers instead of two strings
//! (`memcmp` was 11% of the embedded processor's CPU).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use tailor_core::hash::FastHash;

/// A score with the total order Redis ranks by (`f64::total_cmp`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A member in the ranking: ordered exactly as its bytes, the first eight compared as one integer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    /// The first eight bytes, big-endian, zero-padded: a zero pad sorts a shorter member before a
    /// longer one it begins, and two members whose prefixes are equal are compared in full.
    prefix: u64,
    name: Arc<str>,
}

impl Member {
    fn new(name: Arc<str>) -> Member {
        let mut head = [0u8; 8];
        let n = name.len().min(8);
        head[..n].copy_from_slice(&name.as_bytes()[..n]);
        Member {
            prefix: u64::from_be_bytes(head),
            name,
        }
    }
}

impl PartialOrd for Member {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Member {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.name.as_bytes().cmp(other.name.as_bytes()))
    }
}

#[derive(Debug, Default)]
pub struct SortedSet {
    scores: HashMap<Arc<str>, f64, FastHash>,
    /// Ascending by (score, member), as `ZRANGE` answers.
    ranked: BTreeSet<(Score, Member)>,
}

impl SortedSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// `ZADD`: sets the member's score.
    pub fn insert(&mut self, member: &str, score: f64) {
        self.update(member, |_| score);
    }

    /// `ZINCRBY`.
    pub fn incr(&mut self, member: &str, by: f64) {
        self.update(member, |old| old.unwrap_or(0.0) + by);
    }

    /// Sets a member's score from its current one (`None`: not a member).
    fn update(&mut self, member: &str, score: impl FnOnce(Option<f64>) -> f64) {
        let (name, new) = match self.scores.get_key_value(member) {
            Some((name, &old)) => {
                let new = score(Some(old));
                if new == old {
                    return;
                }
                let name = name.clone();
                self.ranked.remove(&(Score(old), Member::new(name.clone())));
                (name, new)
            }
            None => (Arc::<str>::from(member), score(None)),
        };
        self.scores.insert(name.clone(), new);
        self.ranked.insert((Score(new), Member::new(name)));
    }

    /// `ZREM`.
    pub fn remove(&mut self, member: &str) {
        if let Some((name, old)) = self.scores.remove_entry(member) {
            self.ranked.remove(&(Score(old), Member::new(name)));
        }
    }

    /// `ZREMRANGEBYRANK key 0 -(keep+1)`: only the `keep` highest stay.
    pub fn keep_top(&mut self, keep: usize) {
        while self.ranked.len() > keep {
            if let Some((_, m)) = self.ranked.pop_first() {
                self.scores.remove(&m.name);
            }
        }
    }

    /// `ZREVRANGE key 0 n-1 WITHSCORES`: highest first, ties in reverse member order.
    pub fn top(&self, n: usize) -> Vec<(String, f64)> {
        self.ranked
            .iter()
            .rev()
            .take(n)
            .map(|(s, m)| (m.name.to_string(), s.0))
            .collect()
    }

    /// `ZRANGE key start stop WITHSCORES`: ascending, `start`/`stop` as in Redis (negative counts
    /// from the end).
    pub fn range(&self, start: isize, stop: isize) -> Vec<(String, f64)> {
        let n = self.len() as isize;
        let norm = |i: isize| if i < 0 { n + i } else { i };
        let (start, stop) = (norm(start).max(0), norm(stop).min(n - 1));
        if n == 0 || start > stop {
            return Vec::new();
        }
        self.ranked
            .iter()
            .skip(start as usize)
            .take((stop - start + 1) as usize)
            .map(|(s, m)| (m.name.to_string(), s.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_as_redis_does_through_every_change() {
        let mut z = SortedSet::default();
        z.insert("b", 2.0);
        z.insert("a", 2.0);
        z.incr("c", 1.0);
        z.incr("c", 2.5);
        z.insert("d", -1.0);
        z.insert("b", 2.0); // unchanged
        assert_eq!(z.len(), 4);
        assert_eq!(
            z.top(10),
            [
                ("c".into(), 3.5),
                ("b".into(), 2.0),
                ("a".into(), 2.0),
                ("d".into(), -1.0)
            ]
        );
        assert_eq!(z.range(0, 1), [("d".into(), -1.0), ("a".into(), 2.0)]);
        assert_eq!(z.range(-2, -1), [("b".into(), 2.0), ("c".into(), 3.5)]);
        assert!(z.range(3, 1).is_empty());
        z.remove("c");
        z.remove("nobody");
        assert_eq!(z.top(1), [("b".into(), 2.0)]);
        z.insert("a", 9.0);
        z.keep_top(2);
        assert_eq!(z.top(10), [("a".into(), 9.0), ("b".into(), 2.0)]);
        assert_eq!(z.len(), 2);
        z.keep_top(0);
        assert!(z.is_empty() && z.top(1).is_empty());
    }

    #[test]
    fn ties_rank_by_the_members_bytes_whatever_their_length() {
        // Members sharing their first eight bytes, shorter ones that begin longer ones, a NUL
        // where the padding is, bytes above 0x7F: every pair in byte order, as Redis ranks them.
        let mut names: Vec<String> = [
            "",
            "a",
            "a\0",
            "a\0b",
            "ab",
            "abcdefgh",
            "abcdefgh1",
            "abcdefgh0",
            "abcdefghi",
            "abcdefg",
            "b",
            "é",
            "i1",
            "i10",
            "i100",
            "i2",
            "s1/x-1",
            "s1/x-10",
            "s1/x-2",
        ]
        .map(String::from)
        .to_vec();
        let mut z = SortedSet::default();
        for n in &names {
            z.insert(n, 1.0);
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let ranked: Vec<String> = z.range(0, -1).into_iter().map(|(m, _)| m).collect();
        assert_eq!(ranked, names);
        // Changing and removing find the same entries again.
        z.incr("abcdefgh1", 1.0);
        z.remove("a\0");
        assert_eq!(z.top(1), [("abcdefgh1".to_string(), 2.0)]);
        assert_eq!(z.len(), names.len() - 1);
    }
}
