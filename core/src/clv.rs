//! Customer lifetime value: the BG/NBD model of purchase counts (Fader, Hardie & Lee 2005, "Counting
//! your customers the easy way") and the Gamma-Gamma model of spend (Fader, Hardie & Lee 2005, "RFM and
//! CLV: using iso-value curves"), fitted by maximum likelihood on a site's customers and applied per
//! member. Pure functions over per-customer summaries; no I/O.
//!
//! A customer is summarised as in the papers: `x` repeat purchases (purchases on one day merged; the
//! first purchase does not count), `t_x` the time of the last purchase and `t` the length of
//! observation, both in weeks since the first purchase, and `m_x` the mean spend of the repeat
//! purchases. Parameters are fitted in log space with Nelder-Mead, which needs no gradients and is
//! robust on these smooth four- and three-parameter likelihoods.

use serde::{Deserialize, Serialize};

/// One customer's purchase history, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Customer {
    /// Repeat purchases (days with a purchase, after the first).
    pub x: f64,
    /// Weeks from the first purchase to the last.
    pub t_x: f64,
    /// Weeks from the first purchase to the end of observation.
    pub t: f64,
    /// Mean spend of the repeat purchases (0 when there are none).
    pub m_x: f64,
}

impl Customer {
    /// Summarises a purchase history given as (day, spend) pairs, days counted from any origin, up to
    /// and including `end` (the end of the calibration period). `None` for a customer whose first
    /// purchase comes after `end`.
    pub fn from_days(days: &[(i64, f64)], end: i64) -> Option<Customer> {
        let mut cal: Vec<(i64, f64)> = days.iter().copied().filter(|(d, _)| *d <= end).collect();
        cal.sort_by_key(|(d, _)| *d);
        let first = cal.first()?.0;
        let last = cal.last()?.0;
        let repeat = &cal[1..];
        Some(Customer {
            x: repeat.len() as f64,
            t_x: (last - first) as f64 / 7.0,
            t: (end - first) as f64 / 7.0,
            m_x: if repeat.is_empty() {
                0.0
            } else {
                repeat.iter().map(|(_, v)| v).sum::<f64>() / repeat.len() as f64
            },
        })
    }
}

/// BG/NBD parameters: purchase rates ~ Gamma(r, alpha), dropout probabilities ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Gamma-Gamma parameters of the mean spend per purchase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

impl BgNbd {
    /// Log-likelihood of one customer (equation 6 of the BG/NBD paper).
    pub fn log_likelihood(&self, c: &Customer) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = c.x;
        let common =
            ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x)
                - ln_gamma(b)
                - ln_gamma(a + b + x);
        let still = -(r + x) * (alpha + c.t).ln();
        if x > 0.0 {
            let dropped = (a / (b + x - 1.0)).ln() - (r + x) * (alpha + c.t_x).ln();
            common + log_sum_exp(still, dropped)
        } else {
            common + still
        }
    }

    /// Probability the customer is still active at the end of observation.
    pub fn p_alive(&self, c: &Customer) -> f64 {
        if c.x == 0.0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let ratio = (a / (b + c.x - 1.0)) * ((alpha + c.t) / (alpha + c.t_x)).powf(r + c.x);
        1.0 / (1.0 + ratio)
    }

    /// Expected purchases in the next `weeks` (equation 10 of the BG/NBD paper).
    pub fn expected_purchases(&self, c: &Customer, weeks: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = c.x;
        let z = weeks / (alpha + c.t + weeks);
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let num = (a + b + x - 1.0) / (a - 1.0)
            * (1.0 - ((alpha + c.t) / (alpha + c.t + weeks)).powf(r + x) * hyp);
        let den = if x > 0.0 {
            1.0 + a / (b + x - 1.0) * ((alpha + c.t) / (alpha + c.t_x)).powf(r + x)
        } else {
            1.0
        };
        num / den
    }

    /// Fits the model to a population (needs customers with and without repeat purchases).
    pub fn fit(customers: &[Customer]) -> Option<BgNbd> {
        if customers.len() < 10 || !customers.iter().any(|c| c.x > 0.0) {
            return None;
        }
        let nll = |p: &[f64]| {
            let m = BgNbd {
                r: p[0].exp(),
                alpha: p[1].exp(),
                a: p[2].exp(),
                b: p[3].exp(),
            };
            -customers.iter().map(|c| m.log_likelihood(c)).sum::<f64>()
        };
        let best = nelder_mead(nll, &[0.0, 0.0, 0.0, 0.0], 20_000);
        Some(BgNbd {
            r: best[0].exp(),
            alpha: best[1].exp(),
            a: best[2].exp(),
            b: best[3].exp(),
        })
    }
}

