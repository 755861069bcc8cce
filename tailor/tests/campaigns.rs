//! Campaigns and offers end to end, through the public APIs, on the real Kafka broker and Redis and
//! on the embedded defaults: a campaign whose audience is a segment reaches a member who entered it
//! and not one who did not; a held-out member of the segment never gets it; the frequency cap holds
//! once the tag reports the offer's impressions, and so does a budget; a forged token is not
//! counted; clicks and attributed purchases of the treated and of the held-back member appear in the
//! campaign's report with the lift.

mod support;

use serde_json::{json, Value};
use support::{start, App};
use tailor_core::campaign::{self, Assignment, CampaignDef};
use tailor_core::config::Config;
use tailor_core::segment::SegmentDef;
use tailor_infra::testkit;

fn campaign_body() -> Value {
    json!({"segment": "tent_fans", "slots": ["home"], "priority": 5,
        "variants": [{"name": "a", "title": "Tent week", "body": "5% off tents",
                      "url": "/c/outdoor/tents", "coupon": "TENT5"}],
        "cap": {"impressions": 2, "per_days": 7}, "holdout": 0.5})
}

/// The first `prefix-<n>` member the campaign treats (or holds out): assignment is the public,
/// deterministic function the recommender uses, so the test can choose its members.
fn member(prefix: &str, held: bool) -> String {
    let mut d: CampaignDef = serde_json::from_value(campaign_body()).unwrap();
    d.id = "tents".into();
    let c = campaign::check(&d).unwrap();
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|m| (c.assign(&format!("m:{m}")) == Assignment::Holdout) == held)
        .unwrap()
}

fn view(tag: &str, n: usize, member: &str, item: &str, category: &str) -> Value {
    json!({"type": "page_view", "event_id": format!("{tag}-{member}-{n}"), "site_id": "demo",
        "anonymous_id": format!("{member}-dev"), "member_id": member, "session_id": format!("{member}-s"),
        "item_id": item, "category": category})
}

fn offer_event(tag: &str, n: usize, kind: &str, member: &str, token: &str) -> Value {
    json!({"type": kind, "event_id": format!("{tag}-{member}-offer-{n}"), "site_id": "demo",
        "anonymous_id": format!("{member}-dev"), "member_id": member, "slot": "home", "token": token})
}

fn offers(r: &Value) -> &Vec<Value> {
    r["offers"].as_array().unwrap()
}

fn home(member: &str) -> String {
    format!("/v1/recommendations?site=demo&member={member}&slot=home")
}

async fn counts(app: &App) -> Value {
    let (status, body) = app.get("/admin/campaigns/tents?site=demo").await;
    assert_eq!(status, 200, "{body}");
    body["counts"]["a"].clone()
}

