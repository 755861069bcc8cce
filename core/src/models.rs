//! Site-wide models the processor refreshes in the background and applies per member: RFM quintile
//! cut points and value percentiles over the site's customers, and the fitted lifetime-value models.
//! Also the per-member judgements built on them: RFM scores and segment name, the life-cycle stage,
//! lifetime value and churn risk, gathered with the profile's plain facts in [`Facts`], the one
//! vocabulary that segment rules, the profile API and change detection share.

use crate::clv::{BgNbd, Customer, GammaGamma};
use crate::state::{day_of, SubjectState, DAY_MS};
use serde::{Deserialize, Serialize};

/// Quintile cut points (four per dimension, ascending) over a site's customers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RfmCuts {
    /// Over the time of each customer's last purchase (ms): later is better.
    pub recency: Vec<f64>,
    /// Over order counts.
    pub frequency: Vec<f64>,
    /// Over total spend.
    pub monetary: Vec<f64>,
    /// 99 percentile cut points of total spend ("top 20% by value").
    pub value_percentiles: Vec<f64>,
    pub customers: u64,
    pub refreshed_ms: i64,
}

/// The lifetime-value models fitted on a site's customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvModel {
    pub bg_nbd: BgNbd,
    pub gamma_gamma: Option<GammaGamma>,
    pub customers: u64,
    pub fitted_ms: i64,
}

/// A site's models as the processor last stored them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteModels {
    pub rfm: Option<RfmCuts>,
    pub clv: Option<ClvModel>,
}

impl SiteModels {
    /// From the stored hash (fields `rfm` and `clv`, JSON); unreadable fields count as absent.
    pub fn from_hash(h: &std::collections::HashMap<String, String>) -> SiteModels {
        SiteModels {
            rfm: h.get("rfm").and_then(|s| serde_json::from_str(s).ok()),
            clv: h.get("clv").and_then(|s| serde_json::from_str(s).ok()),
        }
    }
}

/// 1 + the number of cut points strictly below `v`: a score from 1 to 5.
fn quintile(cuts: &[f64], v: f64) -> u8 {
    1 + cuts.iter().filter(|c| **c < v).count().min(4) as u8
}

/// A member's RFM scores (5 best) and the segment they name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rfm {
    pub r: u8,
    pub f: u8,
    pub m: u8,
    /// `r`, `f` and `m` as one three-digit number (555 best), handy in rules.
    pub score: u16,
    pub segment: &'static str,
}

/// The conventional RFM segment names, from the recency score and frequency/monetary scores.
pub fn rfm_segment(r: u8, f: u8, m: u8) -> &'static str {
    match (r, f) {
        _ if r >= 4 && f >= 4 && m >= 4 => "champions",
        _ if r >= 3 && f >= 4 => "loyal",
        (1, f) if f >= 4 => "cannot_lose",
        (r, f) if r <= 2 && f >= 3 => "at_risk",
        (r, 1) if r >= 4 => "new_customer",
        (r, _) if r >= 4 => "potential_loyalist",
        (3, f) if f <= 1 => "promising",
        (3, _) => "needs_attention",
        (2, _) => "about_to_sleep",
        (1, f) if f >= 2 => "hibernating",
        _ => "lost",
    }
}

impl RfmCuts {
    /// The ranks (ascending, 0-based) of the `parts - 1` cut points of a population of `n`: n·k/parts.
    pub fn cut_ranks(n: u64, parts: u64) -> Vec<u64> {
        if n == 0 {
            return Vec::new();
        }
        (1..parts).map(|k| (n * k / parts).min(n - 1)).collect()
    }

    pub fn score(&self, last_purchase_ms: i64, orders: u64, monetary: f64) -> Rfm {
        let r = quintile(&self.recency, last_purchase_ms as f64);
        let f = quintile(&self.frequency, orders as f64);
        let m = quintile(&self.monetary, monetary);
        Rfm {
            r,
            f,
            m,
            score: u16::from(r) * 100 + u16::from(f) * 10 + u16::from(m),
            segment: rfm_segment(r, f, m),
        }
    }

    /// The share of customers spending strictly less (0 to 0.99).
    pub fn value_percentile(&self, monetary: f64) -> f64 {
        self.value_percentiles
            .iter()
            .filter(|c| **c < monetary)
            .count() as f64
            / 100.0
    }
}

