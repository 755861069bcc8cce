use super::*;
use serde_json::json;
use tailor_core::event::RawEvent;

fn event(v: serde_json::Value) -> Event {
    RawEvent::from_json(v)
        .unwrap()
        .validate(Utc::now())
        .unwrap()
}

struct World {
    keys: KeySpace,
    config: ProcessorConfig,
    loaded: Loaded,
    offset: i64,
}

impl World {
    fn new() -> World {
        World {
            keys: KeySpace::default(),
            config: ProcessorConfig::default(),
            loaded: Loaded::default(),
            offset: 0,
        }
    }

    /// Folds events as one batch at fresh offsets of partition 0; returns the outcomes.
    fn fold(&mut self, events: &[Event]) -> Folded {
        let folder = Folder {
            keys: &self.keys,
            config: &self.config,
            offer_secret: tailor_core::config::DEV_OFFER_SECRET,
        };
        let inputs: Vec<Input<'_>> = events
            .iter()
            .map(|e| {
                self.offset += 1;
                Input {
                    tp: "t/0".into(),
                    offset: self.offset,
                    event: e,
                    marker: folder.marker(e),
                    marked: Vec::new(),
                }
            })
            .collect();
        folder.fold(&mut self.loaded, &inputs)
    }

    fn state(&self, subject: &str) -> &SubjectState {
        let s = Subject::parse(subject).unwrap();
        &self.loaded.docs[&self.keys.state(&SiteId::parse("demo").unwrap(), &s)].state
    }
}

fn view(anon: &str, member: Option<&str>, item: &str) -> Event {
    let mut v = json!({"type":"page_view","site_id":"demo","anonymous_id":anon,"session_id":"s","item_id":item});
    if let Some(m) = member {
        v["member_id"] = json!(m);
    }
    event(v)
}

#[test]
fn anonymous_history_is_merged_once_and_later_anonymous_events_follow_the_stitch() {
    let mut w = World::new();
    let anon = view("dev", None, "a");
    let login = view("dev", Some("m"), "b");
    let out = w.fold(&[anon.clone(), login.clone()]);
    assert_eq!(out.outcomes, [Outcome::Applied, Outcome::Applied]);
    assert_eq!(w.state("m:m").events["page_view"], 2);
    assert_eq!(w.state("a:dev").stitched_to.as_deref(), Some("m"));
    assert_eq!(
        out.changes
            .iter()
            .filter(|c| c.kind.name() == "identity_merged")
            .count(),
        1
    );
    // The same events redelivered at the same offsets: behind the watermark, nothing merged again.
    w.offset = 0;
    let again = w.fold(&[anon, login]);
    assert_eq!(
        again.outcomes,
        [Outcome::BehindWatermark, Outcome::BehindWatermark]
    );
    assert!(again.changes.is_empty());
    // A later anonymous event from the device goes to the member.
    w.offset = 10;
    w.fold(&[view("dev", None, "c")]);
    assert_eq!(w.state("m:m").events["page_view"], 3);
    // Co-visitation paired the session's items across the login.
    assert_eq!(w.state("m:m").recent_items, ["c", "b", "a"]);
}

#[test]
fn duplicates_by_event_id_and_by_order_id_count_once() {
    let mut w = World::new();
    let order = |id: &str| {
        event(
            json!({"type":"purchase","site_id":"demo","anonymous_id":"d","member_id":"m","event_id":id,
            "order":{"id":"o1","currency":"EUR","lines":[{"item_id":"x","price":5.0,"quantity":2}]}}),
        )
    };
    let first = order("e1");
    let out = w.fold(&[first.clone(), first, order("e2")]);
    assert_eq!(out.outcomes[1], Outcome::DuplicateEvent);
    let p = &w.state("m:m").purchases;
    assert_eq!((p.orders, p.units, p.monetary), (1, 2, 10.0));
    // The site's customer index is set, not incremented: replaying it is harmless.
    assert!(out
        .site_updates
        .iter()
        .flat_map(|u| &u.ops)
        .any(|o| matches!(o,
        WriteOp::ZSet { key, score, .. } if key.ends_with(":customers") && *score == 10.0)));
    // Every site update stays in the site's slot.
    for u in &out.site_updates {
        assert_eq!(u.slot_tag(), Ok(Some("demo")));
    }
}

