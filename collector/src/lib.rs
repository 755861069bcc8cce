//! Stage one, collection: the HTTP doors through which events arrive, and the path they all share.
//!
//! Doors: Tailor's JSON API (`POST /v1/events`, used by the JS tag served at `/tag.js`), the Snowplow
//! tracker protocol (`GET /i`, `POST /com.snowplowanalytics.snowplow/tp2`) and the Segment HTTP API
//! (`POST /v1/track|page|identify|alias|batch|...`). Each handler is thin: it maps its wire format to
//! [`mapped::Mapped`] events (pure modules [`ingest`], [`snowplow`], [`segment`]) and hands them to
//! [`Collector::ingest`] ([`pipeline`]), which validates, enriches ([`enrich`]), writes to the bus and
//! dead-letters rejects ([`deadletters`]). An answer of 2xx means every accepted event is durable: on
//! the broker, or in the on-disk spool while the broker is away. [`sites`] lists the configured sites
//! for operator tools. [`error::IngestError`] maps request failures to HTTP statuses in one place;
//! [`edge`] holds CORS and per-IP rate limiting.

pub mod deadletters;
pub mod edge;
pub mod enrich;
pub mod error;
pub mod fuzzing;
pub mod ingest;
pub mod mapped;
pub mod openapi;
pub mod pipeline;
pub mod segment;
pub mod sites;
pub mod snowplow;
pub mod tag;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use enrich::{Enricher, RequestMeta};
use error::IngestError;
use pipeline::{Outcome, RequestInfo, Writer};
use std::sync::Arc;
use std::time::Duration;
use tailor_core::config::Config;
use tailor_core::event::Source;
use tailor_infra::auth::{Access, CollectKey, Gate, Routes};
use tailor_infra::bus::{Producer, TopicReader};

/// Shared state of the collector's handlers.
#[derive(Clone)]
pub struct Collector {
    /// Validated events (through the spool when the bus is Kafka).
    pub producer: Arc<dyn Producer>,
    /// Dead letters.
    pub dead_letters: Arc<dyn Producer>,
    pub dead_letter_reader: Arc<dyn TopicReader>,
    pub config: Arc<Config>,
    enricher: Arc<Enricher>,
}

impl Collector {
    pub fn new(
        producer: Arc<dyn Producer>,
        dead_letters: Arc<dyn Producer>,
        dead_letter_reader: Arc<dyn TopicReader>,
        config: Arc<Config>,
    ) -> Collector {
        Collector {
            producer,
            dead_letters,
            dead_letter_reader,
            enricher: Arc::new(Enricher::new(&config.collector)),
            config,
        }
    }
}

/// A 1x1 transparent GIF, the answer to a Snowplow pixel request.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x01, 0x44, 0x00, 0x3b,
];

/// The collector's route table: who may call each route (`tailor_infra::auth`). The pixel and the
/// Segment door are public as far as keys go: a pixel is a browser's, a Segment request names its
/// site by its write key (a known one, else 401).
pub fn routes(config: &Config) -> Routes<Collector> {
    let c = &config.collector;
    let limiter = Arc::new(edge::RateLimiter::new(config));
    let collect = Routes::new()
        .route(Method::POST, "/v1/events", Access::Collect, post(api))
        .route(Method::GET, "/i", Access::Public, get(snowplow_get))
        .route(
            Method::GET,
            "/com.snowplowanalytics.snowplow/i",
            Access::Public,
            get(snowplow_get),
        )
        .route(
            Method::POST,
            "/com.snowplowanalytics.snowplow/tp2",
            Access::Collect,
            post(snowplow_post),
        )
        .route(
            Method::POST,
            "/v1/{call}",
            Access::Public,
            post(segment_call),
        )
        .layer(DefaultBodyLimit::max(c.max_body_bytes))
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            c.max_body_bytes,
            edge::read_encoded_body,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(c.request_timeout_ms),
        ))
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            edge::rate_limit,
        ))
        .layer(tailor_infra::http::browser_cors(config));
    collect
        .merge(tag::routes())
        .merge(sites::routes())
        .merge(deadletters::routes())
}

/// The collection routes (with their edge protections), the tag, and the dead-letter admin API.
pub fn router(collector: Collector) -> Router {
    let config = collector.config.clone();
    let router = routes(&config)
        .into_router(Gate::new(&config))
        .with_state(collector);
    tailor_infra::http::with_metrics(router, "collector")
}