/// Thresholds of the life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleRules {
    /// Days without a purchase after which a customer is lapsing, and lapsed.
    pub lapsing_days: u32,
    pub lapsed_days: u32,
    /// For repeat customers once the BG/NBD model is fitted: P(alive) below which they are lapsing,
    /// and lapsed.
    pub lapsing_p_alive: f64,
    pub lapsed_p_alive: f64,
    /// Horizon of expected purchases and value, in weeks.
    pub horizon_weeks: f64,
}

impl Default for LifecycleRules {
    fn default() -> Self {
        LifecycleRules {
            lapsing_days: 120,
            lapsed_days: 365,
            lapsing_p_alive: 0.5,
            lapsed_p_alive: 0.2,
            horizon_weeks: 52.0,
        }
    }
}

/// The relationship life cycle.
pub const STAGES: [&str; 5] = [
    "prospect",
    "first_time_buyer",
    "repeat_customer",
    "lapsing",
    "lapsed",
];

/// The member's purchase history as the BG/NBD models see it at `now_ms`.
pub fn customer(state: &SubjectState, now_ms: i64) -> Option<Customer> {
    let days: Vec<(i64, f64)> = state.purchases.days.iter().map(|(d, v)| (*d, *v)).collect();
    Customer::from_days(&days, day_of(now_ms))
}

/// Lifetime value and churn risk of a customer at `now_ms`, if the site's models are fitted.
pub fn member_clv(
    state: &SubjectState,
    models: &SiteModels,
    rules: &LifecycleRules,
    now_ms: i64,
) -> Option<crate::state::MemberClv> {
    let model = models.clv.as_ref()?;
    let c = customer(state, now_ms)?;
    let p_alive = model.bg_nbd.p_alive(&c);
    let expected_purchases = model.bg_nbd.expected_purchases(&c, rules.horizon_weeks);
    let expected_spend = match &model.gamma_gamma {
        Some(gg) => gg.expected_spend(&c),
        None => state.purchases.order_values.mean,
    };
    Some(crate::state::MemberClv {
        at_ms: now_ms,
        p_alive,
        expected_purchases,
        expected_spend,
        value: expected_purchases * expected_spend,
    })
}

/// The life-cycle stage at `now_ms`.
pub fn stage(
    state: &SubjectState,
    clv: Option<&crate::state::MemberClv>,
    rules: &LifecycleRules,
    now_ms: i64,
) -> &'static str {
    let p = &state.purchases;
    let Some(last) = p.last_ms else {
        return "prospect";
    };
    let idle_days = (now_ms - last).max(0) / DAY_MS;
    let repeat = p.days.len() > 1;
    let p_alive = clv.filter(|_| repeat).map(|c| c.p_alive);
    if idle_days >= i64::from(rules.lapsed_days)
        || p_alive.is_some_and(|a| a < rules.lapsed_p_alive)
    {
        "lapsed"
    } else if idle_days >= i64::from(rules.lapsing_days)
        || p_alive.is_some_and(|a| a < rules.lapsing_p_alive)
    {
        "lapsing"
    } else if p.orders >= 2 {
        "repeat_customer"
    } else {
        "first_time_buyer"
    }
}

/// What is known about a subject at one moment, by name: the vocabulary of segment rules and the
/// derived part of the profile view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Facts {
    pub member: bool,
    pub orders: u64,
    pub units: u64,
    pub monetary: f64,
    pub average_order_value: f64,
    pub days_since_last_purchase: Option<f64>,
    pub days_since_first_purchase: Option<f64>,
    pub days_since_last_seen: Option<f64>,
    pub sessions: u64,
    pub pages: u64,
    pub dwell_seconds: f64,
    pub rfm: Option<Rfm>,
    pub value_percentile: Option<f64>,
    /// Lifetime value and P(alive) at this moment (churn risk is 1 − P(alive)), once the site's
    /// models are fitted and the subject has bought.
    pub value: Option<crate::state::MemberClv>,
    pub lifecycle: &'static str,
    pub top_category: Option<String>,
    pub top_brand: Option<String>,
    /// The channel of the latest session.
    pub channel: Option<String>,
}

fn days_between(from: Option<i64>, to: i64) -> Option<f64> {
    from.map(|f| (to - f).max(0) as f64 / DAY_MS as f64)
}

