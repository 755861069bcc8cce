//! `tailor-load`: drives a Tailor instance with synthetic shop traffic and reports throughput and
//! latency percentiles (HdrHistogram), each scenario next to a baseline measured in the same run.
//!
//! The baseline is `GET /healthz` on the same server, same client and same concurrency: it is the cost
//! of an HTTP round trip through the stack with no work, so the ratio to it shows what Tailor's own
//! work costs, independent of the machine. Without `--target` an embedded Tailor is started in-process.
//! The events come from the traffic model `tailor run --simulate` uses (`tailor::traffic`).

mod soak;

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailor::app::{self, Roles};
use tailor::traffic::{self, Catalogue, Rng};
use tailor_core::config::Config;
use tailor_infra::Shutdown;

/// Load generator for Tailor: baseline, ingest and recommendation scenarios with p50/p99/p999.
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of a running Tailor (`tailor run`). Without it an embedded Tailor is started in-process.
    #[arg(long)]
    target: Option<String>,
    /// Site id to send events for.
    #[arg(long, default_value = "demo")]
    site: String,
    /// Seconds each scenario runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients per scenario.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Events per ingest request.
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Distinct products in the synthetic catalogue.
    #[arg(long, default_value_t = 2000)]
    items: u64,
    /// Distinct visitors.
    #[arg(long, default_value_t = 20000)]
    visitors: u64,
    /// A `collect` key of the site (`tailor keys create`), sent as `Authorization: Bearer` with
    /// the events: a site from a configuration file takes server-side events with it only. The
    /// recommendations asked are anonymous, which need no key.
    #[arg(long, env = "TAILOR_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Run the soak instead of the scenarios: steady open-loop traffic for this many minutes,
    /// sampled every `--window-secs` (docs/reliability.md).
    #[arg(long, value_name = "MINUTES")]
    soak: Option<f64>,
    /// Soak: page views a second (sent in requests of `--batch`).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Soak: recommendation requests a second.
    #[arg(long, default_value_t = 100.0)]
    recommend_rate: f64,
    /// Soak: seconds per sample.
    #[arg(long, default_value_t = 10)]
    window_secs: u64,
    /// Soak: write the samples to this CSV file (rewritten after every window).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Soak: draw the samples into this SVG file at the end.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// Soak: the process id of the Tailor under test, whose resident memory is sampled (default:
    /// this process, which is the Tailor when it is embedded).
    #[arg(long)]
    pid: Option<u32>,
    /// Soak: the Redis the Tailor under test uses, whose `used_memory` is sampled.
    #[arg(long)]
    redis: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Baseline,
    Ingest,
    Recommend,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline GET /healthz",
            Scenario::Ingest => "POST /v1/events",
            Scenario::Recommend => "GET /v1/recommendations",
        }
    }
}

/// One client's synthetic traffic (`tailor::traffic`): its random source, the catalogue, and the
/// prefix and counter of its event ids. The scenarios and the soak build their requests with it.
struct Shopper {
    rng: Rng,
    catalogue: Catalogue,
    ids: String,
    seq: u64,
}

impl Shopper {
    fn new(seed: u64, a: &Args, ids: String) -> Shopper {
        Shopper {
            rng: Rng::new(seed),
            catalogue: Catalogue::synthetic(a.items),
            ids,
            seq: 0,
        }
    }

    /// `POST /v1/events`: a batch of `--batch` page views of a random visitor, with the collect key.
    fn ingest(&mut self, http: &reqwest::Client, base: &str, a: &Args) -> reqwest::RequestBuilder {
        let visitor = self.rng.below(a.visitors);
        let post = http.post(format!("{base}/v1/events"));
        match &a.key {
            Some(k) => post.bearer_auth(k),
            None => post,
        }
        .json(&traffic::page_views(
            &mut self.rng,
            &self.catalogue,
            &a.site,
            visitor,
            a.batch,
            &self.ids,
            &mut self.seq,
        ))
    }

    /// `GET /v1/recommendations` for a random visitor (anonymous: no key needed).
    fn recommend(
        &mut self,
        http: &reqwest::Client,
        base: &str,
        a: &Args,
    ) -> reqwest::RequestBuilder {
        http.get(format!(
            "{base}/v1/recommendations?site={}&anonymous=v{}&limit=10",
            a.site,
            self.rng.below(a.visitors)
        ))
    }
}

/// This run's id, in every event id: runs against the same Tailor send new events, never
/// duplicates of the last run's (which the processor would skip).
fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{:x}", nanos as u64)
    })
}

struct Outcome {
    hist: Histogram<u64>,
    requests: u64,
    errors: u64,
    events: u64,
}

async fn run(base: &str, s: Scenario, a: Arc<Args>) -> anyhow::Result<Outcome> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for w in 0..a.concurrency {
        let (client, base, a) = (client.clone(), base.to_string(), a.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome {
                hist: Histogram::new(3).expect("histogram"),
                requests: 0,
                errors: 0,
                events: 0,
            };
            let mut shopper = Shopper::new(w as u64 + 1, &a, format!("load-{}-{w}", run_id()));
            while Instant::now() < deadline {
                let req = match s {
                    Scenario::Baseline => client.get(format!("{base}/healthz")),
                    Scenario::Ingest => shopper.ingest(&client, &base, &a),
                    Scenario::Recommend => shopper.recommend(&client, &base, &a),
                };
                let started = Instant::now();
                let ok = matches!(req.send().await, Ok(r) if r.status().is_success());
                out.hist.record(started.elapsed().as_micros() as u64).ok();
                out.requests += 1;
                if ok {
                    if let Scenario::Ingest = s {
                        out.events += a.batch as u64;
                    }
                } else {
                    out.errors += 1;
                }
            }
            out
        }));
    }
    let mut total = Outcome {
        hist: Histogram::new(3)?,
        requests: 0,
        errors: 0,
        events: 0,
    };
    for t in tasks {
        let o = t.await?;
        total.hist.add(&o.hist)?;
        total.requests += o.requests;
        total.errors += o.errors;
        total.events += o.events;
    }
    Ok(total)
}