/// `pixel`: the Snowplow `GET /i`, which only browsers send (an image request carries no `Origin`).
fn request_info(
    c: &Collector,
    source: Source,
    route: &str,
    headers: &HeaderMap,
    peer: edge::Peer,
    writer: Writer,
) -> RequestInfo {
    let pixel = matches!(writer, Writer::Browser);
    let text = |h| {
        headers
            .get(h)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let origin = text(header::ORIGIN);
    RequestInfo {
        source,
        route: route.to_string(),
        meta: RequestMeta {
            user_agent: text(header::USER_AGENT),
            ip: edge::client_ip(headers, &peer, c.config.collector.trust_forwarded_for),
            browser: pixel || origin.is_some(),
        },
        origin,
        writer,
        request_id: text(header::HeaderName::from_static(
            tailor_infra::http::REQUEST_ID,
        )),
    }
}

/// What a server-side request may write: its `collect` key's site, or open sites only.
fn keyed(key: Option<Extension<CollectKey>>) -> Writer {
    match key.and_then(|Extension(k)| k.0) {
        Some(grant) => Writer::Key(grant),
        None => Writer::Keyless,
    }
}

/// Maps a body with `map`, ingests it, and dead-letters a body refused as a whole (not in the wire
/// format, an unknown write key, too many events).
async fn run(
    c: &Collector,
    req: &RequestInfo,
    body: Result<Bytes, BytesRejection>,
    map: impl FnOnce(&[u8]) -> Result<Vec<mapped::Mapped>, IngestError>,
) -> Result<Outcome, IngestError> {
    let body = body.map_err(IngestError::from_body_rejection)?;
    let max = c.config.collector.max_batch_events;
    let mapped = map(&body).and_then(|items| ingest::check_batch(items.len(), max).map(|()| items));
    let items = match mapped {
        Ok(items) => items,
        Err(e) => {
            // Read already (within collector.max_body_bytes), so keeping it costs one bounded
            // record. A body over max_body_bytes (413) and a rate-limited one (429) are not kept:
            // they were never read, and reading them to store them is what those limits prevent.
            c.reject_request(req, &body, &e).await;
            return Err(e);
        }
    };
    c.ingest(req, items, true).await?.into_result()
}

/// Tailor's JSON API: one event, or an array of events (docs/events.md). A batch keeps its good
/// events; each rejected one is listed and dead-lettered.
#[utoipa::path(post, path = "/v1/events", tag = "collection",
    request_body(content = Object, description = "One event object or a JSON array of them, in Tailor's schema (docs/events.md); may be gzip-compressed (`Content-Encoding: gzip`)", content_type = "application/json"),
    responses(
        (status = 202, description = "every accepted event is durable; rejected ones are listed", body = pipeline::Accepted),
        (status = 400, description = "not JSON, an empty batch, or no valid event (`invalid_event`, with `details` per event)", body = tailor_infra::http::ErrorBody),
        (status = 413, description = "body or batch over its limit (`body_too_large`, `too_many_events`)", body = tailor_infra::http::ErrorBody),
        (status = 429, description = "this client IP is over `collector.rate_limit_per_sec`; see `Retry-After`", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the bus is unreachable and the spool is full; nothing is accepted; see `Retry-After`", body = tailor_infra::http::ErrorBody)))]
async fn api(
    State(c): State<Collector>,
    peer: edge::Peer,
    key: Option<Extension<CollectKey>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let req = request_info(&c, Source::Api, "/v1/events", &headers, peer, keyed(key));
    let max = c.config.collector.max_batch_events;
    match run(&c, &req, body, |b| ingest::parse_body(b, max)).await {
        Ok(o) => (StatusCode::ACCEPTED, Json(o.accepted())).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The Snowplow tracker protocol's pixel: one event in the query string (also served at
/// `/com.snowplowanalytics.snowplow/i`).
#[utoipa::path(get, path = "/i", tag = "collection",
    params(
        ("e" = String, Query, description = "event type: pv, pp, se, ue, tr, ti"),
        ("aid" = String, Query, description = "app id: the site whose `snowplow_app_ids` lists it"),
        ("eid" = Option<String>, Query, description = "event id"),
        ("duid" = Option<String>, Query, description = "domain user id (the anonymous id)"),
        ("uid" = Option<String>, Query, description = "user id (the member id)"),
        ("ua" = Option<String>, Query, description = "the shopper's user agent, when a server relays the event")),
    responses(
        (status = 200, description = "a 1x1 transparent GIF", content_type = "image/gif"),
        (status = 400, description = "the event is not valid", body = tailor_infra::http::ErrorBody),
        (status = 429, description = "rate limited; see `Retry-After`", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the bus is unreachable and the spool is full", body = tailor_infra::http::ErrorBody)))]
async fn snowplow_get(
    State(c): State<Collector>,
    peer: edge::Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let req = request_info(&c, Source::Snowplow, "/i", &headers, peer, Writer::Browser);
    let query = query.unwrap_or_default();
    let items = vec![snowplow::from_query(&query, &c.config)];
    match c
        .ingest(&req, items, true)
        .await
        .and_then(Outcome::into_result)
    {
        Ok(_) => (
            [
                (header::CONTENT_TYPE, "image/gif"),
                (header::CACHE_CONTROL, "no-cache, no-store, must-revalidate"),
            ],
            PIXEL,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The Snowplow tracker protocol's POST: a `payload_data` envelope of events.
#[utoipa::path(post, path = "/com.snowplowanalytics.snowplow/tp2", tag = "collection",
    request_body(content = Object, description = "`{\"schema\": \"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4\", \"data\": [events]}` (docs/protocols.md)", content_type = "application/json"),
    responses(
        (status = 200, description = "`ok`, or `{\"accepted\", \"rejected\"}` when some events were rejected", body = Object),
        (status = 400, description = "not an envelope, or no valid event", body = tailor_infra::http::ErrorBody),
        (status = 413, description = "body or batch over its limit", body = tailor_infra::http::ErrorBody),
        (status = 429, description = "rate limited; see `Retry-After`", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the bus is unreachable and the spool is full", body = tailor_infra::http::ErrorBody)))]
async fn snowplow_post(
    State(c): State<Collector>,
    peer: edge::Peer,
    key: Option<Extension<CollectKey>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let route = "/com.snowplowanalytics.snowplow/tp2";
    let req = request_info(&c, Source::Snowplow, route, &headers, peer, keyed(key));
    let config = c.config.clone();
    match run(&c, &req, body, |b| snowplow::from_post(b, &config)).await {
        Ok(o) if o.rejected.is_empty() => (StatusCode::OK, "ok").into_response(),
        Ok(o) => (
            StatusCode::OK,
            Json(serde_json::json!({"accepted": o.accepted.len(), "rejected": o.rejected_json()})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The Segment HTTP API (`track`, `page`, `screen`, `identify`, `alias`, `group`, `batch`, and
/// their one-letter forms); the write key is the HTTP Basic user name or `writeKey` in the body.
#[utoipa::path(post, path = "/v1/{call}", tag = "collection",
    params(("call" = String, Path, description = "track, page, screen, identify, alias, group, batch (or t, p, s, i, a, g, b, import)")),
    request_body(content = Object, description = "a Segment message, or `{\"batch\": [messages]}` (docs/protocols.md)", content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"success\": true}`, with `rejected` when some messages were rejected", body = Object),
        (status = 400, description = "not JSON, or no valid message", body = tailor_infra::http::ErrorBody),
        (status = 401, description = "a missing or unknown write key", body = tailor_infra::http::ErrorBody),
        (status = 404, description = "no such call", body = tailor_infra::http::ErrorBody),
        (status = 413, description = "body or batch over its limit", body = tailor_infra::http::ErrorBody),
        (status = 429, description = "rate limited; see `Retry-After`", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the bus is unreachable and the spool is full", body = tailor_infra::http::ErrorBody)))]
async fn segment_call(
    State(c): State<Collector>,
    Path(call): Path<String>,
    peer: edge::Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(kind) = segment::Call::from_path(&call) else {
        return tailor_infra::http::error_with(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route POST /v1/{call}"),
            None,
            vec![],
        );
    };
    let route = format!("/v1/{call}");
    let req = request_info(&c, Source::Segment, &route, &headers, peer, Writer::Trusted);
    let key = edge::basic_auth_user(&headers);
    let config = c.config.clone();
    match run(&c, &req, body, |b| {
        segment::from_body(kind, b, key.as_deref(), &config)
    })
    .await
    {
        Ok(o) => {
            let mut body = serde_json::json!({"success": true});
            if !o.rejected.is_empty() {
                body["rejected"] = o.rejected_json();
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(e) => e.into_response(),
    }
}