#[test]
fn pages_and_channels() {
    let e = event(
        json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
        "url":"https://shop.example/p/1?utm_source=n&utm_medium=Email#top"}),
    );
    assert_eq!(page_of(&e).as_deref(), Some("/p/1"));
    let e = event(
        json!({"type":"page_view","site_id":"demo","anonymous_id":"a","url":"https://shop.example"}),
    );
    assert_eq!(page_of(&e).as_deref(), Some("/"));
    assert_eq!(channel_of(&e).0, "direct");
}

#[test]
fn offer_tokens_count_impressions_and_clicks_once_and_forged_ones_not_at_all() {
    use tailor_core::campaign::{token, OfferToken};
    let mut w = World::new();
    let t = |site: &str, secret: &str| {
        token(
            secret,
            &OfferToken {
                site: site.into(),
                campaign: "winback".into(),
                variant: "a".into(),
                subject: "m:m".into(),
                issued_ms: 0,
                windows: Default::default(),
            },
        )
    };
    let offer = |kind: &str, tok: String| {
        event(
            json!({"type": kind, "site_id":"demo","anonymous_id":"d","member_id":"m",
            "slot":"home","token": tok}),
        )
    };
    let good = t("demo", tailor_core::config::DEV_OFFER_SECRET);
    let out = w.fold(&[
        offer("offer_impression", good.clone()),
        offer("offer_click", good),
        offer("offer_impression", t("demo", "not-the-secret-at-all")),
        offer(
            "offer_impression",
            t("other", tailor_core::config::DEV_OFFER_SECRET),
        ),
        offer("offer_impression", "garbage".into()),
    ]);
    let counted: Vec<(String, i64)> = out
        .site_updates
        .iter()
        .flat_map(|u| &u.ops)
        .filter_map(|o| match o {
            WriteOp::HashIncr { key, field, by } if key.ends_with(":campaigns:stats") => {
                Some((field.clone(), *by))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        counted,
        [
            ("winback|a|impressions".to_string(), 1),
            ("winback|a|clicks".to_string(), 1)
        ]
    );
    assert_eq!(
        w.state("m:m").offers["winback"].len(),
        1,
        "one impression for the cap"
    );
}

#[test]
fn purchases_convert_for_the_offers_clicked_or_seen_and_the_holdout_alike() {
    use tailor_core::campaign::{token, OfferToken, HOLDOUT};
    let mut w = World::new();
    let tok = |variant: &str, subject: &str| {
        token(
            tailor_core::config::DEV_OFFER_SECRET,
            &OfferToken {
                site: "demo".into(),
                campaign: "winback".into(),
                variant: variant.into(),
                subject: subject.into(),
                issued_ms: 0,
                windows: Default::default(),
            },
        )
    };
    let offer = |kind: &str, member: &str, tok: String| {
        event(
            json!({"type": kind, "site_id":"demo","anonymous_id":format!("d-{member}"),
            "member_id":member, "slot":"home","token": tok}),
        )
    };
    let order = |member: &str, event_id: &str, order_id: &str| {
        event(
            json!({"type":"purchase","site_id":"demo","anonymous_id":format!("d-{member}"),
            "member_id":member,"event_id":event_id,
            "order":{"id":order_id,"currency":"EUR","lines":[{"item_id":"x","price":5.0,"quantity":2}]}}),
        )
    };
    let out = w.fold(&[
        offer("offer_impression", "treated", tok("a", "m:treated")),
        offer("offer_click", "treated", tok("a", "m:treated")),
        offer("offer_impression", "control", tok(HOLDOUT, "m:control")),
        order("treated", "p1", "o1"),
        // The same order again under another event id converts nothing more.
        order("treated", "p2", "o1"),
        order("control", "p3", "o9"),
        order("never-shown", "p4", "o5"),
    ]);
    let mut counted: Vec<(String, f64)> = out
        .site_updates
        .iter()
        .flat_map(|u| &u.ops)
        .filter_map(|o| match o {
            WriteOp::HashIncr { key, field, by } if key.ends_with(":campaigns:stats") => {
                Some((field.clone(), *by as f64))
            }
            WriteOp::HashIncrFloat { key, field, by } if key.ends_with(":campaigns:stats") => {
                Some((field.clone(), *by))
            }
            _ => None,
        })
        .collect();
    counted.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, f64)> = [
        ("winback|a|clicks", 1.0),
        ("winback|a|conversions", 1.0),
        ("winback|a|impressions", 1.0),
        ("winback|a|revenue", 10.0),
        ("winback|holdout|conversions", 1.0),
        ("winback|holdout|impressions", 1.0),
        ("winback|holdout|revenue", 10.0),
    ]
    .iter()
    .map(|(f, n)| (f.to_string(), *n))
    .collect();
    assert_eq!(counted, want);
    assert!(
        !w.state("m:control").offers.contains_key("winback"),
        "a held-back offer is not an impression the cap counts"
    );
    assert_eq!(w.state("m:control").exposures["winback"].variant, HOLDOUT);
}

#[test]
fn one_visitors_flood_moves_popularity_by_one_per_item_and_stops_at_the_cap() {
    let mut w = World::new();
    w.config.shared_items_per_day = 5;
    let xss = "<img/src=x/onerror=alert(1)>";
    // 400 fake views of one item, each in a session of its own, then 20 different items.
    let mut events: Vec<Event> = (0..400)
        .map(|n| {
            event(
                json!({"type":"page_view","site_id":"demo","anonymous_id":"flood",
                "session_id": format!("s{n}"), "event_id": format!("f{n}"), "item_id": xss}),
            )
        })
        .collect();
    events.extend((0..20).map(|n| {
        event(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"flood","session_id":"t",
            "event_id": format!("g{n}"), "item_id": format!("item-{n}")}),
        )
    }));
    let out = w.fold(&events);
    let popular: Vec<(String, f64)> = out
        .site_updates
        .iter()
        .flat_map(|u| &u.ops)
        .filter_map(|o| match o {
            WriteOp::ZIncr { key, member, by } if key.ends_with(":popular") => {
                Some((member.clone(), *by))
            }
            _ => None,
        })
        .collect();
    let of = |item: &str| -> f64 {
        popular
            .iter()
            .filter(|(m, _)| m == item)
            .map(|(_, b)| b)
            .sum()
    };
    assert_eq!(of(xss), 1.0, "a visitor counts once per item and day");
    let items_counted = (0..20).filter(|n| of(&format!("item-{n}")) > 0.0).count();
    assert_eq!(
        items_counted, 4,
        "five distinct items a day, the flooded one included"
    );
    // Past the cap, nothing of theirs reaches co-visitation or the session index either.
    let late = "item-19";
    assert!(!out
        .site_updates
        .iter()
        .flat_map(|u| &u.ops)
        .any(|o| match o {
            WriteOp::ZIncr { key, member, .. } | WriteOp::ZSet { key, member, .. } =>
                (key.contains(":covis:") || key.contains(":isess:") || key.contains(":sess:"))
                    && (member == late || key.ends_with(late)),
            WriteOp::Put { key, value, .. } =>
                key.contains(":si:") && value.split(' ').any(|i| i == late),
            _ => false,
        }));
    // Their own profile still sees every view.
    assert_eq!(w.state("a:flood").events["page_view"], 420);
}