/// Waits until the processor has consumed `events` more events than `before` (every outcome counts:
/// applied, duplicate, behind the watermark), polling `/metrics` every 100 ms so the measured drain
/// time is not the polling interval's.
async fn wait_for_processed(base: &str, before: f64, events: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the processor did not catch up within 600 s"
        );
        if processed(base).await? - before >= events as f64 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Events the processor has consumed so far, from `/metrics`.
async fn processed(base: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("tailor_processor_events_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Runs the soak, then prints the summary table of `docs/reliability.md` and draws the plot.
async fn soak_report(base: &str, args: Arc<Args>, minutes: f64) -> anyhow::Result<()> {
    eprintln!(
        "soak: {minutes} min against {base}: {} page views/s in requests of {}, {} recommendations/s, {} clients each, a sample every {} s",
        args.rate, args.batch, args.recommend_rate, args.concurrency, args.window_secs
    );
    let samples = soak::run(base, args.clone(), minutes).await?;
    // The first minute warms up (connections, caches, the first models).
    let skip = (60 / args.window_secs.max(1)) as usize;
    println!("\n| after the first minute | min | median | max |\n|---|---:|---:|---:|");
    let rows: [(&str, soak::Column); 9] = [
        ("page views/s acknowledged", |s| s.events_per_sec),
        ("ingest p99 ms", |s| s.ingest_p99),
        ("ingest p99.9 ms", |s| s.ingest_p999),
        ("recommend p99 ms", |s| s.recommend_p99),
        ("recommend p99.9 ms", |s| s.recommend_p999),
        ("processor backlog, events", |s| s.backlog),
        ("service RSS MB", |s| s.rss_mb),
        ("Redis used_memory MB", |s| s.redis_mb),
        ("errors per window", |s| s.errors as f64),
    ];
    for (name, f) in rows {
        let (lo, mid, hi) = soak::spread(&samples, skip, f);
        println!("| {name} | {lo:.1} | {mid:.1} | {hi:.1} |");
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "Tailor soak: {} page views/s + {} recommendations/s for {minutes} min",
            args.rate, args.recommend_rate
        );
        std::fs::write(path, soak::svg(&samples, &title))?;
        eprintln!("plot: {}", path.display());
    }
    Ok(())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let shutdown = Shutdown::new();
    let (base, running) = match &args.target {
        Some(t) => (t.trim_end_matches('/').to_string(), None),
        None => {
            // One load generator is one client IP: lift the per-IP rate limit, or it would measure 429s.
            let mut config = Config::default();
            config.collector.rate_limit_per_sec = 1_000_000;
            config.collector.rate_limit_burst = 1_000_000;
            let r = app::start(
                config,
                Roles::ALL,
                SocketAddr::from(([127, 0, 0, 1], 0)),
                shutdown.clone(),
            )
            .await
            .context("starting an embedded Tailor")?;
            (format!("http://{}", r.addr), Some(r))
        }
    };
    if let Some(minutes) = args.soak {
        soak_report(&base, args.clone(), minutes).await?;
        if let Some(r) = running {
            shutdown.cancel();
            r.wait().await?;
        }
        return Ok(());
    }
    println!(
        "target {base}{}; {} s per scenario, {} clients, {} events per ingest request\n",
        if running.is_some() {
            " (embedded, in-process)"
        } else {
            ""
        },
        args.seconds,
        args.concurrency,
        args.batch
    );
    println!(
        "| scenario | requests/s | events/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | p50 / baseline p50 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut baseline_p50 = None;
    // Ingest runs before recommend, so recommendations are ranked over a populated store.
    let mut drained = None;
    for s in [Scenario::Baseline, Scenario::Ingest, Scenario::Recommend] {
        let before = processed(&base).await?;
        let started = Instant::now();
        let o = run(&base, s, args.clone()).await?;
        if let Scenario::Ingest = s {
            // Let the processor finish the backlog, so the next scenario measures ranking alone,
            // and so the ingest-to-profile throughput can be reported: from the first request sent
            // to the last accepted event consumed (requests still waiting for room in the bus when
            // the window closes count, they are the backlog).
            wait_for_processed(&base, before, o.events).await?;
            drained = Some((o.events, started.elapsed().as_secs_f64()));
        }
        let secs = args.seconds as f64;
        let p50 = o.hist.value_at_quantile(0.5);
        let base_p50 = *baseline_p50.get_or_insert(p50.max(1));
        println!(
            "| {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1}x |",
            s.name(),
            o.requests as f64 / secs,
            if o.events > 0 {
                format!("{:.0}", o.events as f64 / secs)
            } else {
                "-".into()
            },
            ms(p50),
            ms(o.hist.value_at_quantile(0.99)),
            ms(o.hist.value_at_quantile(0.999)),
            ms(o.hist.max()),
            o.errors,
            p50 as f64 / base_p50 as f64
        );
    }
    if let Some((events, secs)) = drained {
        println!(
            "\nprocessor: {events} events applied to profiles in {secs:.1} s (from the first ingest request to the last event consumed) = {:.0} events/s",
            events as f64 / secs
        );
    }
    if let Some(r) = running {
        shutdown.cancel();
        r.wait().await?;
    }
    Ok(())
}
