//! The synthetic shop traffic model that `tailor run --simulate` ([`crate::simulate`]) and the load
//! tool (`load-tests/`) share: a catalogue, a seedable generator, and shoppers whose visits are the
//! events the tag would send for them. Pure: it builds events in Tailor's schema (docs/events.md) and
//! never sends them.
//!
//! A shopper has a favourite category and comes back for several visits (sessions). A visit arrives
//! through a channel (search, social, an email campaign, direct), views a few products, mostly in the
//! favourite category and skewed towards the popular ones (so co-visitation and popularity have
//! structure), dwells on pages, sometimes adds to the cart and sometimes buys what is in it. Shoppers
//! who have an account log in from their second visit on, so the processor stitches their devices and
//! member profiles, RFM and life-cycle stages fill up. Event ids are deterministic for a seed: a
//! repeated run counts nothing twice.

use serde_json::{json, Value};

/// xorshift64*: a tiny, seedable generator, so runs are reproducible without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is xorshift's one fixed point.
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Skewed towards small values, like product popularity.
    pub fn skewed(&mut self, n: u64) -> u64 {
        let u = self.unit();
        ((u * u * u) * n as f64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One product.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub category: String,
    pub price: f64,
}

/// The products shoppers browse, most popular first.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub items: Vec<Item>,
}

impl Catalogue {
    /// The demo shop's catalogue (`tailor/src/demo/shop.html`), so simulated traffic shows on its
    /// pages and recommendations.
    pub fn demo() -> Catalogue {
        let items = [
            ("tent-2p", "camping", 189.0),
            ("tent-4p", "camping", 329.0),
            ("sleeping-bag", "camping", 149.0),
            ("stove", "camping", 59.0),
            ("boots-hike", "shoes", 139.0),
            ("boots-trail", "shoes", 119.0),
            ("socks-wool", "clothing", 19.0),
            ("jacket-rain", "clothing", 179.0),
            ("fleece", "clothing", 79.0),
            ("backpack-30", "bags", 99.0),
            ("backpack-60", "bags", 229.0),
            ("headlamp", "gear", 39.0),
            ("poles", "gear", 89.0),
            ("bottle", "gear", 25.0),
            ("map-alps", "books", 29.0),
            ("guide-trails", "books", 35.0),
        ];
        Catalogue {
            items: items
                .iter()
                .map(|(id, category, price)| Item {
                    id: id.to_string(),
                    category: category.to_string(),
                    price: *price,
                })
                .collect(),
        }
    }

    /// `n` products `i0..` in 20 categories, for load at scale.
    pub fn synthetic(n: u64) -> Catalogue {
        Catalogue {
            items: (0..n.max(1))
                .map(|i| Item {
                    id: format!("i{i}"),
                    category: format!("c{}", i % 20),
                    price: 5.0 + (i % 50) as f64,
                })
                .collect(),
        }
    }

    /// A product, skewed towards the popular ones.
    pub fn popular(&self, rng: &mut Rng) -> &Item {
        &self.items[rng.skewed(self.items.len() as u64) as usize]
    }

    /// A product of `category` (skewed within it), or any popular one when it has none.
    pub fn in_category(&self, rng: &mut Rng, category: &str) -> &Item {
        let of: Vec<&Item> = self
            .items
            .iter()
            .filter(|i| i.category == category)
            .collect();
        if of.is_empty() {
            return self.popular(rng);
        }
        of[rng.skewed(of.len() as u64) as usize]
    }
}

/// How a visit arrives: referrer and landing-page query.
const CHANNELS: [(Option<&str>, &str); 5] = [
    (Some("https://www.google.com/"), ""),
    (
        Some("https://www.facebook.com/"),
        "?utm_source=facebook&utm_medium=social",
    ),
    (
        None,
        "?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
    ),
    (None, ""),
    (Some("https://www.bing.com/"), ""),
];
/// Share of shoppers with an account, who log in from their second visit on.
const MEMBER_SHARE: f64 = 0.6;
/// Chance that a visit adds to the cart, and that a cart is bought.
const CART_CHANCE: f64 = 0.5;
const BUY_CHANCE: f64 = 0.6;
/// Chance that a viewed product is in the shopper's favourite category.
const FAVOURITE_SHARE: f64 = 0.75;

