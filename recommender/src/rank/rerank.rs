//! The learned re-ranking stage: the blend's best candidates re-ordered by a model fitted for MRR on
//! the shop's own sessions (`super::boost`, fitted by `tailor ranker fit` or `tailor evaluate`).
//!
//! The blend adds normalised scores with fixed weights, so it cannot say "the last item again is
//! likely after a run of repeat clicks, unlikely after a long browse of new items", nor weigh a
//! neighbour's vote by how popular the item is. The model reads, per candidate, what the request
//! already holds: each source's normalised score and rank, the blend's, the session's clicks
//! (length, repeats, where the item was last clicked) and the item's site-wide popularity. No store
//! read is added: the popularity comes from the recommender's in-memory copy.
//!
//! The features are computed by this one function for fitting and for serving, so the model reads
//! in production exactly what it was fitted on; their names travel with the model, and a model
//! fitted on other features is refused ([`check`]).

use super::blend::Blended;
use super::boost::{Booster, Forest};
use super::{sort_candidates, Generated, Source};
use std::collections::HashMap;

/// Features that do not depend on a source, after the per-source pairs.
const OWN: [&str; 10] = [
    "blend",
    "blend_rank",
    "session_clicks",
    "session_distinct_share",
    "clicks",
    "clicks_back",
    "is_last",
    "last_clicks",
    "last_run",
    "popularity",
];

/// The features' names, in the order [`features`] writes them.
pub fn names() -> Vec<String> {
    let mut out: Vec<String> = OWN[..2].iter().map(|s| s.to_string()).collect();
    for s in Source::ALL {
        out.push(s.as_str().to_string());
        out.push(format!("{}_rank", s.as_str()));
    }
    out.extend(OWN[2..].iter().map(|s| s.to_string()));
    out
}

/// Refuses a model fitted on other features than this build computes.
pub fn check(model: &Booster) -> Result<(), String> {
    if model.features != names() {
        return Err(format!(
            "the model reads features {:?}, this build computes {:?}",
            model.features,
            names()
        ));
    }
    model.validate()
}

/// What the features are computed from, besides the blended list.
pub struct Inputs<'a> {
    pub generated: &'a [Generated<'a>],
    /// The session's clicks, oldest first (repeats kept).
    pub session: &'a [String],
    /// Items' site-wide popularity (the popular model's scores; absent items count 0).
    pub popularity: &'a HashMap<String, f64>,
}

/// Per-session facts shared by every candidate.
struct SessionFacts<'a> {
    clicks: HashMap<&'a str, (u32, usize)>, // item -> (clicks, distinct items clicked since)
    last: Option<&'a str>,
    last_run: u32,
    distinct_share: f32,
}

fn session_facts(session: &[String]) -> SessionFacts<'_> {
    let mut clicks: HashMap<&str, (u32, usize)> = HashMap::new();
    for item in session.iter().rev() {
        let seen = clicks.len();
        clicks.entry(item.as_str()).or_insert((0, seen)).0 += 1;
    }
    let last = session.last().map(String::as_str);
    let last_run = session
        .iter()
        .rev()
        .take_while(|i| Some(i.as_str()) == last)
        .count() as u32;
    SessionFacts {
        distinct_share: if session.is_empty() {
            0.0
        } else {
            clicks.len() as f32 / session.len() as f32
        },
        clicks,
        last,
        last_run,
    }
}

/// Features a row holds: the blend's two, two per source, the session's and the item's.
const WIDTH: usize = OWN.len() + 2 * Source::ALL.len();

