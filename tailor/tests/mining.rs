//! The mining stage end to end, on the real broker and Redis and on the embedded defaults: identity
//! stitching across devices (merged exactly once, through replays), sessions with their channels and
//! pages, decayed interests, RFM, life cycle and lifetime value from the background model refresh,
//! the sweep that moves idle customers, segments from the configuration and the admin API (with a
//! precise refusal of a bad rule), behaviour-change events on the changes topic, and site analytics.

mod support;

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use support::App;
use tailor_core::config::Config;
use tailor_infra::testkit;

const UA_CHROME: &str = support::UA;

fn ago(days: f64) -> String {
    (Utc::now() - Duration::milliseconds((days * 86_400_000.0) as i64)).to_rfc3339()
}

/// A page view; `extra` adds or overrides fields.
fn view(anon: &str, member: Option<&str>, session: &str, extra: Value) -> Value {
    let mut e = json!({"type": "page_view", "site_id": "demo", "anonymous_id": anon, "session_id": session});
    if let Some(m) = member {
        e["member_id"] = json!(m);
    }
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn purchase(anon: &str, member: &str, order: &str, revenue: f64, days_ago: f64) -> Value {
    json!({"type": "purchase", "site_id": "demo", "anonymous_id": anon, "member_id": member,
        "event_id": format!("{member}-{order}"), "timestamp": ago(days_ago),
        "order": {"id": order, "currency": "EUR",
            "lines": [{"item_id": "kit", "category": "gear", "price": revenue, "quantity": 1}]}})
}

async fn post_ok(app: &App, events: Vec<Value>) {
    let (status, body) = app.post(&Value::Array(events)).await;
    assert_eq!(status, 202, "{body}");
}

async fn changes(app: &App, subject: &str, kind: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!(
            "/admin/changes?site=demo&subject={subject}&kind={kind}&limit=1000"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

async fn changes_until(app: &App, subject: &str, kind: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    loop {
        let c = changes(app, subject, kind).await;
        if c.len() >= n {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{subject}: expected {n} {kind} changes, have {c:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn mining_config(mut c: Config) -> Config {
    c.processor.models_refresh_secs = 1;
    c.processor.min_customers_for_fit = 20;
    c
}

async fn scenario(config: Config, pictures: bool) {
    let app = support::start(mining_config(config)).await;
    assert!(support::UA == UA_CHROME);

    // --- Identity: anonymous browsing on device A, login, a second device, logout.
    let first_visit = vec![
        view(
            "dev-a",
            None,
            "a1",
            json!({"event_id": "id-1", "item_id": "tent", "category": "tents",
            "brand": "Hilleberg", "url": "https://shop.example/p/tent", "referrer": "https://www.google.com/"}),
        ),
        view(
            "dev-a",
            None,
            "a1",
            json!({"event_id": "id-2", "item_id": "stove", "category": "kitchen",
            "url": "https://shop.example/p/stove"}),
        ),
        json!({"type": "identify", "site_id": "demo", "anonymous_id": "dev-a", "member_id": "ann",
            "event_id": "id-3", "traits": {"plan": "gold"}}),
    ];
    post_ok(&app, first_visit.clone()).await;
    post_ok(
        &app,
        vec![view(
            "dev-b",
            Some("ann"),
            "b1",
            json!({"event_id": "id-4", "item_id": "lamp",
        "category": "tents", "url": "https://shop.example/p/lamp"}),
        )],
    )
    .await;
    // After logging out on device A: an anonymous view still belongs to ann.
    post_ok(
        &app,
        vec![view(
            "dev-a",
            None,
            "a2",
            json!({"event_id": "id-5", "item_id": "mat",
        "url": "https://shop.example/p/mat"}),
        )],
    )
    .await;
    let ann = app
        .profile_until("ann", |p| p["event_counts"]["page_view"] == 4)
        .await;
    assert_eq!(ann["merged"], json!(["a:dev-a", "a:dev-b"]), "{ann}");
    assert_eq!(ann["traits"]["plan"], "gold");
    assert_eq!(ann["event_counts"]["identify"], 1);
    let (status, via_device) = app.get("/v1/profiles/dev-a?site=demo&as=anonymous").await;
    assert_eq!(status, 200);
    assert_eq!(via_device["subject"], "m:ann", "{via_device}");
    // Replays and a second login merge nothing twice.
    post_ok(&app, first_visit).await;
    post_ok(
        &app,
        vec![
            json!({"type": "identify", "site_id": "demo", "anonymous_id": "dev-a",
        "member_id": "ann", "event_id": "id-6"}),
        ],
    )
    .await;
    let ann = app
        .profile_until("ann", |p| p["event_counts"]["identify"] == 2)
        .await;
    assert_eq!(ann["event_counts"]["page_view"], 4, "{ann}");
    assert_eq!(
        changes(&app, "m:ann", "identity_merged").await.len(),
        1,
        "the anonymous history of dev-a is merged once"
    );

    // --- Sessions and channels: search, e-mail campaign, paid campaign, then social (a new channel).
    let s = |n: &str, url: &str, referrer: Option<&str>, days: f64| {
        let mut e = view(
            "dev-c",
            Some("cat"),
            n,
            json!({"url": url, "timestamp": ago(days)}),
        );
        if let Some(r) = referrer {
            e["referrer"] = json!(r);
        }
        e
    };
    post_ok(
        &app,
        vec![
            s("c1", "https://shop.example/p/1", Some("https://www.google.com/"), 9.0),
            s("c1", "https://shop.example/p/2?x=1", None, 8.999),
            json!({"type": "page_ping", "site_id": "demo", "anonymous_id": "dev-c", "member_id": "cat",
                "session_id": "c1", "dwell_ms": 7000, "timestamp": ago(8.998)}),
            s("c2", "https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=may", None, 6.0),
            s("c3", "https://shop.example/?utm_source=ads&utm_medium=cpc&utm_campaign=tents", None, 3.0),
            s("c4", "https://shop.example/p/3", Some("https://www.facebook.com/"), 0.0),
        ],
    )
    .await;
    let cat = app
        .profile_until("cat", |p| p["sessions"]["count"] == 4)
        .await;
    let channels = &cat["sessions"]["channels"];
    for ch in ["search", "email", "campaign", "social"] {
        assert_eq!(channels[ch], 1, "{ch}: {cat}");
    }
    let oldest = &cat["sessions"]["recent"][3];
    assert_eq!(oldest["id"], "c1");
    assert_eq!(oldest["entry"], "/p/1");
    assert_eq!(oldest["exit"], "/p/2");
    assert_eq!(oldest["pages"], 2);
    assert_eq!(oldest["dwell_ms"], 7000);
    assert_eq!(oldest["channel"], "search");
    assert_eq!(cat["path"][0]["page"], "/p/3", "newest first: {cat}");
    let new_channel = changes_until(&app, "m:cat", "new_channel", 1).await;
    assert_eq!(new_channel[0]["channel"], "social", "{new_channel:?}");

    // --- Decayed interests and a new interest: shoes two months ago, kayaks today.
    let mut history: Vec<Value> = (0..12)
        .map(|i| {
            view(
                "dev-d",
                Some("dan"),
                "d1",
                json!({"item_id": format!("shoe-{i}"), "category": "shoes",
                "brand": "Runner", "timestamp": ago(60.0 - f64::from(i) * 0.001)}),
            )
        })
        .collect();
    history.extend((0..4).map(|i| {
        view(
            "dev-d",
            Some("dan"),
            "d2",
            json!({"item_id": format!("kayak-{i}"), "category": "kayaks",
            "brand": "Klepper", "timestamp": ago(0.001 * f64::from(4 - i))}),
        )
    }));
    post_ok(&app, history).await;
    let dan = app
        .profile_until("dan", |p| p["event_counts"]["page_view"] == 16)
        .await;
    // Shoes: 12 views at a quarter weight (two half-lives) = 3; kayaks: 4 views at full weight.
    assert_eq!(dan["top_categories"][0]["id"], "kayaks", "{dan}");
    let shoes = dan["top_categories"][1]["score"].as_f64().unwrap();
    assert!(
        (shoes - 3.0).abs() < 0.05,
        "shoes decayed to {shoes}: {dan}"
    );
    assert_eq!(dan["top_brands"][0]["id"], "Klepper");
    let interest = changes_until(&app, "m:dan", "new_interest", 1).await;
    assert_eq!(interest[0]["category"], "kayaks", "{interest:?}");

    // --- Visit frequency drop: four daily visits, then a month away.
    let visits: Vec<Value> = [40.0, 39.0, 38.0, 37.0, 0.0]
        .iter()
        .enumerate()
        .map(|(i, d)| {
            view(
                "dev-e",
                Some("eve"),
                &format!("e{i}"),
                json!({"timestamp": ago(*d)}),
            )
        })
        .collect();
    post_ok(&app, visits).await;
    let drop = changes_until(&app, "m:eve", "visit_frequency_drop", 1).await;
    assert!(drop[0]["gap_days"].as_f64().unwrap() > 30.0, "{drop:?}");

    // --- Customers: enough purchase histories for the lifetime-value fit, plus special cases.
    let mut orders = Vec::new();
    for i in 0..30u32 {
        let member = format!("c-{i}");
        let anon = format!("dev-c-{i}");
        let first = 300.0 - f64::from(i) * 7.0;
        orders.push(purchase(&anon, &member, "o0", 20.0 + f64::from(i), first));
        for k in 0..(i % 4) {
            let when = first - 25.0 * f64::from(k + 1);
            if when > 0.0 {
                orders.push(purchase(&anon, &member, &format!("o{}", k + 1), 25.0, when));
            }
        }
    }
    orders.push(purchase("dev-old", "old", "o0", 40.0, 400.0));
    for (i, (v, d)) in [(10.0, 30.0), (12.0, 20.0), (11.0, 10.0), (500.0, 0.0)]
        .iter()
        .enumerate()
    {
        orders.push(purchase("dev-s", "shifter", &format!("o{i}"), *v, *d));
    }
    post_ok(&app, orders).await;
    // The refresh fits the models; the profile then carries value and RFM.
    let c3 = app
        .profile_until("c-3", |p| !p["value"].is_null() && !p["rfm"].is_null())
        .await;
    let p_alive = c3["value"]["p_alive"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p_alive), "{c3}");
    assert!(
        (c3["value"]["churn_risk"].as_f64().unwrap() - (1.0 - p_alive)).abs() < 1e-9,
        "{c3}"
    );
    assert_eq!(c3["purchases"]["orders"], 4, "{c3}");
    let stages: Vec<String> = changes_until(&app, "m:c-3", "stage_changed", 2)
        .await
        .iter()
        .map(|c| c["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        stages[..2],
        ["first_time_buyer", "repeat_customer"],
        "{stages:?}"
    );
    // Bought once 400 days ago: first-time buyer then; the sweep moves them to lapsed now.
    let lapsed = app
        .profile_until("old", |p| {
            p["lifecycle"]["stage"] == "lapsed" && p["lifecycle"]["since"].is_string()
        })
        .await;
    assert!(lapsed["lifecycle"]["since"].is_string(), "{lapsed}");
    let swept = changes_until(&app, "m:old", "stage_changed", 2).await;
    let last = swept.last().unwrap();
    assert_eq!(last["to"], "lapsed");
    assert!(last["id"].as_str().unwrap().starts_with("sweep-"), "{last}");
    let shift = changes_until(&app, "m:shifter", "purchase_shift", 1).await;
    assert_eq!(shift[0]["reason"], "order_value", "{shift:?}");

    // --- Segments: a bad rule is refused precisely; a good one fills as profiles change.
    let (status, body) = app
        .send(
            Method::PUT,
            "/admin/segments/big_spenders?site=demo",
            &json!({"rule": "monetary >= "}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("column 13: the rule ends too early"),
        "the refusal names the column: {body}"
    );
    let (status, body) = app
        .send(
            Method::PUT,
            "/admin/segments/big_spenders?site=demo",
            &json!({"rule": "monetary >= 100 and member", "description": "spent 100 or more"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    post_ok(&app, vec![purchase("dev-big", "big", "o0", 150.0, 0.0)]).await;
    let entered = changes_until(&app, "m:big", "segment_entered", 1).await;
    assert!(
        entered.iter().any(|c| c["segment"] == "big_spenders"),
        "{entered:?}"
    );
    let members = app
        .until("/admin/segments/big_spenders/members?site=demo", |b| {
            b["total"].as_u64() >= Some(2)
        })
        .await;
    let m = support::strings(&members["members"]);
    assert!(
        m.contains(&"m:big") && m.contains(&"m:shifter"),
        "{members}"
    );
    // Entry and exit: a browsing member leaves "window_shoppers" with their first order.
    let (status, body) = app
        .send(
            Method::PUT,
            "/admin/segments/window_shoppers?site=demo",
            &json!({"rule": "member and orders == 0 and pages >= 2"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    post_ok(
        &app,
        vec![
            view("dev-n", Some("newbie"), "n1", json!({"item_id": "tent"})),
            view("dev-n", Some("newbie"), "n1", json!({"item_id": "stove"})),
        ],
    )
    .await;
    changes_until(&app, "m:newbie", "segment_entered", 1).await;
    post_ok(&app, vec![purchase("dev-n", "newbie", "o0", 20.0, 0.0)]).await;
    let exited = changes_until(&app, "m:newbie", "segment_exited", 1).await;
    assert_eq!(exited[0]["segment"], "window_shoppers", "{exited:?}");
    let (_, list) = app.get("/admin/segments?site=demo").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"big_spenders") && names.contains(&"top_value"),
        "{list}"
    );
    let top_value = app
        .until("/admin/segments/top_value/members?site=demo", |b| {
            b["total"].as_u64() >= Some(1)
        })
        .await;
    assert!(
        top_value["members"].to_string().contains("m:shifter"),
        "{top_value}"
    );
    let (status, _) = app
        .send(
            Method::DELETE,
            "/admin/segments/top_value?site=demo",
            &json!({}),
        )
        .await;
    assert_eq!(
        status, 409,
        "a configured segment is not deleted through the API"
    );

    // --- Site analytics.
    let from = (Utc::now() - Duration::days(365)).format("%Y-%m-%d");
    let a = app
        .until(&format!("/admin/analytics?site=demo&from={from}"), |a| {
            a["stages"]["lapsed"].as_u64() >= Some(1)
                && !a["rfm_grid"].as_object().unwrap().is_empty()
        })
        .await;
    for ch in ["search", "email", "campaign", "social", "direct"] {
        assert!(a["channels"][ch].as_u64() >= Some(1), "{ch}: {a}");
    }
    assert!(a["top_pages"].to_string().contains("/p/1"), "{a}");
    assert!(a["funnel"]["view"].as_u64() >= Some(10), "{a}");
    assert!(a["funnel"]["purchase"].as_u64() >= Some(30), "{a}");
    assert!(a["segments"]["big_spenders"].as_u64() >= Some(2), "{a}");
    let dwell: u64 = a["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["dwell"]["5-15s"].as_u64())
        .sum();
    assert_eq!(dwell, 1, "{a}");
    assert!(a["top_referrers"].to_string().contains("Google"), "{a}");

    if pictures {
        insights_page(&app).await;
    }
    app.stop().await;
}

/// The insights page draws the same analytics in a real browser, without script errors.
async fn insights_page(app: &App) {
    let shot = testkit::temp_dir("insights").join("insights.png");
    let report =
        support::browser_script("insights.mjs", &[&app.base, "demo", shot.to_str().unwrap()]).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(report["funnel_bars"].as_u64() >= Some(3), "{report}");
    assert!(report["channel_bars"].as_u64() >= Some(5), "{report}");
    assert_eq!(report["rfm_cells"], 25, "a 5×5 heat map: {report}");
    assert!(
        report["rfm_labels"].as_array().unwrap().len() > 10,
        "{report}"
    );
    assert!(report["stage_bars"].as_u64() >= Some(3), "{report}");
    assert!(report["page_rows"].as_u64() >= Some(1), "{report}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot was taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_and_redis() {
    scenario(testkit::real_config(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default() {
    let mut c = Config::default();
    c.collector.spool_dir = testkit::temp_dir("spool");
    scenario(c, false).await;
}
