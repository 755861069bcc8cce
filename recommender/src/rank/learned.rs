//! The learned blend: a linear scoring function over features of each candidate's place in every
//! generator's list, fitted to next clicks (learning to rank over candidate generators, as
//! production recommenders do).
//!
//! The hand-set blend adds `weight(source) × score / best` over the sources. The learned one adds,
//! per source, three readings of the candidate's place in that source's list (the normalised score,
//! its square root, the reciprocal rank) and one of the session (whether the item is the last one
//! clicked), each with its own weight: the square root and the rank let the model trust a source's
//! head more or less than its tail, which a single weight per source cannot. The weights are fitted
//! by [`fit`] on next-click cases (`tailor evaluate --learn` on a split of the shop's own training
//! events) by gradient descent on a LambdaRank loss for MRR. The reason shown stays the source of the largest share.

use super::blend::Blended;
use super::{Because, Generated, Source};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Readings per source.
const PER_SOURCE: usize = 4;
/// Features of one candidate: per source the readings, then the session's.
pub const FEATURES: usize = Source::ALL.len() * PER_SOURCE + 2;
/// The feature "is the session's last click".
const LAST: usize = FEATURES - 2;
/// "Is the session's last click" times the session's length.
const LAST_LONG: usize = FEATURES - 1;
/// Session length at which the length reading saturates.
const LONG_SESSION: f64 = 20.0;

/// One candidate's features.
pub type Features = [f64; FEATURES];

/// A fitted scoring function: one weight per feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub weights: Vec<f64>,
}

fn source_index(s: Source) -> usize {
    Source::ALL
        .iter()
        .position(|x| *x == s)
        .expect("every source is in ALL")
}

/// Feature names, in order (for reports and the configuration).
pub fn feature_names() -> Vec<String> {
    let mut out = Vec::with_capacity(FEATURES);
    for s in Source::ALL {
        for r in ["score", "sqrt", "rank", "score_x_length"] {
            out.push(format!("{}.{r}", s.as_str()));
        }
    }
    out.push("last_click".into());
    out.push("last_click_x_length".into());
    out
}

/// Every candidate of the lists (a source weighted 0 by `enabled` is left out) with its features,
/// and for each the source and cause of its best reading (for the reason).
pub fn features<'a>(
    generated: &'a [Generated],
    session: &[String],
    enabled: impl Fn(Source) -> bool,
) -> Vec<(&'a str, Features, Vec<(Source, &'a Because)>)> {
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<(&str, Features, Vec<(Source, &Because)>)> = Vec::new();
    let last = session.last().map(String::as_str);
    let long = (session.len() as f64).min(LONG_SESSION) / LONG_SESSION;
    for g in generated {
        if !enabled(g.source) {
            continue;
        }
        let Some(best) = g.candidates.iter().map(|c| c.score).reduce(f64::max) else {
            continue;
        };
        if best <= 0.0 {
            continue;
        }
        let base = source_index(g.source) * PER_SOURCE;
        for (rank, c) in g.candidates.iter().enumerate() {
            if c.score <= 0.0 {
                continue;
            }
            let i = *at.entry(&c.item_id).or_insert_with(|| {
                let mut f = [0.0; FEATURES];
                f[LAST] = f64::from(u8::from(Some(c.item_id.as_str()) == last));
                f[LAST_LONG] = f[LAST] * long;
                out.push((&c.item_id, f, Vec::new()));
                out.len() - 1
            });
            let n = c.score / best;
            let f = &mut out[i].1;
            f[base] = n;
            f[base + 1] = n.sqrt();
            f[base + 2] = 1.0 / (rank as f64 + 1.0);
            f[base + 3] = n * long;
            out[i].2.push((g.source, &c.because));
        }
    }
    out
}

impl Model {
    /// The weights that reproduce the hand-set blend (each source's normalised score times its
    /// weight): where fitting starts.
    pub fn from_blend(weight: impl Fn(Source) -> f64) -> Model {
        let mut weights = vec![0.0; FEATURES];
        for s in Source::ALL {
            weights[source_index(s) * PER_SOURCE] = weight(s);
        }
        Model { weights }
    }

    /// Whether the model reads a source at all.
    pub fn uses(&self, s: Source) -> bool {
        let base = source_index(s) * PER_SOURCE;
        self.weights[base..base + PER_SOURCE]
            .iter()
            .any(|w| *w != 0.0)
            || (s == Source::Reminder
                && (self.weights[LAST] != 0.0 || self.weights[LAST_LONG] != 0.0))
    }

    fn dot(&self, f: &Features) -> f64 {
        self.weights.iter().zip(f).map(|(w, x)| w * x).sum()
    }

