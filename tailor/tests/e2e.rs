//! End to end, through the public HTTP APIs: events posted to the collector flow through the bus and
//! the processor into the store, and the recommender then reflects them. Run on both backend sets:
//! the embedded default, and a real Kafka-protocol broker plus a real redis-server.

mod support;

use serde_json::{json, Value};
use support::{start, App};
use tailor_core::config::Config;
use tailor_infra::testkit;

fn view(event_id: &str, anon: &str, member: Option<&str>, session: &str, item: &str) -> Value {
    let mut e = json!({"type": "page_view", "event_id": event_id, "site_id": "demo", "anonymous_id": anon,
        "session_id": session, "item_id": item, "category": "gear", "url": format!("https://shop.example/p/{item}")});
    if let Some(m) = member {
        e["member_id"] = json!(m);
    }
    e
}

fn ids(recs: &Value) -> Vec<String> {
    recs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect()
}

/// Other visitors' sessions make b the strongest co-visit and follower of a, then c and d. Alice views
/// a and buys c: on a's product page she must be offered b first, then d, never c (bought) nor a (the
/// product slot never offers the page's own item).
async fn the_loop(app: &App, tag: &str) {
    let e = |n: &str| format!("{tag}-{n}");
    let others = json!([
        view(&e("1"), "v1", None, "s1", "a"),
        view(&e("2"), "v1", None, "s1", "b"),
        view(&e("3"), "v1", None, "s1", "c"),
        view(&e("4"), "v2", None, "s2", "a"),
        view(&e("5"), "v2", None, "s2", "b"),
        view(&e("6"), "v3", None, "s3", "a"),
        view(&e("7"), "v3", None, "s3", "d"),
    ]);
    let (status, body) = app.post(&others).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 7);

    let alice = json!([
        view(&e("8"), "alice-phone", Some("alice"), "s4", "a"),
        {"type": "purchase", "event_id": e("9"), "site_id": "demo", "anonymous_id": "alice-phone", "member_id": "alice",
         "session_id": "s4", "order": {"id": e("order"), "currency": "EUR",
            "lines": [{"item_id": "c", "category": "gear", "price": 12.5, "quantity": 2}]}},
        {"type": "page_ping", "event_id": e("10"), "site_id": "demo", "anonymous_id": "alice-phone", "member_id": "alice", "dwell_ms": 4000},
    ]);
    let (status, body) = app.post(&alice).await;
    assert_eq!(status, 202, "{body}");

    let recs = app
        .until(
            "/v1/recommendations?site=demo&member=alice&item=a&slot=product",
            |r| {
                // The other visitors' sessions land on other partitions, so wait for all of them.
                ids(r) == ["b", "d"]
            },
        )
        .await;
    assert_eq!(recs["strategy"], "blend");
    assert_eq!(
        recs["items"][0]["reason"], "shoppers who viewed a in a visit like yours also viewed this",
        "{recs}"
    );

    let profile = app
        .until("/v1/profiles/alice?site=demo", |p| {
            p["event_counts"]["page_ping"] == 1
        })
        .await;
    assert_eq!(profile["event_counts"]["page_view"], 1, "{profile}");
    assert_eq!(profile["purchases"]["orders"], 1);
    assert_eq!(profile["purchases"]["units"], 2);
    assert_eq!(profile["purchases"]["revenue"]["EUR"], 25.0);
    assert_eq!(profile["dwell_ms"], 4000);
    assert_eq!(profile["recent_items"], json!(["a"]));

    // A tracker retry of the same events (same ids) is acknowledged but counted once.
    let (status, _) = app.post(&alice).await;
    assert_eq!(status, 202);
    let (status, _) = app
        .post(&json!(view(
            &e("11"),
            "alice-phone",
            Some("alice"),
            "s4",
            "d"
        )))
        .await;
    assert_eq!(status, 202);
    // Events are applied in order per device, so once e11 shows, the retries before it were processed.
    let profile = app
        .until("/v1/profiles/alice?site=demo", |p| {
            p["event_counts"]["page_view"] == 2
        })
        .await;
    assert_eq!(
        profile["purchases"]["orders"], 1,
        "retried purchase counted twice: {profile}"
    );
    assert_eq!(profile["dwell_ms"], 4000);

    // An unknown visitor gets the shop's popular items: c (1 view + purchase) leads. The shared
    // lists an answer reads are kept for a moment (`recommender.shared_list_cache_ms`), so the
    // answer settles on the latest counts within it.
    let recs = app
        .until(
            "/v1/recommendations?site=demo&anonymous=stranger&limit=2",
            |r| ids(r) == ["c", "a"],
        )
        .await;
    assert_eq!(recs["strategy"], "blend");
    assert_eq!(recs["items"][0]["reason"], "popular on this site");
}

