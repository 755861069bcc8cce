//! Hostile input, tried as an attacker would (issue 12): each case here once crashed a stage, lost an
//! acknowledged event or stored nonsense. Every one must now get a precise 4xx, be dead-lettered where
//! it is an event, and leave the service answering. Mostly embedded (in-process bus and store): these
//! are properties of the edge and the rule language, the same code on every backend; where a backend
//! matters (a stored rule that persists in Redis, the dead-letter lanes on Kafka) the real one is used.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::start;
use tailor_core::config::Config;

fn purchase(id: &str, member: &str, order: Value) -> Value {
    json!({"type": "purchase", "event_id": id, "site_id": "demo", "anonymous_id": format!("{member}-dev"),
        "member_id": member, "order": order})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_amounts_and_times_are_refused_and_dead_lettered_never_acknowledged_and_lost() {
    let app = start(Config::default()).await;
    let cases = [
        // price x quantity overflowed to infinity: 202, then dropped by the processor.
        (
            purchase(
                "h-1",
                "hana",
                json!({"id": "o1", "currency": "EUR",
                "lines": [{"item_id": "x", "price": 1.7e308, "quantity": 2}]}),
            ),
            "order.lines[0].price",
        ),
        // A total of 1e308 became the site's revenue.
        (
            purchase(
                "h-2",
                "hana",
                json!({"id": "o2", "currency": "EUR", "revenue": 1e308,
                "lines": [{"item_id": "x", "price": 1.0}]}),
            ),
            "order.revenue",
        ),
        // Year 1 sent in year 9999 was stored as year -7973.
        (
            json!({"type": "page_view", "event_id": "h-3", "site_id": "demo", "anonymous_id": "hana-dev",
                "timestamp": "0001-01-01T00:00:00Z", "sent_at": "9999-12-31T23:59:59Z"}),
            "timestamp",
        ),
    ];
    for (event, field) in &cases {
        let (status, body) = app.post(event).await;
        assert_eq!(status, 400, "{event}: {body}");
        assert_eq!(body["error"]["field"], *field, "{body}");
    }
    let letters = app
        .until("/admin/dead-letters?reason=invalid_value", |l| {
            l["matching"] == cases.len()
        })
        .await;
    let mut fields: Vec<&str> = letters["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["errors"][0]["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["order.lines[0].price", "order.revenue", "timestamp"]
    );

    // A sane order of the same member, and a 1997 history event, go through and are counted.
    let (status, body) = app
        .post(&purchase(
            "h-4",
            "hana",
            json!({"id": "o4", "currency": "EUR",
            "lines": [{"item_id": "x", "price": 12.5, "quantity": 2}]}),
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    let old = json!({"type": "page_view", "event_id": "h-5", "site_id": "demo", "anonymous_id": "hana-dev",
        "member_id": "hana", "timestamp": "1997-01-01T00:00:00Z"});
    assert_eq!(app.post(&old).await.0, 202);
    let p = app
        .profile_until("hana", |p| {
            p["purchases"]["orders"] == 1 && p["event_counts"]["page_view"] == 1
        })
        .await;
    assert_eq!(p["purchases"]["revenue"]["EUR"], 25.0, "{p}");
    assert_eq!(p["first_seen"], "1997-01-01T00:00:00Z", "{p}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_rules_too_deep_or_too_long_are_refused_and_the_service_stays_up() {
    let app = start(Config::default()).await;
    let put = |rule: String| {
        let app = &app;
        async move {
            app.send(
                Method::PUT,
                "/admin/segments/hostile?site=demo",
                &json!({ "rule": rule }),
            )
            .await
        }
    };
    // ~2,000 parentheses aborted the process while parsing; ~21,000 `or` terms were accepted and
    // aborted the processor on the next event.
    let deep = format!("{}orders > 1{}", "(".repeat(2000), ")".repeat(2000));
    let flat = vec!["member"; 21_000].join(" or ");
    for rule in [deep, flat] {
        let (status, body) = put(rule).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], "rule", "{body}");
    }
    let (status, body) = put("member or orders > 1".into()).await;
    assert_eq!(status, 200, "{body}");
    // The pipeline still runs, segments included.
    let e = json!({"type": "identify", "event_id": "r-1", "site_id": "demo", "anonymous_id": "rita-dev",
        "member_id": "rita"});
    assert_eq!(app.post(&e).await.0, 202);
    app.profile_until("rita", |p| {
        support::strings(&p["segments"]).contains(&"hostile")
    })
    .await;
    app.stop().await;
}

/// A definition stored before rules were bounded killed every restart; now it is set aside and
/// reported. Needs the suite's Redis (`TAILOR_TEST_REDIS`), where such a definition persists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_rule_that_no_longer_loads_is_set_aside_not_fatal() {
    use redis::AsyncCommands;
    use tailor_core::keys::KeySpace;
    use tailor_core::SiteId;
    use tailor_infra::testkit;

    let mut config = Config::default();
    config.redis.url = Some(testkit::redis_url());
    config.redis.namespace = testkit::unique("ns");
    let key =
        KeySpace::new(config.redis.namespace.clone()).segment_defs(&SiteId::parse("demo").unwrap());
    let flood =
        json!({"name": "flood", "rule": vec!["member"; 21_000].join(" or "), "site": "demo"});
    let mut redis = redis::Client::open(testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis.hset(&key, "flood", flood.to_string()).await.unwrap();

    let app = start(config).await;
    let e = json!({"type": "identify", "event_id": "s-1", "site_id": "demo", "anonymous_id": "sam-dev",
        "member_id": "sam"});
    assert_eq!(app.post(&e).await.0, 202);
    let p = app
        .profile_until("sam", |p| p["event_counts"]["identify"] == 1)
        .await;
    assert!(!support::strings(&p["segments"]).contains(&"flood"), "{p}");
    let (status, listed) = app.get("/admin/segments?site=demo").await;
    assert_eq!(status, 200);
    let flood = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "flood")
        .expect("the stored definition is listed");
    let error = flood["error"].as_str().unwrap_or_default();
    assert!(error.contains("longer than 4096 bytes"), "{error}");
    assert!(app
        .metrics()
        .await
        .contains("tailor_processor_segments_set_aside"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_refuse_other_sites_pages_and_configured_segments_and_errors_are_json() {
    let config = Config::default();
    let configured = config.segments[0].name.clone();
    let app = start(config).await;
    let e = json!({"type": "identify", "event_id": "x-1", "site_id": "demo", "anonymous_id": "xena-dev",
        "member_id": "xena"});
    assert_eq!(app.post(&e).await.0, 202);
    app.profile_until("xena", |p| p["event_counts"]["identify"] == 1)
        .await;
    let erase = format!("{}/admin/erase?site=demo&member=xena", app.base);

    // What a page on another site can send without a preflight: a plain-text POST. It erased members.
    let r = app
        .http
        .post(&erase)
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused(r).await, (403, json!("foreign_origin")));
    // Without an Origin (a script, the CLI) it must still be JSON.
    let r = app
        .http
        .post(&erase)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(refused(r).await, (415, json!("unsupported_media_type")));
    assert_eq!(app.get("/v1/profiles/xena?site=demo").await.0, 200);
    // The operator's own request works, also from the server's own origin.
    let own = app.base.clone();
    let r = app
        .http
        .post(&erase)
        .header("origin", own)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(app.get("/v1/profiles/xena?site=demo").await.0, 404);

    // PUT silently replaced a segment of the configuration file while DELETE refused it.
    let path = format!("/admin/segments/{configured}?site=demo");
    let (status, body) = app
        .send(Method::PUT, &path, &json!({"rule": "member"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "configured");
    let (status, _) = app.send(Method::DELETE, &path, &json!({})).await;
    assert_eq!(status, 409);

    // An encoding the collector does not take was 415 with an empty body.
    let r = app
        .http
        .post(format!("{}/v1/events", app.base))
        .header("content-encoding", "br")
        .header("content-type", "application/json")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused(r).await, (415, json!("unsupported_media_type")));

    // A batch over collector.max_batch_events (413) is dead-lettered like every refused body.
    let max = Config::default().collector.max_batch_events;
    let batch: Vec<Value> = (0..=max)
        .map(|i| json!({"type": "page_view", "event_id": format!("b-{i}"), "site_id": "demo", "anonymous_id": "b"}))
        .collect();
    let (status, body) = app.post(&json!(batch)).await;
    assert_eq!(status, 413, "{body}");
    let letters = app
        .until("/admin/dead-letters?reason=malformed", |l| {
            l["matching"] == 1
        })
        .await;
    assert!(
        letters["records"][0]["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("at most"),
        "{letters}"
    );
    app.stop().await;
}

/// The status and the JSON error code of an answer.
async fn refused(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (
        status,
        r.json::<Value>().await.unwrap()["error"]["code"].clone(),
    )
}

/// Every record of the dead-letter store, page by page (each page bounded, none loading the store).
async fn all_dead_letters(app: &support::App, limit: usize) -> (Vec<Value>, usize) {
    let mut records = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/dead-letters?limit={limit}&cursor={c}"),
            None => format!("/admin/dead-letters?limit={limit}"),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let got = page["records"].as_array().unwrap();
        assert!(got.len() <= limit, "a page holds at most `limit` records");
        records.extend(got.iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (records, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_big_refused_bodies_cannot_push_out_the_small_rejects() {
    let mut config = Config::default();
    let budget = 4 * 1024 * 1024; // the smallest allowed: 2 MiB per lane
    config.collector.dead_letter_max_bytes = budget;
    let app = start(config).await;
    // Real rejects: events of a site not configured yet.
    for i in 0..5 {
        let e = json!({"type": "page_view", "event_id": format!("real-{i}"), "site_id": "shop9",
            "anonymous_id": "a"});
        assert_eq!(app.post(&e).await.0, 400);
    }
    // A flood of big bodies that are not JSON: 40 x 200 KiB, four times a lane's budget.
    for _ in 0..40 {
        let (status, _) = app.post_raw(vec![b'x'; 200 * 1024]).await;
        assert_eq!(status, 400);
    }
    let (records, pages) = all_dead_letters(&app, 7).await;
    let real = records
        .iter()
        .filter(|r| r["reason"] == "unknown_site")
        .count();
    assert_eq!(real, 5, "every small reject survives the flood");
    let big: Vec<&Value> = records
        .iter()
        .filter(|r| r["reason"] == "malformed")
        .collect();
    let big_bytes: usize = big.iter().map(|r| r.to_string().len()).sum();
    assert!(
        !big.is_empty() && big.len() < 40,
        "big records are kept within their lane: {}",
        big.len()
    );
    assert!(
        big_bytes <= (budget / 2) as usize + 300 * 1024,
        "{big_bytes} bytes of big records"
    );
    // Paging walked every record once.
    let mut ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), records.len(), "no record listed twice");
    let (_, first) = app.get("/admin/dead-letters?limit=7").await;
    assert_eq!(first["total"], records.len(), "{first}");
    assert!(pages >= records.len().div_ceil(7), "{pages} pages");
    // A cursor that no listing gave is refused precisely.
    let (status, body) = app.get("/admin/dead-letters?cursor=nonsense").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_query"))
    );
    app.stop().await;
}

/// The same store on Kafka: both lanes (the topic's two partitions) are paged through, each record
/// once. (Eviction there is Kafka's `retention.bytes`, asynchronous and by segment: not asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_page_through_both_lanes_on_kafka() {
    let app = start(tailor_infra::testkit::real_config()).await;
    for i in 0..3 {
        let e = json!({"type": "page_view", "event_id": format!("k-{i}"), "site_id": "shop9",
            "anonymous_id": "a"});
        assert_eq!(app.post(&e).await.0, 400);
    }
    for _ in 0..2 {
        assert_eq!(app.post_raw(vec![b'x'; 100 * 1024]).await.0, 400);
    }
    app.until("/admin/dead-letters?limit=10", |l| l["total"] == 5)
        .await;
    let (records, pages) = all_dead_letters(&app, 2).await;
    let mut ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 5, "each record listed once");
    assert!(pages >= 3);
    assert_eq!(
        records
            .iter()
            .filter(|r| r["reason"] == "malformed")
            .count(),
        2
    );
    app.stop().await;
}

/// The server's connection limits come from `[http]` (the server itself is tested in
/// `tailor_infra::server`): a client trickling its headers is cut off, others are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_header_client_is_cut_off_by_the_configured_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = Config::default();
    config.http.header_read_timeout_ms = 300;
    let app = start(config).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(b"POST /v1/events HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut buf = [0u8; 256];
    let closed = loop {
        if tokio::time::Instant::now() > deadline {
            break false;
        }
        if c.write_all(b"x-slow: 1\r\n").await.is_err() {
            break true;
        }
        match tokio::time::timeout(std::time::Duration::from_millis(50), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            _ => {}
        }
    };
    assert!(closed, "a slow-header connection stayed open");
    assert_eq!(app.get("/healthz").await.0, 200);
    app.stop().await;
}

/// One hostile request of the corpus.
struct Case {
    what: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// The status and error code expected, and for an invalid event the kind of its first error
    /// (`error.details[0].kind`).
    status: u16,
    code: &'static str,
    /// Whether the refusal is kept as a dead letter (a body that was, or claimed to be, events).
    dead_letter: bool,
}

fn case(what: &'static str, body: impl Into<Vec<u8>>, status: u16, code: &'static str) -> Case {
    Case {
        what,
        path: "/v1/events",
        headers: vec![("content-type", "application/json".into())],
        body: body.into(),
        status,
        code,
        dead_letter: true,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The corpus: what an attacker (or a broken tracker) sends. Each gets its precise 4xx, every body
/// of events is dead-lettered, and afterwards (the corpus sent many times over) the service still
/// takes a good event, and its memory has not grown with the repetitions.
fn corpus() -> Vec<Case> {
    let ok = r#"{"type":"page_view","site_id":"demo","anonymous_id":"h","event_id":"h-1"}"#;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let huge_id = format!(
        r#"{{"type":"page_view","site_id":"demo","anonymous_id":"{}"}}"#,
        "a".repeat(300_000)
    );
    let mut bomb = case(
        "a gzip bomb (a few KiB expanding past the body limit)",
        gzip(&vec![b' '; 64 * 1024 * 1024]),
        413,
        "body_too_large",
    );
    bomb.headers.push(("content-encoding", "gzip".into()));
    // Never read whole (that is what the limit prevents), so counted but not kept (docs/events.md).
    bomb.dead_letter = false;
    let mut bad_gzip = case("a body that claims gzip and is not", ok, 400, "bad_body");
    bad_gzip.headers.push(("content-encoding", "gzip".into()));
    bad_gzip.dead_letter = false;
    let mut forged_key = case(
        "a Segment call with a write key no site has",
        r#"{"type":"track","event":"x","anonymousId":"a","writeKey":"stolen"}"#,
        401,
        "unauthorized",
    );
    forged_key.path = "/v1/track";
    let mut tp2 = case(
        "a Snowplow envelope that is not one",
        r#"{"schema":"iglu:x","data":"nope"}"#,
        400,
        "malformed",
    );
    tp2.path = "/com.snowplowanalytics.snowplow/tp2";
    let mut text = case("text instead of JSON", "page_view please", 400, "malformed");
    text.headers = vec![("content-type", "text/plain".into())];
    vec![
        case("truncated JSON", &ok[..30], 400, "malformed"),
        case(
            "a truncated batch",
            format!("[{ok},{{\"type\":"),
            400,
            "malformed",
        ),
        case(
            "invalid UTF-8",
            b"{\"type\":\"page_view\",\"site_id\":\"\xff\xfe\"}".to_vec(),
            400,
            "malformed",
        ),
        case("nesting 5,000 deep", deep, 400, "malformed"),
        case(
            "wrong types",
            r#"{"type":"page_view","site_id":"demo","anonymous_id":5,"timestamp":true}"#,
            400,
            "invalid_event/invalid_type",
        ),
        case(
            "a NUL in an id",
            r#"{"type":"page_view","site_id":"demo","anonymous_id":"a\u0000b"}"#,
            400,
            "invalid_event/invalid_value",
        ),
        case(
            "a right-to-left override in an id",
            "{\"type\":\"page_view\",\"site_id\":\"demo\",\"anonymous_id\":\"abc\u{202e}gnp.exe\"}",
            400,
            "invalid_event/invalid_value",
        ),
        case("a 300 KB id", huge_id, 400, "invalid_event/invalid_value"),
        case(
            "a site nobody configured",
            r#"{"type":"page_view","site_id":"forged","anonymous_id":"a"}"#,
            400,
            "invalid_event/unknown_site",
        ),
        case("an empty batch", "[]", 400, "empty_batch"),
        case(
            "an unknown event type",
            r#"{"type":"launch_missiles","site_id":"demo","anonymous_id":"a"}"#,
            400,
            "invalid_event/unknown_type",
        ),
        bomb,
        bad_gzip,
        forged_key,
        tp2,
        text,
    ]
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_gets_precise_refusals_and_leaves_the_service_whole() {
    let mut config = Config::default();
    // The corpus is sent many times from one address.
    config.collector.rate_limit_per_sec = 1_000_000;
    config.collector.rate_limit_burst = 1_000_000;
    config.collector.max_body_bytes = 1024 * 1024;
    let app = start(config).await;
    let send = |c: &Case| {
        let mut r = app
            .http
            .post(format!("{}{}", app.base, c.path))
            .body(c.body.clone());
        for (k, v) in &c.headers {
            r = r.header(*k, v);
        }
        r.send()
    };
    let mut wrong = Vec::new();
    let mut letters = 0;
    for c in corpus() {
        let r = send(&c).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or("-");
        let got = match body["error"]["details"][0]["kind"].as_str() {
            Some(kind) if code == "invalid_event" => format!("{code}/{kind}"),
            _ => code.to_string(),
        };
        if (status, got.as_str()) != (c.status, c.code) {
            wrong.push(format!(
                "{}: got {status} {got}, want {} {}: {body}",
                c.what, c.status, c.code
            ));
        }
        letters += usize::from(c.dead_letter);
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let (records, _) = all_dead_letters(&app, 100).await;
    let text = app.metrics().await;
    for reason in ["body_too_large", "bad_body"] {
        let line = format!("tailor_collector_requests_rejected_total{{reason=\"{reason}\"}} ");
        assert!(text.contains(&line), "{reason} is counted: {text}");
    }
    let kept: Vec<String> = records
        .iter()
        .map(|r| format!("{} {}", r["source"], r["errors"][0]["reason"]))
        .collect();
    assert_eq!(
        records.len(),
        letters,
        "every refused body of events is kept once: {kept:#?}"
    );

    // Many times over: nothing accumulates (dead letters are bounded by bytes, and nothing else may
    // grow), and a good event still goes through.
    let before = rss_kib();
    for _ in 0..15 {
        for c in corpus() {
            send(&c).await.unwrap();
        }
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 96 * 1024,
        "memory grew by {grown} KiB over 15 rounds of the corpus"
    );
    let (status, body) = app
        .post(&json!({"type": "page_view", "site_id": "demo", "anonymous_id": "after", "event_id": "after-1"}))
        .await;
    assert_eq!(status, 202, "{body}");
    app.until("/v1/profiles/after?site=demo&as=anonymous", |p| {
        p["event_counts"]["page_view"] == 1
    })
    .await;
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// One request of 400 fake page views put an item named like an XSS payload first in every new
/// visitor's recommendations. A visitor now counts once per item and day in popularity, and feeds at
/// most `processor.shared_items_per_day` items a day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_visitors_flood_cannot_top_everyones_recommendations() {
    let app = start(Config::default()).await;
    let xss = "<img/src=x/onerror=alert(1)>";
    let mut events: Vec<Value> = (0..6)
        .map(|n| {
            json!({"type": "page_view", "site_id": "demo", "anonymous_id": format!("shopper-{n}"),
                "event_id": format!("shopper-{n}"), "item_id": "tent-x"})
        })
        .collect();
    events.extend((0..400).map(|n| {
        json!({"type": "page_view", "site_id": "demo", "anonymous_id": "attacker",
            "session_id": format!("s{n}"), "event_id": format!("flood-{n}"), "item_id": xss})
    }));
    let (status, body) = app.post(&json!(events)).await;
    assert_eq!(status, 202, "{body}");
    app.until("/v1/profiles/attacker?site=demo&as=anonymous", |p| {
        p["event_counts"]["page_view"] == 400
    })
    .await;
    let got = app
        .until("/v1/recommendations?site=demo&anonymous=newcomer", |r| {
            r["items"].as_array().is_some_and(|i| i.len() >= 2)
        })
        .await;
    let items: Vec<&str> = got["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(items[0], "tent-x", "six shoppers outweigh one flood: {got}");
    app.stop().await;
}
