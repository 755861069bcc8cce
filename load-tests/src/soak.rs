//! The soak (`tailor-load --soak MINUTES`): steady, open-loop traffic at a fixed rate for a long
//! time, sampled every window, to show whether latency and memory stay flat
//! (`docs/reliability.md`, "Soak").
//!
//! Open loop: each client sends on a fixed schedule whether or not the previous answer came back,
//! and a request's latency counts from when it was due, not from when it went out, so a stall shows
//! in full instead of slowing the clients down (no coordinated omission). Per window it records the
//! ingest and recommendation latency percentiles, errors, the processor's backlog (events
//! acknowledged minus events it consumed, from `/metrics`), the target's resident memory (`--pid`,
//! or this process when Tailor is embedded) and Redis's `used_memory` (`--redis`). Rows go to stdout
//! and to a CSV; the end draws them as an SVG of five panels (the fifth: the recommender's cache
//! entries, which the service's memory follows while they fill).
//!
//! With `--kafka`, a same-run baseline for the ingest latency: a bare producer (the collector's
//! settings: `acks=all`, idempotent) writes a small record to a topic of its own on the same broker
//! every 50 ms, open loop, and its latency to the broker's acknowledgement is sampled beside the
//! collector's. A collector whose latency climbs with the broker's is waiting on the broker.

use crate::Args;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One window's measurements.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub minute: f64,
    pub events_per_sec: f64,
    pub ingest_p50: f64,
    pub ingest_p99: f64,
    pub ingest_p999: f64,
    pub recommend_p50: f64,
    pub recommend_p99: f64,
    pub recommend_p999: f64,
    pub errors: u64,
    /// The bare producer's latency to the broker's acknowledgement (0 without `--kafka`).
    pub produce_p50: f64,
    pub produce_p99: f64,
    pub backlog: f64,
    pub rss_mb: f64,
    pub redis_mb: f64,
    /// Entries in the recommender's caches (`tailor_recommender_cache_entries`).
    pub cached_sessions: f64,
    pub cached_index_lists: f64,
}

const CSV_HEADER: &str = "minute,events_per_sec,ingest_p50_ms,ingest_p99_ms,ingest_p999_ms,recommend_p50_ms,recommend_p99_ms,recommend_p999_ms,errors,produce_p50_ms,produce_p99_ms,backlog_events,rss_mb,redis_mb,cached_sessions,cached_index_lists";

/// The bare producer's topic and its interval.
const PROBE_TOPIC: &str = "tailor-load.probe";
const PROBE_EVERY: Duration = Duration::from_millis(50);

impl Sample {
    fn csv(&self) -> String {
        format!(
            "{:.2},{:.0},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{},{:.2},{:.2},{:.0},{:.1},{:.1},{:.0},{:.0}",
            self.minute,
            self.events_per_sec,
            self.ingest_p50,
            self.ingest_p99,
            self.ingest_p999,
            self.recommend_p50,
            self.recommend_p99,
            self.recommend_p999,
            self.errors,
            self.produce_p50,
            self.produce_p99,
            self.backlog,
            self.rss_mb,
            self.redis_mb,
            self.cached_sessions,
            self.cached_index_lists
        )
    }
}

/// What the clients record, swapped out at every window.
struct Window {
    ingest: Histogram<u64>,
    recommend: Histogram<u64>,
    produce: Histogram<u64>,
}

impl Window {
    fn new() -> Window {
        Window {
            ingest: Histogram::new(3).expect("histogram"),
            recommend: Histogram::new(3).expect("histogram"),
            produce: Histogram::new(3).expect("histogram"),
        }
    }
}

