//! A campaign's report: per variant and for the treated members together, impressions, clicks,
//! conversions and revenue, and the lift of the conversion rate over the holdout with a 95 %
//! interval.
//!
//! The unit is the exposure: an impression for a treated member, a held-back offer for a holdout
//! member (both reported by the tag from the recommender's answer, so both arms are counted the same
//! way). The conversion rate is conversions per exposure. The absolute lift is the difference of the
//! rates, its interval the normal approximation of a difference of two proportions; the relative
//! lift is the ratio minus one, its interval from the log of the ratio (Katz). Either is absent
//! (`null`) when an arm has no exposures, or (relative) no conversions.

use super::{CampaignDef, Counts, Stats, HOLDOUT};
use serde::Serialize;

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// One arm's counters and rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    pub impressions: u64,
    pub clicks: u64,
    /// Clicks per impression (absent without impressions).
    pub ctr: Option<f64>,
    pub conversions: u64,
    /// Conversions per impression (absent without impressions).
    pub conversion_rate: Option<f64>,
    pub revenue: f64,
}

impl Arm {
    fn of(c: &Counts) -> Arm {
        let per = |n: u64| (c.impressions > 0).then(|| n as f64 / c.impressions as f64);
        Arm {
            impressions: c.impressions,
            clicks: c.clicks,
            ctr: per(c.clicks),
            conversions: c.conversions,
            conversion_rate: per(c.conversions),
            revenue: c.revenue,
        }
    }
}

/// The lift of a treated arm's conversion rate over the holdout's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lift {
    /// Rate difference (treated − holdout).
    pub absolute: f64,
    pub absolute_ci95: [f64; 2],
    /// Rate ratio − 1.
    pub relative: Option<f64>,
    pub relative_ci95: Option<[f64; 2]>,
}

/// The lift of `t` over `h`; `None` when either arm has no exposures.
pub fn lift(t: &Counts, h: &Counts) -> Option<Lift> {
    if t.impressions == 0 || h.impressions == 0 {
        return None;
    }
    let (n1, n0) = (t.impressions as f64, h.impressions as f64);
    let p1 = (t.conversions as f64 / n1).min(1.0);
    let p0 = (h.conversions as f64 / n0).min(1.0);
    let d = p1 - p0;
    let se = (p1 * (1.0 - p1) / n1 + p0 * (1.0 - p0) / n0).sqrt();
    let (relative, relative_ci95) = if p1 > 0.0 && p0 > 0.0 {
        let log_ratio = (p1 / p0).ln();
        let se_log = ((1.0 - p1) / (n1 * p1) + (1.0 - p0) / (n0 * p0)).sqrt();
        (
            Some(p1 / p0 - 1.0),
            Some([
                (log_ratio - Z95 * se_log).exp() - 1.0,
                (log_ratio + Z95 * se_log).exp() - 1.0,
            ]),
        )
    } else {
        (None, None)
    };
    Some(Lift {
        absolute: d,
        absolute_ci95: [d - Z95 * se, d + Z95 * se],
        relative,
        relative_ci95,
    })
}

/// A variant's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantReport {
    pub variant: String,
    #[serde(flatten)]
    pub arm: Arm,
    pub lift: Option<Lift>,
}

/// `GET /admin/campaigns/{id}/report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub campaign: String,
    pub site_id: String,
    pub variants: Vec<VariantReport>,
    /// Every variant together, against the holdout.
    pub treated: VariantReport,
    /// Held-back offers count as its impressions.
    pub holdout: Arm,
    pub holdout_share: f64,
}

/// The report of `def` on `site` from the site's counters.
pub fn report(def: &CampaignDef, site: &str, stats: &Stats) -> Report {
    let holdout = stats.of(&def.id, HOLDOUT);
    let line = |variant: &str, c: Counts| VariantReport {
        variant: variant.to_string(),
        arm: Arm::of(&c),
        lift: lift(&c, &holdout),
    };
    Report {
        campaign: def.id.clone(),
        site_id: site.to_string(),
        variants: def
            .variants
            .iter()
            .map(|v| line(&v.name, stats.of(&def.id, &v.name)))
            .collect(),
        treated: line("all", stats.total(&def.id)),
        holdout: Arm::of(&holdout),
        holdout_share: def.holdout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn counts(impressions: u64, conversions: u64) -> Counts {
        Counts {
            impressions,
            conversions,
            ..Default::default()
        }
    }

    #[test]
    fn lift_and_its_interval_follow_the_textbook_formulas() {
        let l = lift(&counts(1000, 60), &counts(1000, 40)).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-4;
        assert!(close(l.absolute, 0.02));
        // 0.02 ± 1.96 × sqrt(0.06·0.94/1000 + 0.04·0.96/1000)
        assert!(close(l.absolute_ci95[0], 0.000917), "{l:?}");
        assert!(close(l.absolute_ci95[1], 0.039083), "{l:?}");
        assert!(close(l.relative.unwrap(), 0.5));
        let [lo, hi] = l.relative_ci95.unwrap();
        assert!(close(lo, 0.015223) && close(hi, 1.216276), "{l:?}");
        // No conversions in the holdout: no ratio; no exposures: no lift at all.
        let l = lift(&counts(100, 5), &counts(100, 0)).unwrap();
        assert!(l.relative.is_none() && l.absolute > 0.0);
        assert!(lift(&counts(100, 5), &counts(0, 0)).is_none());
    }

    #[test]
    fn the_report_has_every_variant_the_treated_total_and_the_holdout() {
        let def: CampaignDef = serde_json::from_value(serde_json::json!({
            "id": "w", "slots": ["home"], "holdout": 0.2,
            "variants": [{"name": "a", "title": "A"}, {"name": "b", "title": "B"}]}))
        .unwrap();
        let h: HashMap<String, String> = [
            ("w|a|impressions", "100"),
            ("w|a|clicks", "10"),
            ("w|a|conversions", "8"),
            ("w|a|revenue", "80.5"),
            ("w|b|impressions", "100"),
            ("w|b|conversions", "2"),
            ("w|holdout|impressions", "50"),
            ("w|holdout|conversions", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let r = report(&def, "demo", &Stats::from_hash(&h));
        assert_eq!(r.variants.len(), 2);
        assert_eq!(r.variants[0].arm.ctr, Some(0.1));
        assert_eq!(r.variants[0].arm.revenue, 80.5);
        assert_eq!(r.treated.arm.impressions, 200);
        assert_eq!(r.treated.arm.conversions, 10);
        assert_eq!(r.holdout.impressions, 50);
        assert!((r.treated.lift.as_ref().unwrap().absolute - (0.05 - 0.02)).abs() < 1e-12);
        assert!(r.variants[1].arm.ctr == Some(0.0));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["variants"][0]["variant"], "a");
        assert_eq!(
            json["variants"][0]["impressions"], 100,
            "the arm's fields are flattened"
        );
    }
}
