//! Gradient-boosted regression trees fitted for MRR (LambdaMART): the model of the learned
//! re-ranking stage (`super::rerank`).
//!
//! Fitting follows LightGBM's recipe in miniature: every feature is cut once into at most
//! [`Params::bins`] quantile bins; each tree is grown leaf by leaf (the leaf whose best split gains
//! most is split next) from per-bin sums of gradients and hessians, the larger child's histogram
//! taken as the parent's minus the smaller's; a leaf's value is the Newton step
//! `-G / (H + lambda)` times the learning rate. The gradients are LambdaRank's: for a query, each
//! (relevant, other) pair pushes the two apart by `sigmoid(s_other - s_relevant)` times how much
//! swapping them would change the query's reciprocal rank within the truncation (20), so the trees
//! spend themselves on the top of the list, where MRR@20 is decided.
//!
//! Everything is sequential and free of hashing, so a fit repeats bit for bit.

use serde::{Deserialize, Serialize};

/// A fitted model: the sum of its trees' outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booster {
    /// The features' names, in the order the model reads them (a model is refused by a ranker
    /// computing other features).
    pub features: Vec<String>,
    pub trees: Vec<Tree>,
}

/// One tree as parallel arrays. Node `i` is a leaf worth `value[i]` when `feature[i]` is negative;
/// otherwise a row goes to `left[i]` when its feature `feature[i]` is at most `value[i]`, else to
/// `right[i]`. Node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub feature: Vec<i32>,
    pub value: Vec<f32>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
}

impl Tree {
    fn leaf(&mut self, value: f32) -> usize {
        self.feature.push(-1);
        self.value.push(value);
        self.left.push(0);
        self.right.push(0);
        self.feature.len() - 1
    }

    /// The leaf value for one row: the plain walk of the serialised form, kept as the reference
    /// the tests check [`Forest`] against (serving and fitting never walk this form).
    #[cfg(test)]
    fn predict(&self, row: &[f32]) -> f32 {
        let mut i = 0;
        loop {
            let f = self.feature[i];
            if f < 0 {
                return self.value[i];
            }
            i = if row[f as usize] <= self.value[i] {
                self.left[i]
            } else {
                self.right[i]
            } as usize;
        }
    }
}

impl Booster {
    /// The model's score for one row of features (higher ranks first); the reference the tests
    /// check [`Forest::predict_rows`] against.
    #[cfg(test)]
    fn predict(&self, row: &[f32]) -> f64 {
        self.trees.iter().map(|t| t.predict(row) as f64).sum()
    }

    /// The model in the form it is evaluated in ([`Forest`]).
    pub fn forest(&self) -> Forest {
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(self.trees.len());
        for t in &self.trees {
            let base = nodes.len() as u32;
            roots.push(base);
            for i in 0..t.feature.len() {
                nodes.push(Node {
                    feature: u32::try_from(t.feature[i]).unwrap_or(u32::MAX),
                    value: t.value[i],
                    left: base + t.left[i],
                    right: base + t.right[i],
                });
            }
        }
        Forest { nodes, roots }
    }
}

/// One node of a [`Forest`]: a split on `feature` at `value`, or a leaf worth `value` when
/// `feature` is `u32::MAX`.
#[derive(Debug, Clone, Copy)]
struct Node {
    feature: u32,
    value: f32,
    left: u32,
    right: u32,
}

/// A [`Booster`] laid out for evaluation: every tree's nodes in one array of 16-byte nodes (one
/// cache line holds four), the children as absolute indices, the step to a child without a branch
/// to mispredict.
#[derive(Debug, Clone)]
pub struct Forest {
    nodes: Vec<Node>,
    roots: Vec<u32>,
}