impl GammaGamma {
    /// Log-likelihood of one repeat customer's mean spend.
    pub fn log_likelihood(&self, c: &Customer) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        let (x, m) = (c.x, c.m_x);
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * m.ln()
            + (p * x) * x.ln()
            - (p * x + q) * (gamma + m * x).ln()
    }

    /// Expected mean spend of a customer's future purchases.
    pub fn expected_spend(&self, c: &Customer) -> f64 {
        let GammaGamma { p, q, gamma } = *self;
        if q <= 1.0 {
            return c.m_x;
        }
        let population = p * gamma / (q - 1.0);
        let weight = p * c.x / (p * c.x + q - 1.0);
        (1.0 - weight) * population + weight * c.m_x
    }

    /// Fits the model on the customers with at least one repeat purchase and a positive spend.
    pub fn fit(customers: &[Customer]) -> Option<GammaGamma> {
        let repeat: Vec<&Customer> = customers
            .iter()
            .filter(|c| c.x > 0.0 && c.m_x > 0.0)
            .collect();
        if repeat.len() < 10 {
            return None;
        }
        let nll = |p: &[f64]| {
            let m = GammaGamma {
                p: p[0].exp(),
                q: p[1].exp(),
                gamma: p[2].exp(),
            };
            -repeat.iter().map(|c| m.log_likelihood(c)).sum::<f64>()
        };
        let best = nelder_mead(nll, &[0.0, 0.0, 0.0], 20_000);
        Some(GammaGamma {
            p: best[0].exp(),
            q: best[1].exp(),
            gamma: best[2].exp(),
        })
    }
}

fn log_sum_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Gauss's hypergeometric function ₂F₁(a, b; c; z) for |z| < 1, by its series.
fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 0..10_000 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if term.abs() < 1e-14 * sum.abs() {
            break;
        }
    }
    sum
}

/// Minimises `f` from `start` with the Nelder-Mead simplex (standard coefficients), restarting once
/// from the best point so a collapsed simplex cannot stop it early.
fn nelder_mead(f: impl Fn(&[f64]) -> f64, start: &[f64], max_evals: usize) -> Vec<f64> {
    let mut best = start.to_vec();
    for _ in 0..3 {
        best = simplex(&f, &best, max_evals);
    }
    best
}

