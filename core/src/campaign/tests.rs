use super::*;
use crate::models::{LifecycleRules, SiteModels};
use crate::state::StageRecord;
use serde_json::json;
use std::collections::BTreeMap;

const NOW: i64 = 1_800_000_000_000;

fn def(v: serde_json::Value) -> CampaignDef {
    serde_json::from_value(v).unwrap()
}

fn winback() -> CampaignDef {
    def(json!({"id": "winback",
        "audience": "orders >= 2 and days_since_last_purchase > 90",
        "trigger": {"on": "stage_changed", "to": "lapsing", "within_days": 14},
        "slots": ["home", "cart"], "priority": 10, "start": "2026-12-01T00:00:00Z", "end": null,
        "variants": [{"name": "coupon10", "title": "We miss you", "body": "10% off your next order",
                      "url": "/c/outdoor", "image": null, "coupon": "BACK10"}],
        "cap": {"impressions": 3, "per_days": 7}, "budget": {"conversions": 500}, "holdout": 0.1}))
}

type Edit = Box<dyn FnOnce(&mut CampaignDef)>;

fn field_of(mut d: CampaignDef, edit: impl FnOnce(&mut CampaignDef)) -> String {
    edit(&mut d);
    check(&d).expect_err("must be refused").field
}

#[test]
fn the_issue_wire_shape_checks_and_bad_fields_are_named() {
    let c = check(&winback()).unwrap();
    assert!(c.needs_facts() && c.needs_state() && c.fills("cart") && !c.fills("product"));
    let cases: Vec<(&str, Edit)> = vec![
        ("id", Box::new(|d| d.id = "has space".into())),
        ("audience", Box::new(|d| d.audience = Some("clv >".into()))),
        ("slots", Box::new(|d| d.slots.clear())),
        ("slots[1]", Box::new(|d| d.slots[1] = " ".into())),
        ("end", Box::new(|d| d.end = d.start)),
        ("variants", Box::new(|d| d.variants.clear())),
        (
            "variants[0].title",
            Box::new(|d| d.variants[0].title = "".into()),
        ),
        (
            "variants[0].url",
            Box::new(|d| d.variants[0].url = Some("x".repeat(MAX_URL_LEN + 1))),
        ),
        (
            "variants[0].url",
            Box::new(|d| d.variants[0].url = Some("javascript:alert(1)".into())),
        ),
        (
            "variants[0].image",
            Box::new(|d| d.variants[0].image = Some("data:text/html,<script>".into())),
        ),
        (
            "variants[0].url",
            Box::new(|d| d.variants[0].url = Some("/c/x\nSet-Cookie: a".into())),
        ),
        (
            "variants[0].items[0]",
            Box::new(|d| d.variants[0].items = vec!["".into()]),
        ),
        (
            "variants[0].weight",
            Box::new(|d| d.variants[0].weight = Some(2.0)),
        ),
        (
            "variants[1].name",
            Box::new(|d| d.variants.push(d.variants[0].clone())),
        ),
        (
            "trigger.within_days",
            Box::new(|d| d.trigger.as_mut().unwrap().within_days = 0),
        ),
        (
            "trigger.to",
            Box::new(|d| d.trigger.as_mut().unwrap().on = TriggerOn::Purchase),
        ),
        (
            "trigger.segment",
            Box::new(|d| d.trigger.as_mut().unwrap().on = TriggerOn::SegmentEntered),
        ),
        (
            "cap.per_days",
            Box::new(|d| {
                d.cap = Some(Cap {
                    impressions: 1,
                    per_days: 0,
                })
            }),
        ),
        (
            "cap.impressions",
            Box::new(|d| {
                d.cap = Some(Cap {
                    impressions: 0,
                    per_days: 1,
                })
            }),
        ),
        ("budget", Box::new(|d| d.budget = Some(Budget::default()))),
        (
            "budget.impressions",
            Box::new(|d| {
                d.budget = Some(Budget {
                    impressions: Some(0),
                    conversions: None,
                })
            }),
        ),
        ("holdout", Box::new(|d| d.holdout = 0.95)),
        ("exploration", Box::new(|d| d.exploration = f64::NAN)),
    ];
    // What a shop links to is accepted.
    for ok in [
        "https://shop.example/c/x",
        "HTTP://shop.example",
        "/c/outdoor",
        "/#offer",
    ] {
        let mut d = winback();
        d.variants[0].url = Some(ok.into());
        d.variants[0].image = Some(ok.into());
        assert!(check(&d).is_ok(), "{ok}");
    }
    for (want, edit) in cases {
        let mut d = winback();
        if want == "trigger.segment" {
            d.trigger.as_mut().unwrap().to = None;
        }
        assert_eq!(field_of(d, edit), want);
    }
    let unknown =
        serde_json::from_value::<CampaignDef>(json!({"slots": ["x"], "variants": [], "colour": 1}));
    assert!(unknown.unwrap_err().to_string().contains("colour"));
}

