//! Stage one, collection: the HTTP API that takes events from browsers and shop back ends.
//!
//! Handlers stay thin: [`ingest`] parses and validates a request body into events (pure), the handler
//! hands them to the bus [`Producer`](tailor_infra::bus::Producer) and answers 202 only once every event
//! is durable. [`error::IngestError`] maps every failure to its HTTP status in one place.

pub mod error;
pub mod ingest;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use error::IngestError;
use std::sync::Arc;
use std::time::Instant;
use tailor_core::config::{CollectorConfig, Config};
use tailor_infra::bus::Producer;

/// Shared state of the collector's handlers.
#[derive(Clone)]
pub struct Collector {
    pub producer: Arc<dyn Producer>,
    pub config: Arc<Config>,
}

impl Collector {
    fn limits(&self) -> &CollectorConfig {
        &self.config.collector
    }
}

/// The collection API: `POST /v1/events`.
pub fn router(collector: Collector) -> Router {
    let max_body = collector.limits().max_body_bytes;
    let router = Router::new()
        .route("/v1/events", post(post_events))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(collector);
    tailor_infra::http::with_metrics(router, "collector")
}

async fn post_events(State(c): State<Collector>, body: Result<Bytes, BytesRejection>) -> Response {
    match accept(&c, body).await {
        Ok(ids) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"accepted": ids.len(), "event_ids": ids})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Validates the whole body, then writes every event and waits until all are durable.
async fn accept(
    c: &Collector,
    body: Result<Bytes, BytesRejection>,
) -> Result<Vec<String>, IngestError> {
    let body = body.map_err(IngestError::from_body_rejection)?;
    let events = ingest::parse_body(&body, &c.config, chrono::Utc::now())?;
    let started = Instant::now();
    let sends = events.iter().map(|e| async move {
        let payload = serde_json::to_vec(e).expect("an Event always serializes");
        c.producer.send(&e.partition_key(), payload).await
    });
    let results = futures::future::join_all(sends).await;
    metrics::histogram!("tailor_collector_delivery_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(first)) = results.into_iter().find(|r| r.is_err()) {
        metrics::counter!("tailor_collector_events_total", "outcome" => "unavailable", "reason" => "bus_unavailable")
            .increment(events.len() as u64);
        tracing::error!(error = %first, failed, total = events.len(), "event bus did not confirm delivery");
        return Err(IngestError::Unavailable(first.to_string()));
    }
    metrics::counter!("tailor_collector_events_total", "outcome" => "accepted", "reason" => "none")
        .increment(events.len() as u64);
    Ok(events.into_iter().map(|e| e.event_id.to_string()).collect())
}
