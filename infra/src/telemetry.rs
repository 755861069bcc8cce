//! Logs and metrics setup, shared by every service.
//!
//! Logs go through `tracing` (text for people, JSON for log pipelines). Metrics go through the `metrics`
//! facade into one process-wide Prometheus recorder; every service renders it at `/metrics`. Metric names
//! are listed in `docs/metrics.md`; each is emitted in exactly one place. The recorder also feeds the
//! windowed latency histograms of `/ops` ([`crate::ops`]).

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Latency buckets (seconds) for every `*_duration_seconds` histogram: 100µs to 10s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the tracing subscriber, writing to stderr (stdout is for command output: a replay's
/// summary, a fit's JSON); `RUST_LOG` overrides the default filter (`info`). Text logs are coloured
/// only when stderr is a terminal, so a log file or a pipe gets no escape codes.
/// Calling it again is harmless (tests start several services in one process).
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // The ops windows (`/ops/latency`) are fed by the same samples, here, in one place.
            let recorder = crate::ops::tee::Tee::new(recorder, crate::ops::windows::global());
            // Another recorder may already be installed (embedding applications); then ours only
            // renders what it records, which is nothing, and the embedder's recorder wins.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                })
                .expect("spawn metrics upkeep thread");
            handle
        })
        .clone()
}
