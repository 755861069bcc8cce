//! The mining stage's admin API: what marketers and operators ask of the mined data, served by
//! every processor (`tailor processor`, and `tailor run`).
//!
//! [`insights`]: segments written as rules (`/admin/segments`, the processor's own input) and the
//! analytics over what it mined (`/admin/analytics`, the `/insights` page); [`clv`]: the
//! lifetime-value fit (`/admin/clv/fit`) over the customers the processor keeps; [`privacy`]: the
//! right to be forgotten (`/admin/erase`), which deletes profiles and leaves the tombstones the
//! worker honours. Every route needs the site's `admin` key (the page itself is public; the data it
//! fetches is not).

pub mod clv;
pub mod insights;
pub mod privacy;

use axum::http::Method;
use axum::routing::{delete, get, post, put};
use axum::Router;
use std::collections::HashMap;
use std::sync::Arc;
use tailor_core::access::Scope;
use tailor_core::config::Config;
use tailor_core::keys::KeySpace;
use tailor_core::state::SubjectState;
use tailor_core::{SiteId, Subject};
use tailor_infra::api::ApiError;
use tailor_infra::auth::{Access, Gate, Routes};
use tailor_infra::store::Store;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Admin {
    pub store: Arc<dyn Store>,
    pub keys: KeySpace,
    pub config: Arc<Config>,
}

impl Admin {
    pub(crate) fn site(&self, q: &HashMap<String, String>) -> Result<SiteId, ApiError> {
        tailor_infra::api::site(&self.config, q.get("site").map(String::as_str))
    }

    /// A subject's state document, following an anonymous id's stitch to the member now holding
    /// its history; `None` if never seen.
    pub(crate) async fn state_of(
        &self,
        site: &SiteId,
        subject: &Subject,
    ) -> Result<Option<(Subject, SubjectState)>, ApiError> {
        tailor_infra::api::state_of(&*self.store, &self.keys, site, subject).await
    }
}

/// The admin API's route table: who may call each route (`tailor_infra::auth`).
pub fn routes() -> Routes<Admin> {
    let admin = Access::Site(Scope::Admin);
    Routes::new()
        .route(Method::GET, "/admin/clv/fit", admin, get(clv::fit_handler))
        .route(
            Method::GET,
            "/admin/segments",
            admin,
            get(insights::list_segments),
        )
        .route(
            Method::PUT,
            "/admin/segments/{name}",
            admin,
            put(insights::put_segment),
        )
        .route(
            Method::DELETE,
            "/admin/segments/{name}",
            admin,
            delete(insights::delete_segment),
        )
        .route(
            Method::GET,
            "/admin/segments/{name}/members",
            admin,
            get(insights::segment_members),
        )
        .route(
            Method::GET,
            "/admin/analytics",
            admin,
            get(insights::analytics),
        )
        // The page is public; the data it fetches (`/admin/analytics`) needs the admin key.
        .route(
            Method::GET,
            "/insights",
            Access::Public,
            get(insights::page),
        )
        .route(Method::POST, "/admin/erase", admin, post(privacy::erase))
}

/// The admin API's router.
pub fn router(a: Admin) -> Router {
    let router = routes().into_router(Gate::new(&a.config)).with_state(a);
    tailor_infra::http::with_metrics(router, "processor")
}

/// The admin API's part of the OpenAPI document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    #[derive(OpenApi)]
    #[openapi(
        paths(
            clv::fit_handler,
            insights::list_segments,
            insights::put_segment,
            insights::delete_segment,
            insights::segment_members,
            insights::analytics,
            insights::page,
            privacy::erase,
        ),
        components(schemas(
            clv::Fit,
            insights::SegmentInfo,
            insights::SegmentBody,
            insights::Members,
            insights::Analytics,
            insights::Day,
            insights::Funnel,
            privacy::Erased,
        ))
    )]
    struct AdminApi;
    AdminApi::openapi()
}
