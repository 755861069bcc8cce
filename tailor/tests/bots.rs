//! Whose user agent decides that an event is a bot's (docs/events.md, "Bots"): a shop's back end
//! posting with curl feeds the shared models (popularity, co-visitation), while a crawler running the
//! tag (a CORS request with an `Origin`) or loading the Snowplow pixel does not. Through the public
//! HTTP API on the embedded default.

mod support;

use serde_json::{json, Value};
use support::{start, App};
use tailor_core::config::Config;

const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn view(anon: &str, session: &str, item: &str) -> Value {
    json!({"type": "page_view", "site_id": "demo", "anonymous_id": anon, "session_id": session,
        "item_id": item})
}

fn items(recs: &Value) -> Vec<&str> {
    recs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect()
}

/// Bot events the processor has counted on the demo site, over every day.
async fn bot_events(app: &App) -> u64 {
    let (status, a) = app.get("/admin/analytics?site=demo").await;
    assert_eq!(status, 200, "{a}");
    a["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["bot_events"].as_u64().unwrap())
        .sum()
}

async fn post_as(app: &App, ua: &str, origin: Option<&str>, body: &Value) {
    let client = reqwest::Client::builder().user_agent(ua).build().unwrap();
    let mut req = client.post(format!("{}/v1/events", app.base)).json(body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_events_count_and_crawlers_through_the_tag_do_not() {
    let app = start(Config::default()).await;

    // A crawler running the tag: its own requests, with an Origin, carry its user agent.
    let crawled = json!([
        view("crawler-1", "cs1", "bot-x"),
        view("crawler-1", "cs1", "bot-y"),
        view("crawler-2", "cs2", "bot-x"),
        view("crawler-2", "cs2", "bot-y"),
    ]);
    post_as(&app, GOOGLEBOT, Some("https://shop.example"), &crawled).await;
    // And the Snowplow pixel, which only browsers (and crawlers) load.
    let r = reqwest::Client::builder()
        .user_agent(GOOGLEBOT)
        .build()
        .unwrap()
        .get(format!(
            "{}/i?e=pv&aid=demo&duid=crawler-3&eid=pixel-1&url=https%3A%2F%2Fshop.example%2Fp%2Fbot-x",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A back end relaying a crawler's visit says so in the event.
    let relayed = json!({"type": "page_view", "site_id": "demo", "anonymous_id": "crawler-4",
        "session_id": "cs4", "item_id": "bot-x", "context": {"user_agent": GOOGLEBOT}});
    post_as(&app, "curl/8.5.0", None, &relayed).await;
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    while bot_events(&app).await < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the crawler's events were not counted as bots"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // A shop's back end reporting its shoppers' views with curl, python-requests, Go, Java.
    for (i, ua) in [
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Java/17.0.2",
    ]
    .iter()
    .enumerate()
    {
        let (anon, session) = (format!("shopper-{i}"), format!("s{i}"));
        let both = json!([
            view(&anon, &session, "tent-2p"),
            view(&anon, &session, "stove-1")
        ]);
        post_as(&app, ua, None, &both).await;
    }
    post_as(&app, "curl/8.5.0", None, &view("alice", "s9", "tent-2p")).await;
    // Alice, on the tent's page: the shoppers' sessions (not popularity) offer her the stove.
    let recs = app
        .until(
            "/v1/recommendations?site=demo&anonymous=alice&item=tent-2p&slot=product",
            |r| items(r) == ["stove-1"],
        )
        .await;
    assert_eq!(recs["strategy"], "blend", "{recs}");
    assert_ne!(recs["items"][0]["source"], "popular", "{recs}");
    let popular = app
        .until("/v1/recommendations?site=demo&limit=10", |r| {
            items(r).len() == 2
        })
        .await;
    let mut popular = items(&popular);
    popular.sort();
    assert_eq!(
        popular,
        ["stove-1", "tent-2p"],
        "the crawler's items are not popular"
    );
    let (_, beside) = app
        .get("/v1/recommendations?site=demo&item=bot-x&limit=10")
        .await;
    assert!(
        !items(&beside).contains(&"bot-y"),
        "no co-visitation from a crawler: {beside}"
    );
    assert_eq!(bot_events(&app).await, 6, "server-side events are not bots");
    app.stop().await;
}
