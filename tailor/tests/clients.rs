//! The official Snowplow and Segment clients, unchanged, against a collector on the real broker and
//! Redis: the Python trackers (PyPI `snowplow-tracker` over GET and POST, `segment-analytics-python`
//! with gzip batches) and the browser ones in headless Chromium (`@snowplow/browser-tracker` with the
//! e-commerce plugin over POST and GET, `@segment/analytics-next`), each sending a shop visit that ends
//! in a purchase. The test checks the member's profile shows the purchase and that nothing was
//! dead-lettered. Scripts and pinned versions: `tests/clients/`.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use tailor_infra::testkit;

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/clients")
}

/// Runs one client against a fresh Tailor and checks the member's purchase arrived, once.
async fn check(program: &str, script: &str, extra: &[&str]) {
    let dir = clients_dir();
    let program_path = dir.join(program);
    let program = if program.contains('/') {
        assert!(
            program_path.exists(),
            "{} is missing: run scripts/test.sh, which installs the client libraries",
            program_path.display()
        );
        program_path.into_os_string()
    } else {
        assert!(
            dir.join("node_modules").exists() && dir.join("browser/dist/trackers.js").exists(),
            "tests/clients/node_modules or the tracker bundle is missing: run scripts/test.sh"
        );
        program.into()
    };
    let app = support::start(testkit::real_config()).await;
    let base = app.base.clone();
    let run = testkit::unique("run");
    let out = tokio::process::Command::new(&program)
        .arg(dir.join(script))
        .args([base.as_str(), run.as_str()])
        .args(extra)
        .output()
        .await
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} {extra:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{script} printed no JSON summary ({e}): {stdout}"));
    let member = sent["member"].as_str().unwrap();

    let profile = app
        .profile_until(member, |p| p["purchases"]["orders"] == 1)
        .await;
    assert_eq!(profile["purchases"]["units"], 2, "{profile}");
    assert_eq!(profile["purchases"]["revenue"]["EUR"], 208.0, "{profile}");
    assert_eq!(profile["event_counts"]["add_to_cart"], 1, "{profile}");
    let bought: Vec<&str> = profile["purchases"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(
        bought.contains(&"tent-2p") && bought.contains(&"socks-wool"),
        "{profile}"
    );
    let (_, letters) = app.get("/admin/dead-letters").await;
    assert_eq!(letters["total"], 0, "{script} {extra:?}: {letters}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowplow_python_tracker_post() {
    check(".venv/bin/python", "snowplow_python.py", &["post"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowplow_python_tracker_get() {
    check(".venv/bin/python", "snowplow_python.py", &["get"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_python_library() {
    check(".venv/bin/python", "segment_python.py", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowplow_browser_tracker_post() {
    check("node", "browser.mjs", &["snowplow-post"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowplow_browser_tracker_get() {
    check("node", "browser.mjs", &["snowplow-get"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_analytics_next() {
    check("node", "browser.mjs", &["segment"]).await;
}
