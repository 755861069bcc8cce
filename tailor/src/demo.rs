//! The demo shop served by `tailor run` at `/`: a small catalogue whose page sends Tailor events
//! (page views, add to cart, purchase, login) to `/v1/events` and shows `/v1/recommendations` for the
//! visitor, so the whole loop can be watched in a browser. It is a demonstration of the public APIs and
//! uses nothing private. Its "Simulate shoppers" button (`POST /demo/simulate`) starts the same
//! synthetic shoppers as `tailor run --simulate` ([`crate::simulate`]), through this process's own
//! collection API.

use axum::extract::{Query, State};
use axum::http::Method;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tailor_infra::auth::{Access, Gate, RouteSpec, Routes};
use tailor_infra::http::error_with;
use tailor_infra::Shutdown;

const SHOP_HTML: &str = include_str!("demo/shop.html");
/// Shoppers a button press starts when it names no number, and the most it may start.
const DEFAULT_SHOPPERS: usize = 50;
const MAX_SHOPPERS: usize = 1000;

/// What the simulation button needs: where this process listens (known once bound), and the
/// shutdown signal that stops a running simulation with the process.
#[derive(Clone)]
pub struct Demo {
    pub addr: Arc<OnceLock<SocketAddr>>,
    pub shutdown: Shutdown,
}

/// The demo shop's routes, public: its simulated shoppers write to the demo site as browsers do (by
/// its allowed origins), and a simulation is bounded (`MAX_SHOPPERS`).
fn table() -> Routes<Demo> {
    Routes::new()
        .route(Method::GET, "/", Access::Public, get(shop))
        .route(
            Method::POST,
            "/demo/simulate",
            Access::Public,
            post(simulate),
        )
}

pub fn routes() -> Vec<RouteSpec> {
    table().specs().to_vec()
}

pub fn router(demo: Demo) -> Router {
    table()
        .into_router(Arc::new(Gate::default()))
        .with_state(demo)
}

/// The demo shop.
#[utoipa::path(get, path = "/", tag = "demo",
    responses((status = 200, description = "the demo shop page", body = String, content_type = "text/html")))]
pub(crate) async fn shop() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        SHOP_HTML,
    )
}

/// Starts synthetic shoppers on the demo site (`tailor run --simulate`), in the background.
#[utoipa::path(post, path = "/demo/simulate", tag = "demo",
    params(("shoppers" = Option<usize>, Query, description = "how many, 1 to 1000 (default 50)")),
    responses(
        (status = 202, description = "`{\"shoppers\": n}`: they are browsing; /insights fills within a minute", body = Object),
        (status = 400, description = "an invalid `shoppers`", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the server is not listening yet", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn simulate(
    State(demo): State<Demo>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let shoppers = match q.get("shoppers").map(|n| n.parse::<usize>()) {
        None => DEFAULT_SHOPPERS,
        Some(Ok(n)) if (1..=MAX_SHOPPERS).contains(&n) => n,
        Some(_) => {
            return error_with(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                format!("shoppers: must be an integer from 1 to {MAX_SHOPPERS}"),
                Some("shoppers".into()),
                vec![],
            )
        }
    };
    let Some(mut addr) = demo.addr.get().copied() else {
        return error_with(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "not listening yet",
            None,
            vec![],
        );
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    tokio::spawn(async move {
        let base = format!("http://{addr}");
        match crate::simulate::run(
            &base,
            "demo",
            shoppers,
            crate::simulate::PACE,
            demo.shutdown,
        )
        .await
        {
            Ok(r) => tracing::info!(
                shoppers = r.shoppers,
                requests = r.requests,
                events = r.events,
                "simulation done"
            ),
            Err(e) => tracing::error!(error = %e, "simulation stopped"),
        }
    });
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"shoppers": shoppers})),
    )
        .into_response()
}
