//! The ranker end to end, through the public APIs, on the real Kafka broker and Redis and on the
//! embedded defaults: a member's category interest (mined from their page views) changes their
//! answer against a stranger's; an item going out of stock in the catalog leaves every answer; a
//! pinned item takes its position; answers carry the catalog's fields and titles.

mod support;

use serde_json::{json, Value};
use support::{start, App};
use tailor_core::config::Config;
use tailor_infra::testkit;

fn ids(recs: &Value) -> Vec<String> {
    recs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect()
}

fn view(
    tag: &str,
    n: usize,
    anon: &str,
    member: Option<&str>,
    item: &str,
    category: &str,
) -> Value {
    let mut e = json!({"type": "page_view", "event_id": format!("{tag}-{n}"), "site_id": "demo",
        "anonymous_id": anon, "session_id": format!("{anon}-s"), "item_id": item, "category": category});
    if let Some(m) = member {
        e["member_id"] = json!(m);
        // Two hours ago: bob's visit is over, so what he gets comes from his profile, not a session.
        e["timestamp"] = json!((chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339());
    }
    e
}

fn product(id: &str, title: &str, category: &str, in_stock: bool) -> Value {
    json!({"item_id": id, "title": title, "url": format!("/p/{id}"), "category": category,
        "brand": "Acme", "price": 10.0, "currency": "EUR", "in_stock": in_stock})
}

async fn ranking(app: &App, tag: &str) {
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            "/v1/catalog/items?site=demo",
            &json!([
                product("t1", "Dome Tent 1P", "outdoor/tents", true),
                product("t2", "Dome Tent 2P", "outdoor/tents", true),
                product("s1", "Camp Stove", "outdoor/cooking", true),
                product("s2", "Kettle", "outdoor/cooking", true),
                product("j1", "Rain Jacket", "apparel/jackets", true),
            ]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Strangers make the stove the site's most popular item; one views the 2-person tent.
    let mut events = Vec::new();
    for (n, (anon, item, cat)) in [
        ("v1", "s1", "outdoor/cooking"),
        ("v2", "s1", "outdoor/cooking"),
        ("v3", "s1", "outdoor/cooking"),
        ("v4", "s1", "outdoor/cooking"),
        ("v5", "s2", "outdoor/cooking"),
        ("v6", "t2", "outdoor/tents"),
        ("v7", "j1", "apparel/jackets"),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(view(tag, n, anon, None, item, cat));
    }
    // Bob looked at the 1-person tent, twice.
    events.push(view(
        tag,
        10,
        "bob-phone",
        Some("bob"),
        "t1",
        "outdoor/tents",
    ));
    events.push(view(
        tag,
        11,
        "bob-phone",
        Some("bob"),
        "t1",
        "outdoor/tents",
    ));
    let (status, body) = app.post(&json!(events)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 9, "{body}");

    let stranger = app
        .until("/v1/recommendations?site=demo&anonymous=nobody", |r| {
            ids(r).len() == 5 && ids(r)[0] == "s1"
        })
        .await;
    assert_eq!(stranger["items"][0]["reason"], "popular on this site");
    assert_eq!(
        stranger["items"][0]["product"]["title"], "Camp Stove",
        "{stranger}"
    );

    // Bob's interest in tents puts the 2-person tent above the site's favourite.
    let bob = app
        .until("/v1/recommendations?site=demo&member=bob", |r| {
            let ids = ids(r);
            let at = |i: &str| ids.iter().position(|x| x == i);
            matches!((at("t2"), at("s1")), (Some(t), Some(s)) if t < s)
        })
        .await;
    let t2 = bob["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item_id"] == "t2")
        .unwrap();
    assert_eq!(
        t2["reason"], "popular in outdoor/tents, one of your interests",
        "{bob}"
    );
    assert_eq!(t2["product"]["url"], "/p/t2");

    // Out of stock: gone from every answer at once (this recommender's catalog copy is updated by
    // its own write).
    let (status, _) = app
        .send(
            reqwest::Method::PUT,
            "/v1/catalog/items?site=demo",
            &json!([product("t2", "Dome Tent 2P", "outdoor/tents", false)]),
        )
        .await;
    assert_eq!(status, 200);
    for who in ["member=bob", "anonymous=nobody"] {
        let (_, recs) = app
            .get(&format!("/v1/recommendations?site=demo&{who}"))
            .await;
        assert!(!ids(&recs).contains(&"t2".to_string()), "{recs}");
    }

    // A pinned jacket takes the first position of the home slot, and only there.
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            "/admin/rules/jacket-first?site=demo",
            &json!({"kind": "pin", "slots": ["home"], "pins": [{"item": "j1", "position": 1}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let home = app
        .until("/v1/recommendations?site=demo&member=bob&slot=home", |r| {
            ids(r).first().map(String::as_str) == Some("j1")
        })
        .await;
    assert_eq!(home["items"][0]["reason"], "recommended by the shop");
    let (_, other) = app
        .get("/v1/recommendations?site=demo&member=bob&slot=cart")
        .await;
    assert_ne!(
        ids(&other).first().map(String::as_str),
        Some("j1"),
        "{other}"
    );

    learned_model(app).await;
}

/// A re-ranking model loaded through the admin API re-orders the answers (strategy `learned`);
/// a model this build cannot use is refused with a 400 that says why; deleting it restores the
/// blend.
async fn learned_model(app: &App) {
    use tailor_recommender::rank::boost::{Booster, Tree};
    use tailor_recommender::rank::rerank;
    let features = rerank::names();
    let popularity = features.iter().position(|f| f == "popularity").unwrap() as i32;
    // One stump: an item seen at most once (popularity ln 2) outranks the popular ones (ln 5).
    let model = Booster {
        features: features.clone(),
        trees: vec![Tree {
            feature: vec![popularity, -1, -1],
            value: vec![1.0, 1.0, -1.0],
            left: vec![1, 0, 0],
            right: vec![2, 0, 0],
        }],
    };
    let (_, before) = app
        .get("/v1/recommendations?site=demo&anonymous=nobody")
        .await;
    assert_eq!(before["strategy"], "blend", "{before}");
    let put = |body: Value| async move {
        app.send(reqwest::Method::PUT, "/admin/ranker?site=demo", &body)
            .await
    };
    let (status, body) = put(json!({"features": ["x"], "trees": []})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("this build computes"), "{body}");
    let (status, body) = put(json!({"features": features, "trees": [{"feature": [0]}]})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("trees[0]"), "{body}");
    let (status, body) = put(serde_json::to_value(&model).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["trees"], 1);
    let (_, info) = app.get("/admin/ranker?site=demo").await;
    assert_eq!(info["rev"], body["rev"], "{info}");

    let (_, learned) = app
        .get("/v1/recommendations?site=demo&anonymous=nobody")
        .await;
    assert_eq!(learned["strategy"], "learned", "{learned}");
    assert_ne!(ids(&learned)[0], "s1", "{learned}");
    let sorted = |v: &Value| {
        let mut ids = ids(v);
        ids.sort();
        ids
    };
    assert_eq!(
        sorted(&learned),
        sorted(&before),
        "the same items, re-ordered"
    );

    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            "/admin/ranker?site=demo",
            &json!({}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/admin/ranker?site=demo").await;
    assert_eq!(status, 404);
    let (_, blend) = app
        .get("/v1/recommendations?site=demo&anonymous=nobody")
        .await;
    assert_eq!(blend["strategy"], "blend", "{blend}");
    assert_eq!(ids(&blend), ids(&before), "{blend}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default() {
    let app = start(Config::default()).await;
    ranking(&app, "emb").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_and_redis() {
    let config = testkit::real_config();
    let app = start(config.clone()).await;
    ranking(&app, "real").await;

    // Erasing bob takes his device's session out of the session index (it names the device).
    use redis::AsyncCommands;
    let mut redis = redis::Client::open(testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ns = &config.redis.namespace;
    let session = format!("{ns}:{{demo}}:si:bob-phone/bob-phone-s");
    let index = format!("{ns}:{{demo}}:isess:t1");
    let exists: bool = redis.exists(&session).await.unwrap();
    assert!(exists, "bob's session is indexed before the erasure");
    // A session of the device as an earlier version stored it (a sorted set), erased too.
    let earlier = format!("{ns}:{{demo}}:sess:bob-phone/earlier");
    let _: () = redis.zadd(&earlier, "t9", 1.0).await.unwrap();
    let earlier_index = format!("{ns}:{{demo}}:isess:t9");
    let _: () = redis
        .zadd(&earlier_index, "bob-phone/earlier", 1.0)
        .await
        .unwrap();
    let r = app
        .http
        .post(format!("{}/admin/erase?site=demo&member=bob", app.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let exists: bool = redis.exists(&session).await.unwrap();
    assert!(!exists, "bob's session items are gone");
    let score: Option<f64> = redis.zscore(&index, "bob-phone/bob-phone-s").await.unwrap();
    assert_eq!(score, None, "bob's session left the item's session index");
    let exists: bool = redis.exists(&earlier).await.unwrap();
    assert!(!exists, "the earlier form's list is gone");
    let score: Option<f64> = redis
        .zscore(&earlier_index, "bob-phone/earlier")
        .await
        .unwrap();
    assert_eq!(score, None, "and its entry in the index");
    app.stop().await;
}
