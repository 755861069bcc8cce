//! What `tailor run` serves before anyone has used it: every metric of docs/metrics.md at zero (the
//! exceptions are the ones the document says appear with their first sample), no undocumented label;
//! and the pages browsers load (`/tag.js`, the demo shop, the insights page) gzip-compressed to
//! clients that accept it, while API answers stay as they are.

mod support;

use std::io::Read;
use support::start;
use tailor_core::config::Config;

/// Metric names in the docs/metrics.md table.
fn documented() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .unwrap();
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|n| n.starts_with("tailor_"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_metric_is_there_from_the_start() {
    let app = start(Config::default()).await;
    let text = app.metrics().await;
    let names = documented();
    assert!(names.len() >= 26, "{names:?}");
    // docs/metrics.md: these appear with their first sample (their labels are not known before),
    // and the export sink's belong to `tailor export`, which `tailor run` does not run.
    let later = |n: &str| {
        n.starts_with("tailor_http_")
            || n == "tailor_processor_consumer_lag"
            || n.starts_with("tailor_export_")
    };
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !later(n))
        .filter(|n| !text.lines().any(|l| l.starts_with(n.as_str())))
        .collect();
    assert!(missing.is_empty(), "missing at start: {missing:?}\n{text}");
    assert!(
        text.contains(
            r#"tailor_collector_events_total{outcome="rejected",reason="unknown_site",source="segment"} 0"#
        ),
        "{text}"
    );
    assert!(!text.contains(r#"reason="none""#), "{text}");
    // The first request adds its route's HTTP series, and accepted events carry no reason.
    let (status, _) = app
        .post(&serde_json::json!({"type": "page_view", "site_id": "demo", "anonymous_id": "m"}))
        .await;
    assert_eq!(status, 202);
    let text = app.metrics().await;
    assert!(
        text.contains(r#"tailor_collector_events_total{outcome="accepted",source="api"} 1"#),
        "{text}"
    );
    assert!(text.contains("tailor_http_requests_total{"), "{text}");
    assert!(!text.contains(r#"reason="none""#), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_gzipped_for_clients_that_accept_it() {
    let app = start(Config::default()).await;
    for (path, kind) in [
        ("/tag.js", "javascript"),
        ("/", "text/html"),
        ("/insights", "text/html"),
    ] {
        let url = format!("{}{path}", app.base);
        let plain = app.http.get(&url).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        assert!(plain.headers().get("content-encoding").is_none(), "{path}");
        let plain = plain.bytes().await.unwrap();
        let r = app
            .http
            .get(&url)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-encoding"], "gzip", "{path}");
        assert!(
            r.headers()["content-type"].to_str().unwrap().contains(kind),
            "{path}"
        );
        let gz = r.bytes().await.unwrap();
        assert!(
            gz.len() < plain.len() / 2,
            "{path}: {} of {}",
            gz.len(),
            plain.len()
        );
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain, "{path}");
    }
    // API answers are not compressed.
    let r = app
        .http
        .get(format!("{}/v1/recommendations?site=demo", app.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    app.stop().await;
}
