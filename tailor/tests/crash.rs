//! Exactly-once effect under crashes: the processor runs as its own process (`tailor processor`) on the
//! real broker and Redis and is killed with SIGKILL again and again while it works through a backlog,
//! mid-batch, between the store write and the offset commit or anywhere else. After the last restart
//! every member's counters must equal exactly what was sent: nothing lost, nothing counted twice.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use tailor::app::{self, Roles};
use tailor_infra::{testkit, Shutdown};

const MEMBERS: usize = 60;
const VIEWS_PER_MEMBER: usize = 50;
const KILLS: usize = 4;

/// Events the child has applied so far (from its /metrics; 0 while unreachable).
async fn applied_events(http: &reqwest::Client, port: u16) -> f64 {
    let Ok(r) = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    else {
        return 0.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.starts_with("tailor_processor_events_total") && l.contains("outcome=\"applied\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn processor(config_file: &std::path::Path, log: &std::path::Path) -> support::Reaped {
    processor_with(config_file, log, "")
}

fn processor_with(
    config_file: &std::path::Path,
    log: &std::path::Path,
    failpoint: &str,
) -> support::Reaped {
    support::stage("processor", "127.0.0.1:0", config_file, log, failpoint)
}

use support::dead_member_leaves_the_group;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_killed_mid_batch_counts_every_event_once() {
    let mut config = testkit::real_config();
    // Small batches, so kills land in the middle of a stream of many store writes and commits.
    config.processor.batch_size = 20;
    // The event path only (one consumer group per processor): each killed member of a group is one
    // more chance of Tansu 0.6 leaving the next one without partitions (docs/reliability.md); the
    // actions stage's exactly-once is tested in tailor/tests/campaigns.rs.
    config.processor.actions = false;
    let dir = testkit::temp_dir("crash");
    let config_file = dir.join("tailor.toml");
    // The processors read the file: its sites are closed, with test keys (the admin API they serve
    // is asked with one below).
    std::fs::write(
        &config_file,
        toml::to_string(&testkit::keyed(config.clone())).unwrap(),
    )
    .unwrap();

    // Collector and recommender in this process; the processor in a child we can kill.
    let shutdown = Shutdown::new();
    let running = app::start(
        config,
        Roles {
            collector: true,
            processor: false,
            recommender: true,
            demo: false,
            export: false,
        },
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown.clone(),
    )
    .await
    .expect("start collector and recommender");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    let mut events = Vec::new();
    for m in 0..MEMBERS {
        for v in 0..VIEWS_PER_MEMBER {
            events.push(
                json!({"type": "page_view", "event_id": format!("crash-{m}-{v}"), "site_id": "demo",
                "anonymous_id": format!("dev-{m}"), "member_id": format!("crash-{m}"),
                "session_id": format!("s-{m}"), "item_id": format!("item-{}", v % 7)}),
            );
        }
        events.push(json!({"type": "purchase", "event_id": format!("crash-{m}-order"), "site_id": "demo",
            "anonymous_id": format!("dev-{m}"), "member_id": format!("crash-{m}"),
            "order": {"id": format!("o-{m}"), "currency": "EUR", "lines": [{"item_id": "item-1", "price": 10.0, "quantity": 2}]}}));
    }
    for chunk in events.chunks(500) {
        let r = http
            .post(format!("{base}/v1/events"))
            .json(chunk)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }

    // First, twice, die exactly between a batch's site updates and its documents (a failpoint aborts
    // there): only the site's own watermark keeps the redelivered batch from counting twice there.
    for round in 0..2 {
        let log = dir.join(format!("processor-abort-{round}.log"));
        let mut child = processor_with(&config_file, &log, "processor-after-site-updates");
        child.dies_at_failpoint(&log, Duration::from_secs(90)).await;
        dead_member_leaves_the_group().await;
    }

    // Kill the processor while it works: each round starts a processor, waits until it has applied
    // more events (so it has joined the group and is in the middle of the backlog), then SIGKILLs it
    // at once, wherever it is: between reads, between the site and document writes, before the commit.
    for round in 0..KILLS {
        let log = dir.join(format!("processor-{round}.log"));
        let mut child = processor(&config_file, &log);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let port = loop {
            if let Some(p) = support::listening_port(&log) {
                break p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: processor did not start; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        loop {
            if applied_events(&http, port).await > 0.0 {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "round {round}: the processor exited by itself; see {}",
                log.display()
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no progress; see {}",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        child.kill().unwrap(); // SIGKILL: no graceful shutdown, no final commit
        child.wait().unwrap();
        dead_member_leaves_the_group().await;
    }

    // A last processor finishes the backlog.
    let mut last = processor(&config_file, &dir.join("processor-last.log"));
    let app_view = |m: usize| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let r = http
                .get(format!("{base}/v1/profiles/crash-{m}?site=demo"))
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                r.json::<Value>().await.unwrap()
            } else {
                Value::Null
            }
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    'wait: loop {
        let mut done = true;
        for m in 0..MEMBERS {
            let p = app_view(m).await;
            let views = p["event_counts"]["page_view"].as_u64().unwrap_or(0);
            assert!(
                views <= VIEWS_PER_MEMBER as u64,
                "crash-{m}: {views} page views counted, {VIEWS_PER_MEMBER} sent: {p}"
            );
            if views < VIEWS_PER_MEMBER as u64 || p["purchases"]["orders"] != 1 {
                done = false;
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the backlog was not processed (crash-{m}: {views} views); logs in {}",
                    dir.display()
                );
                break;
            }
        }
        if done {
            break 'wait;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Settled: nothing is applied twice later either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for m in 0..MEMBERS {
        let p = app_view(m).await;
        assert_eq!(p["event_counts"]["page_view"], VIEWS_PER_MEMBER, "{p}");
        assert_eq!(p["purchases"]["orders"], 1, "{p}");
        assert_eq!(p["purchases"]["units"], 2, "{p}");
        assert_eq!(p["purchases"]["revenue"]["EUR"], 20.0, "{p}");
    }
    // The site's shared keys (their own watermark) counted every event once too (the analytics
    // are the processor's admin API).
    let last_log = dir.join("processor-last.log");
    let last_port = support::listening_port(&last_log).unwrap_or_else(|| {
        panic!(
            "the last processor said where it listens: {}",
            last_log.display()
        )
    });
    let a: Value = http
        .get(format!(
            "http://127.0.0.1:{last_port}/admin/analytics?site=demo"
        ))
        .bearer_auth(testkit::test_secret(
            "demo",
            tailor_core::access::Scope::Admin,
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page_views: u64 = a["days"]
        .as_array()
        .unwrap_or_else(|| panic!("the analytics: {a}"))
        .iter()
        .filter_map(|d| d["events"]["page_view"].as_u64())
        .sum();
    assert_eq!(page_views, (MEMBERS * VIEWS_PER_MEMBER) as u64, "{a}");
    assert_eq!(a["funnel"]["view"], MEMBERS * VIEWS_PER_MEMBER, "{a}");
    assert_eq!(a["funnel"]["purchase"], MEMBERS, "{a}");
    last.kill().unwrap();
    last.wait().unwrap();
    shutdown.cancel();
    running.wait().await.unwrap();
}