impl Forest {
    /// The scores of rows of `width` features (row-major), tree by tree: one tree stays in cache
    /// while every row walks it. Each score sums the trees in order (the tests check it against a
    /// plain walk of each tree, row by row).
    pub fn predict_rows(&self, x: &[f32], width: usize) -> Vec<f64> {
        let mut out = vec![0.0; x.len() / width.max(1)];
        for &root in &self.roots {
            for (o, row) in out.iter_mut().zip(x.chunks_exact(width)) {
                let mut n = self.nodes[root as usize];
                while n.feature != u32::MAX {
                    let right = row[n.feature as usize] > n.value;
                    n = self.nodes[if right { n.right } else { n.left } as usize];
                }
                *o += n.value as f64;
            }
        }
        out
    }
}

impl Booster {
    /// Checks the structure (indices in range, feature ids known) of a model read from outside.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.features.len() as i32;
        for (t, tree) in self.trees.iter().enumerate() {
            let len = tree.feature.len();
            if len == 0 || [tree.value.len(), tree.left.len(), tree.right.len()] != [len; 3] {
                return Err(format!("tree {t}: arrays of different lengths or empty"));
            }
            for i in 0..len {
                let f = tree.feature[i];
                if f >= n {
                    return Err(format!("tree {t}: node {i} reads feature {f} of {n}"));
                }
                // Children come after their parent, so a walk always ends.
                if f >= 0
                    && [tree.left[i], tree.right[i]]
                        .iter()
                        .any(|&c| c as usize <= i || c as usize >= len)
                {
                    return Err(format!("tree {t}: node {i} has a child out of order"));
                }
                if !tree.value[i].is_finite() {
                    return Err(format!("tree {t}: node {i} is not a finite number"));
                }
            }
        }
        Ok(())
    }
}

/// How a model is fitted.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub trees: usize,
    pub learning_rate: f64,
    /// Leaves per tree.
    pub leaves: usize,
    /// Rows a leaf holds at least.
    pub min_leaf: usize,
    /// Bins per feature (at most 256).
    pub bins: usize,
    /// L2 regularisation of leaf values.
    pub lambda: f64,
    /// Ranks that count (MRR@truncation).
    pub truncation: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            trees: 300,
            learning_rate: 0.02,
            leaves: 31,
            min_leaf: 100,
            bins: 64,
            lambda: 1.0,
            truncation: 20,
        }
    }
}

/// Training data: rows of features grouped in queries.
pub struct Queries<'a> {
    /// Row-major, `features.len()` values a row.
    pub x: &'a [f32],
    /// Row `r` of query `q` is in `starts[q]..starts[q + 1]`; the last entry is the row count.
    pub starts: &'a [usize],
    /// Whether each row is the relevant one (the next click).
    pub relevant: &'a [bool],
}

/// Fits a model for MRR@`truncation`; `progress` is called after each tree.
pub fn fit(
    features: &[String],
    data: &Queries<'_>,
    params: Params,
    mut progress: impl FnMut(usize),
) -> Booster {
    let nf = features.len();
    let rows = data.relevant.len();
    assert_eq!(data.x.len(), rows * nf, "x holds rows × features values");
    let cuts: Vec<Vec<f32>> = (0..nf).map(|f| cuts(data.x, nf, f, params.bins)).collect();
    // Column-major bins, so a histogram reads one feature's bins contiguously.
    let mut binned = vec![0u8; rows * nf];
    for f in 0..nf {
        for r in 0..rows {
            let v = data.x[r * nf + f];
            binned[f * rows + r] = cuts[f].partition_point(|&c| c < v) as u8;
        }
    }
    let nbins: Vec<usize> = cuts.iter().map(|c| c.len() + 1).collect();
    let mut scores = vec![0f64; rows];
    let mut g = vec![0f64; rows];
    let mut h = vec![0f64; rows];
    let mut trees = Vec::with_capacity(params.trees);
    for t in 0..params.trees {
        lambdas(data, &scores, params.truncation, &mut g, &mut h);
        let grower = Grower {
            binned: &binned,
            rows,
            nbins: &nbins,
            cuts: &cuts,
            g: &g,
            h: &h,
            params,
        };
        let (tree, leaf_rows) = grower.grow();
        for (value, rs) in leaf_rows {
            for r in rs {
                scores[r as usize] += value as f64;
            }
        }
        trees.push(tree);
        progress(t + 1);
    }
    Booster {
        features: features.to_vec(),
        trees,
    }
}

