//! Erasure and rebuild on the real broker and Redis: `tailor erase` forgets a member with both devices
//! everywhere in Redis and leaves tombstones; `tailor replay` (the binary, as an operator runs it)
//! rebuilds every other profile identically from the topic and does not bring the erased member back.

mod support;

use redis::AsyncCommands;
use serde_json::{json, Value};
use tailor_infra::testkit;

fn views(anon: &str, member: Option<&str>, items: &[&str]) -> Vec<Value> {
    items
        .iter()
        .map(|i| {
            let mut e = json!({"type": "page_view", "site_id": "demo", "anonymous_id": anon,
                "session_id": format!("{anon}-s"), "item_id": i, "category": "camping"});
            if let Some(m) = member {
                e["member_id"] = json!(m);
            }
            e
        })
        .collect()
}

/// The parts of a profile a rebuild must reproduce exactly (interest scores decay with the time of
/// reading, so they are compared to three decimals).
fn essence(p: &Value) -> Value {
    let interests: Vec<(String, i64)> = p["top_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let score = (s["score"].as_f64().unwrap() * 1000.0).round() as i64;
            (s["id"].as_str().unwrap().to_string(), score)
        })
        .collect();
    json!({
        "interests": interests,
        "event_counts": p["event_counts"], "purchases": p["purchases"], "recent_items": p["recent_items"],
        "merged": p["merged"], "sessions": p["sessions"]["count"],
        "lifecycle": p["lifecycle"]["stage"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_forgets_everywhere_and_replay_rebuilds_everything_else() {
    let config = testkit::real_config();
    let dir = testkit::temp_dir("replay");
    let config_file = dir.join("tailor.toml");
    std::fs::write(&config_file, toml::to_string(&config).unwrap()).unwrap();
    let ns = config.redis.namespace.clone();
    let app = support::start(config.clone()).await;

    let mut events = views("dev-k", None, &["tent", "stove"]);
    events.extend(views("dev-k", Some("keep"), &["lamp", "tent"]));
    events.push(json!({"type": "purchase", "site_id": "demo", "anonymous_id": "dev-k", "member_id": "keep",
        "order": {"id": "k1", "currency": "EUR", "lines": [{"item_id": "tent", "price": 120.0, "quantity": 1}]}}));
    events.extend(views("dev-g1", None, &["mat", "tent"]));
    events.extend(views("dev-g1", Some("gone"), &["stove"]));
    events.extend(views("dev-g2", Some("gone"), &["lamp"]));
    events.push(json!({"type": "purchase", "site_id": "demo", "anonymous_id": "dev-g2", "member_id": "gone",
        "order": {"id": "g1", "currency": "EUR", "lines": [{"item_id": "mat", "price": 30.0, "quantity": 1}]}}));
    let total = events.len();
    let (status, body) = app.post(&Value::Array(events)).await;
    assert_eq!(status, 202, "{body}");
    let keep = app
        .profile_until("keep", |p| {
            p["purchases"]["orders"] == 1 && p["event_counts"]["page_view"] == 4
        })
        .await;
    app.profile_until("gone", |p| {
        p["purchases"]["orders"] == 1 && p["event_counts"]["page_view"] == 4
    })
    .await;

    // Erase: the member, both devices; every key in their slots but the tombstones; the indexes.
    let report = support::tailor_json(&[
        "erase", "--url", &app.base, "--site", "demo", "--member", "gone",
    ]);
    let subjects = support::strings(&report["subjects"]);
    assert_eq!(subjects, ["a:dev-g1", "a:dev-g2", "m:gone"], "{report}");
    assert!(report["keys_deleted"].as_u64() >= Some(4), "{report}");
    let (status, _) = app.get("/v1/profiles/gone?site=demo").await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/v1/profiles/dev-g1?site=demo&as=anonymous").await;
    assert_eq!(status, 404);
    let mut redis = redis::Client::open(testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for s in &subjects {
        let left: Vec<String> = redis.keys(format!("{ns}:{{demo:{s}}}:*")).await.unwrap();
        assert_eq!(left, [format!("{ns}:{{demo:{s}}}:erased")], "{s}");
    }
    let in_index: Option<f64> = redis
        .zscore(format!("{ns}:{{demo}}:customers"), "m:gone")
        .await
        .unwrap();
    assert_eq!(in_index, None);
    let (_, before) = app.get("/v1/recommendations?site=demo&member=keep").await;
    app.stop().await;

    // Replay: everything else comes back the same; the erased member does not.
    let summary =
        support::tailor_json(&["replay", "--yes", "--config", config_file.to_str().unwrap()]);
    assert_eq!(summary["events"], total, "{summary}");
    assert_eq!(
        summary["outcomes"]["erased"], 5,
        "gone: two anonymous views, two member views, one order: {summary}"
    );
    assert_eq!(summary["outcomes"]["applied"], total - 5, "{summary}");
    let app = support::start(config).await;
    let (status, rebuilt) = app.get("/v1/profiles/keep?site=demo").await;
    assert_eq!(status, 200, "{rebuilt}");
    assert_eq!(essence(&rebuilt), essence(&keep));
    let (status, _) = app.get("/v1/profiles/gone?site=demo").await;
    assert_eq!(status, 404, "replay must not rebuild an erased member");
    // The shared models are rebuilt without the erased member's contribution: "mat" was only ever
    // co-visited with "tent" by them.
    assert!(before["items"].to_string().contains("\"mat\""), "{before}");
    let (status, after) = app.get("/v1/recommendations?site=demo&member=keep").await;
    assert_eq!(status, 200);
    assert!(!after["items"].to_string().contains("\"mat\""), "{after}");
    app.stop().await;
}