/// One synthetic shopper (one device; an account for some).
#[derive(Debug, Clone)]
pub struct Shopper {
    pub anonymous_id: String,
    pub member_id: Option<String>,
    favourite: String,
    rng: Rng,
}

impl Shopper {
    /// Shopper number `n` of a run seeded with `seed`.
    pub fn new(catalogue: &Catalogue, seed: u64, n: u64) -> Shopper {
        let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(n));
        let favourite = catalogue.popular(&mut rng).category.clone();
        let member_id = rng.chance(MEMBER_SHARE).then(|| format!("sim-{seed}-m{n}"));
        Shopper {
            anonymous_id: format!("sim-{seed}-a{n}"),
            member_id,
            favourite,
            rng,
        }
    }

    /// The events of visit number `visit` (0 for the first), page by page: each inner list is what
    /// the tag sends from one page (a view and the dwell on the previous page, a cart, an order).
    pub fn visit(&mut self, catalogue: &Catalogue, site: &str, visit: u32) -> Vec<Vec<Value>> {
        let session = format!("{}-s{visit}", self.anonymous_id);
        let rng = &mut self.rng;
        let (referrer, query) = CHANNELS[rng.below(CHANNELS.len() as u64) as usize];
        let member = self.member_id.clone().filter(|_| visit > 0);
        let base = |kind: &str, n: usize| {
            let mut e = json!({"type": kind, "event_id": format!("{session}-{n}"), "site_id": site,
                "anonymous_id": self.anonymous_id, "session_id": session});
            if let Some(m) = &member {
                e["member_id"] = json!(m);
            }
            e
        };
        let mut pages: Vec<Vec<Value>> = Vec::new();
        let mut n = 0;
        let mut next = |kind: &str| {
            n += 1;
            base(kind, n)
        };
        if let Some(m) = &member {
            let mut login = next("identify");
            login["member_id"] = json!(m);
            login["traits"] = json!({"source": "simulation"});
            pages.push(vec![login]);
        }
        let views = 2 + rng.below(5) as usize;
        let mut seen: Vec<&Item> = Vec::new();
        for i in 0..views {
            let item = if rng.chance(FAVOURITE_SHARE) {
                catalogue.in_category(rng, &self.favourite)
            } else {
                catalogue.popular(rng)
            };
            let mut view = next("page_view");
            view["item_id"] = json!(item.id);
            view["category"] = json!(item.category);
            view["url"] = json!(format!(
                "https://shop.example/p/{}{}",
                item.id,
                if i == 0 { query } else { "" }
            ));
            let from = if i == 0 {
                referrer.map(str::to_string)
            } else {
                seen.last()
                    .map(|p| format!("https://shop.example/p/{}", p.id))
            };
            if let Some(r) = from {
                view["referrer"] = json!(r);
            }
            let mut page = vec![view];
            if i > 0 {
                let mut ping = next("page_ping");
                ping["dwell_ms"] = json!(2_000 + rng.below(60_000));
                page.push(ping);
            }
            seen.push(item);
            pages.push(page);
        }
        if rng.chance(CART_CHANCE) {
            let item = seen[rng.below(seen.len() as u64) as usize];
            let mut cart = next("add_to_cart");
            cart["item_id"] = json!(item.id);
            cart["category"] = json!(item.category);
            cart["price"] = json!(item.price);
            pages.push(vec![cart]);
            if rng.chance(BUY_CHANCE) {
                let mut order = next("purchase");
                order["order"] = json!({"id": format!("{session}-order"), "currency": "EUR",
                    "lines": [{"item_id": item.id, "category": item.category, "price": item.price, "quantity": 1}]});
                pages.push(vec![order]);
            }
        }
        pages
    }
}