/// Up to `bins - 1` cut points of feature `f` at its quantiles (distinct values).
fn cuts(x: &[f32], nf: usize, f: usize, bins: usize) -> Vec<f32> {
    let rows = x.len() / nf;
    let step = (rows / 200_000).max(1);
    let mut v: Vec<f32> = (0..rows).step_by(step).map(|r| x[r * nf + f]).collect();
    v.sort_by(f32::total_cmp);
    v.dedup();
    let bins = bins.clamp(2, 256);
    if v.len() <= bins {
        // One bin per value; the last needs no cut.
        v.pop();
        return v;
    }
    let mut out: Vec<f32> = (1..bins).map(|i| v[i * v.len() / bins]).collect::<Vec<_>>();
    out.dedup();
    out
}

/// LambdaRank gradients (`g`, of the loss) and hessians for the current scores.
fn lambdas(data: &Queries<'_>, scores: &[f64], truncation: usize, g: &mut [f64], h: &mut [f64]) {
    g.fill(0.0);
    h.fill(0.0);
    let rr = |rank: usize| {
        if rank < truncation {
            1.0 / (rank as f64 + 1.0)
        } else {
            0.0
        }
    };
    let mut order: Vec<usize> = Vec::new();
    for q in data.starts.windows(2) {
        let (a, b) = (q[0], q[1]);
        order.clear();
        order.extend(a..b);
        order.sort_by(|&i, &j| scores[j].total_cmp(&scores[i]).then(i.cmp(&j)));
        for (rp, &p) in order.iter().enumerate() {
            if !data.relevant[p] {
                continue;
            }
            for (rn, &n) in order.iter().enumerate() {
                if data.relevant[n] {
                    continue;
                }
                let delta = (rr(rp) - rr(rn)).abs();
                if delta == 0.0 {
                    continue;
                }
                let rho = 1.0 / (1.0 + (scores[p] - scores[n]).exp());
                g[p] -= rho * delta;
                g[n] += rho * delta;
                let w = (rho * (1.0 - rho) * delta).max(1e-12);
                h[p] += w;
                h[n] += w;
            }
        }
    }
}

/// Per-bin sums of one node's rows: (gradient, hessian, count) per feature and bin.
type Histogram = Vec<Vec<(f64, f64, u32)>>;

struct Split {
    gain: f64,
    feature: usize,
    bin: usize,
}

struct Leaf {
    node: usize,
    rows: Vec<u32>,
    hist: Histogram,
    split: Option<Split>,
}

struct Grower<'a> {
    binned: &'a [u8],
    rows: usize,
    nbins: &'a [usize],
    cuts: &'a [Vec<f32>],
    g: &'a [f64],
    h: &'a [f64],
    params: Params,
}

