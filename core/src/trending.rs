//! Trending: items whose recent rate beats their long-run rate. The processor counts every item's
//! interactions per hour and per day of the events' clock (`NS:{site}:pop:h:*`, `:pop:d:*`); its
//! background refresh sums the last `processor.trending_window_hours` hours and the last
//! `processor.trending_baseline_days` days and ranks with [`trending`] into `NS:{site}:trending`.

use std::collections::HashMap;

/// Trending scores from a recent window and a long-run baseline: the window's count over what the
/// baseline's daily rate predicts for it, with `prior` events a day added to every baseline so an
/// item with one lucky view does not top the list; items with fewer than `min_recent` recent events
/// are left out.
pub fn trending(
    recent: &HashMap<String, f64>,
    baseline_per_day: &HashMap<String, f64>,
    window_days: f64,
    prior: f64,
    min_recent: f64,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = recent
        .iter()
        .filter(|(_, n)| **n >= min_recent)
        .map(|(item, n)| {
            let expected =
                (baseline_per_day.get(item).copied().unwrap_or(0.0) + prior) * window_days;
            (item.clone(), n / expected)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(items: &[(&str, f64)]) -> Vec<(String, f64)> {
        items.iter().map(|(i, c)| (i.to_string(), *c)).collect()
    }

    #[test]
    fn trending_favours_items_beating_their_usual_rate() {
        let recent: HashMap<String, f64> = l(&[("steady", 100.0), ("rising", 30.0), ("one", 1.0)])
            .into_iter()
            .collect();
        let baseline: HashMap<String, f64> = l(&[("steady", 100.0), ("rising", 2.0)])
            .into_iter()
            .collect();
        let out = trending(&recent, &baseline, 1.0, 1.0, 3.0);
        let ids: Vec<&str> = out.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["rising", "steady"], "one view is below the minimum");
        assert!((out[0].1 - 10.0).abs() < 1e-12);
    }
}
