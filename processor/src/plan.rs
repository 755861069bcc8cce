//! What one event changes: the profile update as a list of write ops, with no I/O.
//!
//! Co-visitation counts, per pair of items, the sessions in which both were viewed: when an item is
//! viewed for the first time in a session it is paired once with every item seen earlier in that
//! session. Popularity weights interactions by intent (view < cart < purchase).

use chrono::{DateTime, Utc};
use tailor_core::config::ProcessorConfig;
use tailor_core::event::{Event, EventBody};
use tailor_core::keys::KeySpace;
use tailor_core::ops::{Position, Update, WriteOp};
use tailor_core::profile::fields;
use tailor_core::Subject;

/// Milliseconds per day: purchase days are counted in UTC days since the epoch.
const DAY_MS: i64 = 86_400_000;
/// Popularity weight of a view or click.
pub const VIEW_WEIGHT: f64 = 1.0;
/// Popularity weight of an add-to-cart.
pub const CART_WEIGHT: f64 = 3.0;
/// Popularity weight of a purchased order line.
pub const PURCHASE_WEIGHT: f64 = 5.0;

/// What planning needs besides the event: configuration, key layout, and the session's items so far.
pub struct Planner<'a> {
    pub keys: &'a KeySpace,
    pub config: &'a ProcessorConfig,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Planner<'_> {
    /// The session list key an event reads and extends, if it has a session and an item.
    pub fn session_key(&self, e: &Event) -> Option<String> {
        let session = e.session_id.as_ref()?;
        e.item()?;
        Some(self.keys.session_items(&e.site_id, &e.subject(), session))
    }

    /// The update for `event`, given the distinct items its session has seen so far (newest first).
    pub fn plan(&self, e: &Event, session_items: &[String], position: Option<Position>) -> Update {
        let k = self.keys;
        let site = &e.site_id;
        let subject = e.subject();
        let profile = k.profile(site, &subject);
        let ts = ms(e.timestamp);
        let mut ops = vec![
            WriteOp::HashIncr {
                key: profile.clone(),
                field: format!("{}{}", fields::EVENTS_PREFIX, e.event_type()),
                by: 1,
            },
            WriteOp::HashMin {
                key: profile.clone(),
                field: fields::FIRST_SEEN_MS.into(),
                value: ts,
            },
            WriteOp::HashMax {
                key: profile.clone(),
                field: fields::LAST_SEEN_MS.into(),
                value: ts,
            },
            WriteOp::HashSet {
                key: profile.clone(),
                field: fields::ANONYMOUS_ID.into(),
                value: e.anonymous_id.to_string(),
            },
        ];
        if let Subject::Member(m) = &subject {
            ops.push(WriteOp::HashSet {
                key: profile.clone(),
                field: fields::MEMBER_ID.into(),
                value: m.to_string(),
            });
        }
        let popular = k.popular(site);
        match &e.body {
            EventBody::PageView { .. } | EventBody::Click { .. } => {
                if let Some((item, category)) = e.item() {
                    ops.push(WriteOp::ListPushDistinct {
                        key: k.recent_items(site, &subject),
                        value: item.to_string(),
                        cap: self.config.recent_items,
                    });
                    ops.push(WriteOp::ZIncr {
                        key: k.item_views(site, &subject),
                        member: item.to_string(),
                        by: 1.0,
                    });
                    if let Some(c) = category {
                        ops.push(WriteOp::ZIncr {
                            key: k.category_views(site, &subject),
                            member: c.to_string(),
                            by: 1.0,
                        });
                    }
                    ops.push(WriteOp::ZIncr {
                        key: popular,
                        member: item.to_string(),
                        by: VIEW_WEIGHT,
                    });
                }
            }
            EventBody::OfferImpression { slot, item_ids } => {
                let stats = k.offer_stats(site);
                ops.push(WriteOp::HashIncr {
                    key: stats.clone(),
                    field: format!("{slot}:impressions"),
                    by: 1,
                });
                ops.push(WriteOp::HashIncr {
                    key: stats,
                    field: format!("{slot}:items_shown"),
                    by: item_ids.len() as i64,
                });
            }
            EventBody::OfferClick { slot, .. } => {
                ops.push(WriteOp::HashIncr {
                    key: k.offer_stats(site),
                    field: format!("{slot}:clicks"),
                    by: 1,
                });
            }
            // Identity stitching and custom-event mining belong to the mining stage (issue 4);
            // these events still refresh recency above.
            EventBody::Alias { .. } | EventBody::Custom { .. } => {}
            EventBody::AddToCart { item_id, .. } => {
                ops.push(WriteOp::ZIncr {
                    key: popular,
                    member: item_id.to_string(),
                    by: CART_WEIGHT,
                });
            }
            EventBody::Purchase { order } => {
                ops.push(WriteOp::HashIncr {
                    key: profile.clone(),
                    field: fields::ORDERS.into(),
                    by: 1,
                });
                ops.push(WriteOp::HashIncr {
                    key: profile.clone(),
                    field: fields::UNITS.into(),
                    by: order.lines.iter().map(|l| i64::from(l.quantity)).sum(),
                });
                ops.push(WriteOp::HashIncrFloat {
                    key: profile.clone(),
                    field: format!("{}{}", fields::REVENUE_PREFIX, order.currency),
                    by: order.revenue,
                });
                ops.push(WriteOp::HashMin {
                    key: profile.clone(),
                    field: fields::FIRST_PURCHASE_MS.into(),
                    value: ts,
                });
                ops.push(WriteOp::HashMax {
                    key: profile.clone(),
                    field: fields::LAST_PURCHASE_MS.into(),
                    value: ts,
                });
                ops.push(WriteOp::ZIncr {
                    key: k.purchase_days(site, &subject),
                    member: e
                        .timestamp
                        .timestamp_millis()
                        .div_euclid(DAY_MS)
                        .to_string(),
                    by: order.revenue,
                });
                ops.push(WriteOp::ZIncr {
                    key: k.customers(site),
                    member: subject.to_string(),
                    by: order.revenue,
                });
                for line in &order.lines {
                    ops.push(WriteOp::ZIncr {
                        key: k.bought(site, &subject),
                        member: line.item_id.to_string(),
                        by: f64::from(line.quantity),
                    });
                    ops.push(WriteOp::ZIncr {
                        key: popular.clone(),
                        member: line.item_id.to_string(),
                        by: PURCHASE_WEIGHT,
                    });
                }
            }
            EventBody::Identify { traits } => {
                for (name, value) in traits {
                    ops.push(WriteOp::HashSet {
                        key: profile.clone(),
                        field: format!("{}{}", fields::TRAIT_PREFIX, name),
                        value: value.to_string(),
                    });
                }
            }
            EventBody::PagePing { dwell_ms } => {
                ops.push(WriteOp::HashIncr {
                    key: profile.clone(),
                    field: fields::DWELL_MS.into(),
                    by: i64::try_from(*dwell_ms).unwrap_or(i64::MAX),
                });
            }
        }
        if let (Some(session_key), Some((item, _))) = (self.session_key(e), e.item()) {
            let item = item.as_str();
            if !session_items.iter().any(|s| s == item) {
                for other in session_items {
                    ops.push(WriteOp::ZIncr {
                        key: k.covisits(site, other),
                        member: item.to_string(),
                        by: 1.0,
                    });
                    ops.push(WriteOp::ZIncr {
                        key: k.covisits(site, item),
                        member: other.clone(),
                        by: 1.0,
                    });
                }
            }
            ops.push(WriteOp::ListPushDistinct {
                key: session_key.clone(),
                value: item.to_string(),
                cap: self.config.session_items,
            });
            ops.push(WriteOp::Expire {
                key: session_key,
                seconds: self.config.session_ttl_secs,
            });
        }
        Update {
            marker_key: k.applied_marker(site, &subject, &e.event_id),
            marker_ttl_secs: self.config.dedupe_ttl_secs,
            position,
            ops,
        }
    }
}

