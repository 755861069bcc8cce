//! The load tool's scenarios in their short form: harness correctness only (every scenario runs,
//! reports, and counts what it should), never a timed assertion. The figures are in
//! docs/benchmarks.md.

use std::process::Command;
use tailor_infra::testkit;

fn load(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tailor-load"))
        .args([
            "--seconds",
            "1",
            "--concurrency",
            "2",
            "--visitors",
            "300",
            "--items",
            "100",
            "--memory-sample",
            "30",
        ])
        .args(args)
        .output()
        .expect("tailor-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tailor-load failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The row of `scenario` in the table: its cells.
fn row<'a>(out: &'a str, scenario: &str) -> Vec<&'a str> {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("| {scenario} |")))
        .unwrap_or_else(|| panic!("no row {scenario:?} in\n{out}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

fn has(out: &str, text: &str) {
    assert!(out.contains(text), "{text:?} not in\n{out}");
}

/// A one-tree re-ranking model (it favours the less popular items) written to a file.
fn model_file() -> std::path::PathBuf {
    use tailor_recommender::rank::boost::{Booster, Tree};
    use tailor_recommender::rank::rerank;
    let features = rerank::names();
    let popularity = features.iter().position(|f| f == "popularity").unwrap() as i32;
    let model = Booster {
        features,
        trees: vec![Tree {
            feature: vec![popularity, -1, -1],
            value: vec![2.0, 1.0, -1.0],
            left: vec![1, 0, 0],
            right: vec![2, 0, 0],
        }],
    };
    let path = testkit::temp_dir("load-smoke").join("ranker.json");
    std::fs::write(&path, serde_json::to_string(&model).unwrap()).unwrap();
    path
}

/// The targets judged on `reports`: the table's row per target, as (measured, holds).
fn judged(reports: &[&std::path::Path]) -> Vec<(String, String)> {
    let list: Vec<&str> = reports.iter().map(|p| p.to_str().unwrap()).collect();
    let out = load(&["--judge", &list.join(",")]);
    out.lines()
        .skip(2)
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 3, "{l}");
            (cells[1].to_string(), cells[2].to_string())
        })
        .collect()
}

