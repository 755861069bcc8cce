//! Session-based neighbours: V-SKNN (Ludewig & Jannach's "vector multiplication" session kNN, as in
//! session-rec's `VMContextKNN` with similarity `vec`, weighting `div`, weighting_score `div`, remind
//! on), the session-kNN family the literature finds hard to beat on shop traffic.
//!
//! Given the session in progress `s = [s_1 .. s_n]` (clicks, oldest first):
//! 1. *Sample*: the `sample` most recent past sessions sharing an item with `s`, by their last click
//!    on an item they share (within a session's span of their last click overall). The processor
//!    keeps, per item, its most recent sessions (`processor.session_index_size`), which is enough to
//!    find them (see `processor/src/fold/shared.rs`).
//! 2. *Similarity* of a past session `p`: Σ over the distinct items of `s` that `p` holds of the
//!    item's position weight (the j-th click weighs j / n, so the latest click of an item counts),
//!    divided by the number of distinct items of `s`.
//! 3. *Neighbours*: the `k` most similar.
//! 4. *Score* of an item `i`: Σ over neighbours holding `i` of similarity × 1 / d, where d is how many
//!    clicks back the newest item of `s` that the neighbour shares is (1 for the last click).
//!    Items of `s` itself stay candidates ("remind"): shoppers come back to what they viewed.
//!
//! With a `position_decay` λ (in clicks), each neighbour's items are further weighted by
//! exp(-|position of the item − position of that shared item| / λ) within the neighbour, as STAN
//! (Garg et al., SIGIR 2019) does: what a similar shopper viewed right around the shared item says
//! more about the next click than what they viewed much earlier or later. With a `recency_decay_ms`
//! λ₂, a neighbour's similarity is also weighted by exp(-(now − its last click) / λ₂) (STAN's second
//! factor: recent sessions say more about today's catalogue and tastes). [`Tuning::default`] is plain
//! V-SKNN. With a `click_decay` λ₁, the session's own clicks weigh exp(-clicks before the last / λ₁)
//! in the similarity instead of j / n (STAN's first factor: the last clicks say most about intent).

use super::{Candidate, Cause, Tally};
use std::collections::BinaryHeap;
use tailor_core::hash::{FastMap, FastSet};

/// Refinements over plain V-SKNN (all off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tuning {
    /// λ₁ in clicks: the session's own clicks weighted exp(-clicks before the last / λ₁) in the
    /// similarity, instead of V-SKNN's linear j / n.
    pub click_decay: Option<f64>,
    /// λ₃ in clicks: weight of a neighbour's item by its distance to the shared item.
    pub position_decay: Option<f64>,
    /// λ₂ in ms: weight of a neighbour by its age at `now_ms`.
    pub recency_decay_ms: Option<f64>,
    pub now_ms: f64,
}

impl Tuning {
    /// A neighbour's similarity weighted by its age at `now_ms` (λ₂), when set.
    fn aged(&self, sim: f64, last_ms: f64) -> f64 {
        match self.recency_decay_ms {
            Some(l) if l > 0.0 => sim * (-(self.now_ms - last_ms).max(0.0) / l).exp(),
            _ => sim,
        }
    }

    /// A neighbour's item's share of `base`, `distance` clicks from the shared item (λ₃), when set.
    fn near(&self, base: f64, distance: usize) -> f64 {
        match self.position_decay {
            Some(l) if l > 0.0 => base * (-(distance as f64) / l).exp(),
            _ => base,
        }
    }
}

/// Position weight of each distinct item of `session` (clicks, oldest first): its last click's
/// j / n, or STAN's exp(-(n - j) / λ₁) with a click decay. Kept in the session's order so that
/// similarities are summed in one order on every run (a hash map's order differs per process, and
/// floating-point sums with it: ties would not be broken the same way twice).
fn weights(session: &[String], click_decay: Option<f64>) -> Vec<(&str, f64)> {
    let n = session.len();
    let mut pos: Vec<(&str, f64)> = Vec::new();
    for (j, item) in session.iter().enumerate() {
        let w = match click_decay {
            Some(l) if l > 0.0 => (-((n - 1 - j) as f64) / l).exp(),
            _ => (j + 1) as f64 / n as f64,
        };
        match pos.iter_mut().find(|(i, _)| *i == item.as_str()) {
            Some(p) => p.1 = w,
            None => pos.push((item, w)),
        }
    }
    pos
}

