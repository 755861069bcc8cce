//! Tenant isolation on every route of every service: a key of site A can never read or change
//! site B, and a route needing a scope refuses every other.
//!
//! The routes come from the route tables the routers are built from (`tailor::app::routes`), and
//! the test first checks that table against every `.route(...)` the sources declare, so a route
//! cannot be added without being walked here. For each route it sends, on a deployment of two
//! closed sites `a` and `b` that have one key per scope (`testkit::keyed`):
//! - a route needing a scope: 401 (with `WWW-Authenticate: Bearer` and the JSON error body) without
//!   a key and with an unknown one; 403 with `b`'s key of the same scope, with `a`'s keys of every
//!   other scope, and with `a`'s key asking for site `b`; neither 401 nor 403 with `a`'s key;
//! - a public route (listed as such in the table, so deliberately): neither 401 nor 403 without a key;
//! - recommendations: public for a visitor, and a member-keyed request is walked like a `serve` route;
//! - collection: a server-side request is walked like a `collect` route (the events name site `a`).

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use tailor_core::access::Scope;
use tailor_core::config::Config;
use tailor_infra::auth::{Access, RouteSpec};
use tailor_infra::testkit::{keyed, test_secret};

fn config() -> Config {
    let c = Config::from_toml(
        r#"
demo_site = false
[[sites]]
id = "a"
snowplow_app_ids = ["app-a"]
segment_write_keys = ["wk-a"]
[[sites]]
id = "b"
snowplow_app_ids = ["app-b"]
segment_write_keys = ["wk-b"]
"#,
    )
    .unwrap();
    keyed(c)
}

/// A request for site `site` on `spec`'s route, naming a member where the route can: path
/// parameters filled in, `?site=`, and a body the route reads.
fn request(spec: &RouteSpec, site: &str, member: bool) -> (String, Option<Value>) {
    let path = spec
        .path
        .replace("{member}", "m-1")
        .replace("{item_id}", "tent-2p")
        .replace("{name}", "vip")
        .replace("{id}", "spring")
        .replace("{call}", "track");
    let who = if member {
        "member=m-1"
    } else {
        "anonymous=v-1"
    };
    let url = format!("{path}?site={site}&{who}");
    let event = json!({"type": "page_view", "site_id": site, "anonymous_id": "v-1",
        "session_id": "s-1", "item_id": "tent-2p"});
    let body = match (spec.method.as_str(), spec.path) {
        ("POST", "/v1/events") => Some(event),
        ("POST", "/com.snowplowanalytics.snowplow/tp2") => Some(json!({
            "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
            "data": [{"e": "pv", "aid": format!("app-{site}"), "duid": "v-1", "p": "web",
                "tv": "py-1", "url": "https://shop.example/p/tent-2p"}]})),
        ("POST", "/v1/recommendations") => Some(if member {
            json!({"site": site, "member": "m-1"})
        } else {
            json!({"site": site, "anonymous": "v-1"})
        }),
        ("POST", "/v1/{call}") => Some(json!({"writeKey": format!("wk-{site}"), "type": "track",
            "event": "Viewed", "anonymousId": "v-1"})),
        ("PUT", "/v1/catalog/items") => {
            Some(json!([{"item_id": "tent-2p", "title": "Tent", "price": 10.0}]))
        }
        ("PUT", "/admin/segments/{name}") => Some(json!({"rule": "orders >= 1"})),
        ("PUT", "/admin/rules/{name}") => Some(json!({"kind": "exclude", "tags": ["x"]})),
        ("POST", "/admin/dead-letters/redrive") => Some(json!({"all": true})),
        ("POST", _) | ("PUT", _) => Some(json!({})),
        _ => None,
    };
    (url, body)
}

struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    body: Value,
}

async fn send(
    app: &support::App,
    spec: &RouteSpec,
    site: &str,
    member: bool,
    key: Option<&str>,
) -> Answer {
    let (url, body) = request(spec, site, member);
    let mut r = app
        .http
        .request(
            Method::from_bytes(spec.method.as_str().as_bytes()).unwrap(),
            format!("{}{url}", app.base),
        )
        .header("content-type", "application/json");
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let www_authenticate = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        www_authenticate,
        body,
    }
}

