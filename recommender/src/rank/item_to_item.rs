//! Item-to-item generators: co-visitation, followers (sequential rules) and co-purchase share one
//! shape. Each seed (the page's item, then the session's and the member's recent items, newest
//! first) has a weight; a candidate's score is the sum over seeds of the seed's weight times the
//! candidate's count in the seed's list divided by the list's best count, so a heavily trafficked seed
//! cannot drown the others. The seeds themselves are not candidates here (re-showing viewed items is
//! the session generator's call).

use super::{Candidate, Cause, Tally};

/// Weight of the item on the current page, relative to the newest history item (1.0).
pub const CONTEXT_WEIGHT: f64 = 2.0;

/// A seed item and its neighbours in one model (highest count first).
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    pub item_id: String,
    pub weight: f64,
    pub neighbours: crate::lists::SharedList,
}

/// Seeds for a request: the context item first, then history (newest first) with weights 1, 1/2,
/// 1/3, ... by position; duplicates keep their first (strongest) weight.
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

/// Candidates from the seeds' neighbour lists (in no particular order); see the module docs.
pub fn generate(seeds: &[Seed]) -> Vec<Candidate<'_>> {
    let is_seed = |item: &str| seeds.iter().any(|s| s.item_id == item);
    let mut tally = Tally::with_capacity(seeds.iter().map(|s| s.neighbours.len()).sum());
    for seed in seeds {
        let Some(max) = seed.neighbours.iter().map(|(_, c)| *c).reduce(f64::max) else {
            continue;
        };
        if max <= 0.0 {
            continue;
        }
        for (item, count) in seed.neighbours.iter() {
            if *count > 0.0 && !is_seed(item) {
                tally.add(item, seed.weight * count / max, seed.item_id.as_str());
            }
        }
    }
    tally.into_candidates(Cause::Item)
}

#[cfg(test)]
mod tests {
    use super::super::ranked;
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
    fn neighbours_are_normalised_per_seed_and_summed() {
        let seeds = vec![
            Seed {
                item_id: "a".into(),
                weight: 1.0,
                neighbours: n(&[("b", 10.0), ("c", 5.0)]).into(),
            },
            Seed {
                item_id: "d".into(),
                weight: 0.5,
                neighbours: n(&[("c", 4.0), ("a", 3.0)]).into(),
            },
        ];
        let out = ranked(generate(&seeds));
        let ids: Vec<&str> = out.iter().map(|r| r.item_id).collect();
        // c: 0.5 + 0.5 = 1.0 ties b: 1.0, broken by id; seeds a and d are never candidates.
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(out[1].because, Cause::Item("a"), "a gave c the most");
        assert!((out[1].score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_heavy_seed_does_not_drown_a_light_one() {
        let seeds = vec![
            Seed {
                item_id: "big".into(),
                weight: 1.0,
                neighbours: n(&[("x", 1000.0), ("y", 10.0)]).into(),
            },
            Seed {
                item_id: "small".into(),
                weight: 1.0,
                neighbours: n(&[("y", 2.0)]).into(),
            },
        ];
        let out = ranked(generate(&seeds));
        assert_eq!(out[0].item_id, "y", "0.01 + 1.0 beats 1.0");
        assert!(generate(&[]).is_empty());
    }
}
