//! `tailor evaluate` on the shared clickstream (`shared/data/clickstream/`, read-only): the harness's
//! correctness, not the full-data figures (those are in docs/quality.md).
//! * The test cases it derives from `test.jsonl.gz` are exactly the protocol's `test_cases.jsonl.gz`.
//! * On a slice of the training file (its last 40,000 events, validation split of its last day),
//!   the command runs end to end and reports every ranker, and the session-based neighbours beat
//!   popularity by far, as on every shop's traffic.

mod support;

use flate2::read::GzDecoder;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use tailor::evaluate::{cases, read_events};
use tailor_infra::testkit;

fn lines(path: &std::path::Path) -> Vec<String> {
    let f = std::fs::File::open(path).unwrap();
    BufReader::new(GzDecoder::new(f))
        .lines()
        .map(|l| l.unwrap())
        .collect()
}

#[test]
fn the_derived_cases_are_the_protocols() {
    let test = read_events(&testkit::shared_data("clickstream/test.jsonl.gz")).unwrap();
    let derived = cases(&test);
    let expected: Vec<Value> = lines(&testkit::shared_data("clickstream/test_cases.jsonl.gz"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(derived.len(), expected.len());
    // Same predictions, whatever the order of sessions.
    let key = |prefix: &[String], next: &str| format!("{}>{next}", prefix.join(","));
    let mut a: Vec<String> = derived.iter().map(|c| key(&c.prefix, &c.next)).collect();
    let mut b: Vec<String> = expected
        .iter()
        .map(|c| {
            let prefix: Vec<String> = c["prefix"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
                .collect();
            key(&prefix, c["next"].as_str().unwrap())
        })
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn evaluate_runs_on_a_slice_and_reports_every_ranker() {
    let all = lines(&testkit::shared_data("clickstream/train.jsonl.gz"));
    let dir = testkit::temp_dir("evaluate");
    let slice = dir.join("slice.jsonl");
    let mut f = std::fs::File::create(&slice).unwrap();
    for l in &all[all.len() - 40_000..] {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let dump = dir.join("dump.jsonl");
    let report = support::tailor_json(&[
        "evaluate",
        "--train",
        slice.to_str().unwrap(),
        "--validation-days",
        "1",
        "--json",
        "--dump",
        dump.to_str().unwrap(),
        "--learn-days",
        "3",
        "--trees",
        "10",
    ]);
    for name in [
        "popular",
        "covisitation",
        "session_knn",
        "blend",
        "blend_without_model",
    ] {
        let q = &report[name];
        let predictions = q["predictions"].as_u64().unwrap();
        assert!(predictions > 100, "{name}: {q}");
        for m in ["hr", "mrr", "coverage", "popularity_bias"] {
            let v = q[m].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{name}.{m} = {v}");
        }
        assert!(q["mrr"].as_f64() <= q["hr"].as_f64(), "{name}: {q}");
    }
    let hr = |n: &str| report[n]["hr"].as_f64().unwrap();
    assert!(
        hr("session_knn") > 5.0 * hr("popular"),
        "session neighbours should dwarf popularity: {report}"
    );
    assert!(hr("blend") > 0.0 && hr("covisitation") > 0.0, "{report}");

    // `tailor ranker fit` writes a model the recommender accepts.
    let model = dir.join("model.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(["ranker", "fit", "--events", slice.to_str().unwrap()])
        .args([
            "--days",
            "3",
            "--trees",
            "5",
            "--out",
            model.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fitted 5 trees"));
    let model: tailor_recommender::rank::boost::Booster =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(model.trees.len(), 5);
    tailor_recommender::rank::rerank::check(&model).unwrap();

    // The dump holds every prediction of every ranker, and re-scoring it gives the report's figures.
    let dumped: Vec<Value> = std::fs::read_to_string(&dump)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for name in ["popular", "covisitation", "session_knn", "blend"] {
        let mine: Vec<&Value> = dumped.iter().filter(|d| d["ranker"] == name).collect();
        assert_eq!(
            mine.len() as u64,
            report[name]["predictions"].as_u64().unwrap()
        );
        let mrr = mine
            .iter()
            .map(|d| {
                let prefix = d["prefix"].as_array().unwrap();
                assert_eq!(prefix.len(), d["prefix_ms"].as_array().unwrap().len());
                let items = d["items"].as_array().unwrap();
                assert!(items.len() <= 20, "the cutoff bounds each answer");
                items
                    .iter()
                    .position(|i| i[0] == d["next"])
                    .map_or(0.0, |p| 1.0 / (p as f64 + 1.0))
            })
            .sum::<f64>()
            / mine.len() as f64;
        let reported = report[name]["mrr"].as_f64().unwrap();
        assert!((mrr - reported).abs() < 1e-9, "{name}: {mrr} vs {reported}");
    }
}