/// Walks one route that needs `scope` of the site it names.
async fn walk_scoped(app: &support::App, spec: &RouteSpec, scope: Scope, member: bool) {
    let what = format!("{} {} (member: {member})", spec.method, spec.path);
    for key in [None, Some("tlr_not_a_key")] {
        let a = send(app, spec, "a", member, key).await;
        assert_eq!(a.status, 401, "{what} with {key:?}: {}", a.body);
        assert_eq!(
            a.www_authenticate.as_deref(),
            Some("Bearer realm=\"tailor\""),
            "{what}"
        );
        assert!(a.body["error"]["code"].is_string(), "{what}: {}", a.body);
    }
    let other_site = test_secret("b", scope);
    let a = send(app, spec, "a", member, Some(&other_site)).await;
    assert_eq!(a.status, 403, "{what} with b's key: {}", a.body);
    assert!(a.body["error"]["code"].is_string(), "{what}: {}", a.body);
    for wrong in Scope::ALL.into_iter().filter(|s| *s != scope) {
        let a = send(app, spec, "a", member, Some(&test_secret("a", wrong))).await;
        assert_eq!(a.status, 403, "{what} with a's {wrong} key: {}", a.body);
    }
    let own = test_secret("a", scope);
    let a = send(app, spec, "b", member, Some(&own)).await;
    assert_eq!(a.status, 403, "{what} for site b with a's key: {}", a.body);
    let a = send(app, spec, "a", member, Some(&own)).await;
    assert!(
        ![401, 403, 404, 405].contains(&a.status)
            || (a.status == 404 && a.body["error"]["message"] != "Not Found"),
        "{what} with a's {scope} key: {} {}",
        a.status,
        a.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_other_sites_and_scopes() {
    let config = config();
    let routes = tailor::app::routes(&config, tailor::app::Roles::ALL);
    // The table covers every route the sources declare, and lists each once.
    let table: BTreeSet<(String, String)> = routes
        .iter()
        .map(|r| (r.path.to_string(), r.method.as_str().to_lowercase()))
        .collect();
    assert_eq!(table.len(), routes.len(), "a route is listed twice");
    let missing: Vec<_> = support::source_routes()
        .difference(&table)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "routes outside the access tables: {missing:?}"
    );
    assert!(routes.len() >= 35, "{routes:?}");
    // What anyone may call, decided here and not only in the tables: making a route public is a
    // change to this list.
    let public: BTreeSet<(String, String)> = routes
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/ops"),
        ("GET", "/ops/latency"),
        ("GET", "/openapi.json"),
        ("GET", "/tag.js"),
        ("GET", "/"),
        ("POST", "/demo/simulate"),
        ("GET", "/insights"),
        // Browser collection: the Snowplow pixel, and the Segment door (its write key names the site).
        ("GET", "/i"),
        ("GET", "/com.snowplowanalytics.snowplow/i"),
        ("POST", "/v1/{call}"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(public, expected);

    let app = support::start(config).await;
    let mut walked = (0, 0);
    for spec in &routes {
        match spec.access {
            Access::Public => {
                let a = send(&app, spec, "a", false, None).await;
                assert!(
                    ![401, 403, 405].contains(&a.status),
                    "public {} {}: {} {}",
                    spec.method,
                    spec.path,
                    a.status,
                    a.body
                );
                walked.0 += 1;
            }
            Access::Site(scope) | Access::OwnSite(scope) => {
                walk_scoped(&app, spec, scope, false).await;
                walked.1 += 1;
            }
            Access::Collect => {
                walk_scoped(&app, spec, Scope::Collect, false).await;
                walked.1 += 1;
            }
            Access::Recommendations => {
                let a = send(&app, spec, "a", false, None).await;
                assert_eq!(
                    a.status, 200,
                    "anonymous {} {}: {}",
                    spec.method, spec.path, a.body
                );
                walk_scoped(&app, spec, Scope::Serve, true).await;
                walked.1 += 1;
            }
        }
    }
    assert!(walked.0 >= 10 && walked.1 >= 20, "{walked:?}");
    // Each refusal is counted by reason.
    let metrics = app.metrics().await;
    for reason in ["no_key", "unknown_key", "other_site", "wrong_scope"] {
        let line = format!("tailor_http_auth_refused_total{{reason=\"{reason}\"}} ");
        let n: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in /metrics"))
            .parse()
            .unwrap();
        assert!(n > 0.0, "{line}{n}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_across_sites_show_a_key_its_own_site() {
    let app = support::start(config()).await;
    let get = |path: &str, key: String| {
        let r = app.http.get(format!("{}{path}", app.base)).bearer_auth(key);
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, sites) = get("/admin/sites", test_secret("b", Scope::Admin)).await;
    assert_eq!(status, 200, "{sites}");
    assert_eq!(sites["sites"], json!([{"id": "b", "name": ""}]));
    // Events of both sites are rejected (unknown item type), so both have dead letters.
    for site in ["a", "b"] {
        let r = app
            .http
            .post(format!("{}/v1/events", app.base))
            .bearer_auth(test_secret(site, Scope::Collect))
            .body(json!({"type": "nonsense", "site_id": site, "anonymous_id": "v"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
    }
    let (status, listing) = get("/admin/dead-letters", test_secret("a", Scope::Admin)).await;
    assert_eq!(status, 200, "{listing}");
    let sites: BTreeSet<&str> = listing["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["site_id"].as_str().unwrap())
        .collect();
    assert_eq!(sites, BTreeSet::from(["a"]), "{listing}");
    let (status, _) = get("/admin/dead-letters?site=b", test_secret("a", Scope::Admin)).await;
    assert_eq!(status, 403);
    app.stop().await;
}

/// Runs the `tailor` binary; answers whether it succeeded, its stdout and its stderr.
fn tailor(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(args)
        .env_remove("TAILOR_KEY")
        .env_remove("TAILOR_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keys_are_made_listed_and_revoked_and_the_cli_sends_them() {
    let dir = tailor_infra::testkit::temp_dir("keys-cli");
    let file = dir.join("tailor.toml");
    std::fs::write(&file, "[[sites]]\nid = \"shop\"\n").unwrap();
    let file = file.to_str().unwrap();
    let create = |site: &str, scope: &str, name: &str| {
        let (ok, out, err) = tailor(
            &[
                "keys", "create", "--config", file, "--site", site, "--scope", scope, "--name",
                name,
            ],
            &[],
        );
        assert!(ok, "{out}{err}");
        out.lines().next().unwrap().to_string()
    };
    let admin = create("demo", "admin", "ops");
    let serve = create("demo", "serve", "storefront");
    assert!(admin.starts_with("tlr_") && admin.len() > 40, "{admin}");
    let stored = std::fs::read_to_string(file).unwrap();
    assert!(!stored.contains(&admin), "the file keeps hashes only");
    let (ok, listed, _) = tailor(&["keys", "list", "--config", file, "--site", "demo"], &[]);
    assert!(
        ok && listed.contains("ops") && listed.contains("storefront"),
        "{listed}"
    );
    assert!(!listed.contains(&admin), "{listed}");
    // Without --config, the stanza to paste.
    let (ok, out, _) = tailor(
        &["keys", "create", "--site", "shop", "--scope", "catalog"],
        &[],
    );
    assert!(
        ok && out.contains("[[sites.keys]]") && out.contains("scope = \"catalog\""),
        "{out}"
    );
    let (ok, _, err) = tailor(
        &["keys", "create", "--site", "shop", "--scope", "root"],
        &[],
    );
    assert!(!ok && err.contains("--scope"), "{err}");

    let run = support::tailor_run(&["--config", file]);
    let base = run.base.clone();
    let erase = ["erase", "--site", "demo", "--member", "m-1", "--url", &base];
    assert!(!run.logs.lock().unwrap().contains("is OPEN"));

    let (ok, _, err) = tailor(&erase, &[]);
    assert!(!ok && err.contains("401"), "no key: {err}");
    let (ok, _, err) = tailor(&erase, &[("TAILOR_KEY", &serve)]);
    assert!(!ok && err.contains("403"), "serve key: {err}");
    let (ok, out, err) = tailor(&erase, &[("TAILOR_KEY", &admin)]);
    assert!(ok, "admin key: {out}{err}");
    let (ok, out, err) = tailor(
        &["dead-letters", "list", "--url", &run.base, "--key", &admin],
        &[],
    );
    assert!(ok, "{out}{err}");
    // Import with a collect key, the catalog with a catalog key; another scope is refused.
    let collect = create("demo", "collect", "backend");
    let catalog = create("demo", "catalog", "feed");
    let events = dir.join("events.jsonl");
    std::fs::write(
        &events,
        "{\"type\": \"page_view\", \"anonymous_id\": \"v-1\", \"session_id\": \"s-1\", \"item_id\": \"tent-2p\"}\n",
    )
    .unwrap();
    let items = dir.join("items.jsonl");
    std::fs::write(
        &items,
        "{\"item_id\": \"tent-2p\", \"title\": \"Tent\", \"url\": \"/p/tent-2p\", \"price\": 10, \"currency\": \"EUR\"}\n",
    )
    .unwrap();
    let (events, items) = (events.to_str().unwrap(), items.to_str().unwrap());
    drop(run);
    let run = support::tailor_run(&["--config", file]);
    let base = run.base.clone();
    let import = ["import", "--site", "demo", events, "--url", &base];
    let (ok, out, err) = tailor(&import, &[("TAILOR_KEY", &collect)]);
    assert!(ok, "collect key: {out}{err}");
    let (ok, _, err) = tailor(&import, &[("TAILOR_KEY", &serve)]);
    assert!(!ok && err.contains("403"), "serve key: {err}");
    let catalog_import = ["catalog", "import", "--site", "demo", items, "--url", &base];
    let (ok, out, err) = tailor(&catalog_import, &[("TAILOR_KEY", &catalog)]);
    assert!(ok, "catalog key: {out}{err}");
    let (ok, _, err) = tailor(&catalog_import, &[]);
    assert!(!ok && err.contains("401"), "no key: {err}");
    drop(run);

    let (ok, _, err) = tailor(
        &[
            "keys", "revoke", "--config", file, "--site", "demo", "--name", "ops",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let run = support::tailor_run(&["--config", file]);
    let base = run.base.clone();
    let erase = ["erase", "--site", "demo", "--member", "m-1", "--url", &base];
    let (ok, _, err) = tailor(&erase, &[("TAILOR_KEY", &admin)]);
    assert!(!ok && err.contains("401"), "revoked: {err}");
    drop(run);

    // Without a configuration file the demo site is open, and the log says so.
    let run = support::tailor_run(&[]);
    let (ok, out, err) = tailor(
        &[
            "erase", "--site", "demo", "--member", "m-1", "--url", &run.base,
        ],
        &[],
    );
    assert!(ok, "{out}{err}");
    assert!(
        run.logs.lock().unwrap().contains("is OPEN"),
        "{}",
        run.logs.lock().unwrap()
    );
}

/// The insights page of a closed site draws its analytics with the admin key given in the URL's
/// fragment (docs/security.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_insights_page_works_with_an_admin_key() {
    let app = support::start(config()).await;
    let key = test_secret("a", Scope::Admin);
    let report = support::browser_script("insights.mjs", &[&app.base, "a", "", &key]).await;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(report["funnel_bars"].as_u64() >= Some(3), "{report}");
    app.stop().await;
}

/// Only `tailor run` opens the file-less demo site: a service run on its own is a deployment.
#[tokio::test]
async fn a_service_run_on_its_own_keeps_the_demo_site_closed() {
    use std::io::{BufRead, BufReader};
    let mut child = support::Reaped(
        std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
            .args([
                "recommender",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(["--redis", &tailor_infra::testkit::redis_url()])
            .env_remove("TAILOR_CONFIG")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.stderr.take().unwrap();
    let mut logs = String::new();
    let mut addr = None;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        logs.push_str(&line);
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(a) = v["fields"]["addr"].as_str().or(v["addr"].as_str()) {
            addr = Some(a.to_string());
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no listening address in {logs}"));
    assert!(!logs.contains("is OPEN"), "{logs}");
    let r = reqwest::get(format!("http://{addr}/v1/profiles/m-1?site=demo"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}
