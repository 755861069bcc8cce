//! What every end-to-end test needs: a Tailor started through `app::start` (the code that ships) on a
//! loopback port, an HTTP client, and polling until the asynchronous pipeline has caught up.
#![allow(dead_code)] // each test binary uses its own part

pub mod servers;

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tailor::app::{self, Roles, Running};
use tailor_core::config::Config;
use tailor_infra::Shutdown;

/// How long the pipeline may take to reflect an event before a test fails.
pub const CONVERGE_WITHIN: Duration = Duration::from_secs(60);
/// The user agent of the tests' HTTP client (a desktop Chrome, so enrichment has something to parse).
pub const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    shutdown: Shutdown,
    running: Running,
}

/// Starts every stage on `config`.
pub async fn start(config: Config) -> App {
    start_roles(config, Roles::ALL).await
}

/// Starts the given stages on `config`.
pub async fn start_roles(config: Config, roles: Roles) -> App {
    let shutdown = Shutdown::new();
    let running = app::start(
        config,
        roles,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown.clone(),
    )
    .await
    .expect("start tailor");
    App {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::builder().user_agent(UA).build().unwrap(),
        shutdown,
        running,
    }
}

impl App {
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(serde_json::to_vec(body).unwrap()).await
    }

    pub async fn post_raw(&self, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/events", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Sends `body` as JSON with `method` to `path`.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Polls `path` until `done` holds for its JSON body, or fails after [`CONVERGE_WITHIN`].
    pub async fn until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + CONVERGE_WITHIN;
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} did not converge; last answer {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A member's profile on the `demo` site once `done` holds for it.
    pub async fn profile_until(&self, member: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.until(&format!("/v1/profiles/{member}?site=demo"), done)
            .await
    }

    /// Page views counted in a `demo` member's profile (0 while it cannot be read).
    pub async fn page_views(&self, member: &str) -> i64 {
        let (status, p) = self.get(&format!("/v1/profiles/{member}?site=demo")).await;
        if status != 200 {
            return 0;
        }
        p["event_counts"]["page_view"].as_i64().unwrap_or(0)
    }

    /// Waits until exactly `want` page views are counted for `member`, failing at once if more are
    /// (counted twice) and after `within` if fewer are (lost or stuck).
    pub async fn until_page_views(&self, member: &str, want: i64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.page_views(member).await;
            if got == want {
                return;
            }
            assert!(
                got < want,
                "{member}: {got} page views counted, only {want} acknowledged"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{member}: {got} of {want} acknowledged page views after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Shuts down gracefully and waits for every task.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.running.wait().await.expect("clean shutdown");
    }
}

/// A child process that is killed and reaped when dropped, so a failing test never leaves one
/// running (holding the test harness's output open).
pub struct Reaped(pub std::process::Child);

impl std::ops::Deref for Reaped {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Reaped {
    /// Waits for the process to exit by itself (a failpoint's abort, say), at most `within`.
    pub async fn exits_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(within, async {
            loop {
                if let Some(s) = self.0.try_wait().unwrap() {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .ok()
    }

    /// Waits (at most `within`) for a stage started with a failpoint to die at it: the process ends
    /// by itself, and not successfully. `log` is its log, named when it does not.
    pub async fn dies_at_failpoint(&mut self, log: &std::path::Path, within: Duration) {
        let status = self
            .exits_within(within)
            .await
            .unwrap_or_else(|| panic!("the failpoint never fired; see {}", log.display()));
        assert!(
            !status.success(),
            "it should have aborted at the failpoint; see {}",
            log.display()
        );
    }
}

/// Waits out the group session of a processor that died (`session.timeout.ms`, 10 s), so the next
/// one joins a group the broker has already taken the dead member out of: Tansu 0.6 can leave a
/// member that joins while a just-killed one is still in the group without partitions for minutes
/// (docs/reliability.md). Kafka rebalances either way; what the tests assert is the same.
pub async fn dead_member_leaves_the_group() {
    tokio::time::sleep(Duration::from_secs(11)).await;
}

/// The strings of a JSON array (panics on anything else: tests read their own answers).
pub fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `tailor <command>` process (`processor`, `collector`, ...) listening on `listen`, on the
/// configuration file given, its logs (stderr) in `log`, with `failpoint` armed (empty: none).
pub fn stage(
    command: &str,
    listen: &str,
    config_file: &std::path::Path,
    log: &std::path::Path,
    failpoint: &str,
) -> Reaped {
    std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args([command, "--listen", listen, "--config"])
        .arg(config_file)
        .env("RUST_LOG", "info")
        .env("TAILOR_FAILPOINT", failpoint)
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .map(Reaped)
        .unwrap_or_else(|e| panic!("start tailor {command}: {e}"))
}

/// The port a [`stage`] process listens on, from its log (`None` until it says).
pub fn listening_port(log: &std::path::Path) -> Option<u16> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("listening"))?;
    let at = line.find("127.0.0.1:")? + "127.0.0.1:".len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// A `tailor run` process on an ephemeral loopback port, with its logs (stderr) collected.
pub struct TailorRun {
    pub child: Reaped,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub port: u16,
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Starts `tailor run --listen 127.0.0.1:0` with `args` and waits until it says where it listens.
pub fn tailor_run(args: &[&str]) -> TailorRun {
    use std::io::{BufRead, BufReader};
    let mut child = Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
            .args(["run", "--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("TAILOR_URL")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run tailor"),
    );
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let collected = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some((_, rest)) = line.split_once("demo shop at http://") {
                let _ = addr_tx.send(rest.split('/').next().unwrap_or_default().to_string());
            }
            let mut logs = collected.lock().unwrap();
            logs.push_str(&line);
            logs.push('\n');
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("tailor run says where it listens");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    TailorRun {
        child,
        base: format!("http://127.0.0.1:{port}"),
        port,
        logs,
    }
}

/// Runs the `tailor` binary with `args`; fails the test unless it succeeds, and returns its stdout
/// parsed as JSON.
pub fn tailor_json(args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(args)
        .output()
        .expect("run tailor");
    assert!(
        out.status.success(),
        "tailor {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Runs a browser script of `collector/tag/test/` with node (headless Chromium through
/// playwright-core); fails the test unless it succeeds, and returns its stdout parsed as JSON.
pub async fn browser_script(script: &str, args: &[&str]) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../collector/tag");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "collector/tag/node_modules is missing: run scripts/test.sh (npm ci --prefix collector/tag)"
    );
    let out = tokio::process::Command::new("node")
        .arg(dir.join("test").join(script))
        .args(args)
        .output()
        .await
        .expect("run node (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

pub const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// (path, method) of every `.route("path", method(...)...)` in the Rust sources under `dir`.
pub fn routes_in(dir: &std::path::Path, out: &mut std::collections::BTreeSet<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            routes_in(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's arguments: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let args = &rest[..end];
            let Some(route) = args.split('"').nth(1) else {
                continue;
            };
            for m in METHODS {
                let called = args.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0
                        || !args.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && args.as_bytes()[i - 1] != b'_'
                });
                if called {
                    out.insert((route.to_string(), m.to_string()));
                }
            }
        }
    }
}

/// (path, method) of every route the crates' sources declare (`.route(...)` calls), read from the
/// files themselves: what a test that must cover every route compares its list with.
pub fn source_routes() -> std::collections::BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut routes = std::collections::BTreeSet::new();
    for krate in [
        "collector/src",
        "recommender/src",
        "tailor/src",
        "infra/src",
    ] {
        routes_in(&root.join(krate), &mut routes);
    }
    routes
}
