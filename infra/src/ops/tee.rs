//! The one place the ops windows are fed: a `metrics` recorder that hands every sample to the
//! Prometheus recorder and, for the series the dashboard shows, to the [`windows`](super::windows).
//!
//! So nothing records twice in the code: the HTTP middleware (`infra::http::track`) and each stage
//! emit their metrics once, as `docs/metrics.md` lists them, and this tee derives the windows:
//! - `tailor_http_request_duration_seconds{service,route}` → the endpoint's latency;
//!   `tailor_http_requests_total{status}` → its errors (5xx) and rejections (4xx);
//! - every other `*_duration_seconds` histogram → a stage's latency (its labels tell series apart);
//! - the counters of [`FLOWS`] → rates, split by their `outcome` or `strategy` label;
//! - the gauges of [`LEVELS`] → levels, one per label set.

use super::windows::{now_index, Kind, Registry, Ring, SeriesId};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const HTTP_LATENCY: &str = "tailor_http_request_duration_seconds";
const HTTP_REQUESTS: &str = "tailor_http_requests_total";
/// Counters shown as rates.
pub const FLOWS: [&str; 5] = [
    "tailor_collector_events_total",
    "tailor_processor_events_total",
    "tailor_recommender_responses_total",
    "tailor_recommender_fallbacks_total",
    "tailor_collector_dead_letters_total",
];
/// Gauges shown as levels.
pub const LEVELS: [&str; 2] = ["tailor_spool_bytes", "tailor_processor_consumer_lag"];

/// Wraps `inner`, feeding `registry` (the process's: [`super::windows::global`]).
pub struct Tee<R> {
    inner: R,
    registry: &'static Registry,
}

impl<R> Tee<R> {
    pub fn new(inner: R, registry: &'static Registry) -> Self {
        Tee { inner, registry }
    }
}

fn label(key: &Key, name: &str) -> Option<String> {
    key.labels()
        .find(|l| l.key() == name)
        .map(|l| l.value().to_string())
}

fn labels(key: &Key, keep: impl Fn(&str) -> bool) -> BTreeMap<String, String> {
    key.labels()
        .filter(|l| keep(l.key()))
        .map(|l| (l.key().to_string(), l.value().to_string()))
        .collect()
}

/// The endpoint series of an HTTP metric: `service` and `route` tell endpoints apart.
fn endpoint(key: &Key) -> SeriesId {
    SeriesId {
        kind: Kind::Endpoint,
        name: label(key, "route").unwrap_or_else(|| "unmatched".into()),
        labels: labels(key, |k| k == "service"),
    }
}

/// A metric's name without the `tailor_` prefix and the unit suffix, as the dashboard shows it.
fn short(name: &str, suffix: &str) -> String {
    let name = name.strip_prefix("tailor_").unwrap_or(name);
    name.strip_suffix(suffix).unwrap_or(name).to_string()
}

