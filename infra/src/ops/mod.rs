//! The operators' view of one process: `/ops` (a live dashboard page) and `/ops/latency` (its data).
//!
//! Latency quantiles over the last minutes cannot be read back from Prometheus buckets with useful
//! precision, so each process keeps its own windowed `hdrhistogram`s ([`windows`]), fed by the metrics
//! recorder itself ([`tee`]): every number here comes from a metric of `docs/metrics.md`, recorded
//! once where it is emitted, and the same panels exist in Grafana over `/metrics`
//! (`deploy/grafana/tailor.json`). The page is self-contained (inline script drawing on canvases, no
//! external asset), so it works offline and behind any firewall. How to read it: docs/operations.md.

pub mod tee;
pub mod windows;

use crate::auth::{Access, Gate, RouteSpec, Routes};
use axum::http::Method;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use windows::{Kind, Registry, Ring, Window, RETENTION_WINDOWS, WINDOW_SECONDS};

/// Windows summed into `last_minute`.
const MINUTE_WINDOWS: u64 = 60 / WINDOW_SECONDS;

/// `/ops` and `/ops/latency` for this process.
pub fn router() -> Router {
    table().into_router(Arc::new(Gate::default()))
}

fn table() -> Routes<()> {
    Routes::new()
        .route(Method::GET, "/ops", Access::Public, get(ops_page))
        .route(
            Method::GET,
            "/ops/latency",
            Access::Public,
            get(ops_latency),
        )
}

/// The routes of [`router`], all public: the ops pages show process-wide figures, nothing of a
/// site's members.
pub fn routes() -> Vec<RouteSpec> {
    table().specs().to_vec()
}

/// The OpenAPI description of [`router`].
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(ops_page, ops_latency),
    components(schemas(LatencyReport, SeriesView, WindowView))
)]
pub struct OpsPageApi;

/// The live ops dashboard (self-contained HTML and canvas, refreshing every few seconds).
#[utoipa::path(get, path = "/ops", tag = "operations",
    responses((status = 200, description = "the operators' dashboard page", body = String, content_type = "text/html")))]
async fn ops_page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// Latency, throughput, errors and levels of this process, per 10 s window over the last 15 minutes.
#[utoipa::path(get, path = "/ops/latency", tag = "operations",
    responses((status = 200, description = "windowed latency quantiles, rates and levels", body = LatencyReport)))]
async fn ops_latency() -> Json<LatencyReport> {
    Json(report(windows::global(), windows::unix_seconds()))
}

/// The answer of `/ops/latency`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatencyReport {
    pub window_seconds: u64,
    pub retention_seconds: u64,
    /// Unix seconds when the report was made.
    pub now: u64,
    /// Per HTTP route template and service: latency, requests, error (5xx) and rejection (4xx) rates.
    pub endpoints: Vec<SeriesView>,
    /// Per stage (`processor_batch`, `store` per `op`, `recommender`, `processor_end_to_end` (freshness:
    /// collector receipt to profile update), `collector_delivery`): latency.
    pub stages: Vec<SeriesView>,
    /// Rates of events (`collector_events`, `processor_events` per `outcome`), recommendations,
    /// fallbacks and dead letters.
    pub flows: Vec<SeriesView>,
    /// Spool bytes per spool, consumer lag per partition.
    pub levels: Vec<SeriesView>,
}

/// One series and its windows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesView {
    pub name: String,
    #[schema(value_type = Object)]
    pub labels: BTreeMap<String, String>,
    /// Windows with samples, oldest first.
    pub windows: Vec<WindowView>,
    /// The windows of the last minute together.
    pub last_minute: WindowView,
}

/// One window (or several summed). Latencies in milliseconds; rates per request.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    /// Unix seconds at the window's start.
    pub start: u64,
    /// Seconds covered (less than the window for the current one).
    pub seconds: u64,
    /// Requests, samples or events.
    pub count: u64,
    pub per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p999: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<f64>,
}

/// The report of `registry` at `now` (unix seconds).
pub fn report(registry: &Registry, now: u64) -> LatencyReport {
    let mut r = LatencyReport {
        window_seconds: WINDOW_SECONDS,
        retention_seconds: WINDOW_SECONDS * RETENTION_WINDOWS,
        now,
        endpoints: Vec::new(),
        stages: Vec::new(),
        flows: Vec::new(),
        levels: Vec::new(),
    };
    for (id, ring) in registry.all() {
        let ring = ring.lock().expect("not poisoned");
        let Some(view) = series(id.kind, &ring, now) else {
            continue;
        };
        let view = SeriesView {
            name: id.name,
            labels: id.labels,
            ..view
        };
        match id.kind {
            Kind::Endpoint => r.endpoints.push(view),
            Kind::Stage => r.stages.push(view),
            Kind::Flow => r.flows.push(view),
            Kind::Level => r.levels.push(view),
        }
    }
    r
}

