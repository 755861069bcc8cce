//! Ranking: co-visitation with the member's recent items, popular items as fallback.
//!
//! Each seed (the item on the current page, then the member's recent items, newest first) has a weight
//! that decays with its age in the history. A candidate's score is the sum, over seeds, of the seed's
//! weight times the candidate's co-visit count normalised by the seed's strongest co-visit, so a
//! heavily trafficked seed cannot drown the others. Items the member bought or is looking at right now
//! are never recommended. Popular items fill the remaining slots, always below any co-visited item.

use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Weight of the item on the current page, relative to the newest history item (1.0).
pub const CONTEXT_WEIGHT: f64 = 2.0;
/// Popular fill-ins score below this, so they always rank after co-visited items.
const POPULAR_CEILING: f64 = 0.001;

/// Where a recommendation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Covisitation,
    Popular,
}

/// One recommended item with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    pub item_id: String,
    pub score: f64,
    pub source: Source,
    /// A short, human-readable reason ("viewed together with sku-1").
    pub reason: String,
}

/// A seed item and its co-visited neighbours (highest count first).
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub item_id: String,
    pub weight: f64,
    pub neighbours: Vec<(String, f64)>,
}

/// Seeds for a request: the context item first, then history with weights 1, 1/2, 1/3, ...
pub fn seeds(context: Option<&str>, recent: &[String], max: usize) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    if let Some(c) = context {
        out.push((c.to_string(), CONTEXT_WEIGHT));
    }
    for (i, item) in recent.iter().enumerate() {
        if out.len() >= max {
            break;
        }
        if !out.iter().any(|(s, _)| s == item) {
            out.push((item.clone(), 1.0 / (i as f64 + 1.0)));
        }
    }
    out
}

/// Ranks candidates; see the module docs.
pub fn rank(
    seeds: &[Seed],
    popular: &[(String, f64)],
    exclude: &HashSet<String>,
    limit: usize,
) -> Vec<Recommendation> {
    let excluded = |item: &str| exclude.contains(item) || seeds.iter().any(|s| s.item_id == item);
    // candidate -> (score, best seed, best contribution)
    let mut scores: HashMap<&str, (f64, &str, f64)> = HashMap::new();
    for seed in seeds {
        let Some(max) = seed.neighbours.iter().map(|(_, c)| *c).reduce(f64::max) else {
            continue;
        };
        if max <= 0.0 {
            continue;
        }
        for (item, count) in &seed.neighbours {
            if excluded(item) || *count <= 0.0 {
                continue;
            }
            let contribution = seed.weight * count / max;
            let e = scores.entry(item).or_insert((0.0, &seed.item_id, 0.0));
            e.0 += contribution;
            if contribution > e.2 {
                e.1 = &seed.item_id;
                e.2 = contribution;
            }
        }
    }
    let mut out: Vec<Recommendation> = scores
        .into_iter()
        .map(|(item, (score, seed, _))| Recommendation {
            item_id: item.to_string(),
            score,
            source: Source::Covisitation,
            reason: format!("viewed together with {seed}"),
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.item_id.cmp(&b.item_id))
    });
    out.truncate(limit);
    if out.len() < limit {
        let top = popular
            .first()
            .map(|(_, s)| *s)
            .unwrap_or(1.0)
            .max(f64::MIN_POSITIVE);
        let chosen: HashSet<String> = out.iter().map(|r| r.item_id.clone()).collect();
        let fill = popular
            .iter()
            .filter(|(item, _)| !excluded(item) && !chosen.contains(item))
            .take(limit - out.len())
            .map(|(item, s)| Recommendation {
                item_id: item.clone(),
                score: POPULAR_CEILING * s / top,
                source: Source::Popular,
                reason: "popular on this site".into(),
            })
            .collect::<Vec<_>>();
        out.extend(fill);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(items: &[(&str, f64)]) -> Vec<(String, f64)> {
        items.iter().map(|(i, c)| (i.to_string(), *c)).collect()
    }

    #[test]
    fn seeds_put_context_first_and_decay_history() {
        let s = seeds(Some("x"), &["a".into(), "x".into(), "b".into()], 3);
        assert_eq!(
            s,
            vec![
                ("x".into(), 2.0),
                ("a".into(), 1.0),
                ("b".into(), 1.0 / 3.0)
            ]
        );
    }

    #[test]
    fn covisited_items_rank_above_popular_and_bought_items_never_appear() {
        let seeds = vec![
            Seed {
                item_id: "a".into(),
                weight: 1.0,
                neighbours: n(&[("b", 10.0), ("c", 5.0), ("bought", 9.0)]),
            },
            Seed {
                item_id: "d".into(),
                weight: 0.5,
                neighbours: n(&[("c", 4.0), ("a", 3.0)]),
            },
        ];
        let exclude: HashSet<String> = ["bought".to_string()].into();
        let out = rank(
            &seeds,
            &n(&[("p1", 100.0), ("b", 50.0), ("bought", 40.0), ("p2", 1.0)]),
            &exclude,
            4,
        );
        let ids: Vec<&str> = out.iter().map(|r| r.item_id.as_str()).collect();
        // c: 0.5 + 0.5 = 1.0, b: 1.0 -> tie broken by id; seeds a and d never recommended.
        assert_eq!(ids, ["b", "c", "p1", "p2"]);
        assert_eq!(out[1].reason, "viewed together with a");
        assert_eq!(out[2].source, Source::Popular);
        assert!(out[2].score < out[1].score);
    }

    #[test]
    fn unknown_visitor_gets_popular_items() {
        let out = rank(&[], &n(&[("p1", 3.0), ("p2", 1.0)]), &HashSet::new(), 10);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|r| r.source == Source::Popular));
        assert!(rank(&[], &[], &HashSet::new(), 5).is_empty());
    }
}
