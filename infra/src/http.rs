//! HTTP plumbing every service shares: `/metrics`, `/healthz`, `/readyz`, request metrics, the JSON
//! error body, and gzip for the pages browsers load.
//!
//! `/healthz` answers 200 as long as the process serves requests and every loop it runs makes progress
//! (liveness: 503 names a loop stuck beyond its limit, so an orchestrator restarts the process);
//! `/readyz` also checks each backend the service depends on, and answers 503 naming the failing one
//! (readiness).
//!
//! Two layers apply to every service's routes: [`admin_guard`] keeps the operator routes
//! (`/admin/*`) out of a browser's reach from other sites, and [`json_error_bodies`] gives every
//! error the standard JSON body, also those that axum or tower answer with an empty one (415 from
//! the decompression layer, 408 from a timeout, 405, 404).

use crate::auth::{Access, Gate, RouteSpec, Routes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// A readiness check: a name for the report and a future that fails with a reason.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A liveness check: fails with a reason when a loop of the process is stuck (it must be cheap and
/// never wait: `/healthz` must answer even when every backend hangs).
pub type Live = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The JSON body of every error response: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_event`.
    #[schema(value_type = String)]
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Per-event errors of a batch: index, field, reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub details: Vec<serde_json::Value>,
}

/// Builds an error response with the standard body.
pub fn error_response(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Response {
    error_with(status, code, message, None, Vec::new())
}

pub fn error_with(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
    field: Option<String>,
    details: Vec<serde_json::Value>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message: message.into(),
            field,
            details,
        },
    };
    (status, Json(body)).into_response()
}

/// Gzip, for clients that accept it, of what a browser loads as a page or script: `/tag.js`, the demo
/// shop, the insights page (JavaScript, HTML, CSS). API answers are left as they are: small, and on
/// the hot path. tower-http's default rules still apply (nothing under 32 bytes, no images).
pub fn compress_pages(
) -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{DefaultPredicate, Predicate};
    let page = |_: StatusCode,
                _: axum::http::Version,
                h: &axum::http::HeaderMap,
                _: &axum::http::Extensions| {
        h.get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                [
                    "text/html",
                    "text/css",
                    "application/javascript",
                    "text/javascript",
                ]
                .iter()
                .any(|p| t.starts_with(p))
            })
    };
    tower_http::compression::CompressionLayer::new()
        .compress_when(DefaultPredicate::new().and(page))
}

#[derive(Clone)]
struct Ops {
    checks: Arc<Vec<(&'static str, Check)>>,
    live: Arc<Vec<(&'static str, Live)>>,
}

fn ops_table() -> Routes<Ops> {
    Routes::new()
        .route(Method::GET, "/metrics", Access::Public, get(metrics))
        .route(Method::GET, "/healthz", Access::Public, get(healthz))
        .route(Method::GET, "/readyz", Access::Public, get(readyz))
}

/// The routes of [`ops_router`], all public (probes and scrapers carry no key).
pub fn ops_routes() -> Vec<RouteSpec> {
    ops_table().specs().to_vec()
}

/// `/metrics`, `/healthz` and `/readyz` for a service with the given readiness and liveness checks.
pub fn ops_router(checks: Vec<(&'static str, Check)>, live: Vec<(&'static str, Live)>) -> Router {
    ops_table()
        .into_router(Arc::new(Gate::default()))
        .with_state(Ops {
            checks: Arc::new(checks),
            live: Arc::new(live),
        })
}

/// The OpenAPI description of the routes every service shares (`/metrics`, `/healthz`, `/readyz`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(metrics, healthz, readyz),
    components(schemas(ErrorBody, ErrorDetail))
)]
pub struct OpsApi;

/// Prometheus text of every metric (docs/metrics.md). Each scrape runs the readiness and liveness
/// checks first, so `tailor_backend_ready{check}` and `tailor_live{check}` say what `/readyz` and
/// `/healthz` would (alerts cannot read them).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain")))]
async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    for (name, r) in run_checks(&ops).await {
        metrics::gauge!("tailor_backend_ready", "check" => name).set(if r.is_ok() {
            1.0
        } else {
            0.0
        });
    }
    for (name, live) in ops.live.iter() {
        metrics::gauge!("tailor_live", "check" => *name).set(if live().is_ok() {
            1.0
        } else {
            0.0
        });
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics().render(),
    )
}

/// Runs the readiness checks together, at most 5 s in all (a scrape must finish within its timeout
/// even when every backend hangs).
async fn run_checks(ops: &Ops) -> Vec<(&'static str, Result<(), String>)> {
    futures::future::join_all(ops.checks.iter().map(|(name, check)| async move {
        let r = match tokio::time::timeout(std::time::Duration::from_secs(5), check()).await {
            Ok(r) => r,
            Err(_) => Err("timed out after 5s".to_string()),
        };
        (*name, r)
    }))
    .await
}

/// Liveness: answers as long as the process serves requests and none of its loops is stuck.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "`{\"status\": \"ok\"}`", body = Object),
        (status = 503, description = "a loop is stuck: `{\"status\": \"stuck\", \"checks\": {name: reason}}`; restart the process", body = Object)))]
async fn healthz(State(ops): State<Ops>) -> Response {
    let stuck: serde_json::Map<String, serde_json::Value> = ops
        .live
        .iter()
        .filter_map(|(name, live)| Some((name.to_string(), live().err()?.into())))
        .collect();
    if stuck.is_empty() {
        return Json(serde_json::json!({"status": "ok"})).into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"status": "stuck", "checks": stuck})),
    )
        .into_response()
}

