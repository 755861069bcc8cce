//! Unreachable backends are loud: an operator command (`tailor replay`) gives up after its `--wait`
//! with one message naming the address and the option to fix, and deletes nothing; a service
//! (`tailor processor`) logs what it is waiting for instead of hanging silently.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::Reaped;

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

#[tokio::test]
async fn a_service_says_what_it_waits_for() {
    let redis = format!("redis://127.0.0.1:{}", closed_port());
    let kafka = format!("127.0.0.1:{}", closed_port());
    let mut child = tailor(&[
        "processor",
        "--listen",
        "127.0.0.1:0",
        "--kafka",
        &kafka,
        "--redis",
        &redis,
    ]);
    let stderr = child.stderr.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("waiting for Redis"))
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line)
        .await
        .expect("the processor said nothing about Redis")
        .unwrap()
        .expect("a log line about Redis");
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
    let mut child = tailor(&[
        "processor",
        "--listen",
        "127.0.0.1:0",
        "--kafka",
        &kafka,
        "--redis",
        &redis,
    ]);
    let stderr = child.stderr.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("waiting for Kafka"))
            .take(2)
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(90), lines)
        .await
        .expect("the processor said nothing about Kafka")
        .unwrap();
    assert_eq!(lines.len(), 2, "it tries again: {lines:?}");
    assert!(lines[0].contains(&kafka), "{lines:?}");
    assert!(lines[0].contains("kafka.brokers / --kafka"), "{lines:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "a service keeps waiting"
    );
}
