//! The operators' view: `tailor run --simulate` under traffic serves `/ops/latency` with windowed
//! latencies per endpoint and stage, rates and levels, and the `/ops` page, loaded in headless
//! Chromium (`collector/tag/test/ops.mjs`), draws them without reaching outside the process. The
//! screenshot is saved in a temporary directory (its path is printed) for a person to look at.
//!
//! And the Grafana dashboard and the Prometheus alert rules (`deploy/`) only use metric names, labels
//! and label values the services export, and `promtool` accepts the rules and the scrape config.

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

/// What `/metrics` exports: each metric name with its label names, and each label's values.
#[derive(Default)]
struct Exported {
    labels: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    values: std::collections::BTreeSet<(String, String, String)>,
}

fn exported(text: &str) -> Exported {
    let mut e = Exported::default();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, _) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let set = e.labels.entry(name.to_string()).or_default();
        for pair in labels
            .trim_end_matches('}')
            .split(',')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap();
            set.insert(k.to_string());
            e.values.insert((
                name.to_string(),
                k.to_string(),
                v.trim_matches('"').to_string(),
            ));
        }
    }
    e
}

/// Labels Prometheus adds at scrape time, and the histogram bucket bound.
const SCRAPE_LABELS: [&str; 3] = ["job", "instance", "le"];

