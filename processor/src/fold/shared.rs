//! The site's shared models fed by each (non-bot) event, read by the recommender's candidate
//! generators. Every write here is an op of the event's site update, so it lands exactly once under
//! the site's watermark like the rest of the event's site effects.
//!
//! | model | fed by | read by |
//! |---|---|---|
//! | popularity: overall, per category, per brand, per hour and per day | views, carts, order lines | popular, category/brand interests, trending (via the background refresh) |
//! | co-visitation: sessions with both items | an item's first view in a session | item-to-item |
//! | followers: Σ 1/distance of later clicks in a session | every item view | sequential (what comes next) |
//! | session index: an item's most recent sessions, a session's items | every item view | session-based neighbours (V-SKNN) |
//! | co-purchase: bought in one order or by one customer | orders | bought together |
//!
//! Each item's lists in the item-to-item models keep its `processor.neighbours_kept` strongest
//! neighbours, trimmed whenever the item itself is seen (so a busy item's list cannot grow without
//! bound; a list that is never trimmed belongs to an item nobody sees, which gains few neighbours).
//!
//! The session index keeps, per item, only the `processor.session_index_size` most recent sessions,
//! each scored by its last click *on that item*: one write a view, whatever the session's length.
//! V-SKNN's "most recent sessions sharing an item" sample takes a session's latest score over the
//! items it shares, its last click on any of them: within a session's span (minutes) of its last
//! click overall, which is what V-SKNN ranks by. (Scoring by the last click overall would move the
//! session in the index of every item it holds on every view: a write per held item.)

use super::*;
use tailor_core::keys::Facet;

/// Hourly popularity buckets outlive the trending window by this much (seconds).
const HOUR_BUCKET_TTL_SECS: u64 = 3 * 86_400;
/// Daily popularity buckets outlive the baseline window by this much (seconds).
const DAY_BUCKET_SLACK_SECS: u64 = 7 * 86_400;
/// Earlier purchases of a customer paired with a new order's items.
const COPURCHASE_HISTORY: usize = 20;