#[test]
fn assignment_is_stable_and_holds_the_shares() {
    let mut d = winback();
    d.holdout = 0.2;
    let c = check(&d).unwrap();
    let subjects: Vec<String> = (0..10_000).map(|i| format!("m:{i}")).collect();
    let held = subjects
        .iter()
        .filter(|s| c.assign(s) == Assignment::Holdout)
        .count();
    assert!((1_800..2_200).contains(&held), "{held} of 10000 held out");
    for s in subjects.iter().take(100) {
        assert_eq!(
            c.assign(s),
            check(&d).unwrap().assign(s),
            "the same on every check"
        );
    }
    // Another campaign holds out other members.
    d.id = "other".into();
    let o = check(&d).unwrap();
    let both = subjects
        .iter()
        .filter(|s| c.assign(s) == Assignment::Holdout && o.assign(s) == Assignment::Holdout)
        .count();
    assert!(both < 600, "{both}: holdouts are independent per campaign");

    let mut f = winback();
    f.holdout = 0.0;
    f.split = Split::Fixed;
    let mut b = f.variants[0].clone();
    b.name = "b".into();
    f.variants[0].weight = Some(3.0);
    b.weight = Some(1.0);
    f.variants.push(b);
    let fc = check(&f).unwrap();
    let firsts = subjects
        .iter()
        .filter(|s| fc.assign(s) == Assignment::Treated(Some(0)))
        .count();
    assert!((7_200..7_800).contains(&firsts), "{firsts}: a 3:1 split");
}

#[test]
fn thompson_sampling_moves_most_impressions_to_the_better_variant() {
    // Variant 1 converts twice as often as variant 0. The simulated shop's responses come from a
    // second seeded source, so the run is the same every time.
    let rates = [0.05, 0.10];
    let mut counts = [Counts::default(); 2];
    let mut rng = Rng::seeded(7);
    let mut world = Rng::seeded(11);
    let rounds = 4_000;
    let mut late = [0usize; 2];
    for round in 0..rounds {
        let (i, _) = choose(&counts, Optimize::Conversions, 0.1, &mut rng);
        counts[i].impressions += 1;
        if world.uniform() < rates[i] {
            counts[i].conversions += 1;
        }
        if round >= rounds / 2 {
            late[i] += 1;
        }
    }
    let share = late[1] as f64 / (rounds / 2) as f64;
    assert!(
        share > 0.75,
        "the better variant got {share:.2} of the late impressions"
    );
    // The exploration floor: the worse variant still gets at least about half of 10%.
    assert!(late[0] as f64 / (rounds / 2) as f64 > 0.04, "{late:?}");
}

#[test]
fn the_same_seed_draws_the_same_and_beta_draws_have_the_right_mean() {
    let draws = |seed| {
        let mut r = Rng::seeded(seed);
        (0..5).map(|_| r.beta(3.0, 7.0)).collect::<Vec<_>>()
    };
    assert_eq!(draws(1), draws(1));
    assert_ne!(draws(1), draws(2));
    let mut r = Rng::seeded(3);
    let mean = (0..20_000).map(|_| r.beta(3.0, 7.0)).sum::<f64>() / 20_000.0;
    assert!((mean - 0.3).abs() < 0.01, "{mean}");
}

fn lapsing_member(stage_since_days: i64) -> SubjectState {
    let mut s = SubjectState {
        member_id: Some("m-1".into()),
        first_seen_ms: Some(NOW - 400 * DAY_MS),
        last_seen_ms: Some(NOW - DAY_MS),
        ..Default::default()
    };
    s.purchases.orders = 3;
    s.purchases.first_ms = Some(NOW - 300 * DAY_MS);
    s.purchases.last_ms = Some(NOW - 120 * DAY_MS);
    s.stage = Some(StageRecord {
        stage: "lapsing".into(),
        since_ms: NOW - stage_since_days * DAY_MS,
    });
    s
}

