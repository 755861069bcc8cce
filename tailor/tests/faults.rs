//! Faults under load: the pipeline recovers from each by itself, and every acknowledged event is
//! counted exactly once. The servers here are real and this test's own (a redis-server and a Tansu
//! broker on ephemeral ports), so they can be killed and restarted while the suite's shared ones stay
//! up.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::servers::Redis;
use support::{start, App};
use tailor_infra::testkit;

/// How long the pipeline may take to resume by itself after a fault has ended.
const RECOVER_WITHIN: Duration = Duration::from_secs(30);

fn view(member: &str, n: usize) -> Value {
    json!({"type": "page_view", "event_id": format!("{member}-{n}"), "site_id": "demo",
        "anonymous_id": format!("{member}-device"), "member_id": member, "item_id": format!("item-{}", n % 5)})
}

async fn acknowledge(app: &App, event: &Value) {
    let (status, body) = app.post(event).await;
    assert_eq!(status, 202, "{body}");
}

async fn status_of(app: &App, path: &str) -> u16 {
    app.http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// redis-server is SIGKILLed while the processor works and restarted on the same port: the
/// processor resumes applying events without anyone restarting it, and stays alive meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_resumes_after_redis_is_killed_and_restarted() {
    let dir = testkit::temp_dir("faults-redis");
    let mut redis = Redis::start(&dir);
    let mut config = testkit::real_config();
    config.redis.url = Some(redis.url());
    let app = start(config).await;

    let mut sent = 0;
    for _ in 0..5 {
        acknowledge(&app, &view("rita", sent)).await;
        sent += 1;
    }
    app.until_page_views("rita", sent as i64, RECOVER_WITHIN)
        .await;

    redis.kill();
    // Accepted meanwhile (the bus does not need the store); the processor meets the dead store.
    for _ in 0..5 {
        acknowledge(&app, &view("rita", sent)).await;
        sent += 1;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status_of(&app, "/readyz").await, 503, "the store is down");

    redis.restart();
    app.until_page_views("rita", sent as i64, RECOVER_WITHIN)
        .await;
    for _ in 0..5 {
        acknowledge(&app, &view("rita", sent)).await;
        sent += 1;
    }
    app.until_page_views("rita", sent as i64, RECOVER_WITHIN)
        .await;
    assert_eq!(status_of(&app, "/readyz").await, 200);
    assert_eq!(status_of(&app, "/healthz").await, 200);
    app.stop().await;
}

/// A processor whose group's only partition is owned by another member, while the topic has a
/// backlog, is not ready (and says why, in `/readyz` and its metrics); once the other member leaves,
/// it takes the partition over, works through the backlog and is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_that_owns_no_partition_while_its_group_has_a_backlog_is_not_ready() {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use tailor_infra::bus::kafka::{ensure_topic, KafkaSettings};

    let mut config = testkit::real_config();
    config.kafka.partitions = 1;
    let settings = KafkaSettings {
        brokers: config.kafka.brokers.clone().unwrap(),
        topic: config.kafka.topic.clone(),
        delivery_timeout: Duration::from_secs(10),
    };
    ensure_topic(&settings, 1, 1, &[]).await.unwrap();
    // Another member of the group owns the partition first, reads and never commits. Its client id
    // sorts before the processors' (`tailor`), so the range assignor leaves it the partition when
    // the processor joins.
    let blocker: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", "0-blocker")
        .set("group.id", &config.kafka.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()
        .unwrap();
    blocker.subscribe(&[&settings.topic]).unwrap();
    let blocker = std::sync::Arc::new(blocker);
    let polling = {
        let b = blocker.clone();
        tokio::spawn(async move {
            loop {
                let _ = b.recv().await;
            }
        })
    };
    let deadline = tokio::time::Instant::now() + RECOVER_WITHIN;
    while blocker.assignment().unwrap().count() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the blocker got no partition"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let app = start(config).await;
    for n in 0..5 {
        acknowledge(&app, &view("nora", n)).await;
    }
    let deadline = tokio::time::Instant::now() + RECOVER_WITHIN;
    loop {
        let r = app
            .http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap();
        let (status, body) = (r.status().as_u16(), r.text().await.unwrap());
        if status == 503 && body.contains("owns no partition") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("tailor_processor_assigned_partitions 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tailor_processor_backlog 5\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tailor_backend_ready{check=\"consuming\"} 0\n"),
        "{metrics}"
    );

    // The other member leaves: the processor takes over, catches up and is ready.
    polling.abort();
    let _ = polling.await;
    drop(blocker);
    app.until_page_views("nora", 5, support::CONVERGE_WITHIN)
        .await;
    let deadline = tokio::time::Instant::now() + RECOVER_WITHIN;
    while status_of(&app, "/readyz").await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.stop().await;
}