impl Facts {
    pub fn of(
        state: &SubjectState,
        models: &SiteModels,
        rules: &LifecycleRules,
        now_ms: i64,
    ) -> Facts {
        let p = &state.purchases;
        let clv = member_clv(state, models, rules, now_ms);
        let rfm = models.rfm.as_ref().filter(|_| p.orders > 0);
        Facts {
            member: state.member_id.is_some(),
            orders: p.orders,
            units: p.units,
            monetary: p.monetary,
            average_order_value: if p.orders > 0 {
                p.monetary / p.orders as f64
            } else {
                0.0
            },
            days_since_last_purchase: days_between(p.last_ms, now_ms),
            days_since_first_purchase: days_between(p.first_ms, now_ms),
            days_since_last_seen: days_between(state.last_seen_ms, now_ms),
            sessions: state.sessions.count,
            pages: state.sessions.pages,
            dwell_seconds: state.dwell_ms as f64 / 1000.0,
            rfm: rfm.map(|c| c.score(p.last_ms.unwrap_or(0), p.orders, p.monetary)),
            value_percentile: rfm.map(|c| c.value_percentile(p.monetary)),
            value: clv,
            lifecycle: stage(state, clv.as_ref(), rules, now_ms),
            top_category: state
                .interests
                .categories
                .scores
                .first()
                .map(|(c, _)| c.clone()),
            top_brand: state
                .interests
                .brands
                .scores
                .first()
                .map(|(c, _)| c.clone()),
            channel: state.sessions.current().map(|s| s.channel.clone()),
        }
    }
}

/// Views of `category` on the `days` days up to and including the day of `now_ms`.
pub fn category_views(state: &SubjectState, category: &str, days: i64, now_ms: i64) -> u64 {
    let today = day_of(now_ms);
    state.category_days.get(category).map_or(0, |d| {
        d.range(today - days + 1..=today)
            .map(|(_, n)| u64::from(*n))
            .sum()
    })
}

/// Orders placed on the `days` days up to and including the day of `now_ms`.
pub fn orders_within(state: &SubjectState, days: i64, now_ms: i64) -> u64 {
    let today = day_of(now_ms);
    state.purchases.days.range(today - days + 1..=today).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintile_scores_and_segments() {
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        let quintiles: Vec<f64> = RfmCuts::cut_ranks(10, 5)
            .iter()
            .map(|r| sorted[*r as usize])
            .collect();
        assert_eq!(quintiles, [3.0, 5.0, 7.0, 9.0]);
        assert_eq!(RfmCuts::cut_ranks(10, 5), [2, 4, 6, 8]);
        let cuts = RfmCuts {
            recency: vec![10.0, 20.0, 30.0, 40.0],
            frequency: vec![1.0, 1.0, 2.0, 3.0],
            monetary: vec![10.0, 20.0, 30.0, 40.0],
            value_percentiles: (1..100).map(f64::from).collect(),
            customers: 100,
            refreshed_ms: 0,
        };
        let best = cuts.score(50, 5, 100.0);
        assert_eq!((best.r, best.f, best.m, best.score), (5, 5, 5, 555));
        assert_eq!(best.segment, "champions");
        let one_timer = cuts.score(50, 1, 5.0);
        assert_eq!((one_timer.f, one_timer.segment), (1, "new_customer"));
        assert_eq!(cuts.score(5, 1, 5.0).segment, "lost");
        assert_eq!(cuts.score(5, 5, 100.0).segment, "cannot_lose");
        assert_eq!(cuts.value_percentile(80.5), 0.8);
        assert_eq!(cuts.value_percentile(0.5), 0.0);
    }

    #[test]
    fn life_cycle_follows_purchases_and_time() {
        let rules = LifecycleRules::default();
        let mut s = SubjectState::default();
        assert_eq!(stage(&s, None, &rules, 0), "prospect");
        s.purchases.orders = 1;
        s.purchases.last_ms = Some(0);
        s.purchases.days.insert(0, 10.0);
        assert_eq!(stage(&s, None, &rules, DAY_MS), "first_time_buyer");
        s.purchases.orders = 2;
        s.purchases.days.insert(1, 10.0);
        assert_eq!(stage(&s, None, &rules, DAY_MS), "repeat_customer");
        assert_eq!(stage(&s, None, &rules, 130 * DAY_MS), "lapsing");
        assert_eq!(stage(&s, None, &rules, 400 * DAY_MS), "lapsed");
        let unlikely = crate::state::MemberClv {
            p_alive: 0.1,
            ..Default::default()
        };
        assert_eq!(stage(&s, Some(&unlikely), &rules, DAY_MS), "lapsed");
    }
}