/// The bare producer of the module docs, until `end`.
async fn probe(brokers: &str, window: Arc<Mutex<Window>>, end: Instant) -> anyhow::Result<()> {
    use tailor_infra::bus::kafka::{ensure_topic, KafkaProducer, KafkaSettings, FETCH_WAIT};
    use tailor_infra::bus::Producer;
    let settings = KafkaSettings {
        brokers: brokers.to_string(),
        topic: PROBE_TOPIC.into(),
        delivery_timeout: Duration::from_secs(30),
        fetch_wait: FETCH_WAIT,
    };
    ensure_topic(&settings, 1, 1, &[]).await?;
    let producer = Arc::new(KafkaProducer::new(&settings)?);
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = tokio::task::JoinSet::new();
    let mut n = 0u64;
    loop {
        let due = tick.tick().await.into_std();
        if Instant::now() >= end {
            break;
        }
        n += 1;
        let (producer, window) = (producer.clone(), window.clone());
        inflight.spawn(async move {
            let payload = format!("{{\"probe\":{n},\"pad\":\"{}\"}}", "x".repeat(200));
            if producer
                .send(&n.to_string(), payload.into_bytes())
                .await
                .is_ok()
            {
                let us = due.elapsed().as_micros() as u64;
                window.lock().unwrap().produce.record(us.max(1)).ok();
            }
        });
        while inflight.try_join_next().is_some() {}
    }
    while inflight.join_next().await.is_some() {}
    Ok(())
}

/// Runs the soak against `base`; see the module docs.
pub async fn run(base: &str, a: Arc<Args>, minutes: f64) -> anyhow::Result<Vec<Sample>> {
    let window = Arc::new(Mutex::new(Window::new()));
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let end = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let ingest_per_sec = a.rate / a.batch as f64;
    let mut tasks = Vec::new();
    for (kind, per_sec) in [(0, ingest_per_sec), (1, a.recommend_rate)] {
        if per_sec <= 0.0 {
            continue;
        }
        for w in 0..a.concurrency {
            let every = Duration::from_secs_f64(a.concurrency as f64 / per_sec);
            let (client, base, a) = (client.clone(), base.to_string(), a.clone());
            let (window, acked, errors) = (window.clone(), acked.clone(), errors.clone());
            tasks.push(tokio::spawn(async move {
                let seed = (kind * 1000 + w) as u64 + 7;
                let mut shopper =
                    crate::Shopper::new(seed, &a, format!("soak-{}-{w}", crate::run_id()));
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut inflight = tokio::task::JoinSet::new();
                loop {
                    let due = tick.tick().await.into_std();
                    if Instant::now() >= end {
                        break;
                    }
                    let req = if kind == 0 {
                        shopper.ingest(&client, &base, &a)
                    } else {
                        shopper.recommend(&client, &base, &a)
                    };
                    let (window, acked, errors, batch) = (
                        window.clone(),
                        acked.clone(),
                        errors.clone(),
                        a.batch as u64,
                    );
                    inflight.spawn(async move {
                        let ok = matches!(req.send().await, Ok(r) if r.status().is_success());
                        let us = due.elapsed().as_micros() as u64;
                        let mut w = window.lock().unwrap();
                        let h = if kind == 0 {
                            &mut w.ingest
                        } else {
                            &mut w.recommend
                        };
                        h.record(us.max(1)).ok();
                        if !ok {
                            errors.fetch_add(1, Ordering::Relaxed);
                        } else if kind == 0 {
                            acked.fetch_add(batch, Ordering::Relaxed);
                        }
                    });
                    while inflight.try_join_next().is_some() {}
                }
                while inflight.join_next().await.is_some() {}
            }));
        }
    }

    if let Some(brokers) = a.kafka.clone() {
        let window = window.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = probe(&brokers, window, end).await {
                eprintln!("soak: the bare producer stopped: {e:#}");
            }
        }));
    }
    let redis = match &a.redis {
        Some(url) => Some(
            redis::Client::open(url.as_str())?
                .get_multiplexed_async_connection()
                .await?,
        ),
        None => None,
    };
    let started = Instant::now();
    let processed_at_start = crate::processed(base).await?;
    let cached = |text: &str, cache: &str| {
        crate::metric_sum(
            text,
            &format!("tailor_recommender_cache_entries{{cache=\"{cache}\"}}"),
        )
    };
    let mut samples = Vec::new();
    let mut last_acked = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(a.window_secs));
    tick.tick().await;
    println!("{CSV_HEADER}");
    let mut csv = format!("{CSV_HEADER}\n");
    while Instant::now() < end {
        tick.tick().await;
        let w = std::mem::replace(&mut *window.lock().unwrap(), Window::new());
        let now_acked = acked.load(Ordering::Relaxed);
        let metrics = crate::metrics_text(base).await?;
        let processed =
            crate::metric_sum(&metrics, "tailor_processor_events_total{") - processed_at_start;
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let s = Sample {
            minute: started.elapsed().as_secs_f64() / 60.0,
            events_per_sec: (now_acked - last_acked) as f64 / a.window_secs as f64,
            ingest_p50: ms(&w.ingest, 0.5),
            ingest_p99: ms(&w.ingest, 0.99),
            ingest_p999: ms(&w.ingest, 0.999),
            recommend_p50: ms(&w.recommend, 0.5),
            recommend_p99: ms(&w.recommend, 0.99),
            recommend_p999: ms(&w.recommend, 0.999),
            errors: errors.swap(0, Ordering::Relaxed),
            produce_p50: ms(&w.produce, 0.5),
            produce_p99: ms(&w.produce, 0.99),
            backlog: (now_acked as f64 - processed).max(0.0),
            rss_mb: rss_mb(a.pid),
            redis_mb: match &redis {
                Some(c) => redis_mb(&mut c.clone()).await,
                None => 0.0,
            },
            cached_sessions: cached(&metrics, "sessions"),
            cached_index_lists: cached(&metrics, "session_index"),
        };
        last_acked = now_acked;
        println!("{}", s.csv());
        writeln!(csv, "{}", s.csv())?;
        if let Some(path) = &a.out {
            std::fs::write(path, &csv)?;
        }
        samples.push(s);
    }
    for t in tasks {
        t.await?;
    }
    Ok(samples)
}

