//! The README's and the docs' shell examples work as written: every ```sh block of docs/*.md, and the
//! README's "Send events" and "Work with the profiles" blocks, are read from the files themselves (so
//! the two cannot drift apart) and run with bash against `tailor run`, which must answer the README's
//! recommendation request with items.
//!
//! What the test changes, and nothing else: `localhost:8080` becomes the port `tailor run --listen
//! 127.0.0.1:0` bound, `TAILOR_URL` points the `tailor` commands at it (as the README says to do once
//! `--listen` moved the server), the `tailor` built for the test is first on `PATH`, `curl` also
//! reports each answer's status on stderr, and the commands run in a directory holding the
//! `orders.csv`, `products.csv` and `products.jsonl` the examples import.
//!
//! A block is split into commands as bash reads them (a command continues over a trailing `\` and
//! over a quoted string's line breaks). A command is skipped only when its comment carries one of
//! [`SKIP_MARKERS`], each with its reason: `tailor run` here is the embedded mode, which keeps nothing
//! to replay or export (`tailor/tests/replay.rs` and `warehouse.rs` cover those commands on the real
//! broker and Redis), and the offline evaluations and load runs take minutes on the full data (their
//! figures are the docs' tables). How many commands each file skips, and why, is asserted, so a skip
//! cannot grow silently. Every other command must succeed; each of its `curl`s must answer a status
//! below 400, unless the docs mark the command's answer (`# → 404` on its line or on the comment line
//! right after it), which it must then answer. Shell commands in a block not labelled `sh` fail the
//! test, so an example cannot escape by its label.
//!
//! The README's request for recommendations is asked again until the asynchronous pipeline has caught
//! up, as the README says to. The test also checks that `tailor run`'s logs, written to a pipe, carry
//! no terminal colour codes.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The markers of commands the tests skip; each says why (see the module docs).
const SKIP_MARKERS: [&str; 3] = [
    "(needs Kafka and Redis)",
    "(full data: minutes; see the table)",
    "(release build: minutes)",
];

/// Every docs file with ```sh blocks, and how many of its commands are skipped for which marker.
const DOCS_SKIPS: [(&str, &[(&str, usize)]); 9] = [
    ("api.md", &[]),
    (
        "benchmarks.md",
        &[
            ("(needs Kafka and Redis)", 25),
            ("(release build: minutes)", 28),
        ],
    ),
    ("catalog.md", &[]),
    ("marketing.md", &[]),
    ("mining.md", &[]),
    (
        "quality.md",
        &[
            ("(full data: minutes; see the table)", 9),
            ("(release build: minutes)", 1),
        ],
    ),
    (
        "reliability.md",
        &[
            ("(needs Kafka and Redis)", 8),
            ("(release build: minutes)", 1),
        ],
    ),
    (
        "scaling.md",
        &[
            ("(needs Kafka and Redis)", 3),
            ("(release build: minutes)", 1),
        ],
    ),
    ("security.md", &[]),
];

/// What a block not labelled `sh` must not start with: a command a user would type in a shell.
const SHELL_STARTS: [&str; 4] = ["curl ", "tailor ", "cargo ", "$ "];

/// The curl that also writes `@status <code>` to stderr after each answer.
const CURL_REPORTS_STATUS: &str =
    "curl() { command curl -w '%{stderr}\\n@status %{http_code}\\n' \"$@\"; }\n";