/// Checks one PromQL expression: every `tailor_…` metric is exported; every label matcher names a
/// label of its metric (with an exported value, for `=`); every `by (…)` label belongs to a metric of
/// the expression or is added by the scrape; every `tailor:…` series is a recording rule. Returns the
/// metrics used, or what is wrong.
fn check_expr(expr: &str, e: &Exported, records: &[String]) -> Result<Vec<String>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut used = Vec::new();
    let mut grouping = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '"' {
            // A string: skip to its end.
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if !(chars[i].is_ascii_alphabetic() || chars[i] == '_') || (i > 0 && ident(chars[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let rest: String = chars[i..].iter().collect();
        if word == "by" || word == "without" {
            let open = rest.find('(').unwrap();
            let close = rest.find(')').unwrap();
            grouping.extend(
                rest[open + 1..close]
                    .split(',')
                    .map(|l| l.trim().to_string()),
            );
            i += close + 1;
            continue;
        }
        if word.starts_with("tailor:") {
            if !records.contains(&word) {
                return Err(format!("{word} is no recording rule: {expr}"));
            }
            continue;
        }
        if !word.starts_with("tailor_") {
            continue;
        }
        let Some(labels) = e.labels.get(&word) else {
            return Err(format!("{word} is not exported: {expr}"));
        };
        used.push(word.clone());
        if rest.starts_with('{') {
            let close = rest.find('}').unwrap();
            for matcher in rest[1..close].split(',').filter(|m| !m.trim().is_empty()) {
                let op_at = matcher.find(['=', '!']).unwrap();
                let label = matcher[..op_at].trim();
                let op: String = matcher[op_at..]
                    .chars()
                    .take_while(|c| "=!~".contains(*c))
                    .collect();
                let value = matcher[op_at + op.len()..].trim().trim_matches('"');
                if !(labels.contains(label) || ["job", "instance"].contains(&label)) {
                    return Err(format!("{word} has no label {label} ({labels:?}): {expr}"));
                }
                if op == "="
                    && labels.contains(label)
                    && !e
                        .values
                        .contains(&(word.clone(), label.into(), value.into()))
                {
                    return Err(format!(
                        "{word}{{{label}=\"{value}\"}} is never exported: {expr}"
                    ));
                }
            }
            i += close + 1;
        }
    }
    for label in grouping {
        if !(SCRAPE_LABELS.contains(&label.as_str())
            || used.iter().any(|m| e.labels[m].contains(&label)))
        {
            return Err(format!(
                "by ({label}): no metric of the expression has it: {expr}"
            ));
        }
    }
    Ok(used)
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_use_only_exported_metrics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for args in [["rules", "alerts.yml"], ["config", "prometheus.yml"]] {
        let promtool = std::process::Command::new("promtool")
            .current_dir(root.join("deploy/prometheus"))
            .arg("check")
            .args(args)
            .output()
            .expect("promtool is missing: run scripts/test.sh (it installs Debian's prometheus)");
        assert!(
            promtool.status.success(),
            "promtool check {args:?}:\n{}{}",
            String::from_utf8_lossy(&promtool.stdout),
            String::from_utf8_lossy(&promtool.stderr)
        );
    }

    // Every stage in one process, with traffic so the series that appear with their first sample
    // (HTTP routes, consumer lag partitions) are there.
    let run = support::tailor_run(&["--simulate", "5"]);
    let base = run.base.clone();
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    let text = loop {
        let r = http
            .get(format!("{base}/v1/recommendations?site=demo&item=tent-2p"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("tailor_processor_consumer_lag{")
            && text.contains("tailor_http_requests_total{service=\"collector\"")
        {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let e = exported(&text);

    let rules = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).unwrap();
    let records: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record:"))
        .map(|r| r.trim().to_string())
        .collect();
    let rule_exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|x| x.trim().to_string())
        .collect();
    assert!(
        rule_exprs
            .iter()
            .all(|x| !x.is_empty() && x != "|" && x != ">"),
        "keep each expr on one line"
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/tailor.json")).unwrap(),
    )
    .unwrap();
    let mut panel_exprs = Vec::new();
    collect_exprs(&dashboard, &mut panel_exprs);
    let panel_exprs: Vec<String> = panel_exprs
        .iter()
        .map(|x| x.replace("$__rate_interval", "5m"))
        .collect();

    let mut used = std::collections::BTreeSet::new();
    for x in rule_exprs.iter().chain(&panel_exprs) {
        used.extend(check_expr(x, &e, &records).unwrap_or_else(|err| panic!("{err}")));
    }
    // The check has something to check: the alerts and the panels cover every area.
    for m in [
        "tailor_http_request_duration_seconds_bucket",
        "tailor_http_requests_total",
        "tailor_processor_consumer_lag",
        "tailor_collector_dead_letters_total",
        "tailor_spool_bytes",
        "tailor_backend_ready",
        "tailor_processor_batch_duration_seconds_bucket",
        "tailor_store_duration_seconds_bucket",
        "tailor_recommender_duration_seconds_bucket",
        "tailor_processor_end_to_end_duration_seconds_bucket",
        "tailor_recommender_fallbacks_total",
    ] {
        assert!(
            used.contains(m),
            "{m} is used by no panel or rule: {used:?}"
        );
    }
    assert!(rule_exprs.len() >= 10 && panel_exprs.len() >= 15);
    // And it fails on what it should: a name or label the services do not export.
    for bad in [
        "rate(tailor_http_requests_totl[5m])",
        "rate(tailor_http_requests_total{code=\"500\"}[5m])",
        "sum by (partition) (tailor_spool_bytes)",
        "tailor_spool_bytes{spool=\"event\"}",
    ] {
        assert!(
            check_expr(bad, &e, &records).is_err(),
            "{bad} passed the check"
        );
    }
}

/// On the real backends the same windows fill: Redis round trips, Kafka delivery and the consumer
/// lag of each partition the group is assigned. (The only test here that runs Tailor in this process,
/// so the process-wide windows are its own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_kafka_and_redis_the_stages_and_the_lag_are_windowed() {
    let app = support::start(tailor_infra::testkit::real_config()).await;
    let tag = tailor_infra::testkit::unique("ops");
    let events: Vec<Value> = (0..5)
        .map(|i| {
            json!({"type": "page_view", "event_id": format!("{tag}-{i}"), "site_id": "demo",
                "anonymous_id": format!("{tag}-v"), "session_id": format!("{tag}-s"),
                "item_id": format!("item-{i}"), "url": "https://shop.example/p/1"})
        })
        .collect();
    let (status, body) = app.post(&json!(events)).await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = app.get("/v1/recommendations?site=demo&item=item-1").await;
    assert_eq!(status, 200);
    let report = app
        .until("/ops/latency", |r| {
            series(
                r,
                "flows",
                "processor_events",
                &json!({"outcome": "applied"}),
            )
            .is_some_and(|s| s["last_minute"]["count"].as_u64() >= Some(5))
                && series(r, "levels", "processor_consumer_lag", &json!({})).is_some()
        })
        .await;
    for (stage, labels) in [
        ("store", json!({"op": "apply"})),
        ("store", json!({"op": "read"})),
        ("processor_batch", json!({})),
        ("processor_end_to_end", json!({})),
        ("collector_delivery", json!({})),
        ("recommender", json!({})),
    ] {
        let s = series(&report, "stages", stage, &labels)
            .unwrap_or_else(|| panic!("{stage} {labels}: {report}"));
        assert!(s["last_minute"]["count"].as_u64() >= Some(1), "{s}");
        assert!(s["last_minute"]["p50"].as_f64() > Some(0.0), "{s}");
    }
    let events = series(
        &report,
        "endpoints",
        "/v1/events",
        &json!({"service": "collector"}),
    )
    .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(events["last_minute"]["count"], 1, "one request: {events}");
    assert_eq!(events["last_minute"]["error_rate"], 0.0, "{events}");
    app.stop().await;
}

/// deploy/k8s/*.yaml as JSON documents, read with the test venv's PyYAML.
/// deploy/k8s/*.yaml, sorted.
fn manifest_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root.join("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn manifests(root: &std::path::Path) -> Vec<(String, Value)> {
    let python = root.join("tests/clients/.venv/bin/python");
    let mut out = Vec::new();
    for f in manifest_files(root) {
        let json = std::process::Command::new(&python)
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
            ])
            .arg(&f)
            .output()
            .expect("the test venv is missing: run scripts/test.sh");
        assert!(
            json.status.success(),
            "{f:?}: {}",
            String::from_utf8_lossy(&json.stderr)
        );
        let docs: Vec<Value> = serde_json::from_slice(&json.stdout).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        out.extend(docs.into_iter().map(|d| (name.clone(), d)));
    }
    out
}

fn kubernetes_validate(
    root: &std::path::Path,
    files: &[std::path::PathBuf],
) -> std::process::Output {
    std::process::Command::new(root.join("tests/clients/.venv/bin/kubernetes-validate"))
        .args(["--strict", "--quiet", "--kubernetes-version", "1.33.0"])
        .args(files)
        .output()
        .expect(
            "kubernetes-validate is missing: run scripts/test.sh (tests/clients/requirements.txt)",
        )
}

#[test]
fn the_kubernetes_manifests_validate_and_run_what_the_binary_has() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("deploy/k8s");
    let files = manifest_files(&root);
    // The schemas of the Kubernetes API, strict: an unknown or misplaced field fails.
    let checked = kubernetes_validate(&root, &files);
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // The check can fail: one misspelt field is refused.
    let tmp = std::env::temp_dir().join(format!("tailor-k8s-{}.yaml", std::process::id()));
    let broken = std::fs::read_to_string(dir.join("recommender.yaml"))
        .unwrap()
        .replacen("  replicas: 2", "  replica: 2", 1);
    std::fs::write(&tmp, broken).unwrap();
    let refused = kubernetes_validate(&root, std::slice::from_ref(&tmp));
    std::fs::remove_file(&tmp).ok();
    assert!(!refused.status.success(), "a misspelt field passed");

    let docs = manifests(&root);
    let kinds: Vec<String> = docs
        .iter()
        .map(|(_, d)| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "StatefulSet/tailor-collector",
        "HorizontalPodAutoscaler/tailor-collector",
        "PodDisruptionBudget/tailor-collector",
        "Deployment/tailor-processor",
        "PodDisruptionBudget/tailor-processor",
        "Deployment/tailor-recommender",
        "HorizontalPodAutoscaler/tailor-recommender",
        "PodDisruptionBudget/tailor-recommender",
        "ConfigMap/tailor-config",
        "Secret/tailor-secrets",
    ] {
        assert!(kinds.iter().any(|k| k == want), "{want} missing: {kinds:?}");
    }

    // The configuration the pods mount is one Tailor accepts.
    let toml = docs
        .iter()
        .find(|(_, d)| d["kind"] == "ConfigMap")
        .map(|(_, d)| d["data"]["tailor.toml"].as_str().unwrap().to_string())
        .unwrap();
    let config =
        tailor_core::config::Config::from_toml(&toml).expect("the ConfigMap's tailor.toml");
    config.validate().expect("the ConfigMap's tailor.toml");

    for (file, d) in docs
        .iter()
        .filter(|(_, d)| d["spec"]["template"].is_object())
    {
        let pod = &d["spec"]["template"]["spec"];
        for c in pod["containers"].as_array().unwrap() {
            // The command is one the binary takes (clap refuses an unknown command or option before
            // it prints the help).
            let command: Vec<&str> = c["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(command[0], "tailor", "{file}");
            let help = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
                .args(&command[1..])
                .arg("--help")
                .output()
                .unwrap();
            assert!(
                help.status.success(),
                "{file}: {command:?}: {}",
                String::from_utf8_lossy(&help.stderr)
            );
            // Probes reach the port the service listens on, at the health routes every service has.
            let listen = command.iter().position(|a| *a == "--listen").unwrap();
            let port: u64 = command[listen + 1]
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(c["ports"][0]["containerPort"], port, "{file}");
            assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{file}");
            assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{file}");
            assert!(
                c["resources"]["requests"]["cpu"].is_string(),
                "{file}: no CPU request"
            );
        }
    }

    // The collector's spool is on its per-pod volume, where the config puts it.
    let collector = docs
        .iter()
        .find(|(_, d)| d["kind"] == "StatefulSet")
        .map(|(_, d)| d)
        .unwrap();
    let mounts = &collector["spec"]["template"]["spec"]["containers"][0]["volumeMounts"];
    let spool = mounts
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "spool")
        .expect("the collector mounts its spool volume");
    assert_eq!(
        spool["mountPath"].as_str().unwrap(),
        config.collector.spool_dir.to_str().unwrap()
    );
    assert_eq!(
        collector["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "spool"
    );
    // Processors beyond the partition count would idle.
    let processors = docs
        .iter()
        .find(|(_, d)| d["metadata"]["name"] == "tailor-processor" && d["kind"] == "Deployment")
        .map(|(_, d)| d["spec"]["replicas"].as_u64().unwrap())
        .unwrap();
    assert!(processors <= config.kafka.partitions as u64);
}