/// A series' windows, or `None` if it has none within the retention.
fn series(kind: Kind, ring: &Ring, now: u64) -> Option<SeriesView> {
    let index = now / WINDOW_SECONDS;
    // The current window has run for part of its length only; rates divide by what has run.
    let covered = |i: u64| {
        if i == index {
            now - i * WINDOW_SECONDS + 1
        } else {
            WINDOW_SECONDS
        }
    };
    let recent: Vec<_> = ring.recent(index).collect();
    if recent.is_empty() {
        return None;
    }
    let mut windows: Vec<WindowView> = recent
        .iter()
        .map(|(i, w)| view(kind, w, i * WINDOW_SECONDS, covered(*i)))
        .collect();
    if kind == Kind::Level {
        windows = carried(&recent, index);
    }
    let mut minute = Window::default();
    let first = index.saturating_sub(MINUTE_WINDOWS - 1);
    for (_, w) in recent.iter().filter(|(i, _)| *i >= first) {
        add(&mut minute, w);
    }
    let seconds = (index - first) * WINDOW_SECONDS + covered(index);
    let mut last_minute = view(kind, &minute, first * WINDOW_SECONDS, seconds);
    if kind == Kind::Level {
        last_minute.level = Some(ring.current);
    }
    Some(SeriesView {
        name: String::new(),
        labels: BTreeMap::new(),
        windows,
        last_minute,
    })
}

/// A gauge keeps its value until it changes: one window per index from the first to `index`.
fn carried(recent: &[&(u64, Window)], index: u64) -> Vec<WindowView> {
    let mut out = Vec::new();
    let mut level = 0.0;
    let mut next = recent.iter().peekable();
    for i in recent.first().map_or(index, |(i, _)| *i)..=index {
        if let Some((_, w)) = next.next_if(|(j, _)| *j == i) {
            level = w.level;
        }
        out.push(WindowView {
            start: i * WINDOW_SECONDS,
            seconds: WINDOW_SECONDS,
            level: Some(level),
            ..WindowView::default()
        });
    }
    out
}

fn add(into: &mut Window, w: &Window) {
    if let Some(h) = &w.latency {
        match &mut into.latency {
            Some(i) => {
                // Same shape, so adding cannot run out of range; counts saturate (at 4e9).
                let _ = i.add(h);
            }
            None => into.latency = Some(h.clone()),
        }
    }
    into.count += w.count;
    into.errors += w.errors;
    into.rejections += w.rejections;
    into.level = w.level;
}

fn view(kind: Kind, w: &Window, start: u64, seconds: u64) -> WindowView {
    let count = w.total();
    let ms = |q: f64| {
        w.latency
            .as_ref()
            .map(|h| h.value_at_quantile(q) as f64 / 1e3)
    };
    let rate = |n: u64| (kind == Kind::Endpoint).then(|| n as f64 / count.max(1) as f64);
    WindowView {
        start,
        seconds,
        count,
        per_second: count as f64 / seconds.max(1) as f64,
        p50: ms(0.5),
        p90: ms(0.9),
        p99: ms(0.99),
        p999: ms(0.999),
        max: w.latency.as_ref().map(|h| h.max() as f64 / 1e3),
        error_rate: rate(w.errors),
        rejection_rate: rate(w.rejections),
        level: (kind == Kind::Level).then_some(w.level),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows::SeriesId;

    fn id(kind: Kind, name: &str) -> SeriesId {
        SeriesId {
            kind,
            name: name.into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn the_report_has_a_window_per_10s_and_the_last_minute_summed() {
        let r = Registry::default();
        let now = 10_000; // window 1000, its first second
        {
            let ep = r.series(id(Kind::Endpoint, "/v1/events"));
            let mut ring = ep.lock().unwrap();
            for ms in 1..=100 {
                ring.at(990).record_micros(ms * 1_000); // 100 s ago: outside the last minute
            }
            let w = ring.at(999);
            for _ in 0..8 {
                w.record_micros(2_000);
            }
            w.record_micros(900_000);
            w.record_micros(1_000_000);
            w.errors = 1;
            w.rejections = 2;
        }
        r.series(id(Kind::Flow, "processor_events"))
            .lock()
            .unwrap()
            .at(1000)
            .count = 5;
        r.series(id(Kind::Flow, "idle")); // registered, never counted
        let rep = report(&r, now);
        assert_eq!(rep.endpoints.len(), 1);
        let ep = &rep.endpoints[0];
        assert_eq!(ep.windows.len(), 2);
        let w = &ep.windows[1];
        assert_eq!((w.start, w.seconds, w.count), (9_990, 10, 10));
        assert_eq!(w.error_rate, Some(0.1));
        assert_eq!(w.rejection_rate, Some(0.2));
        assert!((1.9..=2.1).contains(&w.p50.unwrap()));
        assert!(w.p99.unwrap() >= 990.0, "{:?}", w.p99);
        assert_eq!(
            ep.last_minute.count, 10,
            "the window 100 s ago is not in the last minute"
        );
        assert_eq!(ep.last_minute.seconds, 51);
        let flow = &rep.flows;
        assert_eq!(flow.len(), 1, "a series with no windows is left out");
        assert_eq!(
            flow[0].windows[0].per_second, 5.0,
            "one second of the current window"
        );
        assert!(flow[0].windows[0].p50.is_none() && flow[0].windows[0].error_rate.is_none());

        // A level holds its value through windows without a change, up to now.
        {
            let lag = r.series(id(Kind::Level, "processor_consumer_lag"));
            let mut ring = lag.lock().unwrap();
            ring.current = 7.0;
            ring.at(997).level = 7.0;
        }
        let rep = report(&r, now);
        let levels: Vec<_> = rep.levels[0]
            .windows
            .iter()
            .map(|w| (w.start, w.level))
            .collect();
        assert_eq!(
            levels,
            (997..=1000)
                .map(|i| (i * 10, Some(7.0)))
                .collect::<Vec<_>>()
        );
        assert_eq!(rep.levels[0].last_minute.level, Some(7.0));
    }
}
