//! The product catalog and the business rules' admin API end to end, on the real Redis (a
//! recommender alone) and on the embedded defaults: upsert, read and delete of items with a precise
//! 400 per bad element (and nothing written), the size limit, `tailor catalog import` of JSON lines
//! and CSV (line-numbered rejects, non-zero exit, idempotent re-import), rules added, listed,
//! refused field by field, protected when configured (409) and deleted; and a second recommender's
//! in-memory catalog and rules following those writes through its background refresh.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::App;
use tailor::app::Roles;
use tailor_core::config::Config;
use tailor_core::rules::RuleDef;
use tailor_infra::testkit;

fn item(id: &str, category: &str, price: f64) -> Value {
    json!({"item_id": id, "title": format!("Item {id}"), "url": format!("https://shop.example/p/{id}"),
        "image": format!("https://cdn.example/{id}.jpg"), "category": category, "brand": "Acme",
        "price": price, "currency": "EUR", "in_stock": true, "tags": ["summer"],
        "published_at": "2026-03-01T10:00:00Z", "margin": 0.3})
}

fn config(mut c: Config) -> Config {
    c.catalog.max_items_per_request = 5;
    c.rules = vec![serde_json::from_value::<RuleDef>(json!({
        "name": "bury-clearance", "kind": "bury", "tags": ["clearance"], "factor": 0.5}))
    .unwrap()];
    c
}

async fn put_items(app: &App, site: &str, items: Value) -> (u16, Value) {
    app.send(
        Method::PUT,
        &format!("/v1/catalog/items?site={site}"),
        &items,
    )
    .await
}

async fn delete(app: &App, path: &str) -> u16 {
    app.http
        .delete(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Runs `tailor catalog import` against the app; returns success and stdout.
async fn import(app: &App, file: &std::path::Path) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args([
            "catalog", "import", "--url", &app.base, "--site", "demo", "--batch", "2",
        ])
        .arg(file)
        .output()
        .await
        .expect("run tailor");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.success(), format!("{stdout}{stderr}"))
}

async fn catalog_api(app: &App) {
    let (status, body) = put_items(
        app,
        "demo",
        json!([
            item("tent", "outdoor/tents", 129.9),
            item("stove", "outdoor/cooking", 45.0)
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["upserted"], 2);
    let (status, got) = app.get("/v1/catalog/items/tent?site=demo").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["title"], "Item tent");
    assert_eq!(got["category"], "outdoor/tents");
    assert_eq!(got["price"], 129.9);
    assert_eq!(got["published_at"], "2026-03-01T10:00:00Z");

    // An upsert replaces the item.
    let mut sold_out = item("tent", "outdoor/tents", 99.0);
    sold_out["in_stock"] = json!(false);
    assert_eq!(put_items(app, "demo", json!([sold_out])).await.0, 200);
    let (_, got) = app.get("/v1/catalog/items/tent?site=demo").await;
    assert_eq!(got["in_stock"], false);
    assert_eq!(got["price"], 99.0);

    // One bad element refuses the whole request, each bad element named by index and field.
    let mut no_price = item("lamp", "outdoor/lights", 1.0);
    no_price.as_object_mut().unwrap().remove("price");
    let mut bad_currency = item("mat", "outdoor", 1.0);
    bad_currency["currency"] = json!("euro");
    let (status, body) = put_items(
        app,
        "demo",
        json!([
            item("chair", "outdoor", 20.0),
            no_price,
            bad_currency,
            item("chair", "outdoor", 21.0)
        ]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_items");
    let details = body["error"]["details"].as_array().unwrap();
    let summary: Vec<(u64, &str)> = details
        .iter()
        .map(|d| (d["index"].as_u64().unwrap(), d["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [(1, "price"), (2, "currency"), (3, "item_id")],
        "{body}"
    );
    assert_eq!(details[0]["reason"], "is required");
    assert!(details[2]["reason"]
        .as_str()
        .unwrap()
        .contains("given twice"));
    assert_eq!(
        app.get("/v1/catalog/items/chair?site=demo").await.0,
        404,
        "nothing written"
    );

    let (status, body) = put_items(app, "demo", json!({"item_id": "x"})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("body")),
        "{body}"
    );
    let (status, body) = put_items(app, "nowhere", json!([item("x", "a", 1.0)])).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("site")),
        "{body}"
    );
    let six: Vec<Value> = (0..6).map(|i| item(&format!("i{i}"), "a", 1.0)).collect();
    let (status, body) = put_items(app, "demo", json!(six)).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = app.get("/v1/catalog/items/a%20b?site=demo").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("item_id")),
        "{body}"
    );

    assert_eq!(delete(app, "/v1/catalog/items/stove?site=demo").await, 204);
    assert_eq!(app.get("/v1/catalog/items/stove?site=demo").await.0, 404);
    assert_eq!(delete(app, "/v1/catalog/items/stove?site=demo").await, 404);
}

