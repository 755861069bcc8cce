//! The collection stage's promises, through the public HTTP API on the real broker and Redis: a batch
//! keeps its good events, every rejected one is a counted, inspectable dead letter that `tailor
//! dead-letters` lists and re-drives (once the cause is fixed, counted once however often re-driven),
//! events are enriched before Kafka, and the edge protections (CORS allowlist, gzip bodies, per-IP rate
//! limit) answer as documented.

mod support;

use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use support::{start, App};
use tailor_core::config::{Config, SiteConfig};
use tailor_core::Event;
use tailor_infra::bus::kafka::{KafkaSettings, KafkaTopicReader};
use tailor_infra::bus::TopicReader;
use tailor_infra::testkit;

/// What these tests need beyond the shared helpers.
trait CollectionApp {
    async fn post_from(&self, body: &Value, origin: &str) -> (u16, Value);
    fn cli(&self, args: &[&str]) -> String;
}

impl CollectionApp for App {
    async fn post_from(&self, body: &Value, origin: &str) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/events", self.base))
            .header("origin", origin)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Runs the `tailor` binary against this instance.
    fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
            .args(args)
            .args(["--url", &self.base])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "tailor {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

fn view(id: &str, site: &str, member: &str, item: &str) -> Value {
    json!({"type": "page_view", "event_id": id, "site_id": site, "anonymous_id": format!("{member}-dev"),
        "member_id": member, "item_id": item,
        "url": "https://shop.example/p/1?utm_source=google&utm_medium=cpc&utm_campaign=spring",
        "referrer": "https://www.google.com/search?q=shoes"})
}

fn config() -> Config {
    let mut c = testkit::real_config();
    c.sites[0].allowed_origins = vec!["https://shop.example".into()];
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batches_dead_letters_redrive_and_enrichment() {
    let config = config();
    let app = start(config.clone()).await;

    // One bad event does not sink its batch.
    let batch = json!([
        view("c-1", "demo", "carol", "a"),
        {"type": "page_view", "site_id": "demo", "event_id": "c-2"},
        view("c-3", "demo", "carol", "b"),
    ]);
    let (status, body) = app.post(&batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["event_ids"], json!(["c-1", "c-3"]));
    assert_eq!(body["rejected"][0]["index"], 1);
    assert_eq!(body["rejected"][0]["field"], "anonymous_id");
    assert_eq!(body["rejected"][0]["kind"], "missing_field");

    // A batch with nothing usable is a 400, and still dead-lettered.
    let (status, body) = app.post(&json!([view("d-1", "shop2", "dave", "x")])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "site_id");
    let (status, body) = app
        .http
        .post(format!("{}/v1/events", app.base))
        .body("{oops")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 400);
    drop(body);

    // The events reach Kafka enriched.
    let events = KafkaTopicReader::new(&KafkaSettings {
        brokers: testkit::kafka_brokers(),
        topic: config.kafka.topic.clone(),
        delivery_timeout: Duration::from_secs(5),
        fetch_wait: tailor_infra::bus::kafka::FETCH_WAIT,
    });
    let got = events.read_all(100).await.unwrap();
    let e: Event = got
        .iter()
        .map(|m| serde_json::from_slice::<Event>(&m.payload).unwrap())
        .find(|e| e.event_id.as_str() == "c-1")
        .expect("c-1 on the topic");
    let ctx = serde_json::to_value(&e.context).unwrap();
    assert_eq!(ctx["source"], "api", "{ctx}");
    assert_eq!(ctx["browser"], "Chrome", "{ctx}");
    assert_eq!(ctx["device"], "desktop", "{ctx}");
    assert_eq!(
        ctx["ip"], "127.0.0.0",
        "raw IPs are not kept by default: {ctx}"
    );
    assert_eq!(ctx["referrer_class"], "search", "{ctx}");
    assert_eq!(ctx["campaign"]["name"], "spring", "{ctx}");
    assert_eq!(ctx["campaign"]["medium"], "cpc", "{ctx}");

    // Every rejection is listed with its reason and raw payload.
    let listing = app
        .until("/admin/dead-letters?limit=10", |l| l["matching"] == 3)
        .await;
    assert_eq!(listing["by_reason"]["missing_field"], 1, "{listing}");
    assert_eq!(listing["by_reason"]["unknown_site"], 1, "{listing}");
    assert_eq!(listing["by_reason"]["malformed"], 1, "{listing}");
    let missing = listing["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "missing_field")
        .unwrap();
    assert_eq!(missing["index"], 1);
    assert_eq!(missing["source"], "api");
    assert!(missing["payload"].as_str().unwrap().contains("c-2"));
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tailor_collector_events_total")
                && l.contains("reason=\"unknown_site\"")),
        "rejections are counted by reason"
    );
    let table = app.cli(&["dead-letters", "list", "--reason", "unknown_site"]);
    assert!(
        table.contains("3 dead letter(s) in the topic, 1 matching"),
        "{table}"
    );
    assert!(table.contains("unknown site"), "{table}");
    app.stop().await;