    /// The share of a candidate's score a source gives.
    fn share(&self, f: &Features, s: Source) -> f64 {
        let base = source_index(s) * PER_SOURCE;
        let mut v: f64 = (0..PER_SOURCE)
            .map(|k| self.weights[base + k] * f[base + k])
            .sum();
        if s == Source::Reminder {
            v += self.weights[LAST] * f[LAST] + self.weights[LAST_LONG] * f[LAST_LONG];
        }
        v
    }

    /// Ranks the candidates of `generated`: best first, ties by item id. Scores are
    /// `exp(score - best)`, in (0, 1], so business rules' boosts keep their meaning.
    pub fn rank(&self, generated: &[Generated], session: &[String]) -> Vec<Blended> {
        let feats = features(generated, session, |s| self.uses(s));
        let raw: Vec<f64> = feats.iter().map(|(_, f, _)| self.dot(f)).collect();
        let top = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut out: Vec<Blended> = feats
            .into_iter()
            .zip(raw)
            .map(|((item, f, causes), s)| {
                let (source, because) = causes
                    .iter()
                    .map(|(src, b)| (self.share(&f, *src), *src, *b))
                    .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
                    .map(|(_, src, b)| (src, b.clone()))
                    .expect("a candidate has a source");
                Blended {
                    item_id: item.to_string(),
                    score: (s - top).exp(),
                    source,
                    because,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.item_id.cmp(&b.item_id))
        });
        out
    }
}

/// One fitting case: every candidate's features and which one was clicked next.
pub struct Case {
    pub candidates: Vec<Features>,
    pub target: usize,
}

/// How to fit.
#[derive(Debug, Clone, Copy)]
pub struct Fitting {
    pub epochs: usize,
    pub learning_rate: f64,
    /// L2 penalty towards the starting model.
    pub l2: f64,
    /// The list length MRR is measured at.
    pub cutoff: usize,
}

impl Default for Fitting {
    fn default() -> Self {
        Fitting {
            epochs: 150,
            learning_rate: 0.03,
            l2: 1e-4,
            cutoff: 20,
        }
    }
}

/// Fits the weights from `start` by full-batch Adam on a LambdaRank loss for MRR at `cutoff`:
/// every pair (next click, other candidate) pulls by the logistic loss of their score difference,
/// weighted by how much the reciprocal rank would change were the two swapped, so the fit spends
/// itself on the top of the list, where MRR is made. Returns the model and the fitting cases'
/// MRR after each epoch (for the report).
pub fn fit(start: &Model, cases: &[Case], how: Fitting) -> (Model, Vec<f64>) {
    let mut w = start.weights.clone();
    let (mut m, mut v) = (vec![0.0; FEATURES], vec![0.0; FEATURES]);
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    let rr = |rank: usize| {
        if rank <= how.cutoff {
            1.0 / rank as f64
        } else {
            0.0
        }
    };
    let mut progress = Vec::with_capacity(how.epochs);
    let mut order: Vec<usize> = Vec::new();
    let mut best = (f64::NEG_INFINITY, w.clone());
    for epoch in 1..=how.epochs {
        let mut grad = vec![0.0; FEATURES];
        let mut mrr = 0.0;
        for case in cases {
            let s: Vec<f64> = case
                .candidates
                .iter()
                .map(|f| w.iter().zip(f).map(|(a, b)| a * b).sum())
                .collect();
            order.clear();
            order.extend(0..s.len());
            order.sort_by(|a, b| s[*b].total_cmp(&s[*a]));
            let t = case.target;
            let rank_t = order
                .iter()
                .position(|i| *i == t)
                .expect("target is a candidate")
                + 1;
            mrr += rr(rank_t);
            for (pos, &j) in order.iter().enumerate() {
                // Pairs that matter to MRR at the cutoff: the target against what is above it and
                // against the rest of the top (the tail below both cannot change the top).
                if pos >= how.cutoff.max(rank_t) {
                    break;
                }
                if j == t {
                    continue;
                }
                let delta = (rr(rank_t) - rr(pos + 1)).abs();
                if delta == 0.0 {
                    continue;
                }
                // d/ds_t of log(1 + exp(-(s_t - s_j))) = -sigmoid(s_j - s_t).
                let lambda = delta / (1.0 + (s[t] - s[j]).exp());
                for k in 0..FEATURES {
                    grad[k] += lambda * (case.candidates[j][k] - case.candidates[t][k]);
                }
            }
        }
        let n = cases.len().max(1) as f64;
        progress.push(mrr / n);
        if mrr / n > best.0 {
            best = (mrr / n, w.clone());
        }
        for k in 0..FEATURES {
            let g = grad[k] / n + how.l2 * (w[k] - start.weights[k]);
            m[k] = b1 * m[k] + (1.0 - b1) * g;
            v[k] = b2 * v[k] + (1.0 - b2) * g * g;
            let mh = m[k] / (1.0 - b1.powi(epoch as i32));
            let vh = v[k] / (1.0 - b2.powi(epoch as i32));
            w[k] -= how.learning_rate * mh / (vh.sqrt() + eps);
        }
    }
    (Model { weights: best.1 }, progress)
}