async fn catalog_import(app: &App) {
    let dir = testkit::temp_dir("catalog");
    let jsonl = dir.join("items.jsonl");
    let mut bad = item("broken", "outdoor", 1.0);
    bad["price"] = json!(-3);
    let lines = [
        item("j1", "home/kitchen", 10.0).to_string(),
        item("j2", "home/kitchen", 11.0).to_string(),
        String::new(),
        bad.to_string(),
        "not json".to_string(),
        item("j3", "home", 12.0).to_string(),
    ];
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    for _ in 0..2 {
        let (ok, out) = import(app, &jsonl).await;
        assert!(!ok, "rejects make the import fail: {out}");
        assert!(out.contains("3 items loaded, 2 rejected"), "{out}");
        assert!(
            out.contains("line 4: price: must be a number from 0 to 1e9"),
            "{out}"
        );
        assert!(out.contains("line 5: $: not JSON"), "{out}");
        let (status, got) = app.get("/v1/catalog/items/j3?site=demo").await;
        assert_eq!(
            (status, got["category"].as_str()),
            (200, Some("home")),
            "{got}"
        );
    }
    assert_eq!(app.get("/v1/catalog/items/broken?site=demo").await.0, 404);

    let csv = dir.join("items.csv");
    std::fs::write(
        &csv,
        "item_id,title,url,price,currency,category,in_stock,tags\n\
         c1,\"Mug, enamel\",/p/c1,9.5,EUR,home/kitchen,yes,repeatable|gift\n\
         c2,Kettle,/p/c2,30,EUR,home/kitchen,no,\n",
    )
    .unwrap();
    let (ok, out) = import(app, &csv).await;
    assert!(ok, "{out}");
    assert!(out.contains("2 items loaded, 0 rejected"), "{out}");
    let (_, got) = app.get("/v1/catalog/items/c1?site=demo").await;
    assert_eq!(got["title"], "Mug, enamel");
    assert_eq!(got["tags"], json!(["repeatable", "gift"]));
    let (_, got) = app.get("/v1/catalog/items/c2?site=demo").await;
    assert_eq!(got["in_stock"], false);
}