/// The fenced blocks of a Markdown text, in order: the label after the opening fence, and the body.
fn fences(markdown: &str) -> Vec<(&str, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(&str, String)> = None;
    for line in markdown.lines() {
        match (line.strip_prefix("```"), open.take()) {
            (Some(label), None) => open = Some((label.trim(), String::new())),
            (Some(_), Some(block)) => blocks.push(block),
            (None, Some((label, mut body))) => {
                body.push_str(line);
                body.push('\n');
                open = Some((label, body));
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    blocks
}

/// The first ```sh block after the heading `## {section}` of README.md.
fn readme_block(section: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let after = readme
        .split_once(&format!("\n## {section}\n"))
        .unwrap_or_else(|| panic!("README.md has no section {section:?}"))
        .1;
    fences(after)
        .into_iter()
        .find(|(label, _)| *label == "sh")
        .unwrap_or_else(|| panic!("section {section:?} has no sh block"))
        .1
}

/// One command of a shell block, as bash reads it.
#[derive(Debug)]
struct ShellCommand {
    text: String,
    /// The skip marker its comment carries.
    skip: Option<&'static str>,
    /// The status the docs say it answers (`# → 404`).
    expect: Option<u16>,
}

/// Where bash stands at the end of a line: inside which quotes.
#[derive(Default)]
struct Quotes {
    single: bool,
    double: bool,
}

/// Reads one line as bash would: its comment (outside quotes), and whether the command goes on.
fn scan<'a>(line: &'a str, q: &mut Quotes) -> (Option<&'a str>, bool) {
    let mut chars = line.char_indices();
    let mut word_start = true;
    while let Some((i, c)) = chars.next() {
        if q.single {
            q.single = c != '\'';
        } else if q.double {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => q.double = false,
                _ => {}
            }
        } else {
            match c {
                '\'' => q.single = true,
                '"' => q.double = true,
                '\\' if chars.next().is_none() => return (None, true),
                '#' if word_start => return (Some(&line[i..]), false),
                _ => {}
            }
        }
        word_start = c.is_whitespace();
    }
    (None, q.single || q.double)
}

/// The status a comment says the command answers: `→ 404`.
fn marked_status(comment: &str) -> Option<u16> {
    let after = comment.split_once('→')?.1.trim_start();
    after.get(..3)?.parse().ok()
}

/// The commands of a shell block, with their markers.
fn commands(block: &str) -> Vec<ShellCommand> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut quotes = Quotes::default();
    let mut continued = false;
    for line in block.lines() {
        if !continued {
            let trimmed = line.trim_start();
            if trimmed.is_empty() {
                continue;
            }
            if trimmed.starts_with('#') {
                // A comment line saying what the command before it answers belongs to that command.
                if let Some((_, comment)) = out.last_mut().filter(|_| marked_status(line).is_some())
                {
                    comment.push_str(line);
                }
                continue;
            }
            out.push(Default::default());
        }
        let (text, comment) = out.last_mut().unwrap();
        let (line_comment, more) = scan(line, &mut quotes);
        text.push_str(line);
        text.push('\n');
        comment.push_str(line_comment.unwrap_or_default());
        continued = more;
    }
    assert!(!continued, "a command that never ends:\n{block}");
    out.into_iter()
        .map(|(text, comment)| ShellCommand {
            skip: SKIP_MARKERS.into_iter().find(|m| comment.contains(m)),
            expect: marked_status(&comment),
            text,
        })
        .collect()
}

/// Where the examples run: the `tailor run` they talk to and a directory with the files they name.
struct Shell {
    port: u16,
    url: String,
    dir: PathBuf,
}

/// What one command did.
struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
    /// The status of each answer its curls received.
    statuses: Vec<u16>,
}

impl Shell {
    fn new(run: &support::TailorRun, name: &str) -> Shell {
        let dir = tailor_infra::testkit::temp_dir(name);
        std::fs::write(dir.join("orders.csv"), ORDERS).unwrap();
        std::fs::write(dir.join("products.csv"), PRODUCTS).unwrap();
        std::fs::write(dir.join("products.jsonl"), PRODUCTS_JSONL).unwrap();
        Shell {
            port: run.port,
            url: run.base.clone(),
            dir,
        }
    }

    /// Runs `command` with bash (stopping at the first failing part), the port substituted.
    fn run(&self, command: &str) -> Outcome {
        let bin = Path::new(env!("CARGO_BIN_EXE_tailor")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let script = CURL_REPORTS_STATUS.to_string()
            + &command.replace("localhost:8080", &format!("127.0.0.1:{}", self.port));
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(&self.dir)
            .env("PATH", path)
            .env("TAILOR_URL", &self.url)
            .output()
            .expect("run bash");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let statuses = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("@status "))
            .map(|s| s.trim().parse().expect("a status code"))
            .collect();
        Outcome {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
            statuses,
        }
    }

