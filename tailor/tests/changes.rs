//! `/admin/changes` honours erasure as replay and export do: once `tailor erase` forgot a member, the
//! change events about them (and about the identities merged into them) are no longer listed, while
//! everyone else's are. Through the public HTTP API on the embedded default.

mod support;

use serde_json::{json, Value};
use support::{start, App};
use tailor_core::config::Config;

fn buyer(member: &str) -> Value {
    let device = format!("{member}-phone");
    json!([
        {"type": "page_view", "site_id": "demo", "anonymous_id": device, "item_id": "tent-2p"},
        {"type": "identify", "site_id": "demo", "anonymous_id": device, "member_id": member},
        {"type": "purchase", "site_id": "demo", "anonymous_id": device, "member_id": member,
         "order": {"id": format!("{member}-o1"), "currency": "EUR",
                   "lines": [{"item_id": "tent-2p", "price": 189.0}]}},
    ])
}

async fn changes(app: &App, subject: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!("/admin/changes?site=demo&subject={subject}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_members_changes_are_not_listed() {
    let app = start(Config::default()).await;
    for member in ["eve", "bob"] {
        let (status, body) = app.post(&buyer(member)).await;
        assert_eq!(status, 202, "{body}");
    }
    for member in ["eve", "bob"] {
        app.until(
            &format!("/admin/changes?site=demo&subject=m:{member}"),
            |c| {
                let kinds: Vec<&str> = c
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["kind"].as_str().unwrap())
                    .collect();
                kinds.contains(&"identity_merged") && kinds.contains(&"stage_changed")
            },
        )
        .await;
    }
    let (status, body) = app
        .send(
            reqwest::Method::POST,
            "/admin/erase?site=demo&member=eve",
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(changes(&app, "m:eve").await.is_empty());
    let (_, all) = app.get("/admin/changes?site=demo").await;
    let text = all.to_string();
    assert!(
        !text.contains("m:eve") && !text.contains("eve-phone"),
        "nothing about eve or her phone: {all}"
    );
    assert!(!changes(&app, "m:bob").await.is_empty(), "{all}");
    app.stop().await;
}
