//! The operators' view: `tailor run --simulate` under traffic serves `/ops/latency` with windowed
//! latencies per endpoint and stage, rates and levels, and the `/ops` page, loaded in headless
//! Chromium (`collector/tag/test/ops.mjs`), draws them without reaching outside the process. The
//! screenshot is saved in a temporary directory (its path is printed) for a person to look at.

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

/// The series of `list` named `name` whose labels include `labels`.
fn series<'a>(report: &'a Value, list: &str, name: &str, labels: &Value) -> Option<&'a Value> {
    report[list].as_array()?.iter().find(|s| {
        s["name"] == name
            && labels
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &s["labels"][k] == v)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ops_dashboard_draws_live_latency_under_traffic() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists() || std::env::var("CHROMIUM").is_ok(),
        "Chromium is missing: run scripts/test.sh (apt-get install chromium)"
    );
    let run = support::tailor_run(&["--simulate", "40"]);
    let base = run.base.clone();
    let http = reqwest::Client::new();
    // Storefront traffic next to the simulated shoppers: recommendations, and refused events.
    let recs = 20;
    for i in 0..recs {
        let r = http
            .get(format!(
                "{base}/v1/recommendations?site=demo&item=tent-2p&member=m-{i}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let bad = http
        .post(format!("{base}/v1/events"))
        .json(&json!({"type": "page_view"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Until the charts have lines, not points: recommendations keep coming over three windows.
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    let windows = |r: &Value, list: &str, name: &str| {
        series(r, list, name, &json!({})).map_or(0, |s| s["windows"].as_array().unwrap().len())
    };
    let report = loop {
        let r = get(&base, "/ops/latency").await;
        let ready = ["processor_batch", "processor_end_to_end"]
            .iter()
            .all(|s| windows(&r, "stages", s) >= 1)
            && windows(&r, "stages", "recommender") >= 3
            && series(
                &r,
                "flows",
                "processor_events",
                &json!({"outcome": "applied"}),
            )
            .is_some();
        if ready {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "{r}");
        let r = http
            .get(format!("{base}/v1/recommendations?site=demo&item=tent-2p"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(report["window_seconds"], 10);
    assert_eq!(report["retention_seconds"], 900);
    let events = series(
        &report,
        "endpoints",
        "/v1/events",
        &json!({"service": "collector"}),
    )
    .unwrap_or_else(|| panic!("{report}"));
    let minute = &events["last_minute"];
    assert!(minute["count"].as_u64() > Some(1), "{events}");
    assert!(
        minute["rejection_rate"].as_f64() > Some(0.0),
        "the refused event: {events}"
    );
    assert!(minute["p50"].as_f64() <= minute["p99"].as_f64(), "{events}");
    assert!(minute["p99"].as_f64() <= minute["max"].as_f64(), "{events}");
    let reco = series(
        &report,
        "endpoints",
        "/v1/recommendations",
        &json!({"service": "recommender"}),
    )
    .unwrap_or_else(|| panic!("{report}"));
    assert!(
        reco["last_minute"]["count"].as_u64() >= Some(recs),
        "{reco}"
    );
    assert_eq!(reco["last_minute"]["error_rate"], 0.0, "{reco}");
    let ranking = series(&report, "stages", "recommender", &json!({})).unwrap();
    assert!(
        ranking["last_minute"]["count"].as_u64() >= Some(recs),
        "{ranking}"
    );
    for op in ["apply", "read"] {
        assert!(
            series(&report, "stages", "store", &json!({"op": op})).is_some(),
            "{report}"
        );
    }
    assert!(series(
        &report,
        "levels",
        "spool_bytes",
        &json!({"spool": "events"})
    )
    .is_some());

    let dir = tailor_infra::testkit::temp_dir("ops-dashboard");
    let shot = dir.join("ops.png");
    let page = support::browser_script("ops.mjs", &[&base, shot.to_str().unwrap()]).await;
    println!("screenshot of /ops: {}", shot.display());
    assert_eq!(page["errors"], json!([]), "{page}");
    assert_eq!(page["foreign"], json!([]), "no CDN, works offline: {page}");
    assert_eq!(page["ready"], "ready", "{page}");
    let titles = |list: &str| -> Vec<String> {
        page[list]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["points"].as_u64() > Some(0))
            .map(|c| c["title"].as_str().unwrap().to_string())
            .collect()
    };
    let endpoints = titles("endpoints");
    assert!(
        endpoints.contains(&"collector /v1/events".to_string()),
        "{page}"
    );
    assert!(
        endpoints.contains(&"recommender /v1/recommendations".to_string()),
        "{page}"
    );
    let stages = titles("stages").join("|");
    for s in [
        "processor batch",
        "freshness",
        "store round trip (op=read)",
        "recommendation",
    ] {
        assert!(stages.contains(s), "{s}: {page}");
    }
    assert_eq!(
        titles("flows").len(),
        2,
        "throughput and levels drawn: {page}"
    );
    assert_ne!(page["tiles"]["events applied/s"], "0", "{page}");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot was saved"
    );
}
