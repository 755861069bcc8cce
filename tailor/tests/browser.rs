//! A real browser on the real pipeline: headless Debian Chromium (driven by playwright-core, see
//! `collector/tag/test/browser.mjs`) loads the demo shop with the tag from a Tailor running on the real
//! broker and Redis, browses, logs in, buys and clicks an offer. The test then checks what arrived: the
//! member's profile (views, purchase, dwell from the final beacon) and the offer slot's impression and
//! click counters.

mod support;

use redis::AsyncCommands;
use serde_json::Value;
use std::collections::HashMap;
use tailor_core::ids::SiteId;
use tailor_core::keys::KeySpace;
use tailor_infra::testkit;

/// An item id an attacker chose (ids may hold any visible character but braces).
const XSS: &str = "<img/src=x/onerror=window.__pwned=1>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_in_chromium_fills_the_profile_and_the_offer_counters() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists() || std::env::var("CHROMIUM").is_ok(),
        "Chromium is missing: run scripts/test.sh (apt-get install chromium)"
    );
    let config = testkit::real_config();
    let keys = KeySpace::new(config.redis.namespace.clone());
    let app = support::start(config).await;
    let base = app.base.clone();
    let member = testkit::unique("shopper");
    // Another shopper came before: their visit gives the shared models (co-visitation, popularity)
    // something beyond what this shopper views, buys and so never gets recommended again.
    // One of their items is named like markup: the tag must show it as text, never run it.
    let earlier: Vec<Value> = ["tent-2p", "sleeping-bag", "tent-4p", XSS]
        .iter()
        .map(|item| {
            serde_json::json!({"type": "page_view", "site_id": "demo", "anonymous_id": "earlier-shopper",
                "session_id": "earlier-visit", "item_id": item, "category": "camping"})
        })
        .collect();
    let (status, body) = app.post(&Value::Array(earlier)).await;
    assert_eq!(status, 202, "{body}");

    let session = support::browser_script("browser.mjs", &[&base, &member]).await;
    assert!(!session["slot"].as_array().unwrap().is_empty(), "{session}");
    assert!(
        support::strings(&session["rendered"]).contains(&XSS),
        "the markup-named item is shown, as its name: {session}"
    );
    assert_eq!(session["markup"], 0, "no element made of it: {session}");
    assert_eq!(session["pwned"], false, "no script ran: {session}");

    let profile = app
        .profile_until(&member, |p| {
            let c = &p["event_counts"];
            c["purchase"] == 1 && c["offer_click"] == 1 && c["page_ping"].as_i64() >= Some(1)
        })
        .await;
    assert_eq!(profile["purchases"]["orders"], 1, "{profile}");
    assert_eq!(profile["purchases"]["units"], 2, "{profile}");
    assert_eq!(profile["purchases"]["revenue"]["EUR"], 248.0, "{profile}");
    assert!(profile["event_counts"]["identify"] == 1, "{profile}");
    assert!(
        profile["event_counts"]["page_view"].as_i64() >= Some(2),
        "{profile}"
    );
    assert!(profile["dwell_ms"].as_i64() > Some(0), "{profile}");
    let recent = support::strings(&profile["recent_items"]);
    assert!(
        recent.contains(&"tent-2p") && recent.contains(&"stove"),
        "{profile}"
    );
    assert_eq!(profile["traits"]["logged_in_from"], "demo");

    // The slot's impression and click reached the shared offer counters.
    let mut redis = redis::Client::open(testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let stats: HashMap<String, i64> = redis
        .hgetall(keys.offer_stats(&SiteId::parse("demo").unwrap()))
        .await
        .unwrap();
    assert!(
        stats.get("recommended:impressions").copied() >= Some(1),
        "{stats:?}"
    );
    assert!(
        stats.get("recommended:items_shown").copied() >= Some(1),
        "{stats:?}"
    );
    assert_eq!(stats.get("recommended:clicks"), Some(&1), "{stats:?}");

    app.stop().await;
}

/// A campaign's offer in the demo shop's slot: the tag renders it (as text, only a safe link), reports
/// its impression with the token once the slot is seen and its click; the shopper then buys, and the
/// campaign's report counts the impression, the click and the purchase as a conversion with its
/// revenue (see `test/offer.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_buys_through_an_offer_and_the_report_counts_it() {
    let app = support::start(testkit::real_config()).await;
    let campaign = testkit::unique("tentweek");
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &format!("/admin/campaigns/{campaign}?site=demo"),
            &serde_json::json!({"slots": ["recommended"], "priority": 5, "reason": "our tent week",
                "variants": [{"name": "a", "title": "Tent week <b>", "body": "5% off tents",
                              "url": "/#tent-week", "coupon": "TENT5"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let member = testkit::unique("buyer");

    let session = support::browser_script("offer.mjs", &[&app.base, &member]).await;
    let offer = &session["offer"];
    assert_eq!(
        offer["text"], "Tent week <b> 5% off tents TENT5",
        "{session}"
    );
    assert_eq!(offer["markup"], 0, "the title is text: {session}");
    assert_eq!(offer["href"], "/#tent-week", "{session}");
    assert_eq!(offer["reason"], "our tent week", "{session}");
    assert!(session["url"].as_str().unwrap().ends_with("/#tent-week"));
    // The impression went by fetch with the token (the click goes at once by sendBeacon, which the
    // page's request log does not show: the report below counts it).
    let sent = session["sent"].as_array().unwrap();
    assert!(
        sent.iter()
            .any(|e| e["type"] == "offer_impression" && e["token"] == true),
        "{session}"
    );

    // Collector → Kafka → processor → Redis, then the report.
    let report = app
        .until(
            &format!("/admin/campaigns/{campaign}/report?site=demo"),
            |r| r["variants"][0]["conversions"] == 1,
        )
        .await;
    let a = &report["variants"][0];
    assert_eq!(a["variant"], "a", "{report}");
    assert!(a["impressions"].as_i64() >= Some(1), "{report}");
    assert_eq!(a["clicks"], 1, "{report}");
    assert_eq!(a["revenue"], 248.0, "tent-2p and stove: {report}");
    app.stop().await;
}

/// Consent pending stores nothing (and still measures), consent persists ids, withdrawal forgets them,
/// and Global Privacy Control with `data-respect-dnt` silences the tag (see `test/privacy.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tag_honours_consent_and_global_privacy_control() {
    let app = support::start(tailor_core::config::Config::default()).await;
    let report = support::browser_script("privacy.mjs", &[&app.base]).await;
    assert_eq!(report["dnt"]["sent"], 0, "{report}");
    assert_eq!(report["pending"]["cookies"], "", "{report}");
    app.stop().await;
}