/// A past session read from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct PastSession {
    pub id: String,
    /// Its last click (ms): recency for sampling.
    pub last_ms: f64,
    /// Its distinct items in the order of their last click.
    pub items: Vec<String>,
}

/// So the generator takes sessions held in place or shared (the recommender's cache).
impl AsRef<PastSession> for PastSession {
    fn as_ref(&self) -> &PastSession {
        self
    }
}

/// The sampled neighbourhood: from each item's recent sessions (id → last click, newest first as
/// the index answers), the `sample` most recent distinct sessions, each at its latest click. Ties by
/// id, for determinism.
///
/// The lists are merged newest first, so a session's first appearance is its latest click and the
/// merge stops once `sample` sessions are in hand: it reads about `sample` entries instead of every
/// list whole (sessions of ten items sampled 125 each were 15% of a recommendation's CPU).
pub fn sample(per_item: &[impl AsRef<[(String, f64)]>], sample: usize) -> Vec<(String, f64)> {
    if sample == 0 {
        return Vec::new();
    }
    // A list out of the index's order (a caller's own) is put in order first.
    let lists: Vec<std::borrow::Cow<[(String, f64)]>> = per_item
        .iter()
        .map(|l| {
            let l = l.as_ref();
            if l.windows(2).all(|w| w[0].1 >= w[1].1) {
                std::borrow::Cow::Borrowed(l)
            } else {
                let mut sorted = l.to_vec();
                sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
                std::borrow::Cow::Owned(sorted)
            }
        })
        .collect();
    let mut heads: BinaryHeap<Head> = lists
        .iter()
        .enumerate()
        .filter_map(|(list, l)| Head::at(l, list, 0))
        .collect();
    let mut seen: FastSet<&str> = tailor_core::hash::set_with_capacity(2 * sample);
    let mut out: Vec<(&str, f64)> = Vec::with_capacity(sample + 8);
    while let Some(h) = heads.pop() {
        // In hand: every session whose latest click is later than this one's. Sessions at exactly
        // the last time taken are still read so the tie-break by id below sees them all.
        if out.len() >= sample && out.last().is_some_and(|(_, t)| h.t < *t) {
            break;
        }
        if seen.insert(h.id) {
            out.push((h.id, h.t));
        }
        if let Some(next) = Head::at(&lists[h.list], h.list, h.pos + 1) {
            heads.push(next);
        }
    }
    out.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    out.truncate(sample);
    out.into_iter().map(|(i, t)| (i.to_string(), t)).collect()
}

/// The next unread entry of one list in [`sample`]'s merge: the latest click first.
struct Head<'a> {
    t: f64,
    id: &'a str,
    list: usize,
    pos: usize,
}

impl<'a> Head<'a> {
    fn at(l: &'a [(String, f64)], list: usize, pos: usize) -> Option<Head<'a>> {
        l.get(pos).map(|(id, t)| Head {
            t: *t,
            id,
            list,
            pos,
        })
    }
}

impl PartialEq for Head<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Head<'_> {}

impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head<'_> {
    /// The heap's greatest: the latest click, then the smaller id.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.t
            .total_cmp(&other.t)
            .then_with(|| other.id.cmp(self.id))
    }
}

/// A past session similar to the one in progress.
struct Neighbour<'a> {
    past: &'a PastSession,
    sim: f64,
    /// How many clicks back the newest click of the session it shares is (0: the last click) ...
    step: usize,
    /// ... that click's item ...
    shared: &'a str,
    /// ... and where the past session holds it.
    at: usize,
}