#[tokio::test]
async fn a_busy_items_neighbour_lists_keep_only_the_strongest() {
    use tailor_infra::store::{memory::MemoryStore, Read, Store};
    let mut w = World::new();
    w.config.neighbours_kept = 3;
    // "hub" is viewed after another item in 12 sessions: after x0 five times, after x1..x7 once.
    let before = [
        "x0", "x0", "x0", "x0", "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7",
    ];
    let events: Vec<Event> = before
        .iter()
        .enumerate()
        .flat_map(|(n, first)| {
            [*first, "hub"].map(|item| {
                event(
                    json!({"type":"page_view","site_id":"demo","anonymous_id": format!("v{n}"),
                    "session_id": format!("s{n}"), "item_id": item}),
                )
            })
        })
        .collect();
    let out = w.fold(&events);
    let store = MemoryStore::new();
    store.apply(&out.site_updates).await.unwrap();
    let site = SiteId::parse("demo").unwrap();
    let read = |key: String| Read::Top(key, 100);
    let got = store
        .read(&[
            read(w.keys.covisits(&site, "hub")),
            read(w.keys.followers(&site, "hub")),
            read(w.keys.followers(&site, "x0")),
        ])
        .await
        .unwrap();
    let covis = got[0].clone().into_top();
    assert_eq!(covis.len(), 3, "{covis:?}");
    assert_eq!(covis[0], ("x0".to_string(), 5.0), "the strongest stays");
    // Followers of "hub" are never fed here; those of "x0" are trimmed when x0 is seen.
    assert!(got[1].clone().into_top().is_empty());
    assert_eq!(got[2].clone().into_top(), [("hub".to_string(), 5.0)]);
}