fn judge(
    c: &Campaign,
    s: Option<&SubjectState>,
    subject: &str,
    stats: &Stats,
) -> Result<String, Ineligible> {
    let facts = s.map(|s| Facts::of(s, &SiteModels::default(), &LifecycleRules::default(), NOW));
    c.eligible(
        &Member {
            subject,
            state: s,
            facts: facts.as_ref(),
            now_ms: NOW,
            half_life_ms: 30 * DAY_MS,
        },
        stats,
    )
}

/// A subject the campaign treats (not in its holdout).
fn treated(c: &Campaign) -> String {
    (0..)
        .map(|i| format!("m:{i}"))
        .find(|s| c.assign(s) != Assignment::Holdout)
        .unwrap()
}

#[test]
fn eligibility_reads_schedule_audience_trigger_cap_budget_and_holdout() {
    let c = check(&winback()).unwrap();
    let who = treated(&c);
    let none = Stats::default();
    let s = lapsing_member(3);
    assert_eq!(
        judge(&c, Some(&s), &who, &none).unwrap(),
        "you have not ordered for 4 months"
    );
    // Trigger window: 14 days after the stage change.
    assert_eq!(
        judge(&c, Some(&lapsing_member(20)), &who, &none),
        Err(Ineligible::Trigger)
    );
    let mut other = lapsing_member(3);
    other.stage.as_mut().unwrap().stage = "repeat".into();
    assert_eq!(
        judge(&c, Some(&other), &who, &none),
        Err(Ineligible::Trigger)
    );
    // Audience: a recent buyer is out.
    let mut recent = lapsing_member(3);
    recent.purchases.last_ms = Some(NOW - 10 * DAY_MS);
    assert_eq!(
        judge(&c, Some(&recent), &who, &none),
        Err(Ineligible::Audience)
    );
    assert_eq!(judge(&c, None, &who, &none), Err(Ineligible::Audience));
    // Cap: 3 in 7 days.
    let mut capped = lapsing_member(3);
    for d in [1, 2, 3] {
        record_impression(&mut capped.offers, "winback", NOW - d * DAY_MS);
    }
    assert_eq!(judge(&c, Some(&capped), &who, &none), Err(Ineligible::Cap));
    let mut old = lapsing_member(3);
    for d in [1, 2, 8] {
        record_impression(&mut old.offers, "winback", NOW - d * DAY_MS);
    }
    assert!(
        judge(&c, Some(&old), &who, &none).is_ok(),
        "one impression fell out of the week"
    );
    // Budget: 500 conversions over all variants.
    let spent = Stats::from_hash(&HashMap::from([(
        Stats::field("winback", "coupon10", "conversions"),
        "500".to_string(),
    )]));
    assert_eq!(judge(&c, Some(&s), &who, &spent), Err(Ineligible::Budget));
    // Schedule.
    let mut later = winback();
    later.start = Some(DateTime::from_timestamp_millis(NOW + 1).unwrap());
    assert_eq!(
        judge(&check(&later).unwrap(), Some(&s), &who, &none),
        Err(Ineligible::Schedule)
    );
    // Holdout: a held-out member is never eligible.
    let held = (0..)
        .map(|i| format!("m:{i}"))
        .find(|x| c.assign(x) == Assignment::Holdout)
        .unwrap();
    assert_eq!(judge(&c, Some(&s), &held, &none), Err(Ineligible::Holdout));
}