async fn scenario(app: &App, tag: &str) {
    // Bad campaigns are refused naming the field.
    let mut bad = campaign_body();
    bad["variants"][0]["title"] = json!("");
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            "/admin/campaigns/tents?site=demo",
            &bad,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "variants[0].title", "{body}");
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            "/admin/campaigns/tents?site=demo",
            &campaign_body(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = app.get("/admin/campaigns?site=demo").await;
    assert_eq!(list[0]["id"], "tents", "{list}");
    assert_eq!(list[0]["source"], "api");

    let (ann, hal, bob) = (
        member(&format!("{tag}-ann"), false),
        member(&format!("{tag}-hal"), true),
        member(&format!("{tag}-bob"), false),
    );
    // Ann and Hal look at tents twice (the segment), Bob at a jacket.
    let mut events = Vec::new();
    for who in [&ann, &hal] {
        events.push(view(tag, 1, who, "t1", "outdoor/tents"));
        events.push(view(tag, 2, who, "t2", "outdoor/tents"));
    }
    events.push(view(tag, 1, &bob, "j1", "apparel/jackets"));
    events.push(view(tag, 2, &bob, "j2", "apparel/jackets"));
    let (status, body) = app.post(&json!(events)).await;
    assert_eq!(status, 202, "{body}");

    let got = app.until(&home(&ann), |r| !offers(r).is_empty()).await;
    let offer = &offers(&got)[0];
    assert_eq!(offer["campaign"], "tents", "{got}");
    assert_eq!(offer["variant"], "a");
    assert_eq!(offer["coupon"], "TENT5");
    assert_eq!(offer["url"], "/c/outdoor/tents");
    assert_eq!(offer["reason"], "picked for tent fans members");
    let token = offer["token"].as_str().unwrap().to_string();
    assert!(offers(&got).len() <= 1, "offers_per_slot defaults to 1");
    // No slot, no offers.
    let (_, plain) = app
        .get(&format!("/v1/recommendations?site=demo&member={ann}"))
        .await;
    assert!(offers(&plain).is_empty(), "{plain}");

    // Bob is not in the segment; Hal is, but held out: neither gets the offer.
    app.profile_until(&bob, |p| p["event_counts"]["page_view"] == 2)
        .await;
    app.profile_until(&hal, |p| {
        p["segments"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x == "tent_fans"))
    })
    .await;
    for who in [&bob, &hal] {
        let (status, r) = app.get(&home(who)).await;
        assert_eq!(status, 200);
        assert!(offers(&r).is_empty(), "{who}: {r}");
    }

    // Forged tokens (another key, or a changed payload) are not counted; a genuine click is.
    let forged_key = campaign::token(
        "someone-elses-secret-key",
        &campaign::verify(&Config::default().recommender.offer_secret, &token).unwrap(),
    );
    let (payload, sig) = token.split_once('.').unwrap();
    let tampered = format!("{}x.{sig}", &payload[..payload.len() - 1]);
    let (status, body) = app
        .post(&json!([
            offer_event(tag, 1, "offer_impression", &ann, &forged_key),
            offer_event(tag, 2, "offer_impression", &ann, &tampered),
            offer_event(tag, 3, "offer_impression", &ann, "not-a-token"),
            offer_event(tag, 4, "offer_click", &ann, &token),
        ]))
        .await;
    assert_eq!(status, 202, "{body}");
    let c = app
        .until("/admin/campaigns/tents?site=demo", |r| {
            r["counts"]["a"]["clicks"] == 1
        })
        .await;
    assert_eq!(c["counts"]["a"]["impressions"], 0, "forged: {c}");
    let (_, still) = app.get(&home(&ann)).await;
    assert_eq!(
        offers(&still).len(),
        1,
        "forged impressions do not cap: {still}"
    );

    // Two genuine impressions reach the cap of 2 a week: the offer stops.
    let (status, _) = app
        .post(&json!([
            offer_event(tag, 5, "offer_impression", &ann, &token),
            offer_event(tag, 6, "offer_impression", &ann, &token),
        ]))
        .await;
    assert_eq!(status, 202);
    app.until(&home(&ann), |r| offers(r).is_empty()).await;
    // Counted once each (the recommender's copy of the counters refreshes in the background).
    let c = app
        .until("/admin/campaigns/tents?site=demo", |r| {
            r["counts"]["a"]["impressions"] == 2
        })
        .await;
    assert_eq!(c["counts"]["a"]["clicks"], 1, "{c}");
    assert_eq!(counts(app).await["impressions"], 2);

    // Hal is held back: the answer carries a held-back token (nothing to show) that the tag reports
    // like an impression, so the control group's exposures count.
    let (_, held) = app.get(&home(&hal)).await;
    let held_back = held["held_back"].as_array().expect("held_back");
    assert_eq!(held_back[0]["campaign"], "tents", "{held}");
    let hal_token = held_back[0]["token"].as_str().unwrap().to_string();
    // Ann (who clicked) and Hal buy: each purchase converts for their arm, once per order.
    let buy = |who: &str, n: usize| {
        json!({"type": "purchase", "event_id": format!("{tag}-{who}-buy-{n}"), "site_id": "demo",
            "anonymous_id": format!("{who}-dev"), "member_id": who,
            "order": {"id": format!("{tag}-{who}-order"), "currency": "EUR",
                      "lines": [{"item_id": "t1", "price": 120.0, "quantity": 1}]}})
    };
    let (status, body) = app
        .post(&json!([
            offer_event(tag, 8, "offer_impression", &hal, &hal_token),
            buy(&ann, 1),
            buy(&hal, 1),
            buy(&ann, 2),
        ]))
        .await;
    assert_eq!(status, 202, "{body}");
    let report = app
        .until("/admin/campaigns/tents/report?site=demo", |r| {
            r["holdout"]["conversions"] == 1 && r["variants"][0]["conversions"] == 1
        })
        .await;
    let a = &report["variants"][0];
    assert_eq!(a["variant"], "a", "{report}");
    assert_eq!(
        (a["impressions"].as_u64(), a["clicks"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(a["ctr"], 0.5);
    assert_eq!(
        a["revenue"], 120.0,
        "the second report of the same order converts nothing"
    );
    assert_eq!(report["holdout"]["impressions"], 1, "{report}");
    assert_eq!(report["holdout"]["revenue"], 120.0);
    assert_eq!(report["treated"]["conversions"], 1);
    // Both arms converted once: rate 1/2 against 1/1, with an interval around it.
    let lift = &report["treated"]["lift"];
    assert_eq!(lift["absolute"], -0.5, "{report}");
    assert!(lift["absolute_ci95"][0].as_f64().unwrap() < -0.5);
    let (status, _) = app.get("/admin/campaigns/nope/report?site=demo").await;
    assert_eq!(status, 404);
    // The insights page shows the report: a row per arm, the lift's interval drawn.
    let page = support::browser_script("insights.mjs", &[&app.base, "demo"]).await;
    assert_eq!(page["errors"], json!([]), "{page}");
    let rows = page["campaign_rows"].as_array().unwrap();
    let arms: Vec<&str> = rows.iter().filter_map(|r| r[1].as_str()).collect();
    assert!(
        arms.contains(&"a") && arms.iter().any(|a| a.starts_with("holdout")),
        "{page}"
    );
    assert!(page["campaign_intervals"].as_u64() >= Some(1), "{page}");

    // A budget of one impression: once that impression is counted, nobody gets the offer.
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            "/admin/campaigns/flash?site=demo",
            &json!({"slots": ["cart"], "budget": {"impressions": 1},
                "variants": [{"name": "only", "title": "Free gift today"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let cart = |who: &str| format!("/v1/recommendations?site=demo&member={who}&slot=cart");
    let got = app.until(&cart(&bob), |r| !offers(r).is_empty()).await;
    let flash = offers(&got)[0]["token"].as_str().unwrap().to_string();
    let (_, other) = app.get(&cart(&ann)).await;
    assert_eq!(offers(&other)[0]["campaign"], "flash", "{other}");
    let mut shown = offer_event(tag, 7, "offer_impression", &bob, &flash);
    shown["slot"] = json!("cart");
    let (status, _) = app.post(&json!([shown])).await;
    assert_eq!(status, 202);
    for who in [&ann, &bob] {
        app.until(&cart(who), |r| offers(r).is_empty()).await;
    }
    let (_, flash_info) = app.get("/admin/campaigns/flash?site=demo").await;
    assert_eq!(
        flash_info["counts"]["only"]["impressions"], 1,
        "{flash_info}"
    );

    // Removing the campaign takes it off at once.
    let r = app
        .http
        .delete(format!("{}/admin/campaigns/tents?site=demo", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (status, _) = app.get("/admin/campaigns/tents?site=demo").await;
    assert_eq!(status, 404);
}

fn with_segment(mut c: Config) -> Config {
    c.segments.push(SegmentDef {
        name: "tent_fans".into(),
        rule: "category_views(\"outdoor/tents\", 7) >= 2".into(),
        description: None,
        site: None,
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default() {
    let app = start(with_segment(Config::default())).await;
    scenario(&app, "emb").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_and_redis() {
    let app = start(with_segment(testkit::real_config())).await;
    scenario(&app, "real").await;
    app.stop().await;
}

/// A webhook receiver: records each request's `Idempotency-Key` and body; answers 503 to the first
/// request for each key listed in `fail_once`, and 500 always to `always_fails` (a receiver that is
/// down for good).
#[derive(Clone, Default)]
struct Receiver {
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    refused: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

async fn receiver() -> (String, Receiver) {
    use axum::http::{HeaderMap, StatusCode};
    let r = Receiver::default();
    let state = r.clone();
    let app = axum::Router::new()
        .route(
            "/hooks/{name}",
            axum::routing::post(
                |axum::extract::Path(name): axum::extract::Path<String>,
                 axum::extract::State(s): axum::extract::State<Receiver>,
                 headers: HeaderMap,
                 body: axum::Json<Value>| async move {
                    let key = headers["idempotency-key"].to_str().unwrap().to_string();
                    if name == "down" {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    // The first delivery of each action fails once: the stage must retry.
                    if s.refused.lock().unwrap().insert(key.clone()) {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    s.got.lock().unwrap().push((key, body.0));
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, r)
}

/// Outbound actions on the real broker and Redis: members who enter a segment get exactly one action
/// each on the actions topic and at their campaign's webhook (after a retry), a held-out member gets
/// none, a webhook that stays down fills the dead-action list, and the same changes read again (a
/// second reading of the change topic, as after a crash) send nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_actions_reach_each_member_once() {
    use tailor_infra::bus::kafka::{KafkaConsumer, KafkaSettings, KafkaTopicReader};
    use tailor_infra::bus::{Consumer, TopicReader};
    let (hooks, got) = receiver().await;
    let mut config = with_segment(testkit::real_config());
    config.campaigns = serde_json::from_value(json!([
        {"id": "fans", "segment": "tent_fans", "holdout": 0.5, "slots": ["home"],
         "trigger": {"on": "segment_entered", "segment": "tent_fans", "within_days": 3},
         "webhook": format!("{hooks}/hooks/crm"),
         "variants": [{"name": "a", "title": "Tent week", "coupon": "TENT5"}]},
        {"id": "doomed", "segment": "tent_fans", "slots": ["cart"],
         "trigger": {"on": "segment_entered", "segment": "tent_fans", "within_days": 3},
         "webhook": format!("{hooks}/hooks/down"),
         "variants": [{"name": "a", "title": "Never arrives"}]}]))
    .unwrap();
    let fans = campaign::check(&config.campaigns[0]).unwrap();
    let pick = |prefix: &str, held: bool| {
        (0..)
            .map(|i| format!("{prefix}-{i}"))
            .find(|m| (fans.assign(&format!("m:{m}")) == Assignment::Holdout) == held)
            .unwrap()
    };
    let (ann, cat, hal) = (
        pick("act-ann", false),
        pick("act-cat", false),
        pick("act-hal", true),
    );
    let app = start(config.clone()).await;
    let mut events = Vec::new();
    for who in [&ann, &cat, &hal] {
        let identify = json!({"type": "identify", "event_id": format!("act-{who}-id"), "site_id": "demo",
            "anonymous_id": format!("{who}-dev"), "member_id": who,
            "traits": {"email": format!("{who}@example.com"), "shoe_size": 42}});
        events.push(identify);
        events.push(view("act", 1, who, "t1", "outdoor/tents"));
        events.push(view("act", 2, who, "t2", "outdoor/tents"));
    }
    let (status, body) = app.post(&json!(events)).await;
    assert_eq!(status, 202, "{body}");

    // The webhook receives one action per treated member, after one refused attempt each.
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    while got.got.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhooks: {:?}",
            got.got.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dead = app
        .until("/admin/actions/dead?site=demo", |d| {
            d.as_array().is_some_and(|d| d.len() == 3)
        })
        .await;
    assert!(dead[0]["error"].as_str().unwrap().contains("500"), "{dead}");
    assert_eq!(dead[0]["action"]["campaign"], "doomed");

    let settings = KafkaSettings {
        brokers: config.kafka.brokers.clone().unwrap(),
        topic: config.kafka.actions_topic.clone(),
        delivery_timeout: std::time::Duration::from_secs(5),
        fetch_wait: tailor_infra::bus::kafka::FETCH_WAIT,
    };
    let read_actions = || async {
        let records = KafkaTopicReader::new(&settings)
            .read_all(1000)
            .await
            .unwrap();
        records
            .iter()
            .map(|m| serde_json::from_slice::<Value>(&m.payload).unwrap())
            .collect::<Vec<_>>()
    };
    let actions = read_actions().await;
    let fans_actions: Vec<&Value> = actions.iter().filter(|a| a["campaign"] == "fans").collect();
    let mut to: Vec<&str> = fans_actions
        .iter()
        .map(|a| a["subject"].as_str().unwrap())
        .collect();
    to.sort();
    let mut want = vec![format!("m:{ann}"), format!("m:{cat}")];
    want.sort();
    assert_eq!(
        to, want,
        "one action per treated member, none for {hal}: {actions:?}"
    );
    for a in &fans_actions {
        assert_eq!(a["coupon"], "TENT5");
        assert_eq!(a["reason"], "picked for tent fans members");
        let who = a["subject"].as_str().unwrap().trim_start_matches("m:");
        assert_eq!(
            a["contact"],
            json!({"email": format!("{who}@example.com")}),
            "contact traits only"
        );
    }
    let hooked = got.got.lock().unwrap().clone();
    let mut keys: Vec<&str> = hooked.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    let mut ids: Vec<&str> = fans_actions
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        keys, ids,
        "the webhook's Idempotency-Key is the action's id"
    );
    assert_eq!(
        actions.iter().filter(|a| a["campaign"] == "doomed").count(),
        3,
        "a dead webhook still leaves the action on the topic"
    );

    // The same changes read again (a fresh reading of the change topic, as after a crash before the
    // commit) make the same actions, which are recognised and not sent again.
    let changes = KafkaSettings {
        topic: config.kafka.changes_topic.clone(),
        ..settings.clone()
    };
    let mut again = KafkaConsumer::new(&changes, &testkit::unique("again")).unwrap();
    let stage = tailor_processor::actions::ActionStage {
        store: std::sync::Arc::new(
            tailor_infra::store::redis::RedisStore::connect(&testkit::redis_url())
                .await
                .unwrap(),
        ),
        keys: tailor_core::keys::KeySpace::new(config.redis.namespace.clone()),
        campaigns: config.campaigns.clone(),
        config: config.processor.clone(),
        actions: std::sync::Arc::new(
            tailor_infra::bus::kafka::KafkaProducer::new(&settings).unwrap(),
        ),
        log: std::sync::Arc::new(KafkaTopicReader::new(&settings)),
        http: reqwest::Client::new(),
    };
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    loop {
        let batch = again
            .poll(500, std::time::Duration::from_millis(500))
            .await
            .unwrap();
        if batch.is_empty() {
            if seen > 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the change topic was never read"
            );
            continue;
        }
        seen += batch.len();
        stage.handle(&batch).await.unwrap();
    }
    assert!(seen >= 3, "{seen} changes read again");
    assert_eq!(
        read_actions().await.len(),
        actions.len(),
        "nothing written twice"
    );
    assert_eq!(got.got.lock().unwrap().len(), 2, "nothing POSTed twice");
    app.stop().await;
}

/// A `stage_changed` trigger writes exactly one action per member even when the processor dies at
/// the worst place: a separate `tailor processor` is aborted (failpoint `actions-after-send`) right
/// after its actions stage wrote the first action to the topic, before marking it sent, so the change
/// is read again after the restart. The restarted processor finds the action pending, finds it on
/// the topic and does not write it again; every member's action is on the topic once, and at the
/// webhook under one `Idempotency-Key` each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_writes_one_action_per_member_when_the_processor_dies_after_writing() {
    use std::time::Duration;
    use tailor::app::Roles;
    use tailor_infra::bus::kafka::{KafkaSettings, KafkaTopicReader};
    use tailor_infra::bus::TopicReader;
    let (hooks, got) = receiver().await;
    let mut config = testkit::real_config();
    config.campaigns = serde_json::from_value(json!([
        {"id": "welcome", "slots": ["home"],
         "trigger": {"on": "stage_changed", "to": "first_time_buyer", "within_days": 3},
         "webhook": format!("{hooks}/hooks/crm"),
         "variants": [{"name": "a", "title": "Welcome", "coupon": "HELLO"}]}]))
    .unwrap();
    let dir = testkit::temp_dir("actions-kill");
    let config_file = dir.join("tailor.toml");
    std::fs::write(
        &config_file,
        toml::to_string(&testkit::keyed(config.clone())).unwrap(),
    )
    .unwrap();
    // Collection in this process; the processor (with its actions stage) in its own.
    let app = support::start_roles(
        config.clone(),
        Roles {
            collector: true,
            processor: false,
            recommender: true,
            demo: false,
            export: false,
        },
    )
    .await;
    let members: Vec<String> = (0..3)
        .map(|i| testkit::unique(&format!("buyer{i}")))
        .collect();
    // A first purchase makes each a customer: `stage_changed` to "first_time_buyer".
    let events: Vec<Value> = members
        .iter()
        .map(|m| {
            json!({"type": "purchase", "event_id": format!("{m}-order"), "site_id": "demo",
                "anonymous_id": format!("{m}-dev"), "member_id": m,
                "order": {"id": format!("{m}-o1"), "currency": "EUR",
                          "lines": [{"item_id": "t1", "price": 20.0, "quantity": 1}]}})
        })
        .collect();
    let (status, body) = app.post(&json!(events)).await;
    assert_eq!(status, 202, "{body}");

    let log = dir.join("processor-1.log");
    let mut dying = support::stage(
        "processor",
        "127.0.0.1:0",
        &config_file,
        &log,
        "actions-after-send",
    );
    dying
        .dies_at_failpoint(&log, support::CONVERGE_WITHIN)
        .await;
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("failpoint actions-after-send"),
        "{}",
        log.display()
    );
    support::dead_member_leaves_the_group().await;
    let log = dir.join("processor-2.log");
    let _again = support::stage("processor", "127.0.0.1:0", &config_file, &log, "");

    let settings = KafkaSettings {
        brokers: config.kafka.brokers.clone().unwrap(),
        topic: config.kafka.actions_topic.clone(),
        delivery_timeout: Duration::from_secs(5),
        fetch_wait: tailor_infra::bus::kafka::FETCH_WAIT,
    };
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    let keys = loop {
        let keys: std::collections::BTreeSet<String> = got
            .got
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        if keys.len() == members.len() {
            break keys;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhooks {keys:?}; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let actions: Vec<Value> = KafkaTopicReader::new(&settings)
        .read_all(1000)
        .await
        .unwrap()
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .filter(|a: &Value| a["campaign"] == "welcome")
        .collect();
    let mut subjects: Vec<&str> = actions
        .iter()
        .map(|a| a["subject"].as_str().unwrap())
        .collect();
    subjects.sort();
    let mut want: Vec<String> = members.iter().map(|m| format!("m:{m}")).collect();
    want.sort();
    assert_eq!(subjects, want, "one action per member: {actions:?}");
    let ids: std::collections::BTreeSet<String> = actions
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, keys, "one Idempotency-Key per action");
    let port = support::listening_port(&log).unwrap();
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tailor_actions_recovered_total 1\n"),
        "the restarted processor found the written action pending: {metrics}"
    );
    app.stop().await;
}