#[test]
fn the_session_in_progress_keeps_its_clicks_for_the_recommender_and_older_ones_drop_them() {
    let mut w = World::new();
    let at = |session: &str, item: &str, t: &str| {
        event(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
            "session_id":session,"item_id":item,"timestamp":t}),
        )
    };
    w.fold(&[
        at("s1", "x", "2026-01-01T10:00:00Z"),
        at("s1", "y", "2026-01-01T10:01:00Z"),
        at("s1", "x", "2026-01-01T10:02:00Z"),
        at("s1", "x", "2026-01-01T10:03:00Z"),
    ]);
    let s = w.state("a:a");
    assert_eq!(s.sessions.recent[0].items, ["x", "y"]);
    assert_eq!(s.sessions.recent[0].clicks, ["x", "x", "y", "x"]);
    assert_eq!(
        s.reco_view().session,
        ["x", "x", "y", "x"],
        "what the recommender reads"
    );
    w.fold(&[at("s2", "z", "2026-01-02T10:00:00Z")]);
    let s = w.state("a:a");
    assert!(
        s.sessions.recent[0].clicks.is_empty(),
        "an older session keeps its items only"
    );
    assert_eq!(s.sessions.recent[0].items, ["x", "y"]);
    assert_eq!(s.reco_view().session, ["z"]);
}

#[test]
fn a_devices_markers_in_one_batch_are_one_update_with_one_expiry() {
    let mut w = World::new();
    let out = w.fold(&[
        view("d", None, "x"),
        view("e", None, "x"),
        view("d", None, "y"),
    ]);
    assert_eq!(out.markers.len(), 2, "one per device: {:?}", out.markers);
    let ops = &out.markers[0].ops;
    assert!(
        matches!(
            ops.as_slice(),
            [WriteOp::HashSet { key: a, .. }, WriteOp::HashSet { key: b, .. }, WriteOp::Expire { key: c, .. }]
                if a == b && b == c && a.contains("{demo:a:d}:evd:")
        ),
        "{ops:?}"
    );
}

#[tokio::test]
async fn a_views_shared_model_writes_stay_bounded_however_long_the_session() {
    use tailor_infra::store::{memory::MemoryStore, Read, Store};
    let mut w = World::new();
    w.config.covisitation_window = 3;
    w.config.sequence_steps = 2;
    let at = |item: &str, minute: u32| {
        event(
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a","session_id":"s",
            "item_id":item,"timestamp":format!("2026-01-01T10:{minute:02}:00Z")}),
        )
    };
    let items: Vec<String> = (0..12).map(|i| format!("i{i}")).collect();
    let mut writes = Vec::new();
    let store = MemoryStore::new();
    for (m, item) in items.iter().enumerate() {
        let out = w.fold(&[at(item, m as u32)]);
        writes.push(out.site_updates.iter().map(|u| u.ops.len()).sum::<usize>());
        store.apply(&out.site_updates).await.unwrap();
    }
    // From the fourth view on, a view writes as much as the one before it.
    assert!(writes[3..].windows(2).all(|p| p[0] == p[1]), "{writes:?}");
    let site = SiteId::parse("demo").unwrap();
    let got = store
        .read(&[
            Read::Top(w.keys.covisits(&site, "i11"), 100),
            Read::Top(w.keys.covisits(&site, "i0"), 100),
            Read::Top(w.keys.followers(&site, "i8"), 100),
            Read::Top(w.keys.item_sessions(&site, "i0"), 100),
            Read::Get(w.keys.session_list(&site, "a/s")),
        ])
        .await
        .unwrap();
    let names = |v: &tailor_infra::store::Value| {
        let mut n: Vec<String> = v.clone().into_top().into_iter().map(|(i, _)| i).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&got[0]),
        ["i10", "i8", "i9"],
        "paired with the last 3"
    );
    assert_eq!(names(&got[1]), ["i1", "i2", "i3"], "... and by the next 3");
    assert_eq!(
        got[2].clone().into_top(),
        [("i9".to_string(), 1.0), ("i10".to_string(), 0.5)]
    );
    // The session stays in i0's index at its click on i0 (10:00); its item list holds all 12.
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
        .unwrap()
        .timestamp_millis() as f64;
    assert_eq!(got[3].clone().into_top(), [("a/s".to_string(), t0)]);
    let list = got[4].clone().into_text().unwrap();
    let (last, held) = tailor_core::stored::session_list::decode(&list).unwrap();
    assert_eq!(held, items, "oldest first");
    assert_eq!(last, t0 + 11.0 * 60_000.0, "its last click");
}