#[test]
fn every_scenario_runs_embedded_and_says_what_it_skips() {
    let model = model_file();
    let report = testkit::temp_dir("load-smoke").join("embedded.json");
    let out = load(&[
        "--ranker",
        model.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    for scenario in [
        "baseline GET /healthz",
        "POST /v1/events",
        "ceiling: bare POST, same batches",
        "GET /v1/recommendations",
        "GET /v1/recommendations, learned re-ranking",
    ] {
        let cells = row(&out, scenario);
        assert_eq!(cells[7], "0", "errors of {scenario}: {out}");
        assert!(cells[1].parse::<f64>().unwrap() > 0.0, "{out}");
    }
    has(&out, "collector: ");
    has(&out, "recommendations: ");
    has(&out, "processor: ");
    has(&out, "ingest open loop at half the ingest scenario's rate");
    has(&out, " not shown within 5 s");
    assert!(
        out.contains(", 0 not shown within 5 s"),
        "every freshness probe's item shows: {out}"
    );
    has(&out, "note: bare-recommend skipped");
    has(&out, "note: bare-produce skipped");
    has(&out, "note: ceiling skipped");
    has(&out, "note: memory skipped");

    // The run's report judges the targets it measured, from its own figures, and names the rest.
    let rows = judged(&[&report]);
    assert_eq!(rows.len(), 9, "{rows:?}");
    let recommend = row(&out, "GET /v1/recommendations");
    let baseline = row(&out, "baseline GET /healthz");
    let ratio = recommend[1].parse::<f64>().unwrap() / baseline[1].parse::<f64>().unwrap();
    assert!(
        rows[0].0.starts_with(&format!("embedded: {ratio:.3}x")),
        "{rows:?} against {ratio}"
    );
    for (i, (measured, holds)) in rows.iter().enumerate() {
        let embedded_only_misses = [2, 4, 7, 8]; // bare-recommend, Kafka, memory, the soak
        if embedded_only_misses.contains(&i) {
            assert_eq!(holds, "not measured", "{measured}");
        } else {
            assert!(measured.starts_with("embedded: "), "{measured}");
            assert!(holds == "**yes**" || holds == "no", "{holds}");
        }
    }
}

#[test]
fn collector_only_runs_the_collectors_scenarios_and_waits_for_no_processor() {
    let out = load(&[
        "--collector-only",
        "--scenarios",
        "baseline,ingest,bare-ingest,recommend,ingest-open,freshness",
    ]);
    for scenario in [
        "baseline GET /healthz",
        "POST /v1/events",
        "ceiling: bare POST, same batches",
    ] {
        let cells = row(&out, scenario);
        assert_eq!(cells[7], "0", "errors of {scenario}: {out}");
    }
    has(&out, "collector: ");
    has(&out, "ingest open loop at half the ingest scenario's rate");
    has(
        &out,
        "note: recommend, freshness skipped: the target runs the collector alone",
    );
    for absent in [
        "| GET /v1/recommendations |",
        "processor: ",
        "freshness at ",
    ] {
        assert!(!out.contains(absent), "{absent:?} in\n{out}");
    }
}

#[test]
fn a_short_soak_samples_every_window_and_draws_them() {
    let dir = testkit::temp_dir("load-smoke");
    let (csv, svg) = (dir.join("soak.csv"), dir.join("soak.svg"));
    let out = load(&[
        "--soak",
        "0.1",
        "--window-secs",
        "2",
        "--rate",
        "200",
        "--recommend-rate",
        "20",
        "--out",
        csv.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    has(&out, "| page views/s acknowledged |");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert!(rows.len() >= 2, "a sample every 2 s over 6 s: {text}");
    for r in &rows {
        assert_eq!(r[col("errors")], 0.0, "{text}");
        assert!(
            r[col("rss_mb")] > 0.0,
            "the service's resident memory: {text}"
        );
        assert!(r[col("events_per_sec")] > 0.0, "{text}");
    }
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

#[test]
fn the_ceilings_and_memory_run_on_the_broker_and_redis() {
    let topic = testkit::unique("load-smoke");
    let ns = testkit::unique("load");
    let (kafka, redis) = (testkit::kafka_brokers(), testkit::redis_url());
    let report = testkit::temp_dir("load-smoke").join("kafka.json");
    let out = load(&[
        "--report",
        report.to_str().unwrap(),
        "--kafka",
        &kafka,
        "--redis",
        &redis,
        "--topic",
        &topic,
        "--namespace",
        &ns,
        "--scenarios",
        "baseline,ingest,bare-produce,recommend,bare-recommend,ceiling,memory",
    ]);
    has(&out, "on the broker and Redis");
    for ceiling in [
        "ceiling: bare GET, one store round trip",
        "ceiling: bare POST produced to the broker (acks=all)",
    ] {
        assert_eq!(row(&out, ceiling)[7], "0", "{out}");
    }
    has(&out, "the bare producing handler's rate");
    has(&out, "Redis writes per event");
    has(&out, "processor ceiling: ");
    has(&out, "Redis per member (MEMORY USAGE of every key of ");
    assert!(!out.contains("note:"), "nothing skipped: {out}");
    // The ceiling read every event the processor applied.
    let applied = out
        .split("processor: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap();
    has(&out, &format!("processor ceiling: {applied} events read"));
    // What this run measured on Kafka and Redis is judged; the embedded-only target is not.
    let rows = judged(&[&report]);
    for i in [2, 4, 7] {
        assert!(rows[i].0.starts_with("kafka: "), "{rows:?}");
    }
    assert_eq!(
        rows[3].1, "not measured",
        "the embedded processor: {rows:?}"
    );
}
