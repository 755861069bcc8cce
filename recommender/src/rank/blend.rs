//! The blend: one score per item from every generator's list, diversity, and the reason shown.
//!
//! `score(item) = Σ_source weight(source) × score_source(item) / best score of that source`, so every
//! source's best candidate is worth exactly its weight. The reason is the source and seed of the
//! largest single contribution. Diversity (after the business rules) walks the list best first and
//! skips an item whose category already has `max_per_category` items in the answer (items of no
//! known category, and pinned items, are never skipped), before truncating to the limit.

use super::{by_rank, Because, Cause, Generated, Source};
use std::collections::BinaryHeap;
use tailor_core::hash::FastMap;

/// A blended, ranked item.
#[derive(Debug, Clone, PartialEq)]
pub struct Blended {
    pub item_id: String,
    pub score: f64,
    /// The source and cause of the largest contribution.
    pub source: Source,
    pub because: Because,
}

/// Blends generators' lists with per-source weights (a source absent from `weights`, or weighted 0,
/// contributes nothing). Returns every item with a positive score, best first, ties by item id.
pub fn blend(generated: &[Generated], weight: impl Fn(Source) -> f64) -> Vec<Blended> {
    best(generated, weight, usize::MAX).items
}

/// The first `n` items of [`blend`]'s answer, and whether it had more.
#[derive(Debug, Clone, PartialEq)]
pub struct Best {
    pub items: Vec<Blended>,
    /// Items were left out: the blend had more than `n`.
    pub cut: bool,
}

/// [`blend`]'s first `n` items, the same ones in the same order: only those are sorted and made
/// owned (a request blends some 2,000 items and answers with 10).
pub fn best(generated: &[Generated], weight: impl Fn(Source) -> f64, n: usize) -> Best {
    // item -> (score, best contribution, its source, its cause)
    let mut acc: FastMap<&str, (f64, f64, Source, Cause)> =
        tailor_core::hash::map_with_capacity(generated.iter().map(|g| g.candidates.len()).sum());
    for g in generated {
        let w = weight(g.source);
        if w <= 0.0 {
            continue;
        }
        let Some(best) = g.candidates.iter().map(|c| c.score).reduce(f64::max) else {
            continue;
        };
        if best <= 0.0 {
            continue;
        }
        for c in &g.candidates {
            let contribution = w * c.score / best;
            if contribution <= 0.0 {
                continue;
            }
            let e = acc
                .entry(c.item_id)
                .or_insert((0.0, 0.0, g.source, c.because));
            e.0 += contribution;
            if contribution > e.1 || (contribution == e.1 && g.source < e.2) {
                e.1 = contribution;
                e.2 = g.source;
                e.3 = c.because;
            }
        }
    }
    // One entry an item: (score, id) is a total order, so the first `n` are the same whichever way
    // they are found. Kept in a heap of the best `n` so far, worst on top: most items are compared
    // with the worst kept and go, and only `n` are ever sorted.
    let cut = acc.len() > n;
    let ranked = acc
        .into_iter()
        .map(|(item, (score, _, source, because))| Ranked(item, score, source, because));
    let head: Vec<Ranked> = if cut {
        let mut head: BinaryHeap<Ranked> = BinaryHeap::with_capacity(n + 1);
        for r in ranked {
            if head.len() < n {
                head.push(r);
            } else if let Some(mut worst) = head.peek_mut() {
                if r < *worst {
                    *worst = r;
                }
            }
        }
        head.into_sorted_vec()
    } else {
        let mut all: Vec<Ranked> = ranked.collect();
        all.sort_unstable();
        all
    };
    let items = head
        .into_iter()
        .map(|Ranked(item, score, source, because)| Blended {
            item_id: item.to_string(),
            score,
            source,
            because: because.to_because(),
        })
        .collect();
    Best { items, cut }
}

/// A blended item in the answer's order: a lesser one ranks first (higher score, then lower id).
struct Ranked<'a>(&'a str, f64, Source, Cause<'a>);

impl Ord for Ranked<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        by_rank((self.1, self.0), (other.1, other.0))
    }
}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked<'_> {}