#[test]
fn segment_audiences_and_segment_triggers_read_the_document() {
    let c = check(&def(
        json!({"id": "vip", "segment": "vip", "slots": ["home"],
        "variants": [{"name": "a", "title": "For you"}]}),
    ))
    .unwrap();
    let who = treated(&c);
    let mut s = lapsing_member(3);
    assert_eq!(
        judge(&c, Some(&s), &who, &Stats::default()),
        Err(Ineligible::Audience)
    );
    s.segments.insert("vip".into());
    assert_eq!(
        judge(&c, Some(&s), &who, &Stats::default()).unwrap(),
        "picked for vip members"
    );

    let t = check(&def(json!({"id": "welcome", "slots": ["home"],
        "trigger": {"on": "segment_entered", "segment": "vip", "within_days": 2},
        "variants": [{"name": "a", "title": "Welcome"}]})))
    .unwrap();
    let who = treated(&t);
    assert_eq!(
        judge(&t, Some(&s), &who, &Stats::default()),
        Err(Ineligible::Trigger),
        "no entry time"
    );
    s.signals
        .insert(segment_entered_signal("vip"), NOW - DAY_MS);
    assert!(judge(&t, Some(&s), &who, &Stats::default()).is_ok());
    s.signals
        .insert(segment_entered_signal("vip"), NOW - 3 * DAY_MS);
    assert_eq!(
        judge(&t, Some(&s), &who, &Stats::default()),
        Err(Ineligible::Trigger)
    );

    // N days after a purchase.
    let after = check(&def(json!({"id": "service", "slots": ["home"],
        "trigger": {"on": "purchase", "after_days": 7, "within_days": 7},
        "variants": [{"name": "a", "title": "How is it going?"}]})))
    .unwrap();
    let who = treated(&after);
    let mut p = lapsing_member(3);
    p.purchases.last_ms = Some(NOW - 3 * DAY_MS);
    assert_eq!(
        judge(&after, Some(&p), &who, &Stats::default()),
        Err(Ineligible::Trigger)
    );
    p.purchases.last_ms = Some(NOW - 9 * DAY_MS);
    assert!(judge(&after, Some(&p), &who, &Stats::default()).is_ok());

    // Everyone: even a visitor never seen.
    let open = check(&def(
        json!({"id": "all", "slots": ["home"], "cap": {"impressions": 1, "per_days": 1},
        "variants": [{"name": "a", "title": "Hello"}]}),
    ))
    .unwrap();
    assert!(judge(&open, None, &treated(&open), &Stats::default()).is_ok());
}

#[test]
fn tokens_verify_only_untouched_and_under_the_secret() {
    let t = OfferToken {
        site: "demo".into(),
        campaign: "winback".into(),
        variant: "coupon10".into(),
        subject: "m:m-42".into(),
        issued_ms: NOW,
        windows: Attribution {
            click_days: 3,
            view_days: 0,
        },
    };
    let tok = token("s3cret", &t);
    assert_eq!(verify("s3cret", &tok), Some(t.clone()));
    assert_eq!(verify("other", &tok), None, "another secret");
    let (p, s) = tok.split_once('.').unwrap();
    let mut forged = t.clone();
    forged.campaign = "other".into();
    let forged_payload = token("s3cret", &forged)
        .split_once('.')
        .unwrap()
        .0
        .to_string();
    assert_eq!(
        verify("s3cret", &format!("{forged_payload}.{s}")),
        None,
        "a swapped payload"
    );
    assert_eq!(verify("s3cret", p), None);
    assert_eq!(verify("s3cret", "garbage.garbage"), None);

    // A token issued before attribution windows existed (five fields) still verifies, with the
    // default windows.
    use base64::Engine;
    use hmac::Mac;
    let old = serde_json::json!(["demo", "winback", "coupon10", "m:m-42", NOW]).to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(old.as_bytes());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let old_token = format!(
        "{}.{}",
        b64.encode(&old),
        b64.encode(mac.finalize().into_bytes())
    );
    let got = verify("s3cret", &old_token).unwrap();
    assert_eq!(got.windows, Attribution::default());
    assert_eq!(got.variant, "coupon10");
}

fn offer(campaign: &str, variant: &str, windows: Attribution) -> OfferToken {
    OfferToken {
        site: "demo".into(),
        campaign: campaign.into(),
        variant: variant.into(),
        subject: "m:m".into(),
        issued_ms: 0,
        windows,
    }
}

