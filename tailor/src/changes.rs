//! `GET /admin/changes?site=&subject=&kind=&limit=`: the latest change events the processor emitted
//! (life-cycle transitions, segment entry and exit, behaviour changes, identity merges), read back
//! from the changes topic for operators and tests. Production consumers read the topic itself.
//!
//! Kafka cannot delete single records, so the topic keeps an erased member's changes until its
//! retention expires; this reader drops them as replay and export drop their events: a change about
//! (or merging in) an identity whose erasure tombstone is not older than the change is not listed.

use axum::extract::{Query, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::Arc;
use tailor_core::access::Scope;
use tailor_core::change::{Change, ChangeKind};
use tailor_core::keys::KeySpace;
use tailor_core::{SiteId, Subject};
use tailor_infra::auth::{Access, Gate, RouteSpec, Routes};
use tailor_infra::bus::TopicReader;
use tailor_infra::http::error_with;
use tailor_infra::store::Store;

/// Most records read back from the topic.
const READ_MAX: usize = 100_000;

/// What the handler reads: the topic, and the store for erasure tombstones.
#[derive(Clone)]
pub struct Changes {
    pub reader: Arc<dyn TopicReader>,
    pub store: Arc<dyn Store>,
    pub keys: KeySpace,
}

/// Spans sites: an admin key sees its own site's changes only.
fn table() -> Routes<Changes> {
    Routes::new().route(
        Method::GET,
        "/admin/changes",
        Access::OwnSite(Scope::Admin),
        get(list),
    )
}

pub fn routes() -> Vec<RouteSpec> {
    table().specs().to_vec()
}

pub fn router(changes: Changes, gate: Arc<Gate>) -> Router {
    table().into_router(gate).with_state(changes)
}

/// The tombstone keys of the identities a change is about.
fn identities(keys: &KeySpace, c: &Change) -> Vec<String> {
    let Ok(site) = SiteId::parse(c.site_id.clone()) else {
        return vec![];
    };
    let mut subjects = vec![c.subject.as_str()];
    if let ChangeKind::IdentityMerged { from } = &c.kind {
        subjects.push(from);
    }
    subjects
        .into_iter()
        .filter_map(|s| Subject::parse(s).ok())
        .map(|s| keys.erased(&site, &s))
        .collect()
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    error_with(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
        None,
        vec![],
    )
}

/// Drops the changes of erased identities; see the module docs.
async fn drop_erased(
    ch: &Changes,
    changes: &mut Vec<Change>,
) -> Result<(), tailor_infra::store::StoreError> {
    let keys: Vec<String> = changes
        .iter()
        .flat_map(|c| identities(&ch.keys, c))
        .collect();
    let erased = tailor_processor::erasure::erased_at(ch.store.as_ref(), keys).await?;
    changes.retain(|c| {
        let at = c.at.timestamp_millis();
        !identities(&ch.keys, c)
            .iter()
            .any(|k| erased.get(k).is_some_and(|when| *when >= at))
    });
    Ok(())
}

/// The latest change events, oldest first, without those of erased identities.
#[utoipa::path(get, path = "/admin/changes", tag = "operations", operation_id = "list_changes",
    params(
        ("site" = Option<String>, Query, description = "only this site"),
        ("subject" = Option<String>, Query, description = "only this subject (`m:<member>` or `a:<anonymous id>`)"),
        ("kind" = Option<String>, Query, description = "only this kind (docs/mining.md, \"Change events\")"),
        ("limit" = Option<usize>, Query, description = "the newest this many, 1 to 10000 (default 100)")),
    responses(
        (status = 200, description = "change events (docs/mining.md)", body = Vec<Object>),
        (status = 400, description = "an invalid `limit`", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the changes topic or the store cannot be read", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn list(
    State(ch): State<Changes>,
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
    let records = match ch.reader.read_all(READ_MAX).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
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
    if let Err(e) = drop_erased(&ch, &mut changes).await {
        return unavailable(e);
    }
    changes.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    let skip = changes.len().saturating_sub(limit);
    Json(changes.split_off(skip)).into_response()
}
