//! The warehouse sink on the real broker and Redis: `tailor export` runs as its own process and is
//! SIGKILLed again and again while it flushes; the Parquet files must then hold every event exactly
//! once, partitioned by site and day, and DuckDB must read them as they are. `tailor erase
//! --warehouse` removes a member's rows from the files, and `tailor replay --from-parquet` rebuilds
//! the profiles from them.

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;
use tailor::app::Roles;
use tailor_core::config::SiteConfig;
use tailor_infra::testkit;

const MEMBERS: usize = 30;
const VIEWS: usize = 20;

fn exporter(
    config_file: &std::path::Path,
    log: &std::path::Path,
    failpoint: &str,
) -> support::Reaped {
    Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(["export", "--listen", "127.0.0.1:0", "--config"])
        .arg(config_file)
        .env("NO_COLOR", "1")
        .env("TAILOR_FAILPOINT", failpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .map(support::Reaped)
        .expect("start tailor export")
}

/// Event ids in the files, with how often each appears, and rows per (site, date) directory.
fn contents(dir: &std::path::Path) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let mut ids = HashMap::new();
    let mut dirs = HashMap::new();
    for f in tailor_processor::export::data_files(dir).unwrap() {
        let rows = tailor_processor::export::read_file(&f).unwrap();
        let part = f.parent().unwrap();
        let key = format!(
            "{}/{}",
            part.parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy(),
            part.file_name().unwrap().to_string_lossy()
        );
        *dirs.entry(key).or_default() += rows.len();
        for (_, _, e) in rows {
            *ids.entry(e.event_id.to_string()).or_default() += 1;
        }
    }
    (ids, dirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_files_hold_every_event_once_through_crashes() {
    let mut config = testkit::real_config();
    config.sites.push(SiteConfig {
        id: "outdoor".into(),
        name: "Second shop".into(),
        snowplow_app_ids: vec![],
        segment_write_keys: vec![],
        allowed_origins: vec![],
        // Open like the file-less demo site: this test is not about keys (isolation.rs is).
        keys: vec![],
        open: true,
    });
    let dir = testkit::temp_dir("warehouse");
    config.export.dir = dir.join("files");
    config.export.group = testkit::unique("export");
    config.export.max_rows = 25; // many small flushes, so kills land in and between them
    config.export.max_age_secs = 1;
    let config_file = dir.join("tailor.toml");
    std::fs::write(&config_file, toml::to_string(&config).unwrap()).unwrap();
    let app = support::start_roles(config.clone(), Roles::ALL).await;

    let mut events = Vec::new();
    for m in 0..MEMBERS {
        let site = if m % 3 == 0 { "outdoor" } else { "demo" };
        for v in 0..VIEWS {
            // Two days: yesterday and today.
            let when =
                chrono::Utc::now() - chrono::Duration::hours(if v % 2 == 0 { 24 } else { 0 });
            events.push(json!({"type": "page_view", "event_id": format!("wh-{m}-{v}"), "site_id": site,
                "anonymous_id": format!("wdev-{m}"), "member_id": format!("wm-{m}"), "session_id": "s",
                "item_id": format!("item-{}", v % 5), "timestamp": when.to_rfc3339()}));
        }
    }
    let total = events.len();
    for chunk in events.chunks(200) {
        let (status, body) = app.post(&Value::Array(chunk.to_vec())).await;
        assert_eq!(status, 202, "{body}");
    }

    // Crash the exporter repeatedly: twice right after a flush, before the offsets are committed (a
    // failpoint makes it abort there), then twice by SIGKILL once it has written something; then let
    // a last one finish.
    let files = config.export.dir.clone();
    // Each round flushes at a different size, so the redelivered ranges do not line up with the files
    // already written: only the manifests' offsets keep a row from being exported twice.
    let round_config = |round: usize, max_rows: usize| {
        let mut c = config.clone();
        c.export.max_rows = max_rows;
        let f = dir.join(format!("tailor-{round}.toml"));
        std::fs::write(&f, toml::to_string(&c).unwrap()).unwrap();
        f
    };
    for (round, rows) in [(0, 25), (1, 17)] {
        let log = dir.join(format!("export-abort-{round}.log"));
        let mut child = exporter(&round_config(round, rows), &log, "export-before-commit");
        child.dies_at_failpoint(&log, Duration::from_secs(60)).await;
    }
    let after_aborts = contents(&files).0.len();
    assert!(after_aborts > 0, "the aborted exporters flushed nothing");
    for (round, rows) in [(2, 31), (3, 13)] {
        let log = dir.join(format!("export-{round}.log"));
        let mut child = exporter(&round_config(round, rows), &log, "");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let before = contents(&files).0.len();
        while contents(&files).0.len() <= before {
            assert!(
                child.try_wait().unwrap().is_none(),
                "exporter exited; see {}",
                log.display()
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no progress; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut last = exporter(&config_file, &dir.join("export-last.log"), "");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (ids, _) = contents(&files);
        if ids.len() == total {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {total} exported",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ids, dirs) = contents(&files);
    assert_eq!(ids.len(), total);
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "exported more than once: {twice:?}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let yesterday = (chrono::Utc::now() - chrono::Duration::hours(24))
        .format("%Y-%m-%d")
        .to_string();
    let per_day = |site: &str, day: &str| {
        dirs.get(&format!("site={site}/date={day}"))
            .copied()
            .unwrap_or(0)
    };
    // Members 0, 3, .. 27 (ten of them) shop at "outdoor", half their views on each day.
    assert_eq!(
        per_day("outdoor", &today) + per_day("outdoor", &yesterday),
        10 * VIEWS,
        "{dirs:?}"
    );
    assert_eq!(
        per_day("demo", &today) + per_day("demo", &yesterday),
        20 * VIEWS,
        "{dirs:?}"
    );
    if today != yesterday {
        assert_eq!(per_day("demo", &today), 10 * VIEWS, "{dirs:?}");
    }
    last.kill().unwrap();
    last.wait().unwrap();

    // DuckDB reads the files as they are, with the partition columns from the paths.
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/clients/.venv/bin/python");
    let query = format!(
        "import duckdb, json; print(json.dumps(duckdb.sql(\"select site, count(*) as n, count(distinct event_id) as ids, sum(case when member_id is null then 1 else 0 end) as anonymous from read_parquet('{}/site=*/date=*/*.parquet', hive_partitioning = true) group by site order by site\").fetchall()))",
        files.display()
    );
    let out = Command::new(&python)
        .args(["-c", &query])
        .output()
        .expect("python with duckdb (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows,
        json!([
            ["demo", 20 * VIEWS, 20 * VIEWS, 0],
            ["outdoor", 10 * VIEWS, 10 * VIEWS, 0]
        ])
    );

    // Erasure reaches the files; a rebuild from them matches the live profiles.
    let (_, keep) = app.get("/v1/profiles/wm-1?site=demo").await;
    let report = support::tailor_json(&[
        "erase",
        "--url",
        &app.base,
        "--site",
        "demo",
        "--member",
        "wm-2",
        "--warehouse",
        files.to_str().unwrap(),
    ]);
    assert_eq!(report["warehouse"]["rows_removed"], VIEWS, "{report}");
    let (ids, _) = contents(&files);
    assert!(
        !ids.keys().any(|id| id.starts_with("wh-2-")),
        "erased rows remain"
    );
    app.stop().await;
    let summary = support::tailor_json(&[
        "replay",
        "--yes",
        "--from-parquet",
        files.to_str().unwrap(),
        "--config",
        config_file.to_str().unwrap(),
    ]);
    assert_eq!(summary["events"], total - VIEWS, "{summary}");
    let app = support::start_roles(config, Roles::RECOMMENDER).await;
    let (status, rebuilt) = app.get("/v1/profiles/wm-1?site=demo").await;
    assert_eq!(status, 200, "{rebuilt}");
    assert_eq!(rebuilt["event_counts"], keep["event_counts"]);
    assert_eq!(rebuilt["recent_items"], keep["recent_items"]);
    let (status, _) = app.get("/v1/profiles/wm-2?site=demo").await;
    assert_eq!(status, 404);
    app.stop().await;
}