#[test]
fn purchases_convert_after_a_click_or_a_view_within_the_windows() {
    let day = DAY_MS;
    let w = Attribution {
        click_days: 7,
        view_days: 1,
    };
    let mut ex = BTreeMap::new();
    record_exposure(&mut ex, &offer("clicked", "a", w), 0, false);
    record_exposure(&mut ex, &offer("clicked", "a", w), day, true);
    record_exposure(&mut ex, &offer("seen", "b", w), 5 * day, false);
    record_exposure(&mut ex, &offer("control", HOLDOUT, w), 5 * day, false);
    record_exposure(
        &mut ex,
        &offer(
            "no_views",
            "c",
            Attribution {
                click_days: 7,
                view_days: 0,
            },
        ),
        5 * day,
        false,
    );
    // Half a day after the views: the click (4.5 days back) and the views (within 1 day) convert;
    // a campaign without view-through does not.
    let got = attribute(&ex, 5 * day + day / 2);
    assert_eq!(
        got,
        vec![
            ("clicked", "a", Via::Click),
            ("control", HOLDOUT, Via::View),
            ("seen", "b", Via::View)
        ]
    );
    // Three days later only the click's window is still open; nine days after the click, nothing.
    assert_eq!(attribute(&ex, 8 * day), vec![("clicked", "a", Via::Click)]);
    assert!(attribute(&ex, 9 * day).is_empty());
    // A purchase before an exposure is not its conversion.
    assert!(attribute(&ex, 0).is_empty());
    // The latest encounter decides the arm.
    record_exposure(&mut ex, &offer("seen", "b2", w), 6 * day, false);
    assert_eq!(ex["seen"].variant, "b2");
    record_exposure(&mut ex, &offer("seen", "b", w), 2 * day, false);
    assert_eq!(
        ex["seen"].variant, "b2",
        "an older impression does not move it back"
    );
    // Bounded like the impressions.
    for i in 0..(KEPT_CAMPAIGNS + 3) {
        record_exposure(
            &mut ex,
            &offer(&format!("c{i}"), "a", w),
            10 * day + i as i64,
            false,
        );
    }
    assert_eq!(ex.len(), KEPT_CAMPAIGNS);
}

#[test]
fn holdout_is_no_variant_name_and_windows_are_bounded() {
    let bad = |v: serde_json::Value| {
        check(&serde_json::from_value::<CampaignDef>(v).unwrap())
            .unwrap_err()
            .field
    };
    assert_eq!(
        bad(json!({"id": "x", "slots": ["home"], "variants": [{"name": "holdout", "title": "t"}]})),
        "variants[0].name"
    );
    assert_eq!(
        bad(
            json!({"id": "x", "slots": ["home"], "variants": [{"name": "a", "title": "t"}],
                   "attribution": {"click_days": 91}})
        ),
        "attribution.click_days"
    );
}

#[test]
fn impressions_and_stats_stay_bounded_and_parse() {
    let mut offers = BTreeMap::new();
    for i in 0..(KEPT_IMPRESSIONS as i64 + 5) {
        record_impression(&mut offers, "a", i);
    }
    assert_eq!(offers["a"].len(), KEPT_IMPRESSIONS);
    assert_eq!(offers["a"][0], 5, "the oldest go first");
    for i in 0..(KEPT_CAMPAIGNS + 3) {
        record_impression(&mut offers, &format!("c{i}"), 10_000 + i as i64);
    }
    assert_eq!(offers.len(), KEPT_CAMPAIGNS);
    assert!(!offers.contains_key("a"), "the stalest campaign is dropped");

    let h = HashMap::from([
        ("w|a|impressions".to_string(), "10".to_string()),
        ("w|a|clicks".to_string(), "3".to_string()),
        ("w|b|impressions".to_string(), "5".to_string()),
        ("junk".to_string(), "1".to_string()),
    ]);
    let st = Stats::from_hash(&h);
    assert_eq!(
        st.of("w", "a"),
        Counts {
            impressions: 10,
            clicks: 3,
            conversions: 0,
            revenue: 0.0
        }
    );
    assert_eq!(st.total("w").impressions, 15);
    // The holdout's exposures are not spent from the budget.
    let mut h = h;
    h.insert("w|holdout|impressions".into(), "99".into());
    h.insert("w|a|revenue".into(), "12.5".into());
    let st = Stats::from_hash(&h);
    assert_eq!(st.total("w").impressions, 15);
    assert_eq!(st.of("w", "holdout").impressions, 99);
    assert_eq!(st.of("w", "a").revenue, 12.5);
}

