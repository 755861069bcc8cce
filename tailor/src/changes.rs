//! `GET /admin/changes?site=&subject=&kind=&limit=`: the latest change events the processor emitted
//! (life-cycle transitions, segment entry and exit, behaviour changes, identity merges), read back
//! from the changes topic for operators and tests. Production consumers read the topic itself.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::Arc;
use tailor_core::change::Change;
use tailor_infra::bus::TopicReader;
use tailor_infra::http::error_with;

/// Most records read back from the topic.
const READ_MAX: usize = 100_000;

pub fn router(reader: Arc<dyn TopicReader>) -> Router {
    Router::new()
        .route("/admin/changes", get(list))
        .with_state(reader)
}

async fn list(
    State(reader): State<Arc<dyn TopicReader>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=10_000).contains(&n) => n,
        Some(_) => {
            return error_with(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                "limit: must be an integer from 1 to 10000",
                Some("limit".into()),
                vec![],
            )
        }
    };
    let records = match reader.read_all(READ_MAX).await {
        Ok(r) => r,
        Err(e) => {
            return error_with(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
                None,
                vec![],
            )
        }
    };
    let wanted = |c: &Change| {
        q.get("site").is_none_or(|s| *s == c.site_id)
            && q.get("subject").is_none_or(|s| *s == c.subject)
            && q.get("kind").is_none_or(|k| k == c.kind.name())
    };
    let mut changes: Vec<Change> = records
        .iter()
        .filter_map(|m| serde_json::from_slice::<Change>(&m.payload).ok())
        .filter(wanted)
        .collect();
    changes.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    let skip = changes.len().saturating_sub(limit);
    Json(changes.split_off(skip)).into_response()
}
