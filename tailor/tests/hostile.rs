//! Hostile input, tried as an attacker would (issue 12): each case here once crashed a stage, lost an
//! acknowledged event or stored nonsense. Every one must now get a precise 4xx, be dead-lettered where
//! it is an event, and leave the service answering. Runs embedded (in-process bus and store): these
//! are properties of the edge and the rule language, the same code on every backend.

mod support;

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