impl<R: Recorder> Recorder for Tee<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description)
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description)
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description)
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let inner = self.inner.register_counter(key, metadata);
        let name = key.name();
        let feed = if name == HTTP_REQUESTS {
            let status: u16 = label(key, "status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            match status {
                500.. => CountInto::Errors,
                400..=499 => CountInto::Rejections,
                _ => return inner,
            }
        } else if FLOWS.contains(&name) {
            CountInto::Count
        } else {
            return inner;
        };
        let id = if feed == CountInto::Count {
            SeriesId {
                kind: Kind::Flow,
                name: short(name, "_total"),
                labels: labels(key, |k| k == "outcome" || k == "strategy"),
            }
        } else {
            endpoint(key)
        };
        Counter::from_arc(Arc::new(TeeCounter {
            inner,
            ring: self.registry.series(id),
            feed,
        }))
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let inner = self.inner.register_gauge(key, metadata);
        if !LEVELS.contains(&key.name()) {
            return inner;
        }
        let id = SeriesId {
            kind: Kind::Level,
            name: short(key.name(), ""),
            labels: labels(key, |_| true),
        };
        Gauge::from_arc(Arc::new(TeeGauge {
            inner,
            ring: self.registry.series(id),
        }))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let inner = self.inner.register_histogram(key, metadata);
        let name = key.name();
        let id = if name == HTTP_LATENCY {
            endpoint(key)
        } else if name.ends_with("_duration_seconds") {
            SeriesId {
                kind: Kind::Stage,
                name: short(name, "_duration_seconds"),
                labels: labels(key, |_| true),
            }
        } else {
            return inner;
        };
        Histogram::from_arc(Arc::new(TeeHistogram {
            inner,
            ring: self.registry.series(id),
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountInto {
    Count,
    Errors,
    Rejections,
}

struct TeeCounter {
    inner: Counter,
    ring: Arc<Mutex<Ring>>,
    feed: CountInto,
}

impl CounterFn for TeeCounter {
    fn increment(&self, value: u64) {
        self.inner.increment(value);
        // Registering at zero (tailor's `metrics::register`) opens no window.
        if value == 0 {
            return;
        }
        let mut ring = self.ring.lock().expect("not poisoned");
        let w = ring.at(now_index());
        match self.feed {
            CountInto::Count => w.count += value,
            CountInto::Errors => w.errors += value,
            CountInto::Rejections => w.rejections += value,
        }
    }

    fn absolute(&self, value: u64) {
        // No counter of Tailor is set absolutely; pass it on, there is no delta to window.
        self.inner.absolute(value);
    }
}

struct TeeGauge {
    inner: Gauge,
    ring: Arc<Mutex<Ring>>,
}

impl TeeGauge {
    fn update(&self, change: impl FnOnce(f64) -> f64) {
        let mut ring = self.ring.lock().expect("not poisoned");
        ring.current = change(ring.current);
        let level = ring.current;
        ring.at(now_index()).level = level;
    }
}

impl GaugeFn for TeeGauge {
    fn increment(&self, value: f64) {
        self.inner.increment(value);
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.inner.decrement(value);
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.inner.set(value);
        self.update(|_| value);
    }
}

struct TeeHistogram {
    inner: Histogram,
    ring: Arc<Mutex<Ring>>,
}

impl HistogramFn for TeeHistogram {
    fn record(&self, seconds: f64) {
        self.inner.record(seconds);
        let micros = (seconds.max(0.0) * 1e6).round() as u64;
        self.ring
            .lock()
            .expect("not poisoned")
            .at(now_index())
            .record_micros(micros);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    fn registry() -> &'static Registry {
        Box::leak(Box::default())
    }

    fn find(r: &Registry, kind: Kind, name: &str) -> Vec<(SeriesId, Arc<Mutex<Ring>>)> {
        r.all()
            .into_iter()
            .filter(|(id, ring)| {
                id.kind == kind
                    && id.name == name
                    && ring.lock().unwrap().recent(now_index()).next().is_some()
            })
            .collect()
    }

    #[test]
    fn samples_reach_both_prometheus_and_the_windows() {
        let prometheus = PrometheusBuilder::new().build_recorder();
        let handle = prometheus.handle();
        let r = registry();
        let tee = Tee::new(prometheus, r);
        metrics::with_local_recorder(&tee, || {
            for (status, secs) in [("200", 0.002), ("200", 0.004), ("400", 0.001), ("503", 0.5)] {
                metrics::counter!(HTTP_REQUESTS, "service" => "collector", "route" => "/v1/events",
                    "method" => "POST", "status" => status)
                .increment(1);
                metrics::histogram!(HTTP_LATENCY, "service" => "collector", "route" => "/v1/events")
                    .record(secs);
            }
            metrics::counter!("tailor_processor_events_total", "outcome" => "applied").increment(3);
            metrics::counter!("tailor_processor_events_total", "outcome" => "malformed")
                .increment(0);
            metrics::counter!("tailor_erasures_total").increment(1);
            metrics::gauge!("tailor_spool_bytes", "spool" => "events").increment(10.0);
            metrics::gauge!("tailor_spool_bytes", "spool" => "events").decrement(4.0);
            metrics::histogram!("tailor_processor_batch_duration_seconds").record(0.010);
        });
        let text = handle.render();
        assert!(text.contains("tailor_http_requests_total{service=\"collector\",route=\"/v1/events\",method=\"POST\",status=\"503\"} 1"), "{text}");
        assert!(
            text.contains("tailor_spool_bytes{spool=\"events\"} 6"),
            "{text}"
        );

        let ep = find(r, Kind::Endpoint, "/v1/events");
        assert_eq!(ep.len(), 1);
        assert_eq!(
            ep[0].0.labels.get("service").map(String::as_str),
            Some("collector")
        );
        let ring = ep[0].1.lock().unwrap();
        let (_, w) = ring.recent(now_index()).last().unwrap();
        assert_eq!((w.total(), w.errors, w.rejections), (4, 1, 1));
        drop(ring);

        let applied = find(r, Kind::Flow, "processor_events");
        assert_eq!(applied.len(), 1, "a zero increment opens no series window");
        assert_eq!(
            applied[0].0.labels.get("outcome").map(String::as_str),
            Some("applied")
        );
        assert!(
            find(r, Kind::Flow, "erasures").is_empty(),
            "not a flow the dashboard shows"
        );

        let spool = find(r, Kind::Level, "spool_bytes");
        assert_eq!(spool[0].1.lock().unwrap().current, 6.0);
        let batch = find(r, Kind::Stage, "processor_batch");
        let ring = batch[0].1.lock().unwrap();
        let h = ring
            .recent(now_index())
            .last()
            .unwrap()
            .1
            .latency
            .as_ref()
            .unwrap();
        assert!((9_900..=10_100).contains(&h.value_at_quantile(0.5)));
    }
}