impl Grower<'_> {
    fn histogram(&self, rows: &[u32]) -> Histogram {
        self.nbins
            .iter()
            .enumerate()
            .map(|(f, &nb)| {
                let mut hist = vec![(0.0, 0.0, 0u32); nb];
                let col = &self.binned[f * self.rows..(f + 1) * self.rows];
                for &r in rows {
                    let e = &mut hist[col[r as usize] as usize];
                    e.0 += self.g[r as usize];
                    e.1 += self.h[r as usize];
                    e.2 += 1;
                }
                hist
            })
            .collect()
    }

    fn best_split(&self, hist: &Histogram) -> Option<Split> {
        let lambda = self.params.lambda;
        let min = self.params.min_leaf as u32;
        let score = |g: f64, h: f64| g * g / (h + lambda);
        let mut best: Option<Split> = None;
        for (f, bins) in hist.iter().enumerate() {
            let (gt, ht, nt) = bins
                .iter()
                .fold((0.0, 0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
            let parent = score(gt, ht);
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0u32);
            for (bin, b) in bins.iter().enumerate().take(bins.len() - 1) {
                gl += b.0;
                hl += b.1;
                nl += b.2;
                if nl < min {
                    continue;
                }
                if nt - nl < min {
                    break;
                }
                let gain = score(gl, hl) + score(gt - gl, ht - hl) - parent;
                if gain > 1e-9 && best.as_ref().is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        gain,
                        feature: f,
                        bin,
                    });
                }
            }
        }
        best
    }

    fn leaf_value(&self, hist: &Histogram) -> f32 {
        let (g, h) = hist[0]
            .iter()
            .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        (-g / (h + self.params.lambda) * self.params.learning_rate) as f32
    }

    /// One tree, and each leaf's value with its rows.
    fn grow(&self) -> (Tree, Vec<(f32, Vec<u32>)>) {
        let mut tree = Tree {
            feature: Vec::new(),
            value: Vec::new(),
            left: Vec::new(),
            right: Vec::new(),
        };
        let all: Vec<u32> = (0..self.rows as u32).collect();
        let hist = self.histogram(&all);
        let split = self.best_split(&hist);
        let mut leaves = vec![Leaf {
            node: tree.leaf(0.0),
            rows: all,
            hist,
            split,
        }];
        while leaves.len() < self.params.leaves {
            let Some((i, _)) = leaves
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.split.as_ref().map(|s| (i, s.gain)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            else {
                break;
            };
            let leaf = leaves.swap_remove(i);
            let split = leaf.split.expect("chosen for its split");
            let col = &self.binned[split.feature * self.rows..(split.feature + 1) * self.rows];
            let (left, right): (Vec<u32>, Vec<u32>) = leaf
                .rows
                .iter()
                .partition(|&&r| col[r as usize] as usize <= split.bin);
            let left_is_small = left.len() <= right.len();
            let small_hist = self.histogram(if left_is_small { &left } else { &right });
            let large_hist: Histogram = leaf
                .hist
                .iter()
                .zip(&small_hist)
                .map(|(p, s)| {
                    p.iter()
                        .zip(s)
                        .map(|(p, s)| (p.0 - s.0, p.1 - s.1, p.2 - s.2))
                        .collect()
                })
                .collect();
            let (lh, rh) = if left_is_small {
                (small_hist, large_hist)
            } else {
                (large_hist, small_hist)
            };
            let (l, r) = (tree.leaf(0.0), tree.leaf(0.0));
            tree.feature[leaf.node] = split.feature as i32;
            tree.value[leaf.node] = self.cuts[split.feature][split.bin];
            tree.left[leaf.node] = l as u32;
            tree.right[leaf.node] = r as u32;
            for (node, rows, hist) in [(l, left, lh), (r, right, rh)] {
                let split = self.best_split(&hist);
                leaves.push(Leaf {
                    node,
                    rows,
                    hist,
                    split,
                });
            }
        }
        let mut out = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            let v = self.leaf_value(&leaf.hist);
            tree.value[leaf.node] = v;
            out.push((v, leaf.rows));
        }
        (tree, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queries of 10 candidates where the relevant one is the candidate whose feature 1 is largest
    /// among those with feature 0 above 0.5 (an interaction no single feature ranks).
    fn data(queries: usize) -> (Vec<f32>, Vec<usize>, Vec<bool>) {
        let mut x = Vec::new();
        let mut starts = vec![0];
        let mut relevant = Vec::new();
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 40) as f32 / (1u64 << 24) as f32
        };
        for _ in 0..queries {
            let rows: Vec<[f32; 3]> = (0..10).map(|_| [rnd(), rnd(), rnd()]).collect();
            let best = (0..10)
                .filter(|&i| rows[i][0] > 0.5)
                .max_by(|&a, &b| rows[a][1].total_cmp(&rows[b][1]));
            for (i, r) in rows.iter().enumerate() {
                x.extend_from_slice(r);
                relevant.push(Some(i) == best);
            }
            starts.push(relevant.len());
        }
        (x, starts, relevant)
    }

    fn mrr(model: &Booster, x: &[f32], starts: &[usize], relevant: &[bool]) -> f64 {
        let mut total = 0.0;
        for q in starts.windows(2) {
            let mut order: Vec<usize> = (q[0]..q[1]).collect();
            order.sort_by(|&a, &b| {
                model
                    .predict(&x[b * 3..b * 3 + 3])
                    .total_cmp(&model.predict(&x[a * 3..a * 3 + 3]))
            });
            if let Some(rank) = order.iter().position(|&r| relevant[r]) {
                total += 1.0 / (rank as f64 + 1.0);
            }
        }
        total / (starts.len() - 1) as f64
    }

    fn names() -> Vec<String> {
        ["a", "b", "noise"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn it_learns_an_interaction_no_single_feature_ranks() {
        let (x, starts, relevant) = data(600);
        let params = Params {
            trees: 40,
            learning_rate: 0.2,
            leaves: 8,
            min_leaf: 20,
            ..Params::default()
        };
        let mut trees_seen = 0;
        let data = Queries {
            x: &x,
            starts: &starts,
            relevant: &relevant,
        };
        let model = fit(&names(), &data, params, |t| trees_seen = t);
        assert_eq!(trees_seen, 40);
        model.validate().expect("a fitted model is well formed");
        // Held-out queries: the interaction is learnt, far above ranking by either feature.
        let (tx, ts, tr) = data_offset(300);
        let learnt = mrr(&model, &tx, &ts, &tr);
        assert!(learnt > 0.8, "MRR {learnt}");
        let by_b = Booster {
            features: names(),
            trees: vec![Tree {
                feature: vec![1, -1, -1],
                value: vec![0.5, 0.0, 1.0],
                left: vec![1, 0, 0],
                right: vec![2, 0, 0],
            }],
        };
        assert!(mrr(&by_b, &tx, &ts, &tr) < learnt - 0.2);
    }

    fn data_offset(queries: usize) -> (Vec<f32>, Vec<usize>, Vec<bool>) {
        let (x, starts, relevant) = data(queries + 600);
        let first = starts[600];
        (
            x[first * 3..].to_vec(),
            starts[600..].iter().map(|s| s - first).collect(),
            relevant[first..].to_vec(),
        )
    }

    #[test]
    fn a_fit_repeats_bit_for_bit_and_round_trips_through_json() {
        let (x, starts, relevant) = data(100);
        let data = Queries {
            x: &x,
            starts: &starts,
            relevant: &relevant,
        };
        let params = Params {
            trees: 5,
            min_leaf: 5,
            ..Params::default()
        };
        let a = fit(&names(), &data, params, |_| {});
        let b = fit(&names(), &data, params, |_| {});
        assert_eq!(a, b);
        let back: Booster = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.predict(&x[..3]), a.predict(&x[..3]));
        let rows = a.forest().predict_rows(&x[..30], 3);
        assert_eq!(rows.len(), 10);
        for (i, s) in rows.iter().enumerate() {
            assert_eq!(*s, a.predict(&x[i * 3..i * 3 + 3]), "row {i}: the same sum");
        }
    }

    #[test]
    fn a_malformed_model_is_refused() {
        let tree = |feature: Vec<i32>, left: Vec<u32>, right: Vec<u32>| Booster {
            features: names(),
            trees: vec![Tree {
                value: vec![0.0; feature.len()],
                feature,
                left,
                right,
            }],
        };
        assert!(tree(vec![0, -1, -1], vec![1, 0, 0], vec![2, 0, 0])
            .validate()
            .is_ok());
        let err = tree(vec![3, -1, -1], vec![1, 0, 0], vec![2, 0, 0]).validate();
        assert!(err.unwrap_err().contains("feature 3 of 3"));
        // A loop (a child pointing back at its parent) would never end a walk.
        let err = tree(vec![0, -1, -1], vec![0, 0, 0], vec![2, 0, 0]).validate();
        assert!(err.unwrap_err().contains("out of order"));
        let err = tree(vec![0, -1], vec![1, 0, 0], vec![2, 0, 0]).validate();
        assert!(err.unwrap_err().contains("different lengths"));
    }
}