/// A batch of `n` page views by one `visitor` for the load tool: one visit, so its own session
/// (`s<visitor>-<id prefix>-<first sequence number>`; shop sessions are short, and a visitor's sessions end);
/// ids are made unique by `id_prefix` and a sequence number.
pub fn page_views(
    rng: &mut Rng,
    catalogue: &Catalogue,
    site: &str,
    visitor: u64,
    n: usize,
    id_prefix: &str,
    seq: &mut u64,
) -> Value {
    let session = format!("s{visitor}-{id_prefix}-{}", *seq + 1);
    let events: Vec<Value> = (0..n)
        .map(|_| {
            *seq += 1;
            let item = catalogue.popular(rng);
            json!({"type": "page_view", "event_id": format!("{id_prefix}-{seq}-{}", rng.next_u64()),
                   "site_id": site, "anonymous_id": format!("v{visitor}"), "session_id": session,
                   "item_id": item.id, "category": item.category})
        })
        .collect();
    Value::Array(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_core::event::RawEvent;

    /// Every generated event passes the collector's validation.
    fn valid(events: &[Value]) {
        for e in events {
            RawEvent::from_json(e.clone())
                .and_then(|r| r.validate(chrono::Utc::now()))
                .unwrap_or_else(|err| panic!("{e}: {err}"));
        }
    }

    #[test]
    fn visits_are_valid_shopping_sessions() {
        let catalogue = Catalogue::demo();
        let (mut kinds, mut members) = (std::collections::BTreeMap::new(), 0);
        for n in 0..200 {
            let mut s = Shopper::new(&catalogue, 7, n);
            members += usize::from(s.member_id.is_some());
            for v in 0..3 {
                let pages = s.visit(&catalogue, "demo", v);
                let events: Vec<Value> = pages.concat();
                valid(&events);
                let sessions: std::collections::BTreeSet<&str> = events
                    .iter()
                    .map(|e| e["session_id"].as_str().unwrap())
                    .collect();
                assert_eq!(sessions.len(), 1, "one visit is one session");
                for e in &events {
                    *kinds
                        .entry(e["type"].as_str().unwrap().to_string())
                        .or_insert(0) += 1;
                    assert_eq!(e["member_id"].is_string(), v > 0 && s.member_id.is_some());
                }
            }
        }
        for kind in [
            "page_view",
            "page_ping",
            "add_to_cart",
            "purchase",
            "identify",
        ] {
            assert!(
                kinds.get(kind).copied().unwrap_or(0) > 10,
                "{kind}: {kinds:?}"
            );
        }
        assert!((80..160).contains(&members), "{members} members of 200");
    }

    #[test]
    fn a_seed_replays_the_same_traffic() {
        let catalogue = Catalogue::demo();
        let run = |seed| {
            let mut s = Shopper::new(&catalogue, seed, 3);
            (0..3)
                .map(|v| s.visit(&catalogue, "demo", v))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    /// The demo catalogue is the demo shop page's, item for item.
    #[test]
    fn the_demo_catalogue_is_the_shops() {
        let page = include_str!("demo/shop.html");
        let list = page
            .split_once("const CATALOG = [")
            .unwrap()
            .1
            .split_once("];")
            .unwrap()
            .0;
        let rows: Vec<Value> =
            serde_json::from_str(&format!("[{}]", list.trim().trim_end_matches(',')))
                .expect("the page's catalogue is a JSON-like array");
        let shop: Vec<Item> = rows
            .iter()
            .map(|r| Item {
                id: r[0].as_str().unwrap().into(),
                category: r[2].as_str().unwrap().into(),
                price: r[3].as_f64().unwrap(),
            })
            .collect();
        assert_eq!(shop, Catalogue::demo().items);
    }

    #[test]
    fn load_batches_are_valid() {
        let (mut rng, mut seq) = (Rng::new(1), 0);
        let catalogue = Catalogue::synthetic(2000);
        let mut visit =
            |seq: &mut u64| page_views(&mut rng, &catalogue, "demo", 5, 10, "load-0", seq);
        let batch = visit(&mut seq);
        valid(batch.as_array().unwrap());
        assert_eq!(seq, 10);
        let again = visit(&mut seq);
        let session = |b: &Value| -> std::collections::BTreeSet<String> {
            b.as_array()
                .unwrap()
                .iter()
                .map(|e| e["session_id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(session(&batch).len(), 1, "one request is one visit");
        assert_ne!(
            session(&batch),
            session(&again),
            "each visit is its own session"
        );
    }
}