/// V-SKNN candidates for `session` (clicks, oldest first) from the sampled past sessions; see the
/// module docs. The reason names the session's item that the best neighbours share. In no
/// particular order.
pub fn generate<'a>(
    session: &'a [String],
    past: &'a [impl AsRef<PastSession>],
    k: usize,
    tuning: Tuning,
) -> Vec<Candidate<'a>> {
    let n = session.len();
    if n == 0 || k == 0 {
        return Vec::new();
    }
    let pos = weights(session, tuning.click_decay);
    let distinct = pos.len() as f64;
    // Each distinct item's place in `pos`, and how many clicks back its last click is.
    let index: FastMap<&str, usize> = pos.iter().enumerate().map(|(k, (i, _))| (*i, k)).collect();
    let mut back = vec![usize::MAX; pos.len()];
    for (step, item) in session.iter().rev().enumerate() {
        let k = index[item.as_str()];
        back[k] = back[k].min(step);
    }
    // Per past session, where it holds each of the session's items (one pass over its items, not
    // one scan of them per item of the session).
    let mut held = vec![usize::MAX; pos.len()];
    let mut neighbours: Vec<Neighbour> = past
        .iter()
        .map(AsRef::as_ref)
        .filter_map(|p| {
            held.fill(usize::MAX);
            for (j, item) in p.items.iter().enumerate() {
                if let Some(&k) = index.get(item.as_str()) {
                    held[k] = held[k].min(j);
                }
            }
            // Summed in the session's order (see above).
            let sim: f64 = pos
                .iter()
                .zip(&held)
                .filter(|(_, at)| **at != usize::MAX)
                .map(|((_, w), _)| w)
                .sum::<f64>()
                / distinct;
            let sim = tuning.aged(sim, p.last_ms);
            // The newest click of the session that it shares, and where it holds that item.
            let (step, shared, at) = (0..pos.len())
                .filter(|&k| held[k] != usize::MAX)
                .map(|k| (back[k], k, held[k]))
                .min()?;
            (sim > 0.0).then_some(Neighbour {
                past: p,
                sim,
                step,
                shared: pos[shared].0,
                at,
            })
        })
        .collect();
    // Sampled sessions are distinct: (similarity, id) is a total order.
    neighbours.sort_unstable_by(|a, b| {
        b.sim
            .total_cmp(&a.sim)
            .then_with(|| a.past.id.cmp(&b.past.id))
    });
    neighbours.truncate(k);
    let mut tally = Tally::with_capacity(neighbours.iter().map(|nb| nb.past.items.len()).sum());
    for nb in neighbours {
        // Decay by how recent the newest shared click is (1 / steps back).
        let base = nb.sim / (nb.step + 1) as f64;
        for (j, item) in nb.past.items.iter().enumerate() {
            tally.add(item, tuning.near(base, j.abs_diff(nb.at)), nb.shared);
        }
    }
    tally.into_candidates(Cause::Item)
}