fn change(kind: crate::change::ChangeKind) -> crate::change::Change {
    crate::change::Change {
        id: "e-9:stage_changed".into(),
        site_id: "demo".into(),
        subject: "m:m-1".into(),
        at: chrono::DateTime::from_timestamp_millis(NOW).unwrap(),
        source_event_id: "e-9".into(),
        kind,
    }
}

#[test]
fn a_trigger_makes_one_stable_action_for_a_member_the_campaign_reaches() {
    use crate::change::ChangeKind;
    let mut d = winback();
    d.webhook = Some("https://crm.example/hooks/tailor".into());
    let c = check(&d).unwrap();
    let lapsing = change(ChangeKind::StageChanged {
        from: Some("repeat".into()),
        to: "lapsing".into(),
    });
    let other = change(ChangeKind::StageChanged {
        from: None,
        to: "repeat".into(),
    });
    assert!(c.triggered_by(&lapsing));
    assert!(!c.triggered_by(&other), "the trigger's `to` filters");
    let mut s = lapsing_member(0);
    s.traits.insert("email".into(), json!("ann@example.com"));
    s.traits.insert("favourite_colour".into(), json!("green"));
    let facts = Facts::of(&s, &SiteModels::default(), &LifecycleRules::default(), NOW);
    let who = treated(&c);
    let m = Member {
        subject: &who,
        state: Some(&s),
        facts: Some(&facts),
        now_ms: NOW,
        half_life_ms: 30 * DAY_MS,
    };
    let a = c.action(&lapsing, &m).unwrap();
    assert_eq!(a.id, "e-9:stage_changed|winback");
    assert_eq!(
        (a.variant.as_str(), a.coupon.as_deref()),
        ("coupon10", Some("BACK10"))
    );
    assert_eq!(a.reason, "you have not ordered for 4 months");
    assert_eq!(
        a.webhook.as_deref(),
        Some("https://crm.example/hooks/tailor")
    );
    assert_eq!(
        a.contact.keys().collect::<Vec<_>>(),
        ["email"],
        "contact traits only"
    );
    assert_eq!(
        c.action(&lapsing, &m).unwrap(),
        a,
        "the same change, the same action"
    );
    assert_eq!(c.action(&other, &m), Err(Ineligible::Trigger));
    // Outside the audience (one order only), or held out: no action.
    let mut one_order = s.clone();
    one_order.purchases.orders = 1;
    let f1 = Facts::of(
        &one_order,
        &SiteModels::default(),
        &LifecycleRules::default(),
        NOW,
    );
    let outside = Member {
        state: Some(&one_order),
        facts: Some(&f1),
        ..m
    };
    assert_eq!(c.action(&lapsing, &outside), Err(Ineligible::Audience));
    let held = (0..)
        .map(|i| format!("m:{i}"))
        .find(|x| c.assign(x) == Assignment::Holdout)
        .unwrap();
    let held_member = Member {
        subject: &held,
        ..m
    };
    assert_eq!(c.action(&lapsing, &held_member), Err(Ineligible::Holdout));
    // A later window has no change to fire on.
    let mut later = winback();
    later.trigger.as_mut().unwrap().after_days = 7;
    assert!(!check(&later).unwrap().triggered_by(&lapsing));
    // A bad webhook is refused.
    let mut bad = winback();
    bad.webhook = Some("ftp://x".into());
    assert_eq!(check(&bad).unwrap_err().field, "webhook");
}

#[test]
fn a_segment_entered_change_counts_as_membership_before_the_document_shows_it() {
    use crate::change::ChangeKind;
    let c = check(&def(json!({"id": "fans", "segment": "tent_fans",
        "trigger": {"on": "segment_entered", "segment": "tent_fans", "within_days": 3},
        "slots": ["home"], "variants": [{"name": "a", "title": "Tents"}]})))
    .unwrap();
    let s = SubjectState::default();
    let facts = Facts::of(&s, &SiteModels::default(), &LifecycleRules::default(), NOW);
    let who = treated(&c);
    let m = Member {
        subject: &who,
        state: Some(&s),
        facts: Some(&facts),
        now_ms: NOW,
        half_life_ms: DAY_MS,
    };
    let entered = change(ChangeKind::SegmentEntered {
        segment: "tent_fans".into(),
    });
    assert!(c.action(&entered, &m).is_ok());
    assert_eq!(c.eligible(&m, &Stats::default()), Err(Ineligible::Audience));
}
