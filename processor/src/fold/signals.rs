//! Behaviour-change signals kept in the document: the new-interest detector, per-category daily
//! views, and the cooldown that stops a signal from firing again too soon.

use super::*;

impl Folder<'_> {
    /// A new interest: the short-term view of `c` is strong and dominant while the long-term profile,
    /// minus what the recent burst itself contributed, hardly shows it.
    pub(super) fn new_interest(
        &self,
        s: &mut SubjectState,
        c: &str,
        t: i64,
        caps: &Caps,
        events_before: u64,
        fx: &mut Effects<'_>,
    ) {
        let (short, long) = (&s.interests.recent_categories, &s.interests.categories);
        let r_score = short.score(c, t, caps.short_half_life_ms);
        let r_total = short.total(t, caps.short_half_life_ms);
        let baseline_total = long.total(t, caps.half_life_ms) - r_total;
        let baseline = (long.score(c, t, caps.half_life_ms) - r_score).max(0.0);
        let r_share = r_score / r_total.max(1e-9);
        let l_share = baseline / baseline_total.max(1e-9);
        if events_before >= u64::from(self.config.min_history_events)
            && baseline_total >= 1.0
            && r_score >= 3.0
            && r_share >= 0.5
            && l_share < 0.1
            && self.signal(&mut s.signals, &format!("new_interest:{c}"), t)
        {
            fx.change(
                Some(c),
                ChangeKind::NewInterest {
                    category: c.to_string(),
                    recent_share: r_share,
                    long_term_share: l_share,
                },
            );
        }
    }

    pub(super) fn count_category_day(&self, s: &mut SubjectState, c: &str, t: i64) {
        let today = day_of(t);
        let days = s.category_days.entry(c.to_string()).or_default();
        *days.entry(today).or_default() += 1;
        let newest = *days.keys().next_back().expect("just added");
        days.retain(|d, _| *d > newest - 35);
        // Keep the categories most recently active.
        while s.category_days.len() > self.config.top_categories as usize {
            let stale = s
                .category_days
                .iter()
                .min_by_key(|(_, d)| d.keys().next_back().copied().unwrap_or(i64::MIN))
                .map(|(c, _)| c.clone())
                .expect("non-empty");
            s.category_days.remove(&stale);
        }
    }

    /// Whether the signal `key` may fire at `t` (outside its cooldown); if so, records it.
    pub(super) fn signal(
        &self,
        signals: &mut std::collections::BTreeMap<String, i64>,
        key: &str,
        t: i64,
    ) -> bool {
        let cooldown = i64::from(self.config.signal_cooldown_days) * DAY_MS;
        if signals.get(key).is_some_and(|last| t - last < cooldown) {
            return false;
        }
        signals.insert(key.to_string(), t);
        true
    }
}