/// Resident memory of `pid` (this process without one), in MB, from `/proc`.
pub fn rss_mb(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn redis_mb(c: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(c)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0.0, |b| b / 1024.0 / 1024.0)
}

/// A column of the samples.
pub type Column = fn(&Sample) -> f64;
/// One series of a panel of the plot: its name, colour and column.
type Series<'a> = (&'a str, &'a str, Column);

/// Draws the samples as an SVG: latency, backlog, the service's memory, Redis's and the
/// recommender's caches, over time.
pub fn svg(samples: &[Sample], title: &str) -> String {
    let panels: [(&str, Vec<Series>); 5] = [
        (
            "latency, ms (p99 and p99.9 per window)",
            vec![
                ("ingest p99", "#1f77b4", |s| s.ingest_p99),
                ("ingest p99.9", "#9ecae1", |s| s.ingest_p999),
                ("recommend p99", "#d62728", |s| s.recommend_p99),
                ("recommend p99.9", "#ff9896", |s| s.recommend_p999),
                ("bare produce p99", "#7f7f7f", |s| s.produce_p99),
            ],
        ),
        (
            "processor backlog, events (acknowledged, not yet consumed)",
            vec![("backlog", "#2ca02c", |s| s.backlog)],
        ),
        (
            "service resident memory, MB",
            vec![("RSS", "#9467bd", |s| s.rss_mb)],
        ),
        (
            "Redis used_memory, MB",
            vec![("used_memory", "#8c564b", |s| s.redis_mb)],
        ),
        (
            "recommender caches, entries (what the service's memory grows by while they fill)",
            vec![
                ("past sessions", "#17becf", |s| s.cached_sessions),
                ("items' session lists", "#bcbd22", |s| s.cached_index_lists),
            ],
        ),
    ];
    let (w, ph, left, top) = (900.0, 170.0, 70.0, 40.0);
    let pw = w - left - 30.0;
    let height = top + panels.len() as f64 * (ph + 50.0);
    let max_x = samples.last().map_or(1.0, |s| s.minute).max(1e-9);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="22" font-size="14" font-weight="bold">{}</text>
"#,
        escape(title)
    );
    for (i, (name, series)) in panels.iter().enumerate() {
        let y0 = top + i as f64 * (ph + 50.0) + 20.0;
        let max_y = samples
            .iter()
            .flat_map(|s| series.iter().map(move |(_, _, f)| f(s)))
            .fold(0.0_f64, f64::max)
            .max(1e-9)
            * 1.1;
        let _ = writeln!(
            out,
            r##"<text x="{left}" y="{}" font-weight="bold">{}</text>
<rect x="{left}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##,
            y0 - 6.0,
            escape(name)
        );
        for k in 0..=4 {
            let v = max_y * k as f64 / 4.0;
            let y = y0 + ph - ph * k as f64 / 4.0;
            let _ = writeln!(
                out,
                r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 4.0,
                y + 4.0,
                short(v)
            );
        }
        for m in 0..=(max_x.ceil() as u64) {
            if max_x > 12.0 && m % 5 != 0 {
                continue;
            }
            let x = left + pw * m as f64 / max_x;
            if x > left + pw + 0.5 {
                break;
            }
            let _ = writeln!(
                out,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{m} min</text>"#,
                y0 + ph + 14.0
            );
        }
        for (j, (label, colour, f)) in series.iter().enumerate() {
            let points: Vec<String> = samples
                .iter()
                .map(|s| {
                    format!(
                        "{:.1},{:.1}",
                        left + pw * s.minute / max_x,
                        y0 + ph - ph * f(s) / max_y
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>
<rect x="{}" y="{}" width="10" height="3" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
                points.join(" "),
                left + 8.0 + j as f64 * 150.0,
                y0 + 8.0,
                left + 22.0 + j as f64 * 150.0,
                y0 + 12.0,
                escape(label)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Min, median and max of a column over the samples after the first `skip` (the warm-up).
pub fn spread(samples: &[Sample], skip: usize, f: Column) -> (f64, f64, f64) {
    let mut v: Vec<f64> = samples.iter().skip(skip).map(f).collect();
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(minute: f64, p99: f64, rss: f64) -> Sample {
        Sample {
            minute,
            ingest_p99: p99,
            rss_mb: rss,
            ..Sample::default()
        }
    }

    #[test]
    fn the_plot_draws_every_panel_and_scales_to_the_data() {
        let samples = vec![sample(0.5, 2.0, 100.0), sample(1.0, 4.0, 110.0)];
        let svg = svg(&samples, "soak <test>");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("soak &lt;test&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 10, "one line per series");
        // The highest point of a panel sits 10% below its top (max * 1.1).
        let ingest = svg
            .lines()
            .find(|l| l.contains("stroke=\"#1f77b4\""))
            .unwrap();
        let last_y: f64 = ingest
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split(['"', ' '])
            .nth(1)
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let (y0, ph) = (60.0, 170.0);
        assert!((last_y - (y0 + ph - ph / 1.1)).abs() < 0.2, "{last_y}");
    }

    #[test]
    fn spread_skips_the_warm_up() {
        let samples: Vec<Sample> = (0..5)
            .map(|i| sample(i as f64, [50.0, 1.0, 3.0, 2.0, 4.0][i], 0.0))
            .collect();
        assert_eq!(spread(&samples, 1, |s| s.ingest_p99), (1.0, 3.0, 4.0));
        assert_eq!(spread(&samples, 9, |s| s.ingest_p99), (0.0, 0.0, 0.0));
    }
}
