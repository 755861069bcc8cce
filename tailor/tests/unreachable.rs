//! Unreachable backends are loud: an operator command (`tailor replay`) gives up after its `--wait`
//! with one message naming the address and the option to fix, and deletes nothing; a service
//! (`tailor processor`) logs what it is waiting for instead of hanging silently.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;
// A loopback port nothing listens on.
use support::servers::free_port as closed_port;
use support::Reaped;

fn tailor(args: &[&str]) -> Reaped {
    Reaped(
        Command::new(env!("CARGO_BIN_EXE_tailor"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test]
async fn replay_gives_up_on_redis_with_one_message() {
    let redis = format!("redis://127.0.0.1:{}", closed_port());
    let kafka = format!("127.0.0.1:{}", closed_port());
    let mut child = tailor(&[
        "replay", "--yes", "--wait", "2", "--kafka", &kafka, "--redis", &redis,
    ]);
    let status = child
        .exits_within(Duration::from_secs(60))
        .await
        .expect("replay gave up instead of waiting forever");
    assert!(!status.success());
    let mut err = String::new();
    child
        .stderr
        .as_mut()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains(&format!(
            "cannot reach Redis at {redis} (redis.url / --redis): gave up after 2 s"
        )),
        "{err}"
    );
    assert!(!err.contains("deleted"), "{err}");
}

/// Starts `tailor processor` on `kafka` and `redis` and returns it with the first `n` lines of its
/// log that contain `waiting`, once they came (within `within`).
async fn processor_waiting(
    kafka: &str,
    redis: &str,
    waiting: &'static str,
    n: usize,
    within: Duration,
) -> (Reaped, Vec<String>) {
    let mut child = tailor(&[
        "processor",
        "--listen",
        "127.0.0.1:0",
        "--kafka",
        kafka,
        "--redis",
        redis,
    ]);
    let stderr = child.stderr.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(waiting))
            .take(n)
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(within, lines)
        .await
        .unwrap_or_else(|_| panic!("the processor never logged {waiting:?}"))
        .unwrap();
    (child, lines)
}

#[tokio::test]
async fn a_service_says_what_it_waits_for() {
    let redis = format!("redis://127.0.0.1:{}", closed_port());
    let kafka = format!("127.0.0.1:{}", closed_port());
    let (mut child, lines) = processor_waiting(
        &kafka,
        &redis,
        "waiting for Redis",
        1,
        Duration::from_secs(60),
    )
    .await;
    let line = lines.first().expect("a log line about Redis");
    assert!(line.contains(&redis), "{line}");
    assert!(line.contains("redis.url / --redis"), "{line}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "a service keeps waiting"
    );
}

/// A processor whose broker does not answer waits for it (as for Redis), saying so, instead of
/// exiting: an orchestrator restarting it while the broker is slow would otherwise see it crash in a
/// loop. (Needs Redis: the processor reaches Redis first.)
#[tokio::test]
async fn a_processor_waits_for_its_broker() {
    let kafka = format!("127.0.0.1:{}", closed_port());
    let redis = tailor_infra::testkit::redis_url();
    let (mut child, lines) = processor_waiting(
        &kafka,
        &redis,
        "waiting for Kafka",
        2,
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(lines.len(), 2, "it tries again: {lines:?}");
    assert!(lines[0].contains(&kafka), "{lines:?}");
    assert!(lines[0].contains("kafka.brokers / --kafka"), "{lines:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "a service keeps waiting"
    );
}