    // The operator adds the missing site and re-drives: the event lands, once, however often re-driven.
    let mut fixed = config.clone();
    fixed.sites.push(SiteConfig {
        id: "shop2".into(),
        name: "Second shop".into(),
        snowplow_app_ids: vec![],
        segment_write_keys: vec![],
        allowed_origins: vec![],
        // Open like the file-less demo site: this test is not about keys (isolation.rs is).
        keys: vec![],
        open: true,
    });
    let app = start(fixed).await;
    let out = app.cli(&[
        "dead-letters",
        "redrive",
        "--all",
        "--reason",
        "unknown_site",
    ]);
    assert!(
        out.contains("re-drove 1: 1 accepted, 0 still rejected"),
        "{out}"
    );
    let out = app.cli(&[
        "dead-letters",
        "redrive",
        "--all",
        "--reason",
        "missing_field",
    ]);
    assert!(out.contains("0 accepted, 1 still rejected"), "{out}");
    app.until("/v1/profiles/dave?site=shop2", |p| {
        p["event_counts"]["page_view"] == 1
    })
    .await;
    app.cli(&[
        "dead-letters",
        "redrive",
        "--all",
        "--reason",
        "unknown_site",
    ]);
    // A later event from the same device is applied after the second re-drive.
    let (status, body) = app.post(&view("d-2", "shop2", "dave", "y")).await;
    assert_eq!(status, 202, "{body}");
    let p = app
        .until("/v1/profiles/dave?site=shop2", |p| {
            p["recent_items"].as_array().is_some_and(|r| r.len() == 2)
        })
        .await;
    assert_eq!(
        p["event_counts"]["page_view"], 2,
        "re-driven twice, counted once: {p}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_protections() {
    let mut config = config();
    config.collector.rate_limit_per_sec = 1;
    config.collector.rate_limit_burst = 7;
    config.collector.request_timeout_ms = 2500;
    config.kafka.delivery_timeout_ms = 1000;
    let app = start(config).await;
    let url = format!("{}/v1/events", app.base);

    // CORS: an allowed origin is echoed (with credentials, as the Snowplow tracker needs); others not.
    let pre = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = pre("https://shop.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let evil = pre("https://evil.example").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    // The tag's offer slots read recommendations cross-origin; member profiles are never served so.
    let recs = app
        .http
        .get(format!(
            "{}/v1/recommendations?site=demo&anonymous=x",
            app.base
        ))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        recs.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let profile = app
        .http
        .get(format!("{}/v1/profiles/x?site=demo", app.base))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert!(profile
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    // A page on another origin cannot write the site's events (and the attempt is a dead letter).
    let (status, body) = app
        .post_from(&view("e-1", "demo", "erin", "a"), "https://evil.example")
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["field"], "origin", "{body}");

    // A gzip body is accepted.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(
        serde_json::to_string(&view("e-2", "demo", "erin", "a"))
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let r = app
        .http
        .post(&url)
        .header("content-encoding", "gzip")
        .header("origin", "https://shop.example")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());

    // A client that stalls mid-body is cut off with 408 instead of holding a connection forever.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stalled
        .write_all(b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"type\"")
        .await
        .unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut answer))
        .await
        .expect("the collector answers a stalled upload")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Over its burst, a client is told to slow down.
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = app
            .http
            .post(&url)
            .json(&view(&format!("e-r{i}"), "demo", "erin", "b"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            assert!(r.headers().get("retry-after").is_some());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 202, "{statuses:?}");
    app.stop().await;
}
