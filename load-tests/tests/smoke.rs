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

#[test]
fn every_scenario_runs_embedded_and_says_what_it_skips() {
    let model = model_file();
    let out = load(&["--ranker", model.to_str().unwrap()]);
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
    has(&out, "note: ceiling skipped");
    has(&out, "note: memory skipped");
}

#[test]
fn the_ceilings_and_memory_run_on_the_broker_and_redis() {
    let topic = testkit::unique("load-smoke");
    let ns = testkit::unique("load");
    let (kafka, redis) = (testkit::kafka_brokers(), testkit::redis_url());
    let out = load(&[
        "--kafka",
        &kafka,
        "--redis",
        &redis,
        "--topic",
        &topic,
        "--namespace",
        &ns,
        "--scenarios",
        "baseline,ingest,recommend,bare-recommend,ceiling,memory",
    ]);
    has(&out, "on the broker and Redis");
    assert_eq!(
        row(&out, "ceiling: bare GET, one store round trip")[7],
        "0",
        "{out}"
    );
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
}
