//! Purchases: order counters, revenue per currency, spend per day, bought items and categories,
//! the site's customer indexes, and the purchase-shift signal. An order reported again under another
//! event id counts once (its order id is remembered).

use super::*;

impl Folder<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn purchase(
        &self,
        doc: &mut Doc,
        e: &Event,
        order: &tailor_core::event::Order,
        t: i64,
        fx: &mut Effects<'_>,
        an: &str,
        hour: u32,
    ) {
        let k = self.keys;
        let site = doc.site.clone();
        let p = &mut doc.state.purchases;
        if p.order_ids.contains(&order.id) {
            return; // the same order reported again under another event id
        }
        let new_categories: Vec<String> = order
            .lines
            .iter()
            .filter_map(|l| l.category.as_ref().map(|c| c.to_string()))
            .filter(|c| !p.categories.contains_key(c))
            .collect();
        // The campaigns this order converts for (once per order: a repeated order returned above).
        let stats = k.campaign_stats(&site);
        for (campaign, variant, _) in campaign::attribute(&doc.state.exposures, t) {
            fx.hincr(
                &stats,
                campaign::Stats::field(campaign, variant, "conversions"),
                1,
            );
            fx.ops.push(WriteOp::HashIncrFloat {
                key: stats.clone(),
                field: campaign::Stats::field(campaign, variant, "revenue"),
                by: order.revenue,
            });
        }
        let p = &mut doc.state.purchases;
        let usual = p.order_values;
        let orders_before = p.orders;
        p.order_ids.push(order.id.clone());
        let excess = p.order_ids.len().saturating_sub(50);
        p.order_ids.drain(..excess);
        p.orders += 1;
        p.units += order
            .lines
            .iter()
            .map(|l| u64::from(l.quantity))
            .sum::<u64>();
        *p.revenue.entry(order.currency.clone()).or_default() += order.revenue;
        p.monetary += order.revenue;
        p.first_ms = Some(p.first_ms.map_or(t, |f| f.min(t)));
        p.last_ms = Some(p.last_ms.map_or(t, |l| l.max(t)));
        *p.days.entry(day_of(t)).or_default() += order.revenue;
        if !e.context.bot {
            let earlier: Vec<String> = p.items.iter().map(|(i, _)| i.clone()).collect();
            let bought: Vec<String> = order.lines.iter().map(|l| l.item_id.to_string()).collect();
            self.copurchase(&site, &bought, &earlier, fx);
        }
        let p = &mut doc.state.purchases;
        for l in &order.lines {
            add_count(&mut p.items, l.item_id.as_str(), f64::from(l.quantity), 100);
        }
        let mut cats: Vec<String> = order
            .lines
            .iter()
            .filter_map(|l| l.category.as_ref().map(|c| c.to_string()))
            .collect();
        cats.sort();
        cats.dedup();
        for c in cats {
            *p.categories.entry(c).or_default() += 1;
        }
        p.order_values.push(order.revenue);
        let (orders, monetary, last) = (p.orders, p.monetary, p.last_ms.unwrap_or(t));
        let subject = doc.subject.clone();
        doc.extra.push(WriteOp::ZIncr {
            key: k.purchase_days(&site, &subject),
            member: day_of(t).to_string(),
            by: order.revenue,
        });
        let name = subject.to_string();
        fx.ops.push(WriteOp::ZSet {
            key: k.customers(&site),
            member: name.clone(),
            score: monetary,
        });
        fx.ops.push(WriteOp::ZSet {
            key: k.recency_index(&site),
            member: name.clone(),
            score: last as f64,
        });
        fx.ops.push(WriteOp::ZSet {
            key: k.frequency_index(&site),
            member: name,
            score: orders as f64,
        });
        if !e.context.bot {
            fx.hincr(an, format!("funnel:{hour:02}:purchase"), 1);
            fx.ops.push(WriteOp::HashIncrFloat {
                key: an.to_string(),
                field: "revenue".into(),
                by: order.revenue,
            });
        }
        if orders_before >= 2 {
            let shift = if let Some(c) = new_categories.first() {
                Some(("new_category", Some(c.clone())))
            } else if usual.n >= 3
                && usual.std_dev() > 0.0
                && (order.revenue - usual.mean).abs() > 3.0 * usual.std_dev()
            {
                Some(("order_value", None))
            } else {
                None
            };
            if let Some((reason, category)) = shift {
                if self.signal(
                    &mut doc.state.signals,
                    &format!("purchase_shift:{reason}"),
                    t,
                ) {
                    fx.change(
                        Some(reason),
                        ChangeKind::PurchaseShift {
                            reason: reason.into(),
                            category,
                            order_value: order.revenue,
                            usual_order_value: usual.mean,
                        },
                    );
                }
            }
        }
    }
}