/// Keeps at most `max_per_category` items of one category (0: no limit), in order, up to `limit`.
/// Items `fixed` says are placed (pinned) are always kept where they are.
pub fn diversify<'a, T>(
    ranked: Vec<T>,
    max_per_category: usize,
    limit: usize,
    category_of: impl Fn(&T) -> Option<&'a str>,
    fixed: impl Fn(&T) -> bool,
) -> Vec<T> {
    let mut per: FastMap<&str, usize> = FastMap::default();
    let mut out = Vec::with_capacity(limit);
    for b in ranked {
        if out.len() >= limit {
            break;
        }
        if max_per_category > 0 && !fixed(&b) {
            if let Some(c) = category_of(&b) {
                let n = per.entry(c).or_default();
                if *n >= max_per_category {
                    continue;
                }
                *n += 1;
            }
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Candidate;
    use super::*;

    fn g<'a>(source: Source, items: &[(&'a str, f64)]) -> Generated<'a> {
        Generated {
            source,
            candidates: items
                .iter()
                .map(|(i, s)| Candidate {
                    item_id: i,
                    score: *s,
                    because: Cause::Item(i),
                })
                .collect(),
        }
    }

    #[test]
    fn each_source_is_normalised_then_weighted_and_the_reason_is_the_biggest_share() {
        let lists = [
            g(Source::SessionKnn, &[("a", 0.2), ("b", 0.1)]),
            g(Source::Popular, &[("c", 5000.0), ("b", 2500.0)]),
        ];
        let out = blend(&lists, |s| match s {
            Source::SessionKnn => 1.0,
            Source::Popular => 0.4,
            _ => 0.0,
        });
        let ids: Vec<(&str, f64)> = out.iter().map(|b| (b.item_id.as_str(), b.score)).collect();
        // a 1.0; b 0.5 + 0.2 = 0.7; c 0.4.
        assert_eq!(ids, [("a", 1.0), ("b", 0.7), ("c", 0.4)]);
        assert_eq!(out[1].source, Source::SessionKnn);
        // A source weighted 0 contributes nothing.
        let only_popular = blend(&lists, |s| if s == Source::Popular { 1.0 } else { 0.0 });
        assert_eq!(only_popular.len(), 2);
        assert!(only_popular.iter().all(|b| b.source == Source::Popular));
    }

    #[test]
    fn the_best_n_are_the_blends_first_n_ties_included() {
        let mut seed = 5u64;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        let ids: Vec<String> = (0..40).map(|i| format!("i{i}")).collect();
        for round in 0..300 {
            // Few distinct scores and items shared across sources: many ties to break by id.
            let lists: Vec<Generated> = Source::ALL
                .iter()
                .take(1 + next(4) as usize)
                .map(|&source| {
                    let mut items: Vec<(&str, f64)> = (0..next(30))
                        .map(|_| (ids[next(40) as usize].as_str(), 1.0 + next(4) as f64))
                        .collect();
                    items.sort_by(|a, b| a.0.cmp(b.0));
                    items.dedup_by(|a, b| a.0 == b.0);
                    g(source, &items)
                })
                .collect();
            let weight = |s: Source| 1.0 + s as usize as f64 / 4.0;
            let all = blend(&lists, weight);
            for n in [0, 1, 3, 10, 50] {
                let b = best(&lists, weight, n);
                assert_eq!(b.items, all[..n.min(all.len())], "round {round}, n {n}");
                assert_eq!(b.cut, all.len() > n, "round {round}, n {n}");
            }
        }
    }

    #[test]
    fn diversity_caps_items_per_category_and_keeps_uncategorised_ones() {
        let ranked = blend(
            &[g(
                Source::Covisitation,
                &[
                    ("t1", 5.0),
                    ("t2", 4.0),
                    ("t3", 3.0),
                    ("x", 2.0),
                    ("s1", 1.0),
                ],
            )],
            |_| 1.0,
        );
        let cat = |b: &Blended| match &b.item_id[..1] {
            "t" => Some("tents"),
            "s" => Some("stoves"),
            _ => None,
        };
        let ids: Vec<String> = diversify(ranked.clone(), 2, 4, cat, |_| false)
            .into_iter()
            .map(|b| b.item_id)
            .collect();
        assert_eq!(ids, ["t1", "t2", "x", "s1"]);
        let pinned_t3: Vec<String> = diversify(ranked.clone(), 2, 4, cat, |b| b.item_id == "t3")
            .into_iter()
            .map(|b| b.item_id)
            .collect();
        assert_eq!(
            pinned_t3,
            ["t1", "t2", "t3", "x"],
            "a pinned item is never dropped"
        );
        assert_eq!(
            diversify(ranked, 0, 3, cat, |_| false).len(),
            3,
            "0 means no limit"
        );
    }
}