/// Readiness: checks each backend the service depends on.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "`{\"status\": \"ready\", \"checks\": {name: \"ok\"}}`", body = Object),
        (status = 503, description = "a backend is failing; `checks` names it with the reason", body = Object)))]
async fn readyz(State(ops): State<Ops>) -> Response {
    let mut report = serde_json::Map::new();
    let mut ready = true;
    for (name, r) in run_checks(&ops).await {
        ready &= r.is_ok();
        report.insert(
            name.to_string(),
            serde_json::Value::String(r.err().unwrap_or_else(|| "ok".into())),
        );
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body =
        serde_json::json!({"status": if ready {"ready"} else {"not_ready"}, "checks": report});
    (status, Json(body)).into_response()
}

/// The header that names a request, end to end (`X-Request-Id`).
pub const REQUEST_ID: &str = "x-request-id";

/// Middleware recording `tailor_http_requests_total{service,route,method,status}` and
/// `tailor_http_request_duration_seconds{service,route}` for every request, and giving it an id.
pub async fn track(service: &'static str, mut req: Request, next: Next) -> Response {
    use tracing::Instrument;
    // The request's id: the caller's `X-Request-Id` when it is a sane one, else a new one. It is
    // set on the request (handlers read it there), echoed on the response, and every log line of
    // the request carries it (a span), as do the events it writes (their record headers).
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let value = HeaderValue::from_str(&id).expect("a checked request id is a header value");
    req.headers_mut().insert(REQUEST_ID, value.clone());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = next.run(req).instrument(span).await;
    resp.headers_mut().insert(REQUEST_ID, value);
    let status = resp.status().as_u16().to_string();
    metrics::counter!("tailor_http_requests_total", "service" => service, "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("tailor_http_request_duration_seconds", "service" => service, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}

/// Adds request metrics to a service's router.
/// CORS for the routes browsers call (collection, recommendations for the tag's offer slots): any
/// origin some site allows, with credentials (the Snowplow browser tracker sends cookies), for the
/// methods and headers trackers use. Member profiles are deliberately not served cross-origin.
pub fn browser_cors(config: &tailor_core::config::Config) -> tower_http::cors::CorsLayer {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<String> = config
        .sites
        .iter()
        .flat_map(|s| s.allowed_origins.iter().cloned())
        .collect();
    let any = origins.iter().any(|o| o == "*");
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            any || origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
        }))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::CONTENT_ENCODING,
        ])
        .max_age(std::time::Duration::from_secs(3600))
}

pub fn with_metrics(router: Router, service: &'static str) -> Router {
    router.route_layer(axum::middleware::from_fn(
        move |req: Request, next: Next| track(service, req, next),
    ))
}

/// Refuses, on `/admin/*`, what a page on another site could make a browser send.
///
/// - A request whose `Origin` is not this server's own (`Host`) is 403: browsers send `Origin` on
///   cross-site requests, and no other site's page has business with the admin API. Clients that
///   send no `Origin` (the CLI, curl, scripts) are unaffected.
/// - A `POST` or `PUT` must say `Content-Type: application/json` (else 415): a cross-site page can
///   send a "simple" request (a form or a plain-text `fetch`) without asking first, but a JSON one
///   needs a CORS preflight, which the admin routes never grant. This is what kept `POST
///   /admin/erase` open to any page its operator visited.
pub async fn admin_guard(req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/admin/") {
        let h = req.headers();
        if let Some(origin) = h.get(header::ORIGIN) {
            // HTTP/1 names the server in `Host`, HTTP/2 in the URI's authority.
            let host = h
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()));
            let own = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://").map(|(_, authority)| authority))
                .is_some_and(|authority| Some(authority) == host);
            if !own {
                return error_response(
                    StatusCode::FORBIDDEN,
                    "foreign_origin",
                    "the admin API does not serve pages of other origins",
                );
            }
        }
        let json = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if matches!(
            *req.method(),
            axum::http::Method::POST | axum::http::Method::PUT
        ) && !json
        {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "admin requests that change something must be sent as Content-Type: application/json",
            );
        }
    }
    next.run(req).await
}

/// Gives an error answer that has no body of its own the standard JSON error body.
pub async fn json_error_bodies(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error())
        || resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return resp;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let message = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "unsupported content type or encoding (bodies are JSON, optionally gzip)".to_string()
        }
        s => s.canonical_reason().unwrap_or("error").to_string(),
    };
    let (mut parts, _) = resp.into_parts();
    let mut fresh = error_response(status, code, message);
    for (name, value) in parts.headers.drain().filter_map(|(n, v)| n.map(|n| (n, v))) {
        if name != header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name, value);
        }
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn healthz_of(live: Vec<(&'static str, Live)>) -> (StatusCode, serde_json::Value) {
        let r = ops_router(vec![], live)
            .oneshot(
                axum::http::Request::get("/healthz")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn healthz_fails_naming_a_stuck_loop() {
        let fine: Live = Arc::new(|| Ok(()));
        let stuck: Live = Arc::new(|| Err("no progress for 130 s".into()));
        let (status, body) = healthz_of(vec![("store", fine.clone())]).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("ok"))
        );
        let (status, body) = healthz_of(vec![("store", fine), ("processor", stuck)]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["processor"], "no progress for 130 s");
        assert!(body["checks"].get("store").is_none(), "{body}");
    }
}