#[cfg(test)]
mod tests {
    use super::super::ranked;
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|i| i.to_string()).collect()
    }

    fn past(id: &str, t: f64, items: &[&str]) -> PastSession {
        PastSession {
            id: id.into(),
            last_ms: t,
            items: items.iter().map(|i| i.to_string()).collect(),
        }
    }

    #[test]
    fn position_decay_favours_items_clicked_near_the_shared_one() {
        let session = s(&["a"]);
        let n = [past("p", 1.0, &["far", "a", "near", "x2"])];
        let plain = generate(&session, &n, 5, Tuning::default());
        assert!(
            plain.iter().all(|c| c.score == 1.0),
            "V-SKNN weighs a neighbour's items alike"
        );
        let stan = generate(
            &session,
            &n,
            5,
            Tuning {
                position_decay: Some(1.0),
                ..Default::default()
            },
        );
        let score = |i: &str| stan.iter().find(|c| c.item_id == i).unwrap().score;
        assert_eq!(score("a"), 1.0);
        assert!((score("near") - (-1.0f64).exp()).abs() < 1e-12);
        assert_eq!(
            score("near"),
            score("far"),
            "one click before or after alike"
        );
        assert!(score("x2") < score("near"));
    }

    #[test]
    fn sample_keeps_the_most_recent_distinct_sessions() {
        let per_item = vec![
            vec![("p1".to_string(), 5.0), ("p2".to_string(), 9.0)],
            vec![("p2".to_string(), 9.0), ("p3".to_string(), 1.0)],
        ];
        assert_eq!(
            sample(&per_item, 2),
            vec![("p2".to_string(), 9.0), ("p1".to_string(), 5.0)]
        );
    }

    /// The merge against its definition (every list whole: each session's latest click, the most
    /// recent first, ties by id) on lists with many ties, in the index's order or not.
    #[test]
    fn sample_merges_to_what_reading_every_list_whole_gives() {
        fn whole(per_item: &[Vec<(String, f64)>], n: usize) -> Vec<(String, f64)> {
            let mut latest: std::collections::HashMap<&str, f64> = Default::default();
            for (id, t) in per_item.iter().flatten() {
                let e = latest.entry(id).or_insert(*t);
                *e = e.max(*t);
            }
            let mut v: Vec<(String, f64)> = latest
                .into_iter()
                .map(|(i, t)| (i.to_string(), t))
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(n);
            v
        }
        let mut seed = 7u64;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for round in 0..300 {
            let lists = 1 + next(6) as usize;
            let per_item: Vec<Vec<(String, f64)>> = (0..lists)
                .map(|_| {
                    let mut l: Vec<(String, f64)> = (0..next(12))
                        .map(|_| (format!("s{}", next(20)), next(8) as f64))
                        .collect();
                    l.sort_by(|a, b| a.0.cmp(&b.0));
                    l.dedup_by(|a, b| a.0 == b.0);
                    if round % 3 != 0 {
                        // The index's order: newest first, ties by id descending as ZREVRANGE.
                        l.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
                    }
                    l
                })
                .collect();
            let n = next(15) as usize;
            assert_eq!(sample(&per_item, n), whole(&per_item, n), "round {round}");
        }
    }

    /// `generate` as first written (every session item looked up by scanning each neighbour's
    /// items), the reference the one-pass form must match bit for bit.
    fn generate_by_scans<'a>(
        session: &'a [String],
        past: &'a [PastSession],
        k: usize,
        tuning: Tuning,
    ) -> Vec<Candidate<'a>> {
        let position = |p: &PastSession, item: &str| p.items.iter().position(|i| i == item);
        let pos = weights(session, tuning.click_decay);
        let distinct = pos.len() as f64;
        let mut neighbours: Vec<(&PastSession, f64)> = past
            .iter()
            .filter_map(|p| {
                let sim: f64 = pos
                    .iter()
                    .filter(|(i, _)| position(p, i).is_some())
                    .map(|(_, w)| w)
                    .sum::<f64>()
                    / distinct;
                let sim = tuning.aged(sim, p.last_ms);
                (sim > 0.0).then_some((p, sim))
            })
            .collect();
        neighbours.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.id.cmp(&b.0.id)));
        neighbours.truncate(k);
        let mut tally = Tally::with_capacity(0);
        for (p, sim) in neighbours {
            let Some((step, shared, at)) = session
                .iter()
                .rev()
                .enumerate()
                .find_map(|(step, i)| position(p, i).map(|at| (step, i, at)))
            else {
                continue;
            };
            let base = sim / (step + 1) as f64;
            for (j, item) in p.items.iter().enumerate() {
                tally.add(item, tuning.near(base, j.abs_diff(at)), shared.as_str());
            }
        }
        tally.into_candidates(Cause::Item)
    }

    #[test]
    fn one_pass_over_each_neighbour_matches_scanning_it_per_item() {
        let mut seed = 11u64;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        let tunings = [
            Tuning::default(),
            Tuning {
                position_decay: Some(2.0),
                recency_decay_ms: Some(50.0),
                click_decay: Some(3.0),
                now_ms: 100.0,
            },
        ];
        for round in 0..300 {
            let session: Vec<String> = (0..1 + next(12))
                .map(|_| format!("i{}", next(15)))
                .collect();
            let past: Vec<PastSession> = (0..next(40))
                .map(|s| {
                    let mut items: Vec<String> = (0..1 + next(10))
                        .map(|_| format!("i{}", next(15)))
                        .collect();
                    items.dedup();
                    PastSession {
                        id: format!("s{s}"),
                        last_ms: next(100) as f64,
                        items,
                    }
                })
                .collect();
            let k = next(30) as usize;
            let tuning = tunings[round % 2];
            assert_eq!(
                ranked(generate(&session, &past, k, tuning)),
                ranked(generate_by_scans(&session, &past, k, tuning)),
                "round {round}"
            );
        }
    }

    #[test]
    fn similarity_weighs_later_clicks_and_decay_follows_the_newest_shared_click() {
        // Session a, b (b is the last click: weight 1, a: 1/2); two distinct items.
        let session = s(&["a", "b"]);
        let neighbours = vec![
            past("shares_b", 2.0, &["b", "x"]), // sim (1)/2 = 0.5, decay 1 → x: 0.5
            past("shares_a", 1.0, &["a", "y"]), // sim (1/2)/2 = 0.25, decay 1/2 → y: 0.125
        ];
        let out = generate(&session, &neighbours, 10, Tuning::default());
        let score = |i: &str| out.iter().find(|c| c.item_id == i).map(|c| c.score);
        assert_eq!(score("x"), Some(0.5));
        assert_eq!(score("y"), Some(0.125));
        // Remind: the session's own items are candidates too.
        assert_eq!(score("b"), Some(0.5));
        assert_eq!(score("a"), Some(0.125));
        assert_eq!(
            out.iter().find(|c| c.item_id == "y").unwrap().because,
            Cause::Item("a")
        );
    }

    #[test]
    fn only_the_k_most_similar_sessions_vote() {
        let session = s(&["a", "b"]);
        let neighbours = vec![
            past("both", 1.0, &["a", "b", "x"]), // sim 0.75
            past("only_a", 9.0, &["a", "y"]),    // sim 0.25
        ];
        let out = generate(&session, &neighbours, 1, Tuning::default());
        assert!(out.iter().any(|c| c.item_id == "x"));
        assert!(!out.iter().any(|c| c.item_id == "y"));
        assert!(generate(&[], &neighbours, 5, Tuning::default()).is_empty());
    }

    #[test]
    fn repeated_clicks_count_at_their_last_position() {
        // a, b, a: a's weight is 3/3, b's 2/3; two distinct items.
        let (session, p) = (s(&["a", "b", "a"]), [past("p", 1.0, &["b", "z"])]);
        let out = generate(&session, &p, 5, Tuning::default());
        let z = out.iter().find(|c| c.item_id == "z").unwrap();
        // sim = (2/3)/2 = 1/3; the newest shared click (b) is 2 clicks back → 1/2.
        assert!((z.score - 1.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn click_decay_weighs_the_sessions_clicks_exponentially() {
        // a, b, c: with λ₁ = 1, b (one click before the last) weighs e^-1 instead of 2/3.
        let t = Tuning {
            click_decay: Some(1.0),
            ..Default::default()
        };
        let (session, p) = (s(&["a", "b", "c"]), [past("p", 1.0, &["b", "z"])]);
        let out = generate(&session, &p, 5, t);
        let z = out.iter().find(|c| c.item_id == "z").unwrap();
        // sim = e^-1 / 3 distinct items; the shared b is 2 clicks back → 1/2.
        assert!((z.score - (-1.0f64).exp() / 3.0 / 2.0).abs() < 1e-12);
        let plain = generate(&session, &p, 5, Tuning::default());
        let z = plain.iter().find(|c| c.item_id == "z").unwrap();
        assert!((z.score - (2.0 / 3.0) / 3.0 / 2.0).abs() < 1e-12);
    }

    #[test]
    fn scores_are_the_same_bits_on_every_call() {
        // Similarities summed in a hash map's order differed in the last bit from map to map (each
        // map has its own seed), and ties then fell differently from run to run.
        let session = s(&["a", "b", "c", "d", "e", "f", "g", "b", "h", "c", "i"]);
        let n = [
            past("p", 1.0, &["a", "c", "e", "g", "i", "x"]),
            past("q", 2.0, &["b", "d", "f", "h", "y"]),
        ];
        let bits = || -> Vec<(&str, u64)> {
            ranked(generate(&session, &n, 5, Tuning::default()))
                .into_iter()
                .map(|c| (c.item_id, c.score.to_bits()))
                .collect()
        };
        let first = bits();
        for _ in 0..200 {
            assert_eq!(bits(), first);
        }
    }

    #[test]
    fn recency_decay_favours_recent_neighbours() {
        let session = s(&["a"]);
        let n = [
            past("old", 0.0, &["a", "x"]),
            past("new", 100.0, &["a", "y"]),
        ];
        let t = Tuning {
            recency_decay_ms: Some(100.0),
            now_ms: 100.0,
            ..Default::default()
        };
        let out = generate(&session, &n, 5, t);
        let score = |i: &str| out.iter().find(|c| c.item_id == i).unwrap().score;
        assert_eq!(score("y"), 1.0);
        assert!((score("x") - (-1.0f64).exp()).abs() < 1e-12);
        // Only the k most similar vote, similarity after the decay.
        let top1 = generate(&session, &n, 1, t);
        assert!(top1.iter().any(|c| c.item_id == "y") && !top1.iter().any(|c| c.item_id == "x"));
    }
}
