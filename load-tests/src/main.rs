//! `tailor-load`: drives a Tailor instance with synthetic shop traffic and reports throughput and
//! latency percentiles (HdrHistogram), each scenario next to a baseline measured in the same run.
//!
//! The baseline is `GET /healthz` on the same server, same client and same concurrency: it is the cost
//! of an HTTP round trip through the stack with no work, so the ratio to it shows what Tailor's own
//! work costs, independent of the machine. Without `--target` an embedded Tailor is started in-process.
//! The events come from the traffic model `tailor run --simulate` uses (`tailor::traffic`).
//!
//! Besides the baseline, each stage is measured against a same-run ceiling ([`ceiling`]): the
//! collector against a bare handler taking the same batches, the recommender against a bare
//! handler making one pipelined store round trip, the processor against a consumer that reads the
//! same events and writes as many keys with plain pipelined commands. [`probe`] measures freshness
//! under load and Redis memory per member.

mod ceiling;
mod probe;
mod soak;
mod targets;

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use std::collections::HashMap;
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
    /// Base URL of a running Tailor (`tailor run`). Without it a Tailor is started in-process:
    /// on `--kafka` and `--redis` when both are given, embedded otherwise.
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
    /// A re-ranking model (`tailor ranker fit`): the recommend-learned scenario loads it through
    /// `PUT /admin/ranker`, then asks as the recommend scenario does, so the learned stage's cost
    /// shows beside the blend's in the same run.
    #[arg(long, value_name = "FILE")]
    ranker: Option<std::path::PathBuf>,
    /// An `admin` key of the site, to load --ranker (a site from a configuration file needs it).
    #[arg(long, env = "TAILOR_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
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
    /// The Redis the Tailor under test uses: the soak samples its `used_memory`; the scenarios
    /// measure the bare recommendation and the processor ceiling on it, and memory per member.
    #[arg(long)]
    redis: Option<String>,
    /// The Kafka brokers the Tailor under test uses (the processor ceiling reads its topic; the
    /// soak's bare producer writes to a topic of its own there, as the ingest latency's baseline).
    #[arg(long)]
    kafka: Option<String>,
    /// The topic the events go to.
    #[arg(long, default_value = "tailor.events")]
    topic: String,
    /// The Redis key namespace of the Tailor under test (`redis.namespace`).
    #[arg(long, default_value = "tailor")]
    namespace: String,
    /// Which scenarios to run, in this order: baseline, ingest, bare-ingest, bare-produce (needs
    /// --kafka: the bare POST writing each event to the broker, acks=all), recommend,
    /// recommend-learned (needs --ranker), bare-recommend, ceiling (the processor's, needs --kafka and --redis), ingest-open (open loop
    /// at half the ingest scenario's rate), freshness, memory (needs --redis). A scenario whose
    /// needs are missing is skipped with a note.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "baseline,ingest,bare-ingest,bare-produce,recommend,recommend-learned,bare-recommend,ceiling,ingest-open,freshness,memory"
    )]
    scenarios: Vec<String>,
    /// The Tailor under test runs the collector alone (`tailor collector`, `TAILOR_COMMAND=collector`
    /// in the scripts): the collector's rate and latency without a processor draining on the same
    /// cores. Ingest is not followed to a processor, and only baseline, ingest, bare-ingest and
    /// ingest-open run (the others are skipped with a note).
    #[arg(long)]
    collector_only: bool,
    /// Freshness: background page views a second while probing (default: half of the processor's
    /// rate measured by the ingest scenario, else 1000).
    #[arg(long)]
    fresh_rate: Option<f64>,
    /// Memory: how many of the visitors to size.
    #[arg(long, default_value_t = 500)]
    memory_sample: u64,
    /// Also write what the run measured to this JSON file, for `--judge`.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// Judge issue 11's performance targets on these reports (`--report` files, comma-separated),
    /// print the table and exit (`load-tests/targets.sh` makes the runs).
    #[arg(long, value_delimiter = ',')]
    judge: Vec<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    Baseline,
    Ingest,
    BareIngest,
    BareProduce,
    Recommend,
    RecommendLearned,
    BareRecommend,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Baseline => "baseline GET /healthz",
            Scenario::Ingest => "POST /v1/events",
            Scenario::BareIngest => "ceiling: bare POST, same batches",
            Scenario::BareProduce => "ceiling: bare POST produced to the broker (acks=all)",
            Scenario::Recommend => "GET /v1/recommendations",
            Scenario::RecommendLearned => "GET /v1/recommendations, learned re-ranking",
            Scenario::BareRecommend => "ceiling: bare GET, one store round trip",
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
        self.post_views(http, &format!("{base}/v1/events"), a)
    }

    /// The same batch to `url`.
    fn post_views(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        a: &Args,
    ) -> reqwest::RequestBuilder {
        let visitor = self.rng.below(a.visitors);
        with_key(http.post(url), a)
            .header(reqwest::header::USER_AGENT, browser_agent(visitor))
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
        self.get_for_visitor(http, &format!("{base}/v1/recommendations"), a)
    }

    /// `url` with the site and a random visitor.
    fn get_for_visitor(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        a: &Args,
    ) -> reqwest::RequestBuilder {
        http.get(format!(
            "{url}?site={}&anonymous=v{}&limit=10",
            a.site,
            self.rng.below(a.visitors)
        ))
    }
}

