//! The README's examples work as written: the shell blocks of "Send events" and "Work with the
//! profiles" are read from README.md itself (so the two cannot drift apart) and run with bash against
//! `tailor run`, which must answer the README's recommendation request with items.
//!
//! What the test changes, and nothing else: `localhost:8080` becomes the port `tailor run --listen
//! 127.0.0.1:0` bound, `TAILOR_URL` points the `tailor` commands at it (as the README says to do once
//! `--listen` moved the server), the `tailor` built for the test is first on `PATH`, and the commands
//! run in a directory holding the `orders.csv` and `products.csv` the README imports. Lines whose comment says
//! `(needs Kafka and Redis)` are skipped: `tailor run` here is the embedded mode, which keeps nothing
//! to replay or export (`tailor/tests/replay.rs` and `warehouse.rs` cover those commands on the real
//! broker and Redis). The README's request for recommendations is asked again until the asynchronous
//! pipeline has caught up, as the README says to.
//!
//! It also checks that `tailor run`'s logs, written to a pipe, carry no terminal colour codes.

mod support;

use std::process::Command;
use std::time::Duration;

/// The marker of README lines this test skips, and why (see the module docs).
const SKIP_MARKER: &str = "(needs Kafka and Redis)";

/// The first ```sh block after the heading `## {section}` of README.md.
fn readme_block(section: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let after = readme
        .split_once(&format!("\n## {section}\n"))
        .unwrap_or_else(|| panic!("README.md has no section {section:?}"))
        .1;
    let block = after
        .split_once("```sh\n")
        .unwrap_or_else(|| panic!("section {section:?} has no sh block"))
        .1;
    block.split_once("```").unwrap().0.to_string()
}

/// The block with the port substituted and the marked lines left out.
fn runnable(block: &str, port: u16) -> (String, usize) {
    let mut skipped = 0;
    let lines: Vec<&str> = block
        .lines()
        .filter(|l| {
            let skip = l.contains(SKIP_MARKER);
            skipped += usize::from(skip);
            !skip
        })
        .collect();
    let script = lines
        .join("\n")
        .replace("localhost:8080", &format!("127.0.0.1:{port}"));
    (script, skipped)
}

/// Runs `script` with bash (stopping at the first failing command) in `dir`: success, stdout, stderr.
fn run(script: &str, dir: &std::path::Path, url: &str) -> (bool, String, String) {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_tailor"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("TAILOR_URL", url)
        .output()
        .expect("run bash");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `script`; fails the test unless every command succeeds without an error answer.
fn bash(script: &str, dir: &std::path::Path, url: &str) -> String {
    let (ok, stdout, stderr) = run(script, dir, url);
    assert!(
        ok,
        "the README's commands failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        !stdout.contains(r#"{"error""#),
        "an error answer:\n{script}\n{stdout}"
    );
    stdout
}

/// Runs `line` until its JSON answer satisfies `done`, at most [`support::CONVERGE_WITHIN`].
async fn until(
    line: &str,
    dir: &std::path::Path,
    url: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
    loop {
        let (_, out, _) = run(line, dir, url);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) {
            if done(&v) {
                return v;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{line} did not converge: {out}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A small order history for the README's `tailor import --site demo orders.csv`.
/// The catalog the README imports (docs/catalog.md's CSV format).
const PRODUCTS: &str = "item_id,title,url,price,currency,category,brand,in_stock,tags\n\
    tent-2p,Dome Tent 2P,/p/tent-2p,129.90,EUR,outdoor/tents,Acme,yes,summer\n\
    stove-1,Camp Stove,/p/stove-1,45.00,EUR,outdoor/cooking,Acme,yes,\n\
    socks-wool,Wool Socks,/p/socks-wool,12.00,EUR,apparel/socks,Knit,yes,repeatable\n";

const ORDERS: &str = "member_id,date,revenue,order_id,item_id\n\
    m-1,1997-01-03,29.33,o-1,tent-2p\n\
    m-1,1997-03-14,12.50,o-2,stove-1\n\
    m-2,1997-02-01,7.99,o-3,socks-wool\n\
    m-3,1997-02-11,45.00,o-4,tent-2p\n\
    m-3,1997-05-20,19.00,o-5,socks-wool\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_work_as_written() {
    let send = readme_block("Send events");
    let profiles = readme_block("Work with the profiles");

    let run = support::tailor_run(&[]);
    let (port, url) = (run.port, run.base.clone());
    let dir = tailor_infra::testkit::temp_dir("readme");
    std::fs::write(dir.join("orders.csv"), ORDERS).unwrap();
    std::fs::write(dir.join("products.csv"), PRODUCTS).unwrap();

    let (script, skipped) = runnable(&send, port);
    assert_eq!(skipped, 0, "every line of Send events runs");
    bash(&script, &dir, &url);
    let ask = script
        .lines()
        .find(|l| l.contains("/v1/recommendations"))
        .expect("Send events asks for recommendations");
    let recs = until(ask, &dir, &url, |r| {
        r["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(recs["items"][0]["item_id"], "stove-1", "{recs}");

    let (script, skipped) = runnable(&profiles, port);
    assert_eq!(
        skipped, 2,
        "only replay and export are skipped:\n{profiles}"
    );
    let first = script.lines().next().unwrap();
    assert!(first.contains("/v1/profiles/m-42"), "{first}");
    // The README's member exists once the identify event is mined.
    until(first, &dir, &url, |p| p["member_id"] == "m-42").await;
    let out = bash(&script, &dir, &url);
    assert!(out.contains("\"member_id\":\"m-42\""), "{out}");
    assert!(out.contains("events accepted, 0 rejected"), "{out}");

    let logs = run.logs.lock().unwrap().clone();
    assert!(logs.contains("listening"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes in logs written to a pipe:\n{logs}"
    );
}