    /// Runs a command the docs show; fails the test unless it succeeds and each of its curls
    /// answers the status the docs mark, or no error. Returns its stdout.
    fn check(&self, command: &ShellCommand) -> String {
        let text = &command.text;
        let out = self.run(text);
        let said = format!("--- stdout\n{}\n--- stderr\n{}", out.stdout, out.stderr);
        assert!(out.success, "this example failed:\n{text}{said}");
        assert_eq!(
            out.statuses.is_empty(),
            !text.contains("curl "),
            "every curl reports its status:\n{text}{said}"
        );
        match command.expect {
            Some(status) => assert!(
                out.statuses.iter().all(|s| *s == status),
                "the docs say {status}:\n{text}{said}"
            ),
            None => assert!(
                out.statuses.iter().all(|s| *s < 400) && !out.stdout.contains(r#"{"error""#),
                "an error answer:\n{text}{said}"
            ),
        }
        out.stdout
    }

    /// Runs `command` until its JSON answer satisfies `done`, at most [`support::CONVERGE_WITHIN`].
    async fn until(
        &self,
        command: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + support::CONVERGE_WITHIN;
        loop {
            let out = self.run(command).stdout;
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) {
                if done(&v) {
                    return v;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{command} did not converge: {out}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The catalog the examples import (docs/catalog.md's CSV format).
const PRODUCTS: &str = "item_id,title,url,price,currency,category,brand,in_stock,tags\n\
    tent-2p,Dome Tent 2P,/p/tent-2p,129.90,EUR,outdoor/tents,Acme,yes,summer\n\
    stove-1,Camp Stove,/p/stove-1,45.00,EUR,outdoor/cooking,Acme,yes,\n\
    socks-wool,Wool Socks,/p/socks-wool,12.00,EUR,apparel/socks,Knit,yes,repeatable\n";

/// The same catalog as JSON lines (docs/catalog.md's `products.jsonl`).
const PRODUCTS_JSONL: &str = r#"{"item_id": "tent-2p", "title": "Dome Tent 2P", "url": "/p/tent-2p", "price": 129.90, "currency": "EUR", "category": "outdoor/tents", "brand": "Acme", "in_stock": true, "tags": ["summer"]}
{"item_id": "stove-1", "title": "Camp Stove", "url": "/p/stove-1", "price": 45.00, "currency": "EUR", "category": "outdoor/cooking", "brand": "Acme", "in_stock": true}
{"item_id": "socks-wool", "title": "Wool Socks", "url": "/p/socks-wool", "price": 12.00, "currency": "EUR", "category": "apparel/socks", "brand": "Knit", "in_stock": true, "tags": ["repeatable"]}
"#;

/// A small order history for the README's `tailor import --site demo orders.csv`.
const ORDERS: &str = "member_id,date,revenue,order_id,item_id\n\
    m-1,1997-01-03,29.33,o-1,tent-2p\n\
    m-1,1997-03-14,12.50,o-2,stove-1\n\
    m-2,1997-02-01,7.99,o-3,socks-wool\n\
    m-3,1997-02-11,45.00,o-4,tent-2p\n\
    m-3,1997-05-20,19.00,o-5,socks-wool\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_work_as_written() {
    let send = commands(&readme_block("Send events"));
    let profiles = commands(&readme_block("Work with the profiles"));

    let run = support::tailor_run(&[]);
    let shell = Shell::new(&run, "readme");

    assert!(
        send.iter().all(|c| c.skip.is_none()),
        "every command of Send events runs"
    );
    for command in &send {
        shell.check(command);
    }
    let ask = send
        .iter()
        .find(|c| c.text.contains("/v1/recommendations"))
        .expect("Send events asks for recommendations");
    let recs = shell
        .until(&ask.text, |r| {
            r["items"].as_array().is_some_and(|i| !i.is_empty())
        })
        .await;
    assert_eq!(recs["items"][0]["item_id"], "stove-1", "{recs}");

    let (skipped, profiles): (Vec<_>, Vec<_>) =
        profiles.into_iter().partition(|c| c.skip.is_some());
    assert_eq!(
        skipped.len(),
        2,
        "only replay and export are skipped: {skipped:?}"
    );
    assert!(
        profiles[0].text.contains("/v1/profiles/m-42"),
        "{:?}",
        profiles[0]
    );
    // The README's member exists once the identify event is mined.
    shell
        .until(&profiles[0].text, |p| p["member_id"] == "m-42")
        .await;
    let out: String = profiles.iter().map(|c| shell.check(c)).collect();
    assert!(out.contains("\"member_id\":\"m-42\""), "{out}");
    assert!(out.contains("events accepted, 0 rejected"), "{out}");

    let logs = run.logs.lock().unwrap().clone();
    assert!(logs.contains("listening"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes in logs written to a pipe:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_shell_examples_work_as_written() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();

    let run = support::tailor_run(&[]);
    let shell = Shell::new(&run, "docs");
    let mut visited: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut sh = Vec::new();
        for (label, body) in fences(&text) {
            if label == "sh" {
                sh.push(body);
            } else {
                let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                assert!(
                    !SHELL_STARTS.iter().any(|s| first.starts_with(s)),
                    "{name}: a shell example in a ```{label} block, not ```sh:\n{body}"
                );
            }
        }
        if sh.is_empty() {
            continue;
        }
        let skipped = visited.entry(name).or_default();
        for command in sh.iter().flat_map(|b| commands(b)) {
            match command.skip {
                Some(marker) => *skipped.entry(marker).or_default() += 1,
                None => {
                    shell.check(&command);
                }
            }
        }
    }

    let expected: BTreeMap<String, BTreeMap<&str, usize>> = DOCS_SKIPS
        .iter()
        .map(|(file, skips)| (file.to_string(), skips.iter().copied().collect()))
        .collect();
    assert_eq!(
        visited, expected,
        "the docs files with sh blocks, and the commands each skips by marker"
    );
}

#[test]
fn commands_are_split_as_bash_reads_them() {
    let block = "curl -d '{\"a\":\n 1}' x\n\
                 # → 200 {\"upserted\": 1}\n\
                 \n\
                 curl y   # → 404 once deleted\n\
                 tailor a \\\n  --b c  # (needs Kafka and Redis)\n\
                 echo '#not a comment' \"it's # not either\"\n\
                 # a plain comment\n";
    let c = commands(block);
    assert_eq!(c.len(), 4, "{c:?}");
    assert_eq!(c[0].text, "curl -d '{\"a\":\n 1}' x\n");
    assert_eq!((c[0].expect, c[0].skip), (Some(200), None));
    assert_eq!((c[1].expect, c[1].skip), (Some(404), None));
    assert_eq!(
        c[2].text,
        "tailor a \\\n  --b c  # (needs Kafka and Redis)\n"
    );
    assert_eq!((c[2].expect, c[2].skip), (None, Some(SKIP_MARKERS[0])));
    assert_eq!((c[3].expect, c[3].skip), (None, None));
}