/// The browser of `visitor`: one of 100 user agents of the shapes shops see. The load posts as a
/// shop's back end relaying its shoppers' events, with the shopper's user agent, which the
/// collector parses (browser, OS, device, bot) on every request, as it does the tag's.
fn browser_agent(visitor: u64) -> String {
    const SHAPES: [&str; 4] = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.1 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v}.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    ];
    let version = 100 + (visitor / 4) % 25;
    SHAPES[(visitor % 4) as usize].replace("{v}", &version.to_string())
}

/// `req` with the collect key (`--key`), when one is given.
fn with_key(req: reqwest::RequestBuilder, a: &Args) -> reqwest::RequestBuilder {
    match &a.key {
        Some(k) => req.bearer_auth(k),
        None => req,
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

/// Loads a re-ranking model into the Tailor under test and checks that answers use it.
async fn load_ranker(
    base: &str,
    site: &str,
    model: &std::path::Path,
    key: Option<&str>,
) -> anyhow::Result<()> {
    let body = std::fs::read(model).with_context(|| format!("--ranker {}", model.display()))?;
    let http = reqwest::Client::new();
    let mut put = http
        .put(format!("{base}/admin/ranker?site={site}"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(k) = key {
        put = put.bearer_auth(k);
    }
    let r = put.send().await?;
    anyhow::ensure!(
        r.status().is_success(),
        "loading --ranker: {} {}",
        r.status(),
        r.text().await.unwrap_or_default()
    );
    let answer: serde_json::Value = http
        .get(format!(
            "{base}/v1/recommendations?site={site}&anonymous=load-check"
        ))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        answer["strategy"] == "learned",
        "the model was loaded but answers do not use it: {answer}"
    );
    Ok(())
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
                    Scenario::BareIngest => {
                        shopper.post_views(&client, &format!("{base}/bare/events"), &a)
                    }
                    Scenario::BareProduce => {
                        shopper.post_views(&client, &format!("{base}/bare/produce"), &a)
                    }
                    Scenario::Recommend | Scenario::RecommendLearned => {
                        shopper.recommend(&client, &base, &a)
                    }
                    Scenario::BareRecommend => shopper.get_for_visitor(
                        &client,
                        &format!("{base}/bare/recommendations"),
                        &a,
                    ),
                };
                let started = Instant::now();
                let ok = matches!(req.send().await, Ok(r) if r.status().is_success());
                out.hist.record(started.elapsed().as_micros() as u64).ok();
                out.requests += 1;
                if ok {
                    if let Scenario::Ingest | Scenario::BareIngest | Scenario::BareProduce = s {
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
    let text = metrics_text(base).await?;
    Ok(metric_sum(&text, "tailor_processor_events_total{"))
}

/// The target's `/metrics` page.
async fn metrics_text(base: &str) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?)
}

/// The sum of the samples whose line starts with `prefix` (a metric name and the start of its labels).
fn metric_sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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
    let rows: [(&str, soak::Column); 13] = [
        ("page views/s acknowledged", |s| s.events_per_sec),
        ("ingest p99 ms", |s| s.ingest_p99),
        ("ingest p99.9 ms", |s| s.ingest_p999),
        ("recommend p99 ms", |s| s.recommend_p99),
        ("recommend p99.9 ms", |s| s.recommend_p999),
        ("processor backlog, events", |s| s.backlog),
        ("service RSS MB", |s| s.rss_mb),
        ("Redis used_memory MB", |s| s.redis_mb),
        ("recommender cache: past sessions", |s| s.cached_sessions),
        ("recommender cache: items' session lists", |s| {
            s.cached_index_lists
        }),
        ("errors per window", |s| s.errors as f64),
        ("bare produce p50 ms (broker baseline)", |s| s.produce_p50),
        ("bare produce p99 ms (broker baseline)", |s| s.produce_p99),
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

/// p50, p99 and p99.9 of a histogram of microseconds, in milliseconds: what a run prints and reports.
fn percentiles_ms(h: &Histogram<u64>) -> [f64; 3] {
    [0.5, 0.99, 0.999].map(|q| ms(h.value_at_quantile(q)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    if !args.judge.is_empty() {
        let mut reports = Vec::new();
        for path in &args.judge {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the report {}", path.display()))?;
            reports.push(
                targets::Report::parse(&text)
                    .with_context(|| format!("the report {}", path.display()))?,
            );
        }
        print!("{}", targets::table(&targets::judge(&reports)));
        return Ok(());
    }
    let shutdown = Shutdown::new();
    let (base, running) = match &args.target {
        Some(t) => (t.trim_end_matches('/').to_string(), None),
        None => {
            // One load generator is one client IP: lift the per-IP rate limit, or it would measure 429s.
            let mut config = Config::default();
            config.collector.rate_limit_per_sec = 1_000_000;
            config.collector.rate_limit_burst = 1_000_000;
            // On a broker and Redis when given (the topics and group named after --topic, the
            // keys under --namespace), embedded otherwise.
            if let (Some(brokers), Some(redis)) = (&args.kafka, &args.redis) {
                let t = &args.topic;
                config.kafka.brokers = Some(brokers.clone());
                config.kafka.topic = t.clone();
                config.kafka.dead_letter_topic = format!("{t}.dead-letters");
                config.kafka.changes_topic = format!("{t}.changes");
                config.kafka.actions_topic = format!("{t}.actions");
                config.kafka.group = format!("{t}.processor");
                config.redis.url = Some(redis.clone());
                config.redis.namespace = args.namespace.clone();
                config.collector.spool_dir =
                    std::env::temp_dir().join(format!("tailor-load-spool-{}", run_id()));
            }
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
        "target {base}{}; {} s per scenario, {} clients, {} events per ingest request; run {}\n",
        match (&running, &args.kafka) {
            (Some(_), Some(_)) if args.redis.is_some() => " (in-process, on the broker and Redis)",
            (Some(_), _) => " (embedded, in-process)",
            _ => "",
        },
        args.seconds,
        args.concurrency,
        args.batch,
        run_id()
    );
    /// What a collector alone serves (`--collector-only`).
    const COLLECTOR_SCENARIOS: [&str; 5] = [
        "baseline",
        "ingest",
        "bare-ingest",
        "bare-produce",
        "ingest-open",
    ];
    let wants = |name: &str| {
        args.scenarios.iter().any(|s| s == name)
            && (!args.collector_only || COLLECTOR_SCENARIOS.contains(&name))
    };
    let mut notes: Vec<String> = Vec::new();
    if args.collector_only {
        let skipped: Vec<&str> = args
            .scenarios
            .iter()
            .map(String::as_str)
            .filter(|s| !COLLECTOR_SCENARIOS.contains(s))
            .collect();
        if !skipped.is_empty() {
            notes.push(format!(
                "{} skipped: the target runs the collector alone (--collector-only)",
                skipped.join(", ")
            ));
        }
    }
    for s in &args.scenarios {
        anyhow::ensure!(
            [
                "baseline",
                "ingest",
                "bare-ingest",
                "bare-produce",
                "recommend",
                "recommend-learned",
                "bare-recommend",
                "ceiling",
                "ingest-open",
                "freshness",
                "memory"
            ]
            .contains(&s.as_str()),
            "--scenarios: unknown scenario {s:?}"
        );
    }
    let redis = match &args.redis {
        Some(url) => Some(redis::Client::open(url.as_str()).context("--redis")?),
        None => None,
    };
    let store: Option<Arc<dyn tailor_infra::store::Store>> = match &args.redis {
        Some(url) if wants("bare-recommend") => Some(Arc::new(
            tailor_infra::store::redis::RedisStore::connect(url)
                .await
                .context("--redis")?,
        )),
        _ => None,
    };
    let producer = match &args.kafka {
        Some(brokers) if wants("bare-produce") => {
            Some(ceiling::producer(brokers, format!("{}.bare", args.topic)).await?)
        }
        _ => None,
    };
    let bare = ceiling::serve(
        store.clone(),
        producer.clone(),
        &args.namespace,
        &args.site,
        args.items,
        shutdown.clone(),
    )
    .await?;
    let bare = format!("http://{bare}");
    println!(
        "| scenario | requests/s | events/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | p50 / baseline p50 | RSS MB after |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut report = targets::Report::new(
        if args.kafka.is_some() && args.redis.is_some() {
            "kafka"
        } else {
            "embedded"
        },
        args.batch,
        args.concurrency,
        args.seconds,
    );
    let mut baseline_p50 = None;
    let mut rates: HashMap<&'static str, f64> = HashMap::new();
    // Ingest runs before recommend, so recommendations are ranked over a populated store.
    let mut drained = None;
    let mut writes_per_event = None;
    for s in [
        Scenario::Baseline,
        Scenario::Ingest,
        Scenario::BareIngest,
        Scenario::BareProduce,
        Scenario::Recommend,
        Scenario::RecommendLearned,
        Scenario::BareRecommend,
    ] {
        let key = match s {
            Scenario::Baseline => "baseline",
            Scenario::Ingest => "ingest",
            Scenario::BareIngest => "bare-ingest",
            Scenario::BareProduce => "bare-produce",
            Scenario::Recommend => "recommend",
            Scenario::RecommendLearned => "recommend-learned",
            Scenario::BareRecommend => "bare-recommend",
        };
        if !wants(key) {
            continue;
        }
        if s == Scenario::RecommendLearned {
            let Some(model) = &args.ranker else {
                notes.push("recommend-learned skipped: it loads a model (--ranker)".into());
                continue;
            };
            load_ranker(&base, &args.site, model, args.admin_key.as_deref()).await?;
        }
        if s == Scenario::BareRecommend && store.is_none() {
            notes.push("bare-recommend skipped: it reads the Tailor's Redis (--redis)".into());
            continue;
        }
        if s == Scenario::BareProduce && producer.is_none() {
            notes.push("bare-produce skipped: it writes to the Tailor's broker (--kafka)".into());
            continue;
        }
        let target = match s {
            Scenario::BareIngest | Scenario::BareProduce | Scenario::BareRecommend => bare.as_str(),
            _ => base.as_str(),
        };
        let before = processed(&base).await?;
        let writes_before = match (&redis, s) {
            (Some(r), Scenario::Ingest) => Some(ceiling::writes_so_far(r).await?),
            _ => None,
        };
        let started = Instant::now();
        let o = run(target, s, args.clone()).await?;
        if s == Scenario::Ingest && !args.collector_only {
            // Let the processor finish the backlog, so the next scenario measures ranking alone,
            // and so the ingest-to-profile throughput can be reported: from the first request sent
            // to the last accepted event consumed (requests still waiting for room in the bus when
            // the window closes count, they are the backlog).
            wait_for_processed(&base, before, o.events).await?;
            drained = Some((o.events, started.elapsed().as_secs_f64()));
            if let (Some(r), Some(w)) = (&redis, writes_before) {
                let writes = ceiling::writes_so_far(r).await? - w;
                writes_per_event = Some(writes as f64 / o.events.max(1) as f64);
            }
        }
        let secs = args.seconds as f64;
        let p50 = o.hist.value_at_quantile(0.5);
        let base_p50 = *baseline_p50.get_or_insert(p50.max(1));
        // The row's figures, printed and reported alike.
        let (per_sec, events_per_sec) = (o.requests as f64 / secs, o.events as f64 / secs);
        let [p50_ms, p99_ms, p999_ms] = percentiles_ms(&o.hist);
        rates.insert(key, per_sec);
        report.scenario(
            key,
            per_sec,
            events_per_sec,
            p50_ms,
            p99_ms,
            p999_ms,
            o.errors,
        );
        println!(
            "| {} | {per_sec:.0} | {} | {p50_ms:.2} | {p99_ms:.2} | {p999_ms:.2} | {:.2} | {} | {:.1}x | {:.0} |",
            s.name(),
            if o.events > 0 {
                format!("{events_per_sec:.0}")
            } else {
                "-".into()
            },
            ms(o.hist.max()),
            o.errors,
            p50 as f64 / base_p50 as f64,
            soak::rss_mb(args.pid)
        );
    }
    println!();
    let ratio = |a: &str, b: &str| Some(rates.get(a)? / rates.get(b)?.max(1e-9));
    if let Some(r) = ratio("recommend", "baseline") {
        println!("recommendations: {r:.3}x the baseline's rate");
    }
    if let Some(r) = ratio("recommend", "bare-recommend") {
        println!(
            "recommendations: {r:.3}x the bare handler's rate (one pipelined store round trip)"
        );
    }
    if let Some(r) = ratio("ingest", "bare-ingest") {
        println!("collector: {r:.3}x the bare handler's rate, same batches");
    }
    if let Some(r) = ratio("ingest", "bare-produce") {
        println!("collector: {r:.3}x the bare producing handler's rate, same batches and broker");
    }
    let mut processor_rate = None;
    if let Some((events, secs)) = drained {
        processor_rate = Some(events as f64 / secs);
        report.set(
            "processor",
            serde_json::json!({"events": events, "seconds": secs,
                "events_per_sec": events as f64 / secs, "writes_per_event": writes_per_event}),
        );
        println!(
            "processor: {events} events applied to profiles in {secs:.1} s (from the first ingest request to the last event consumed) = {:.0} events/s{}",
            events as f64 / secs,
            rates
                .get("baseline")
                .map(|b| format!(" = {:.3}x the baseline's rate", events as f64 / secs / b))
                .unwrap_or_default()
        );
        if let Some(w) = writes_per_event {
            println!("processor: {w:.1} Redis writes per event (INFO commandstats over the drain)");
        }
    }
    if wants("ceiling") {
        match (&args.kafka, &redis, drained, writes_per_event) {
            (Some(brokers), Some(r), Some((events, _)), Some(w)) => {
                let c = ceiling::processor(brokers, &args.topic, r, events, w, run_id()).await?;
                let rate = c.events as f64 / c.secs.max(1e-9);
                report.set(
                    "ceiling",
                    serde_json::json!({"events": c.events, "writes": c.writes,
                        "seconds": c.secs, "events_per_sec": rate}),
                );
                println!(
                    "processor ceiling: {} events read and {} plain writes in {:.1} s = {rate:.0} events/s; the processor is {:.3}x of it",
                    c.events,
                    c.writes,
                    c.secs,
                    processor_rate.unwrap_or(0.0) / rate
                );
            }
            _ => notes
                .push("ceiling skipped: it needs --kafka, --redis and the ingest scenario".into()),
        }
    }
    if wants("ingest-open") {
        match rates.get("ingest") {
            Some(r) => {
                let rate = r * args.batch as f64 / 2.0;
                let (h, acked) =
                    probe::ingest_open(&base, args.clone(), rate, args.seconds).await?;
                let [p50, p99, p999] = percentiles_ms(&h);
                report.set(
                    "ingest_open",
                    serde_json::json!({"asked_per_sec": rate, "acked_per_sec": acked,
                        "p50_ms": p50, "p99_ms": p99, "p999_ms": p999}),
                );
                println!(
                    "ingest open loop at half the ingest scenario's rate, {rate:.0} page views/s asked, {acked:.0}/s acknowledged: from when each request was due to its 2xx p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms, max {:.2} ms",
                    ms(h.max())
                );
                // Let the processor catch up, so what follows measures without this backlog.
                let lag_deadline = Instant::now() + Duration::from_secs(600);
                while !args.collector_only && Instant::now() < lag_deadline {
                    let before = processed(&base).await?;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if processed(&base).await? == before {
                        break;
                    }
                }
            }
            None => {
                notes.push("ingest-open skipped: it runs at half the ingest scenario's rate".into())
            }
        }
    }
    if wants("freshness") {
        let rate = args
            .fresh_rate
            .or(processor_rate.map(|r| r / 2.0))
            .unwrap_or(1000.0);
        let f = probe::freshness(&base, args.clone(), rate, args.seconds).await?;
        let [p50, p99, p999] = percentiles_ms(&f.hist);
        report.set(
            "freshness",
            serde_json::json!({"asked_per_sec": rate, "background_per_sec": f.background_per_sec,
                "probes": f.probes, "missed": f.missed,
                "p50_ms": p50, "p99_ms": p99, "p999_ms": p999}),
        );
        println!(
            "freshness at {:.0} background page views/s acknowledged (asked {rate:.0}): {} probes, {} not shown within 5 s; from the 2xx to a recommendation holding the item p50 {p50:.1} ms, p99 {p99:.1} ms, p99.9 {p999:.1} ms, max {:.1} ms",
            f.background_per_sec,
            f.probes,
            f.missed,
            ms(f.hist.max()),
        );
    }
    if wants("memory") {
        match &redis {
            Some(r) => {
                let m = probe::memory(
                    r,
                    &args.namespace,
                    &args.site,
                    args.visitors,
                    args.memory_sample,
                )
                .await?;
                let n = m.per_member.len();
                if n == 0 {
                    notes.push("memory: no sampled visitor is in Redis".into());
                } else {
                    let q = |p: f64| m.per_member[((n - 1) as f64 * p).round() as usize];
                    let mean = m.per_member.iter().sum::<u64>() as f64 / n as f64;
                    report.set(
                        "memory",
                        serde_json::json!({"sampled": n, "keys": m.keys, "mean_bytes": mean,
                            "p50_bytes": q(0.5), "p90_bytes": q(0.9), "p99_bytes": q(0.99),
                            "by_kind": m.by_kind}),
                    );
                    let total: u64 = m.by_kind.values().sum();
                    let kinds: Vec<String> = m
                        .by_kind
                        .iter()
                        .map(|(k, b)| {
                            format!("{k} {:.0}%", 100.0 * *b as f64 / total.max(1) as f64)
                        })
                        .collect();
                    println!(
                        "Redis per member (MEMORY USAGE of every key of {n} sampled visitors, of {} keys): mean {mean:.0} B, p50 {} B, p90 {} B, p99 {} B, max {} B; by kind: {}",
                        m.keys,
                        q(0.5),
                        q(0.9),
                        q(0.99),
                        q(1.0),
                        kinds.join(", ")
                    );
                }
            }
            None => notes.push("memory skipped: it needs --redis".into()),
        }
    }
    for n in notes {
        println!("note: {n}");
    }
    if let Some(path) = &args.report {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("writing the report {}", path.display()))?;
    }
    shutdown.cancel();
    if let Some(r) = running {
        r.wait().await?;
    }
    Ok(())
}