async fn the_edge(app: &App) {
    let (status, body) = app
        .post(&json!({"type": "page_view", "site_id": "demo"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "anonymous_id", "{body}");
    let (status, body) = app
        .post(
            &json!({"type": "purchase", "site_id": "demo", "anonymous_id": "x",
        "order": {"id": "o", "currency": "EUR", "lines": [{"item_id": "i", "price": "free"}]}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "order.lines[0].price", "{body}");
    let (status, body) = app.post_raw(b"{not json".to_vec()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed"))
    );
    // The server answers 413 without reading the rest of the body and closes that connection, so the
    // oversized request goes on a connection of its own, never reused by the pool.
    let lone = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = lone
        .post(format!("{}/v1/events", app.base))
        .body(vec![b' '; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    let (status, body) = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let (status, body) = app.get("/v1/recommendations?site=nope").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("site"))
    );
    let (status, _) = app.get("/v1/profiles/nobody?site=demo").await;
    assert_eq!(status, 404);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let metrics = app.metrics().await;
    for name in [
        "tailor_collector_events_total",
        "tailor_processor_events_total",
        "tailor_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "metric {name} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default() {
    let app = start(Config::default()).await;
    the_loop(&app, "emb").await;
    the_edge(&app).await;
    app.stop().await;
}

/// The same loop with the profiles in a three-node Redis Cluster (`redis.cluster`), which scripts
/// and pipelines that crossed hash slots would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_and_redis_cluster() {
    let mut config = testkit::real_config();
    config.redis.url = Some(testkit::redis_cluster_urls());
    config.redis.cluster = true;
    let app = start(config).await;
    the_loop(&app, "cluster").await;
    the_edge(&app).await;
    // Erasure scans every node and deletes in the member's and the site's slots.
    let erased: Value = app
        .http
        .post(format!("{}/admin/erase?site=demo&member=alice", app.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        erased["keys_deleted"].as_u64().is_some_and(|n| n > 0),
        "{erased}"
    );
    let (status, _) = app.get("/v1/profiles/alice?site=demo").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_and_redis() {
    let config = testkit::real_config();
    let app = start(config.clone()).await;
    the_loop(&app, "real").await;
    the_edge(&app).await;
    request_ids_travel_with_the_events(&app, &config).await;
    app.stop().await;

    // A new consumer group replays the whole topic into the same store (a rebuilt processor): the event
    // markers make every replayed event a no-op, so the profile is unchanged.
    let mut replay = config.clone();
    replay.kafka.group = testkit::unique("replay");
    let app = start(replay).await;
    let before = app.get("/v1/profiles/alice?site=demo").await.1;
    // A fresh event from the same device lands after all of alice's replayed events in her partition,
    // so once it shows, the replay of everything before it is done.
    let (status, _) = app
        .post(&view("real-12", "alice-phone", Some("alice"), "s5", "b"))
        .await;
    assert_eq!(status, 202);
    let after = app
        .until("/v1/profiles/alice?site=demo", |p| {
            p["event_counts"]["page_view"] == 3
        })
        .await;
    assert_eq!(
        after["event_counts"]["purchase"], before["event_counts"]["purchase"],
        "{after}"
    );
    assert_eq!(
        after["event_counts"]["page_ping"],
        before["event_counts"]["page_ping"]
    );
    assert_eq!(after["purchases"], before["purchases"]);
    assert_eq!(after["dwell_ms"], before["dwell_ms"]);
    app.stop().await;
}

/// A request's id (`X-Request-Id`, or one made for it) is echoed, and its events carry it on the
/// topic (a record header), where the processor logs it beside each event's outcome.
async fn request_ids_travel_with_the_events(app: &App, config: &Config) {
    use tailor_infra::bus::kafka::{KafkaSettings, KafkaTopicReader};
    use tailor_infra::bus::TopicReader;
    let send = |id: Option<&str>, event: &str| {
        let mut r = app
            .http
            .post(format!("{}/v1/events", app.base))
            .json(&json!(
            {"type": "page_view", "site_id": "demo", "anonymous_id": "tracer", "event_id": event}));
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        r.send()
    };
    let given = send(Some("trace-42"), "traced-1").await.unwrap();
    assert_eq!(given.status(), 202);
    assert_eq!(given.headers()["x-request-id"], "trace-42");
    let made = send(None, "traced-2").await.unwrap();
    let made_id = made.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(made_id.len(), 36, "a UUID: {made_id}");
    let bad = send(Some("no spaces or {braces}"), "traced-3")
        .await
        .unwrap();
    assert_ne!(
        bad.headers()["x-request-id"],
        "no spaces or {braces}",
        "replaced"
    );
    let reader = KafkaTopicReader::new(&KafkaSettings {
        brokers: config.kafka.brokers.clone().unwrap(),
        topic: config.kafka.topic.clone(),
        delivery_timeout: std::time::Duration::from_secs(5),
        fetch_wait: tailor_infra::bus::kafka::FETCH_WAIT,
    });
    let records = reader.read_all(100_000).await.unwrap();
    let id_of = |event: &str| {
        records
            .iter()
            .find(|m| String::from_utf8_lossy(&m.payload).contains(&format!("\"{event}\"")))
            .unwrap_or_else(|| panic!("{event} is on the topic"))
            .request_id
            .clone()
    };
    assert_eq!(id_of("traced-1").as_deref(), Some("trace-42"));
    assert_eq!(id_of("traced-2"), Some(made_id));
}