async fn rules_api(app: &App) {
    let rule = json!({"kind": "exclude", "categories": ["outdoor/tents"], "slots": ["home"],
        "segment": "orders >= 1", "description": "no tents for buyers on the home page"});
    let (status, body) = app
        .send(Method::PUT, "/admin/rules/no-tents?site=demo", &rule)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["name"].as_str(), body["site"].as_str()),
        (Some("no-tents"), Some("demo"))
    );
    let (status, list) = app.get("/admin/rules?site=demo").await;
    assert_eq!(status, 200, "{list}");
    let listed: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("bury-clearance", "config"), ("no-tents", "api")]);
    assert_eq!(list[1]["categories"], json!(["outdoor/tents"]));

    let refused = [
        (
            json!({"kind": "boost", "tags": ["x"], "factor": 0.5}),
            "factor",
        ),
        (json!({"kind": "shove", "tags": ["x"]}), "kind"),
        (json!({"kind": "exclude", "colour": "red"}), "colour"),
        (json!({"kind": "exclude"}), "categories"),
        (
            json!({"kind": "pin", "pins": [{"item": "a", "position": 0}]}),
            "pins[0].position",
        ),
        (
            json!({"kind": "exclude", "tags": ["x"], "segment": "orders > \"many\""}),
            "segment",
        ),
        (
            json!({"kind": "exclude", "tags": ["x"], "price_min": "cheap"}),
            "price_min",
        ),
    ];
    for (body, field) in refused {
        let (status, answer) = app
            .send(Method::PUT, "/admin/rules/bad?site=demo", &body)
            .await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} → {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{answer}"
        );
    }
    let (status, answer) = app
        .send(
            Method::PUT,
            "/admin/rules/bad?site=demo",
            &json!({"kind": "exclude", "tags": ["x"], "name": "other"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (400, Some("name")),
        "{answer}"
    );
    let (status, answer) = app
        .send(
            Method::PUT,
            "/admin/rules/bad?site=demo",
            &json!({"kind": "exclude", "tags": ["x"], "segment": "orders >"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["message"],
        "segment: column 9: the rule ends too early"
    );

    let (status, answer) = app
        .send(
            Method::PUT,
            "/admin/rules/bury-clearance?site=demo",
            &json!({"kind": "bury", "tags": ["x"], "factor": 0.1}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(
        delete(app, "/admin/rules/bury-clearance?site=demo").await,
        409
    );
    assert_eq!(delete(app, "/admin/rules/no-tents?site=demo").await, 204);
    assert_eq!(delete(app, "/admin/rules/no-tents?site=demo").await, 404);
    let (_, list) = app.get("/admin/rules?site=demo").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

async fn scenario(app: App) {
    catalog_api(&app).await;
    catalog_import(&app).await;
    rules_api(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis() {
    let mut c = config(Config::default());
    c.redis.url = Some(testkit::redis_url());
    c.redis.namespace = testkit::unique("ns");
    scenario(support::start_roles(c, Roles::RECOMMENDER).await).await;
}

/// Polls `done` until it holds, or fails after [`support::CONVERGE_WITHIN`].
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A second recommender on the same Redis learns, through its background refresh alone, every
/// catalog and rule change made through the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_recommenders_caches_follow_the_store() {
    let mut c = config(Config::default());
    c.redis.url = Some(testkit::redis_url());
    c.redis.namespace = testkit::unique("ns");
    c.catalog.refresh_ms = 100;
    let app = support::start_roles(c.clone(), Roles::RECOMMENDER).await;
    let store = tailor_infra::store::redis::RedisStore::connect(&testkit::redis_url())
        .await
        .unwrap();
    let other = tailor_recommender::Recommender::new(
        std::sync::Arc::new(store),
        tailor_core::keys::KeySpace::new(c.redis.namespace.clone()),
        std::sync::Arc::new(c),
    );
    let shutdown = tailor_infra::Shutdown::new();
    let refresher = tokio::spawn(tailor_recommender::refresh::run(
        other.clone(),
        shutdown.clone(),
    ));
    let site = tailor_core::SiteId::parse("demo").unwrap();
    let rule_names = || -> Vec<String> {
        other
            .rules
            .for_site(&site)
            .iter()
            .map(|r| r.name.clone())
            .collect()
    };
    assert_eq!(
        rule_names(),
        ["bury-clearance"],
        "configured rules from the start"
    );

    assert_eq!(
        put_items(&app, "demo", json!([item("tent", "outdoor/tents", 10.0)]))
            .await
            .0,
        200
    );
    until("the item's arrival", || {
        other.catalog.get(&site, "tent").is_some()
    })
    .await;
    assert_eq!(other.catalog.site(&site).in_category("outdoor").count(), 1);
    let mut sold_out = item("tent", "outdoor/tents", 10.0);
    sold_out["in_stock"] = json!(false);
    assert_eq!(put_items(&app, "demo", json!([sold_out])).await.0, 200);
    until("the stock change", || {
        other
            .catalog
            .get(&site, "tent")
            .is_some_and(|i| !i.in_stock)
    })
    .await;
    assert_eq!(delete(&app, "/v1/catalog/items/tent?site=demo").await, 204);
    until("the deletion", || {
        other.catalog.get(&site, "tent").is_none()
    })
    .await;

    let rule = json!({"kind": "pin", "pins": [{"item": "tent", "position": 1}]});
    assert_eq!(
        app.send(Method::PUT, "/admin/rules/pin-tent?site=demo", &rule)
            .await
            .0,
        200
    );
    until("the new rule", || {
        rule_names() == ["bury-clearance", "pin-tent"]
    })
    .await;
    assert_eq!(delete(&app, "/admin/rules/pin-tent?site=demo").await, 204);
    until("the rule's removal", || rule_names() == ["bury-clearance"]).await;

    shutdown.cancel();
    refresher.await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default() {
    let mut c = config(Config::default());
    c.collector.spool_dir = testkit::temp_dir("spool");
    scenario(support::start(c).await).await;
}