/// The session list after `item` is pushed, as the store will hold it (distinct, newest first, capped).
pub fn push_session_item(list: &mut Vec<String>, item: &str, cap: u32) {
    list.retain(|i| i != item);
    list.insert(0, item.to_string());
    list.truncate(cap as usize);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tailor_core::event::RawEvent;

    fn event(v: serde_json::Value) -> Event {
        RawEvent::from_json(v)
            .unwrap()
            .validate(Utc::now())
            .unwrap()
    }

    fn zincrs(u: &Update, key_part: &str) -> Vec<(String, String, f64)> {
        u.ops
            .iter()
            .filter_map(|o| match o {
                WriteOp::ZIncr { key, member, by } if key.contains(key_part) => {
                    Some((key.clone(), member.clone(), *by))
                }
                _ => None,
            })
            .collect()
    }

    fn planner<'a>(keys: &'a KeySpace, config: &'a ProcessorConfig) -> Planner<'a> {
        Planner { keys, config }
    }

    #[test]
    fn first_view_of_an_item_in_a_session_pairs_it_with_earlier_items() {
        let (keys, config) = (KeySpace::default(), ProcessorConfig::default());
        let p = planner(&keys, &config);
        let e = event(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a","session_id":"s","item_id":"c"}),
        );
        let u = p.plan(&e, &["b".into(), "a".into()], None);
        let covis = zincrs(&u, ":covis:");
        assert_eq!(covis.len(), 4);
        assert!(covis.contains(&("tailor:{demo}:covis:a".into(), "c".into(), 1.0)));
        assert!(covis.contains(&("tailor:{demo}:covis:c".into(), "a".into(), 1.0)));
        // Seen already in this session: no new pairs.
        let u = p.plan(&e, &["c".into(), "a".into()], None);
        assert!(zincrs(&u, ":covis:").is_empty());
        // No session: no pairs and no session list.
        let e =
            event(json!({"type":"page_view","site_id":"demo","anonymous_id":"a","item_id":"c"}));
        assert!(p.session_key(&e).is_none());
        assert!(zincrs(&p.plan(&e, &[], None), ":covis:").is_empty());
    }

    #[test]
    fn purchase_updates_orders_revenue_and_bought_items() {
        let (keys, config) = (KeySpace::default(), ProcessorConfig::default());
        let p = planner(&keys, &config);
        let e = event(
            json!({"type":"purchase","site_id":"demo","anonymous_id":"a","member_id":"m",
            "order":{"id":"o1","currency":"EUR","lines":[{"item_id":"x","price":2.0,"quantity":3}]}}),
        );
        let u = p.plan(&e, &[], None);
        assert_eq!(
            u.marker_key,
            format!("tailor:{{demo:m:m}}:ev:{}", e.event_id)
        );
        assert!(u.ops.contains(&WriteOp::HashIncrFloat {
            key: "tailor:{demo:m:m}:profile".into(),
            field: "revenue:EUR".into(),
            by: 6.0
        }));
        assert_eq!(
            zincrs(&u, ":bought"),
            vec![("tailor:{demo:m:m}:bought".into(), "x".into(), 3.0)]
        );
        assert_eq!(
            zincrs(&u, ":popular"),
            vec![("tailor:{demo}:popular".into(), "x".into(), PURCHASE_WEIGHT)]
        );
    }

    #[test]
    fn session_overlay_matches_the_store_semantics() {
        let mut l = vec!["a".to_string(), "b".to_string()];
        push_session_item(&mut l, "b", 2);
        assert_eq!(l, ["b", "a"]);
        push_session_item(&mut l, "c", 2);
        assert_eq!(l, ["c", "b"]);
    }
}
