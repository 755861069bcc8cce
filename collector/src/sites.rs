//! `GET /admin/sites`: the sites this collector accepts events for (their ids and names, nothing
//! secret: write keys and app ids stay out). Operator tools ask it before sending anything, so that
//! `tailor import` to a site the running Tailor does not know fails at once with one message instead
//! of dead-lettering every event of a file.

use crate::Collector;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

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

pub fn router(c: Collector) -> Router {
    Router::new().route("/admin/sites", get(list)).with_state(c)
}

/// The configured sites (ids and names).
#[utoipa::path(get, path = "/admin/sites", tag = "operations", operation_id = "list_sites",
    responses((status = 200, description = "the sites this collector accepts events for", body = Sites)))]
pub(crate) async fn list(State(c): State<Collector>) -> Json<Sites> {
    Json(Sites {
        sites: c
            .config
            .sites
            .iter()
            .map(|s| Site {
                id: s.id.clone(),
                name: s.name.clone(),
            })
            .collect(),
    })
}
