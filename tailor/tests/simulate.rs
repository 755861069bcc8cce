//! `tailor run --simulate N` fills the shop with data: synthetic shoppers go through the real
//! collection API, and a minute later the recommendations answer and the marketers' insights page,
//! loaded in headless Chromium (`collector/tag/test/insights.mjs`), draws the funnel, channels,
//! life-cycle stages, RFM grid and top pages.

mod support;

use serde_json::{json, Value};
use std::time::Duration;

async fn get(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_shoppers_fill_the_insights_page() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists() || std::env::var("CHROMIUM").is_ok(),
        "Chromium is missing: run scripts/test.sh (apt-get install chromium)"
    );
    let run = support::tailor_run(&["--simulate", "40"]);
    let base = &run.base;
    // The simulation says when it is done; the processor then catches up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while !run.logs.lock().unwrap().contains("simulation done") {
        let logs = run.logs.lock().unwrap().clone();
        assert!(!logs.contains("simulation stopped"), "{logs}");
        assert!(tokio::time::Instant::now() < deadline, "{logs}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let converge = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    let analytics = loop {
        let a = get(base, "/admin/analytics?site=demo").await;
        let funnel = &a["funnel"];
        let filled = |k: &str, n: usize| a[k].as_object().is_some_and(|o| o.len() >= n);
        // The RFM grid is drawn from the site models, which `--simulate` refreshes every 10 s.
        if funnel["purchase"].as_u64() > Some(0) && filled("stages", 2) && filled("rfm_grid", 1) {
            break a;
        }
        assert!(tokio::time::Instant::now() < converge, "{a}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let sum = |field: &str| -> u64 {
        analytics["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d[field].as_u64().unwrap())
            .sum()
    };
    assert!(sum("sessions") >= 40, "{analytics}");
    assert_eq!(sum("bot_events"), 0, "browser-like, not bots: {analytics}");
    let recs = get(base, "/v1/recommendations?site=demo&item=tent-2p").await;
    assert!(!recs["items"].as_array().unwrap().is_empty(), "{recs}");

    let report = support::browser_script("insights.mjs", &[base, "demo"]).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(report["funnel_bars"].as_u64() >= Some(3), "{report}");
    assert!(report["channel_bars"].as_u64() >= Some(3), "{report}");
    assert!(report["hour_bars"].as_u64() >= Some(1), "{report}");
    assert_eq!(report["rfm_cells"], 25, "{report}");
    assert!(report["stage_bars"].as_u64() >= Some(2), "{report}");
    assert!(report["page_rows"].as_u64() >= Some(3), "{report}");
}

/// The demo shop's button starts the same shoppers through `POST /demo/simulate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shops_button_starts_shoppers() {
    let app = support::start(tailor_core::config::Config::default()).await;
    let (status, body) = app
        .send(
            reqwest::Method::POST,
            "/demo/simulate?shoppers=0",
            &json!({}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .send(
            reqwest::Method::POST,
            "/demo/simulate?shoppers=5",
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["shoppers"], 5);
    let sessions = |a: &Value| -> u64 {
        a["days"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["sessions"].as_u64().unwrap())
            .sum()
    };
    // Five shoppers, three visits each.
    app.until("/admin/analytics?site=demo", |a| sessions(a) >= 15)
        .await;
    app.stop().await;
}