/// The feature rows of the first `top` blended items, row-major in [`names`]' order.
pub fn features(ranked: &[Blended], inputs: &Inputs<'_>, top: usize) -> Vec<f32> {
    let head = &ranked[..ranked.len().min(top)];
    let row: HashMap<&str, usize> = head
        .iter()
        .enumerate()
        .map(|(r, b)| (b.item_id.as_str(), r))
        .collect();
    // (score / the source's best, 1 / rank in the source) per head item and source; only the head
    // is looked up, so a long list costs one probe per candidate and no allocation.
    let mut by_source = vec![(0f32, 0f32); head.len() * Source::ALL.len()];
    for g in inputs.generated {
        // A generator's list comes in no particular order: ranked here, where the ranks are read.
        let mut ranked = g.candidates.clone();
        sort_candidates(&mut ranked);
        let Some(best) = ranked.first().map(|c| c.score).filter(|b| *b > 0.0) else {
            continue;
        };
        let col = Source::ALL
            .iter()
            .position(|s| *s == g.source)
            .expect("a source");
        for (rank, c) in ranked.iter().enumerate() {
            if let Some(&r) = row.get(c.item_id) {
                let cell = &mut by_source[r * Source::ALL.len() + col];
                // Several lists of one source (none today) count the first.
                if cell.1 == 0.0 {
                    *cell = ((c.score / best) as f32, 1.0 / (rank as f32 + 1.0));
                }
            }
        }
    }
    let s = session_facts(inputs.session);
    let best = ranked.first().map(|b| b.score).unwrap_or(1.0).max(1e-12);
    let last_clicks = s.last.and_then(|l| s.clicks.get(l)).map_or(0, |c| c.0) as f32;
    let mut out = Vec::with_capacity(head.len() * WIDTH);
    for (r, b) in head.iter().enumerate() {
        out.push((b.score / best) as f32);
        out.push(1.0 / (r as f32 + 1.0));
        for &(score, rank) in &by_source[r * Source::ALL.len()..(r + 1) * Source::ALL.len()] {
            out.push(score);
            out.push(rank);
        }
        let (clicks, back) = s
            .clicks
            .get(b.item_id.as_str())
            .map_or((0.0, -1.0), |c| (c.0 as f32, c.1 as f32));
        out.push(inputs.session.len() as f32);
        out.push(s.distinct_share);
        out.push(clicks);
        out.push(back);
        out.push(f32::from(s.last == Some(b.item_id.as_str())));
        out.push(last_clicks);
        out.push(s.last_run as f32);
        let pop = inputs.popularity.get(&b.item_id).copied().unwrap_or(0.0);
        out.push(pop.max(0.0).ln_1p() as f32);
    }
    debug_assert_eq!(out.len(), head.len() * WIDTH);
    out
}