impl Folder<'_> {
    /// Pairs an item seen for the first time in a session with the session's earlier items, its
    /// `processor.covisitation_window` most recent (`before` is newest first).
    pub(super) fn covisit(
        &self,
        site: &SiteId,
        item: &str,
        before: &[String],
        fx: &mut Effects<'_>,
    ) {
        if before.iter().any(|s| s == item) {
            return;
        }
        for other in before.iter().take(self.config.covisitation_window as usize) {
            fx.zincr(self.keys.covisits(site, other), item, 1.0);
            fx.zincr(self.keys.covisits(site, item), other, 1.0);
        }
        if !before.is_empty() {
            self.keep_strongest(self.keys.covisits(site, item), fx);
        }
    }

    /// Bounds an item's list in an item-to-item model to its `processor.neighbours_kept` strongest.
    fn keep_strongest(&self, key: String, fx: &mut Effects<'_>) {
        fx.ops.push(WriteOp::ZKeepTop {
            key,
            keep: self.config.neighbours_kept,
        });
    }

    /// One interaction's popularity: overall, in its category and brand, and in its hour and day
    /// (the windows trending compares).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn popularity(
        &self,
        site: &SiteId,
        item: &str,
        category: Option<&str>,
        brand: Option<&str>,
        w: f64,
        e: &Event,
        fx: &mut Effects<'_>,
    ) {
        let k = self.keys;
        fx.zincr(k.popular(site), item, w);
        if let Some(c) = category {
            fx.zincr(k.popular_in(site, Facet::Category, c), item, w);
        }
        if let Some(b) = brand {
            fx.zincr(k.popular_in(site, Facet::Brand, b), item, w);
        }
        let hour = k.popular_hour(site, &e.timestamp.format("%Y%m%d%H").to_string());
        fx.zincr(hour.clone(), item, w);
        fx.ops.push(WriteOp::Expire {
            key: hour,
            seconds: HOUR_BUCKET_TTL_SECS,
        });
        let day = k.popular_day(site, &e.timestamp.format("%Y%m%d").to_string());
        fx.zincr(day.clone(), item, w);
        fx.ops.push(WriteOp::Expire {
            key: day,
            seconds: u64::from(self.config.trending_baseline_days) * 86_400 + DAY_BUCKET_SLACK_SECS,
        });
    }

    /// Records that `session` (`<device>/<session id>`) clicked `item` at `t`: its entry in the
    /// item's index moves to `t`, and the session's item list becomes `item` after the session's
    /// other items (`before`, newest first, as the document keeps them: `processor.session_items`
    /// of them), written whole (`tailor_core::stored::session_list`).
    pub(super) fn session_index(
        &self,
        site: &SiteId,
        session: &str,
        item: &str,
        before: &[String],
        t: i64,
        fx: &mut Effects<'_>,
    ) {
        let k = self.keys;
        fx.ops.push(WriteOp::ZSet {
            key: k.item_sessions(site, item),
            member: session.to_string(),
            score: t as f64,
        });
        if !before.iter().any(|b| b == item) {
            fx.ops.push(WriteOp::ZKeepTop {
                key: k.item_sessions(site, item),
                keep: self.config.session_index_size,
            });
        }
        let ttl = u64::from(self.config.session_index_ttl_days) * 86_400;
        if self.config.compact_storage {
            let cap = (self.config.session_items as usize).max(1);
            let others: Vec<&str> = before
                .iter()
                .filter(|b| *b != item)
                .take(cap - 1)
                .map(String::as_str)
                .collect();
            let oldest_first = others.into_iter().rev().chain([item]);
            fx.ops.push(WriteOp::Put {
                key: k.session_list(site, session),
                value: tailor_core::stored::session_list::encode(t, oldest_first),
                ttl_secs: Some(ttl),
            });
        } else {
            // As earlier versions wrote it, which they can read (`processor.compact_storage`).
            let items = k.session_items(site, session);
            fx.ops.push(WriteOp::ZSet {
                key: items.clone(),
                member: item.to_string(),
                score: t as f64,
            });
            fx.ops.push(WriteOp::Expire {
                key: items,
                seconds: ttl,
            });
        }
    }

    /// Sequential rules: `item` followed each of the session's last `sequence_steps` items, weighted
    /// by 1 / distance (`before` is newest first, so index 0 is distance 1).
    pub(super) fn sequence(
        &self,
        site: &SiteId,
        item: &str,
        before: &[String],
        fx: &mut Effects<'_>,
    ) {
        for (i, prev) in before
            .iter()
            .take(self.config.sequence_steps as usize)
            .enumerate()
        {
            if prev != item {
                fx.zincr(
                    self.keys.followers(site, prev),
                    item,
                    1.0 / (i as f64 + 1.0),
                );
            }
        }
        self.keep_strongest(self.keys.followers(site, item), fx);
    }

    /// Co-purchase: every pair of distinct items in one order, and each with the customer's earlier
    /// purchases (the most bought first, at most `COPURCHASE_HISTORY`).
    pub(super) fn copurchase(
        &self,
        site: &SiteId,
        order_items: &[String],
        earlier: &[String],
        fx: &mut Effects<'_>,
    ) {
        let mut items: Vec<&String> = order_items.iter().collect();
        items.sort();
        items.dedup();
        for (i, a) in items.iter().enumerate() {
            let others = items[i + 1..].iter().copied().chain(
                earlier
                    .iter()
                    .take(COPURCHASE_HISTORY)
                    .filter(|e| !items.contains(e)),
            );
            for b in others {
                fx.zincr(self.keys.copurchases(site, a), b, 1.0);
                fx.zincr(self.keys.copurchases(site, b), a, 1.0);
            }
            self.keep_strongest(self.keys.copurchases(site, a), fx);
        }
    }
}