fn simplex(f: &impl Fn(&[f64]) -> f64, start: &[f64], max_evals: usize) -> Vec<f64> {
    let n = start.len();
    let value = |p: &[f64]| {
        let v = f(p);
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut points: Vec<Vec<f64>> = vec![start.to_vec()];
    for i in 0..n {
        let mut p = start.to_vec();
        p[i] += 0.5;
        points.push(p);
    }
    let mut values: Vec<f64> = points.iter().map(|p| value(p)).collect();
    let mut evals = n + 1;
    while evals < max_evals {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        points = order.iter().map(|&i| points[i].clone()).collect();
        values = order.iter().map(|&i| values[i]).collect();
        if (values[n] - values[0]).abs() <= 1e-10 * (1.0 + values[0].abs()) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|k| points[..n].iter().map(|p| p[k]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|k| centroid[k] + t * (points[n][k] - centroid[k]))
                .collect()
        };
        let reflected = along(-1.0);
        let fr = value(&reflected);
        evals += 1;
        if fr < values[0] {
            let expanded = along(-2.0);
            let fe = value(&expanded);
            evals += 1;
            if fe < fr {
                points[n] = expanded;
                values[n] = fe;
            } else {
                points[n] = reflected;
                values[n] = fr;
            }
        } else if fr < values[n - 1] {
            points[n] = reflected;
            values[n] = fr;
        } else {
            let contracted = if fr < values[n] {
                along(-0.5)
            } else {
                along(0.5)
            };
            let fc = value(&contracted);
            evals += 1;
            if fc < values[n].min(fr) {
                points[n] = contracted;
                values[n] = fc;
            } else {
                for i in 1..=n {
                    points[i] = (0..n)
                        .map(|k| points[0][k] + 0.5 * (points[i][k] - points[0][k]))
                        .collect();
                    values[i] = value(&points[i]);
                }
                evals += n;
            }
        }
    }
    let best = (0..=n)
        .min_by(|&i, &j| values[i].total_cmp(&values[j]))
        .unwrap_or(0);
    points[best].clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ln_gamma_matches_known_values() {
        for (x, want) in [
            (1.0, 0.0),
            (2.0, 0.0),
            (0.5, std::f64::consts::PI.sqrt().ln()),
            (10.0, 362_880f64.ln()),
            (0.1, 2.252_712_651_734_206),
        ] {
            assert!((ln_gamma(x) - want).abs() < 1e-10, "ln_gamma({x})");
        }
    }

    /// The CDNOW sample summarised with the papers' conventions, straight from the file (the pipeline
    /// version of this check, through `tailor import`, is in `tailor/tests/clv.rs`).
    fn cdnow() -> Vec<Customer> {
        // The shared evaluation data next to the checkout (see infra's testkit::shared_data).
        let path = [
            std::env::var("TAILOR_SHARED_DATA").unwrap_or_default(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data").to_string(),
            "/work/shared/data".to_string(),
        ]
        .into_iter()
        .map(|d| std::path::Path::new(&d).join("cdnow/CDNOW_sample.txt"))
        .find(|p| p.exists())
        .expect("shared/data/cdnow/CDNOW_sample.txt (set TAILOR_SHARED_DATA)");
        let text = std::fs::read_to_string(path).unwrap();
        let mut days: BTreeMap<u32, BTreeMap<i64, f64>> = BTreeMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let d = chrono::NaiveDate::parse_from_str(f[2], "%Y%m%d").unwrap();
            let day = d
                .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1997, 1, 1).unwrap())
                .num_days();
            *days
                .entry(f[1].parse().unwrap())
                .or_default()
                .entry(day)
                .or_default() += f[4].parse::<f64>().unwrap();
        }
        let end = 272; // 1997-09-30, the end of the 39-week calibration period
        days.values()
            .map(|d| {
                let pairs: Vec<(i64, f64)> = d.iter().map(|(&k, &v)| (k, v)).collect();
                Customer::from_days(&pairs, end).unwrap()
            })
            .collect()
    }

    fn close(got: f64, want: f64) -> bool {
        ((got - want) / want).abs() <= 0.01
    }

    #[test]
    fn reproduces_the_published_cdnow_parameters() {
        let customers = cdnow();
        assert_eq!(customers.len(), 2357);
        assert_eq!(customers.iter().filter(|c| c.x > 0.0).count(), 946);
        let m = BgNbd::fit(&customers).unwrap();
        assert!(
            close(m.r, 0.243) && close(m.alpha, 4.414) && close(m.a, 0.793) && close(m.b, 2.426),
            "{m:?}"
        );
        let g = GammaGamma::fit(&customers).unwrap();
        assert!(
            close(g.p, 6.25) && close(g.q, 3.74) && close(g.gamma, 15.44),
            "{g:?}"
        );
    }
}
