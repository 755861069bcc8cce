//! Nothing acknowledged is lost: a real Kafka-protocol broker (a tansu process of this test's own, so
//! the suite's shared broker stays up) is stopped while the collector keeps answering 202 from its
//! on-disk spool; the collector itself is restarted during the outage; only a full spool answers 503;
//! when the broker returns, the spool drains in order and every acknowledged event is counted once.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::servers::Broker;
use support::{start, App};
use tailor_infra::testkit;

/// The spool drains with backoff after the broker returns, so allow more than the usual convergence.
const OUTAGE_CONVERGE_WITHIN: Duration = Duration::from_secs(90);

/// POSTs one event and returns the status, the `Retry-After` header and the body.
async fn post(app: &App, body: &Value) -> (u16, Option<String>, Value) {
    let r = app
        .http
        .post(format!("{}/v1/events", app.base))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

fn view(n: usize) -> Value {
    json!({"type": "page_view", "event_id": format!("outage-{n}"), "site_id": "demo",
        "anonymous_id": "bob-laptop", "member_id": "bob", "item_id": format!("item-{n}")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_broker_outage_and_a_collector_restart() {
    let dir = testkit::temp_dir("outage");
    let mut broker = Broker::start(&dir);
    let mut config = testkit::real_config();
    config.kafka.brokers = Some(broker.address());
    config.kafka.delivery_timeout_ms = 2000;
    // Room for a few dozen events, so the test also reaches "full".
    config.collector.spool_max_bytes = 16 * 1024;
    // Readiness turns red this long after the bus stopped confirming spooled records.
    config.collector.spool_stall_secs = 2;

    let app = start(config.clone()).await;
    let mut acked = 0;
    for _ in 0..5 {
        let (status, _, body) = post(&app, &view(acked)).await;
        assert_eq!(status, 202, "{body}");
        acked += 1;
    }
    app.until_page_views("bob", acked as i64, OUTAGE_CONVERGE_WITHIN)
        .await;

    // The broker goes away: events are still acknowledged, from the spool, until it is full.
    broker.stop();
    for _ in 0..3 {
        let (status, _, body) = post(&app, &view(acked)).await;
        assert_eq!(status, 202, "{body}");
        acked += 1;
    }
    // Records wait and the bus confirms none of them: not ready, and the metric says for how long.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = ready(&app).await;
        if status == 503 {
            assert!(body.contains("confirmed nothing"), "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still ready: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let waited = metric(&app, "tailor_spool_unconfirmed_seconds{spool=\"events\"}").await;
    assert!(waited > 2.0, "{waited}");
    let mut refused = None;
    for _ in 0..500 {
        let (status, retry, body) = post(&app, &view(acked)).await;
        match status {
            202 => acked += 1,
            503 => {
                assert!(retry.is_some(), "503 without Retry-After: {body}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("spool is full"),
                    "{body}"
                );
                refused = Some(body);
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused.is_some(), "the spool never filled up");
    assert!(acked > 10, "only {acked} events spooled");
    let (status, _) = ready(&app).await;
    assert_eq!(status, 503, "a full spool makes the collector unready");
    // And the alert rules see it (deploy/prometheus/alerts.yml: TailorNotReady, TailorSpoolFull).
    let text = app.metrics().await;
    assert!(
        text.contains("tailor_backend_ready{check=\"bus\"} 0\n"),
        "{text}"
    );
    let full = "tailor_spool_records_total{spool=\"events\",outcome=\"full\"}";
    assert!(metric(&app, full).await > 0.0, "{text}");

    // The collector restarts while the broker is still away: what it spooled is still there.
    app.stop().await;
    let app = start(config.clone()).await;
    let spooled_bytes = metric(&app, "tailor_spool_bytes{spool=\"events\"}").await;
    assert!(
        spooled_bytes > 0.0,
        "spool empty after restart ({spooled_bytes})"
    );

    // The broker returns: the spool drains, every acknowledged event is counted exactly once.
    broker.restart();
    app.until_page_views("bob", acked as i64, OUTAGE_CONVERGE_WITHIN)
        .await;
    let (status, _, body) = post(&app, &view(acked)).await;
    assert_eq!(status, 202, "{body}");
    acked += 1;
    app.until_page_views("bob", acked as i64, OUTAGE_CONVERGE_WITHIN)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.page_views("bob").await, acked as i64);
    let (status, body) = ready(&app).await;
    assert_eq!(status, 200, "drained and consuming: {body}");
    app.stop().await;
}

async fn ready(app: &App) -> (u16, String) {
    let r = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn metric(app: &App, name: &str) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
