//! What a member's document remembers of the campaigns shown to them, and how a purchase is
//! attributed to them.
//!
//! * Impression times per campaign feed the frequency cap ([`record_impression`]).
//! * An [`Exposure`] per campaign is the member's arm (a variant, or [`HOLDOUT`] when the recommender
//!   held the offer back), when it was last shown or held back, when it was last clicked, and the
//!   campaign's attribution windows. The tag reports held-back offers like shown ones (an
//!   `offer_impression` with the holdout's token), so the holdout's exposures and purchases are
//!   counted the same way as the treated members', which is what makes the lift comparable.
//! * [`attribute`]: a purchase converts for a campaign when it comes within `click_days` of a click
//!   on it, or else within `view_days` of being shown (view-through; 0 turns that off). Counted in
//!   the processor's site update of the purchase event, so exactly once per purchase and campaign.

use super::{OfferToken, KEPT_CAMPAIGNS, KEPT_IMPRESSIONS};
use crate::state::DAY_MS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The arm of members held back from a campaign (never a variant's name).
pub const HOLDOUT: &str = "holdout";
/// Longest attribution window, in days.
pub const MAX_ATTRIBUTION_DAYS: u32 = 90;

/// How long after a click, or an impression, a purchase counts as the campaign's conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribution {
    #[serde(default = "default_click_days")]
    pub click_days: u32,
    /// 0: impressions alone never convert.
    #[serde(default = "default_view_days")]
    pub view_days: u32,
}

fn default_click_days() -> u32 {
    7
}

fn default_view_days() -> u32 {
    1
}

impl Default for Attribution {
    fn default() -> Self {
        Attribution {
            click_days: default_click_days(),
            view_days: default_view_days(),
        }
    }
}

/// A member's latest encounter with one campaign (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub variant: String,
    pub seen_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clicked_ms: Option<i64>,
    pub windows: Attribution,
}

/// How a purchase came to convert for a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Click,
    View,
}

/// Records that the member was shown (or held back from) a campaign at `t_ms`, or clicked it.
/// The latest arm wins (Thompson sampling may show another variant later); at most
/// [`KEPT_CAMPAIGNS`] campaigns are kept, the least recently seen dropped.
pub fn record_exposure(
    exposures: &mut BTreeMap<String, Exposure>,
    offer: &OfferToken,
    t_ms: i64,
    clicked: bool,
) {
    let e = exposures
        .entry(offer.campaign.clone())
        .or_insert_with(|| Exposure {
            variant: offer.variant.clone(),
            seen_ms: t_ms,
            clicked_ms: None,
            windows: offer.windows,
        });
    if t_ms >= e.seen_ms {
        e.variant = offer.variant.clone();
        e.windows = offer.windows;
        e.seen_ms = t_ms;
    }
    if clicked {
        e.clicked_ms = Some(e.clicked_ms.map_or(t_ms, |c| c.max(t_ms)));
    }
    while exposures.len() > KEPT_CAMPAIGNS {
        let stalest = exposures
            .iter()
            .min_by_key(|(_, e)| e.seen_ms)
            .map(|(k, _)| k.clone())
            .expect("non-empty");
        exposures.remove(&stalest);
    }
}

/// The campaigns (and arms) a purchase at `t_ms` converts for; see the module docs.
pub fn attribute(exposures: &BTreeMap<String, Exposure>, t_ms: i64) -> Vec<(&str, &str, Via)> {
    let within = |at: i64, days: u32| at <= t_ms && t_ms - at <= i64::from(days) * DAY_MS;
    exposures
        .iter()
        .filter_map(|(campaign, e)| {
            let via = if e
                .clicked_ms
                .is_some_and(|c| within(c, e.windows.click_days))
            {
                Via::Click
            } else if e.windows.view_days > 0 && within(e.seen_ms, e.windows.view_days) {
                Via::View
            } else {
                return None;
            };
            Some((campaign.as_str(), e.variant.as_str(), via))
        })
        .collect()
}

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
