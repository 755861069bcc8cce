//! The experiment: stable assignment to the holdout and variants (a hash of campaign and subject),
//! the counters per variant, and Thompson sampling with a seeded random source.

use super::{Campaign, Optimize, HOLDOUT};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// FNV-1a, 64 bits: stable across processes and versions (unlike the std hasher), so assignment
/// never moves.
pub(super) fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= u64::from(b'|');
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // A final mix spreads the low bits FNV leaves clustered on short inputs.
    let mut z = h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from a hash.
pub(super) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Where a subject stands in a campaign's experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// Never shown the campaign.
    Holdout,
    /// Treated: in a fixed split, the variant's index; with Thompson sampling, `None` (chosen per
    /// request).
    Treated(Option<usize>),
}

/// Impressions, clicks, conversions and their revenue, of one variant (or of the holdout, whose
/// impressions are the offers held back).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub impressions: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub revenue: f64,
}

/// A site's campaign counters, as stored (field `<campaign>|<variant>|<counter>` → count).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub by: HashMap<(String, String), Counts>,
}

impl Stats {
    /// The hash field of one counter.
    pub fn field(campaign: &str, variant: &str, counter: &str) -> String {
        format!("{campaign}|{variant}|{counter}")
    }

    /// Parses the stored hash; unknown fields are ignored.
    pub fn from_hash(h: &HashMap<String, String>) -> Stats {
        let mut by: HashMap<(String, String), Counts> = HashMap::new();
        for (k, v) in h {
            let mut parts = k.splitn(3, '|');
            let (Some(c), Some(var), Some(counter)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let n: u64 = v.parse().unwrap_or(0);
            let e = by.entry((c.to_string(), var.to_string())).or_default();
            match counter {
                "impressions" => e.impressions = n,
                "clicks" => e.clicks = n,
                "conversions" => e.conversions = n,
                "revenue" => e.revenue = v.parse().unwrap_or(0.0),
                _ => {}
            }
        }
        Stats { by }
    }

    pub fn of(&self, campaign: &str, variant: &str) -> Counts {
        self.by
            .get(&(campaign.to_string(), variant.to_string()))
            .copied()
            .unwrap_or_default()
    }

    /// A campaign's counters summed over its variants (the holdout left out: what its budget spends).
    pub fn total(&self, campaign: &str) -> Counts {
        self.by
            .iter()
            .filter(|((c, v), _)| c == campaign && v != HOLDOUT)
            .fold(Counts::default(), |a, (_, n)| Counts {
                impressions: a.impressions + n.impressions,
                clicks: a.clicks + n.clicks,
                conversions: a.conversions + n.conversions,
                revenue: a.revenue + n.revenue,
            })
    }
}

/// A small seeded random source (SplitMix64): the sampling takes it as a parameter so a seeded run
/// is reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed)
    }

    /// A seed from a request's subject and time.
    pub fn for_request(subject: &str, now_ms: i64) -> Rng {
        Rng(fnv(&[subject, &now_ms.to_string()]))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform in (0, 1).
    fn open(&mut self) -> f64 {
        loop {
            let u = self.uniform();
            if u > 0.0 {
                return u;
            }
        }
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.open(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Gamma(shape, 1), Marsaglia and Tsang (shape >= 1 here: posteriors start at Beta(1, 1)).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.open().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.open();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// A draw from Beta(a, b).
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }
}

/// A draw from the posterior of a variant's rate: Beta(1 + successes, 1 + failures).
pub fn posterior_draw(c: &Counts, optimize: Optimize, rng: &mut Rng) -> f64 {
    let wins = match optimize {
        Optimize::Conversions => c.conversions,
        Optimize::Clicks => c.clicks,
    }
    .min(c.impressions);
    rng.beta(1.0 + wins as f64, 1.0 + (c.impressions - wins) as f64)
}

/// Thompson sampling with an exploration floor: with probability `exploration` a uniform pick,
/// else the variant whose posterior draw is highest. Returns (index, the winning draw).
pub fn choose(
    counts: &[Counts],
    optimize: Optimize,
    exploration: f64,
    rng: &mut Rng,
) -> (usize, f64) {
    assert!(!counts.is_empty(), "a campaign has variants");
    let explore = rng.uniform() < exploration;
    let draws: Vec<f64> = counts
        .iter()
        .map(|c| posterior_draw(c, optimize, rng))
        .collect();
    if explore {
        let i = ((rng.uniform() * counts.len() as f64) as usize).min(counts.len() - 1);
        return (i, draws[i]);
    }
    draws
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, d)| (i, *d))
        .expect("non-empty")
}

/// The variant a treated member is shown, and the draw that ranks the campaign among others
/// competing for the slot.
pub fn pick_variant(c: &Campaign, a: Assignment, stats: &Stats, rng: &mut Rng) -> (usize, f64) {
    let counts: Vec<Counts> = c
        .def
        .variants
        .iter()
        .map(|v| stats.of(&c.def.id, &v.name))
        .collect();
    match a {
        Assignment::Treated(Some(i)) => (i, posterior_draw(&counts[i], c.def.optimize, rng)),
        _ => choose(&counts, c.def.optimize, c.def.exploration, rng),
    }
}
