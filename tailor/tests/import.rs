//! `tailor import` fails loudly: a site the running Tailor does not know is refused before anything
//! is sent, with one message and a non-zero exit; rejected records are summed up by reason (not one
//! line each) and make the exit non-zero; a Tailor that does not answer is given up on after `--wait`.
//! The binary against `tailor run`'s code on the embedded default.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::{start, Reaped};
use tailor_core::config::Config;

fn import(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tailor"))
        .arg("import")
        .args(args)
        .output()
        .expect("run tailor import")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sites_and_rejections_fail_with_one_summary() {
    let app = start(Config::default()).await;
    let dir = tailor_infra::testkit::temp_dir("import");
    let orders = dir.join("orders.csv");
    std::fs::write(
        &orders,
        "member_id,date,revenue,order_id\nm1,1997-01-01,29.33,o1\nm2,1997-01-02,5,o2\n",
    )
    .unwrap();
    let orders = orders.to_str().unwrap();

    // A site the running Tailor does not know: one message, non-zero, nothing sent.
    let out = import(&["--site", "shop", orders, "--url", &app.base]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(r#"site shop is not configured: add [[sites]] id = "shop" to the config"#),
        "{err}"
    );
    assert_eq!(err.matches("shop").count(), 2, "one message: {err}");
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    let (status, letters) = app.get("/admin/dead-letters").await;
    assert_eq!(status, 200);
    assert_eq!(letters["total"], 0, "nothing was sent: {letters}");

    // A known site imports and exits 0.
    let out = import(&["--site", "demo", orders, "--url", &app.base]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("2 events accepted, 0 rejected"),
        "{}",
        text(&out.stdout)
    );

    // Too few customers for the lifetime-value models: the fit says so instead of bare nulls.
    let out = Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(["clv", "fit", "--site", "demo", "--url", &app.base])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(fit["r"].is_null(), "{fit}");
    let notes = fit["notes"].to_string();
    assert!(
        notes.contains("fewer than processor.min_customers_for_fit (50)"),
        "{fit}"
    );
    assert!(
        notes.contains("BG/NBD (r, alpha, a, b) not fitted"),
        "{fit}"
    );
    assert!(
        text(&out.stderr).contains("note: ") && text(&out.stderr).contains("min_customers_for_fit"),
        "{}",
        text(&out.stderr)
    );

    // Rejected records: counted by reason, a few examples, non-zero exit.
    let mut lines = vec![r#"{"type":"page_view","anonymous_id":"a"}"#.to_string()];
    for i in 0..12 {
        lines.push(format!(r#"{{"type":"page_view","event_id":"bad-{i}"}}"#));
    }
    for i in 0..3 {
        lines.push(format!(r#"{{"type":"teleport","anonymous_id":"t{i}"}}"#));
    }
    let jsonl = dir.join("events.jsonl");
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let out = import(&[
        "--site",
        "demo",
        jsonl.to_str().unwrap(),
        "--url",
        &app.base,
        "--batch",
        "4",
    ]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("1 events accepted, 15 rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("missing_field: 12"), "{stdout}");
    assert!(stdout.contains("unknown_type: 3"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains("event ")).count(),
        5,
        "a few examples, not one line per record: {stdout}"
    );
    assert!(
        text(&out.stderr).contains("15 of 16 events were rejected"),
        "{}",
        text(&out.stderr)
    );
    app.stop().await;
}

#[tokio::test]
async fn nothing_listening_gives_up_after_the_wait() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_tailor"))
            .args(["import", "--site", "demo", "nowhere.csv", "--url", &url])
            .args(["--wait", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = child
        .exits_within(Duration::from_secs(60))
        .await
        .expect("import gave up instead of retrying forever");
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        err.contains(&format!("no Tailor answers at {url}")),
        "{err}"
    );
    assert!(err.contains("--url (or TAILOR_URL)"), "{err}");
}
