//! `GET /openapi.json`: the OpenAPI 3.1 description of every route this process serves, assembled
//! from each stage's part (`tailor_collector::openapi`, `tailor_recommender::openapi`, the shared
//! operations routes) and the binary's own (`/admin/changes`, the demo shop). Every part is generated
//! by `utoipa` from the handlers' annotations and their request and answer types, so the document
//! follows the code; `tailor/tests/openapi.rs` checks that every route of the router is in it and that
//! it passes an OpenAPI validator.

use crate::app::Roles;
use axum::http::Method;
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use tailor_infra::auth::{Access, Gate, RouteSpec, Routes};
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tailor",
        description = "Real-time e-commerce CRM engine: event collection, member profiles, recommendations. Events: docs/events.md; profiles, segments and operator commands: docs/mining.md; metrics: docs/metrics.md."
    ),
    paths(openapi_json),
    tags(
        (name = "collection", description = "events in: Tailor's JSON API, the JS tag, Snowplow, Segment"),
        (name = "recommendations", description = "items for a member, called by storefronts' servers and by the tag"),
        (name = "profiles", description = "what Tailor knows about a member"),
        (name = "segments", description = "segments written as rules"),
        (name = "insights", description = "marketers' analytics and lifetime-value models"),
        (name = "privacy", description = "the right to be forgotten"),
        (name = "operations", description = "metrics, health, dead letters, change events"),
        (name = "demo", description = "the demo shop of `tailor run`")
    )
)]
struct Base;

#[derive(OpenApi)]
#[openapi(paths(crate::changes::list))]
struct ChangesApi;

#[derive(OpenApi)]
#[openapi(paths(crate::demo::shop, crate::demo::simulate))]
struct DemoApi;

/// The document for a process running `roles` (`changes`: whether it serves `/admin/changes`),
/// each operation marked with the key it needs from `routes`, the table the router is built from.
pub fn document(roles: Roles, changes: bool, routes: &[RouteSpec]) -> Document {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.merge(tailor_infra::http::OpsApi::openapi());
    doc.merge(tailor_infra::ops::OpsPageApi::openapi());
    if roles.collector {
        doc.merge(tailor_collector::openapi::openapi());
    }
    if roles.recommender {
        doc.merge(tailor_recommender::openapi::openapi());
    }
    if roles.processor {
        doc.merge(tailor_processor::admin::openapi());
    }
    if changes {
        doc.merge(ChangesApi::openapi());
    }
    if roles.demo {
        doc.merge(DemoApi::openapi());
    }
    secure(&mut doc, routes);
    doc
}

/// Adds the `bearer` scheme and, to each operation that needs a key, its security requirement and
/// its 401 and 403 answers (docs/security.md). Where a key is needed only sometimes (collection
/// without a browser `Origin`, recommendations naming a member), the key is optional.
fn secure(doc: &mut Document, routes: &[RouteSpec]) {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    let answer = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for spec in routes {
        let optional = match spec.access {
            Access::Public => continue,
            Access::Collect | Access::Recommendations => true,
            Access::Site(_) | Access::OwnSite(_) => false,
        };
        let Some(item) = doc.paths.paths.get_mut(spec.path) else {
            continue;
        };
        let op = match spec.method {
            Method::GET => &mut item.get,
            Method::POST => &mut item.post,
            Method::PUT => &mut item.put,
            Method::DELETE => &mut item.delete,
            _ => continue,
        };
        let Some(op) = op.as_mut() else { continue };
        let mut needs = vec![SecurityRequirement::new("bearer", Vec::<String>::new())];
        if optional {
            needs.insert(0, SecurityRequirement::default());
        }
        op.security = Some(needs);
        let responses = &mut op.responses.responses;
        responses.entry("401".into()).or_insert_with(|| {
            answer("no key, or an unknown one (`WWW-Authenticate: Bearer`)").into()
        });
        responses
            .entry("403".into())
            .or_insert_with(|| answer("a key of another site or another scope").into());
    }
}

/// Serves `doc` at `/openapi.json`.
fn table() -> Routes<Arc<Document>> {
    Routes::new().route(
        Method::GET,
        "/openapi.json",
        Access::Public,
        get(openapi_json),
    )
}

/// Public: the API's description holds nothing of any site.
pub fn routes() -> Vec<RouteSpec> {
    table().specs().to_vec()
}

pub fn router(doc: Document) -> Router {
    table()
        .into_router(Arc::new(Gate::default()))
        .with_state(Arc::new(doc))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "the OpenAPI 3.1 description of this process's routes", body = Object)))]
async fn openapi_json(
    axum::extract::State(doc): axum::extract::State<Arc<Document>>,
) -> Json<Document> {
    Json((*doc).clone())
}
