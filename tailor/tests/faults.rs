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
