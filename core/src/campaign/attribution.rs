//! What a member's document remembers of the campaigns shown to them: impression times for the
//! frequency cap, and the exposures purchases are attributed to.

use super::{KEPT_CAMPAIGNS, KEPT_IMPRESSIONS};
use std::collections::BTreeMap;

/// Records an impression of a campaign in a member's document (for the frequency cap): keeps the
/// newest [`KEPT_IMPRESSIONS`] times per campaign and the [`KEPT_CAMPAIGNS`] most recently shown.
pub fn record_impression(offers: &mut BTreeMap<String, Vec<i64>>, campaign: &str, t_ms: i64) {
    let times = offers.entry(campaign.to_string()).or_default();
    times.push(t_ms);
    times.sort_unstable();
    let excess = times.len().saturating_sub(KEPT_IMPRESSIONS);
    times.drain(..excess);
    while offers.len() > KEPT_CAMPAIGNS {
        let stalest = offers
            .iter()
            .min_by_key(|(_, t)| t.last().copied().unwrap_or_default())
            .map(|(k, _)| k.clone())
            .expect("non-empty");
        offers.remove(&stalest);
    }
}