/// Re-orders the first `top` items by the model's score (ties keep the blend's order); the rest
/// follow in the blend's order. Each item's `score` becomes the model's, minus the lowest of the
/// re-ordered ones plus 1 so it stays positive, and the items past `top` keep scores below those.
pub fn rerank(
    model: &Forest,
    ranked: Vec<Blended>,
    inputs: &Inputs<'_>,
    top: usize,
) -> Vec<Blended> {
    let n = ranked.len().min(top);
    if n < 2 {
        return ranked;
    }
    let x = features(&ranked, inputs, top);
    let scores = model.predict_rows(&x, x.len() / n);
    let low = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let mut head: Vec<(f64, Blended)> = ranked
        .into_iter()
        .enumerate()
        .map(|(i, b)| (scores.get(i).map_or(0.0, |s| s - low + 1.0), b))
        .collect();
    let tail = head.split_off(n);
    // A stable sort keeps the blend's order between equal model scores.
    head.sort_by(|a, b| b.0.total_cmp(&a.0));
    let tail_top = tail.first().map_or(1.0, |t| t.1.score).max(1e-12);
    head.into_iter()
        .map(|(s, b)| Blended { score: s, ..b })
        .chain(tail.into_iter().map(|(_, b)| Blended {
            // Below every re-ranked item (their scores are at least 1), in the blend's order.
            score: 0.5 * b.score / tail_top,
            ..b
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::boost::Tree;
    use super::super::{Because, Candidate, Cause};
    use super::*;

    fn blended(items: &[&str]) -> Vec<Blended> {
        items
            .iter()
            .enumerate()
            .map(|(i, id)| Blended {
                item_id: id.to_string(),
                score: 10.0 - i as f64,
                source: Source::SessionKnn,
                because: Because::Source,
            })
            .collect()
    }

    fn session(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn column(x: &[f32], name: &str) -> Vec<f32> {
        let names = names();
        let f = names.iter().position(|n| n == name).unwrap();
        x.chunks(names.len()).map(|r| r[f]).collect()
    }

    #[test]
    fn features_describe_the_session_the_sources_and_popularity() {
        let generated = [Generated {
            source: Source::Sequence,
            // In no particular order, as generators give them.
            candidates: vec![
                Candidate {
                    item_id: "c",
                    score: 1.0,
                    because: Cause::Source,
                },
                Candidate {
                    item_id: "b",
                    score: 4.0,
                    because: Cause::Source,
                },
            ],
        }];
        let s = session(&["a", "b", "c", "c"]);
        let pop: HashMap<String, f64> = [("c".to_string(), (1.0f64).exp() - 1.0)].into();
        let inputs = Inputs {
            generated: &generated,
            session: &s,
            popularity: &pop,
        };
        let x = features(&blended(&["c", "b", "x"]), &inputs, 10);
        assert_eq!(x.len(), 3 * names().len());
        assert_eq!(column(&x, "blend_rank"), [1.0, 0.5, 1.0 / 3.0]);
        assert_eq!(column(&x, "blend"), [1.0, 0.9, 0.8]);
        assert_eq!(column(&x, "sequence"), [0.25, 1.0, 0.0]);
        assert_eq!(column(&x, "sequence_rank"), [0.5, 1.0, 0.0]);
        assert_eq!(column(&x, "session_knn"), [0.0; 3]);
        assert_eq!(column(&x, "session_clicks"), [4.0; 3]);
        assert_eq!(column(&x, "session_distinct_share"), [0.75; 3]);
        assert_eq!(column(&x, "clicks"), [2.0, 1.0, 0.0]);
        // c is the last; b was clicked before one other distinct item; x never.
        assert_eq!(column(&x, "clicks_back"), [0.0, 1.0, -1.0]);
        assert_eq!(column(&x, "is_last"), [1.0, 0.0, 0.0]);
        assert_eq!(column(&x, "last_clicks"), [2.0; 3]);
        assert_eq!(column(&x, "last_run"), [2.0; 3]);
        assert!((column(&x, "popularity")[0] - 1.0).abs() < 1e-6);
        assert_eq!(column(&x, "popularity")[1..], [0.0, 0.0]);
        // Only the first `top` rows.
        assert_eq!(
            features(&blended(&["c", "b", "x"]), &inputs, 2).len(),
            2 * names().len()
        );
    }

    #[test]
    fn the_model_reorders_the_head_and_the_tail_keeps_the_blend_order() {
        // A stump that sends the last clicked item down: is_last <= 0.5 -> 1, else -1.
        let f = names().iter().position(|n| n == "is_last").unwrap() as i32;
        let model = Booster {
            features: names(),
            trees: vec![Tree {
                feature: vec![f, -1, -1],
                value: vec![0.5, 1.0, -1.0],
                left: vec![1, 0, 0],
                right: vec![2, 0, 0],
            }],
        };
        check(&model).unwrap();
        let s = session(&["b", "a"]);
        let pop = HashMap::new();
        let inputs = Inputs {
            generated: &[],
            session: &s,
            popularity: &pop,
        };
        let out = rerank(&model.forest(), blended(&["a", "b", "c", "d"]), &inputs, 3);
        let ids: Vec<&str> = out.iter().map(|b| b.item_id.as_str()).collect();
        assert_eq!(
            ids,
            ["b", "c", "a", "d"],
            "a demoted within the head; d stays last"
        );
        assert!(out.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(out.iter().all(|b| b.score > 0.0));
        // A model of other features is refused.
        let other = Booster {
            features: vec!["x".into()],
            ..model
        };
        assert!(check(&other).unwrap_err().contains("this build computes"));
    }
}