#[cfg(test)]
mod tests {
    use super::super::Candidate;
    use super::*;

    fn g(source: Source, items: &[(&str, f64)]) -> Generated {
        Generated {
            source,
            candidates: items
                .iter()
                .map(|(i, s)| Candidate {
                    item_id: i.to_string(),
                    score: *s,
                    because: Because::Item(format!("seed-of-{i}")),
                })
                .collect(),
        }
    }

    fn session(items: &[&str]) -> Vec<String> {
        items.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn features_read_each_sources_place_and_the_last_click() {
        let lists = [
            g(Source::SessionKnn, &[("a", 0.4), ("b", 0.1)]),
            g(Source::Reminder, &[("b", 1.0)]),
        ];
        let f = features(&lists, &session(&["x", "b"]), |_| true);
        let names = feature_names();
        let get = |item: &str, name: &str| {
            let (_, f, _) = f.iter().find(|(i, _, _)| *i == item).unwrap();
            f[names.iter().position(|n| n == name).unwrap()]
        };
        assert_eq!(f.len(), 2);
        assert_eq!(get("a", "session_knn.score"), 1.0);
        assert_eq!(get("b", "session_knn.score"), 0.25);
        assert_eq!(get("b", "session_knn.sqrt"), 0.5);
        assert_eq!(get("b", "session_knn.rank"), 0.5);
        assert_eq!(get("b", "reminder.score"), 1.0);
        assert_eq!(get("b", "last_click"), 1.0);
        assert_eq!(get("a", "last_click"), 0.0);
        assert_eq!(get("a", "reminder.rank"), 0.0);
        // A source the model does not read adds no candidate.
        assert_eq!(features(&lists, &[], |s| s == Source::Reminder).len(), 1);
    }

    #[test]
    fn the_starting_model_ranks_as_the_hand_set_blend() {
        let lists = [
            g(Source::SessionKnn, &[("a", 0.2), ("b", 0.1), ("d", 0.05)]),
            g(Source::Popular, &[("c", 5000.0), ("b", 2500.0)]),
        ];
        let w = |s| match s {
            Source::SessionKnn => 1.0,
            Source::Popular => 0.4,
            _ => 0.0,
        };
        let hand: Vec<String> = crate::rank::blend::blend(&lists, w)
            .into_iter()
            .map(|b| b.item_id)
            .collect();
        let ranked = Model::from_blend(w).rank(&lists, &[]);
        let learned: Vec<&str> = ranked.iter().map(|b| b.item_id.as_str()).collect();
        assert_eq!(learned, hand);
        assert_eq!(ranked[0].score, 1.0, "the best scores exp(0)");
        assert_eq!(ranked[1].source, Source::SessionKnn, "b's biggest share");
    }

    /// Cases where the next click is always the last one: a model starting from the session
    /// neighbours alone learns to put the last click first.
    #[test]
    fn fitting_learns_what_the_cases_reward() {
        let lists = [
            g(Source::SessionKnn, &[("a", 1.0), ("b", 0.5), ("last", 0.2)]),
            g(Source::Reminder, &[("last", 1.0)]),
        ];
        let s = session(&["last"]);
        let start = Model::from_blend(|src| f64::from(u8::from(src == Source::SessionKnn)));
        assert_eq!(start.rank(&lists, &s)[0].item_id, "a");
        let cases: Vec<Case> = (0..20)
            .map(|_| {
                let f = features(&lists, &s, |_| true);
                let target = f.iter().position(|(i, _, _)| *i == "last").unwrap();
                Case {
                    candidates: f.into_iter().map(|(_, f, _)| f).collect(),
                    target,
                }
            })
            .collect();
        let (model, mrr) = fit(&start, &cases, Fitting::default());
        assert!(
            (mrr[0] - 1.0 / 3.0).abs() < 1e-9,
            "the start ranks it third"
        );
        assert_eq!(mrr.last(), Some(&1.0), "{mrr:?}");
        let ranked = model.rank(&lists, &s);
        assert_eq!(ranked[0].item_id, "last");
        assert_eq!(ranked[0].source, Source::Reminder);
    }
}
