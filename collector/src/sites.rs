//! `GET /admin/sites`: the sites this collector accepts events for (their ids and names, nothing
//! secret: write keys and app ids stay out). Operator tools ask it before sending anything, so that
//! `tailor import` to a site the running Tailor does not know fails at once with one message instead
//! of dead-lettering every event of a file.

use crate::Collector;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::routing::get;
use axum::Json;
use serde::{Deserialize, Serialize};
use tailor_core::access::Scope;
use tailor_infra::auth::{Access, Routes};

/// One configured site, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Site {
    pub id: String,
    pub name: String,
}

/// The answer of `GET /admin/sites`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sites {
    pub sites: Vec<Site>,
}

/// An admin key sees its own site only.
pub fn routes() -> Routes<Collector> {
    Routes::new().route(
        Method::GET,
        "/admin/sites",
        Access::OwnSite(Scope::Admin),
        get(list),
    )
}

/// The configured sites (ids and names).
#[utoipa::path(get, path = "/admin/sites", tag = "operations", operation_id = "list_sites",
    responses((status = 200, description = "the sites this collector accepts events for", body = Sites)))]
pub(crate) async fn list(
    State(c): State<Collector>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Json<Sites> {
    let only = q.get("site");
    Json(Sites {
        sites: c
            .config
            .sites
            .iter()
            .filter(|s| only.is_none_or(|o| *o == s.id))
            .map(|s| Site {
                id: s.id.clone(),
                name: s.name.clone(),
            })
            .collect(),
    })
}
