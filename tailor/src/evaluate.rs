//! `tailor evaluate`: offline quality of the recommender on a shop's own event files, with the
//! session-based next-item protocol of `shared/data/clickstream/README.md` (session-rec, SR-GNN).
//!
//! 1. The shared models are built from TRAIN by the real processor code (the batch path of
//!    `tailor processor`, on the embedded store, on the events' own clock), then trending is
//!    refreshed as of the last training event.
//! 2. For every test session `[i1..in]` (its item page views and clicks in time order) and every
//!    `k` in `1..n-1`, the real ranker is asked, with the prefix `[i1..ik]` as the visitor's session
//!    and `ik` as the current page's item, for the top `cutoff`; the answer is scored against
//!    `i(k+1)`. Nothing after the prefix is known to the ranker, and test events never reach the
//!    models.
//! 3. Every ranker is the one recommender with different blend weights: `popular`, `covisitation`
//!    and `session_knn` each enable one generator, `blend` is the configured default: the blend
//!    re-ordered by a re-ranking model fitted first on TRAIN alone (`crate::learn`, on the sessions
//!    ending in its last `--learn-days`), as a site with a model ranks; `blend_without_model` is the
//!    blend alone (and each `--weights` adds a variant of it, for tuning).
//!
//! Tune on a split of the training file (`--validation-days`), never on the test file.

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tailor_core::config::{Config, SourceWeights};
use tailor_core::event::RawEvent;
use tailor_core::keys::KeySpace;
use tailor_core::state::Session;
use tailor_core::{Event, EventBody, SiteId};
use tailor_infra::bus::Message;
use tailor_infra::store::memory::MemoryStore;
use tailor_infra::store::Store;
use tailor_infra::Shutdown;
use tailor_processor::Processor;
use tailor_recommender::engine::Context;
use tailor_recommender::rank::session_knn::Tuning;
use tailor_recommender::rank::Source;
use tailor_recommender::Recommender;

/// V-SKNN's sample as session-rec defines it (`VMContextKNN`'s `sample_size`).
const VSKNN_SAMPLE: usize = 500;
/// V-SKNN's k: the neighbours that vote.
const VSKNN_K: usize = 100;

/// Events per processor batch while training.
const TRAIN_BATCH: usize = 500;

/// `tailor evaluate`'s options.
#[derive(Debug, clap::Args)]
pub struct Evaluate {
    /// Training events (JSON lines in the event schema, `.gz` allowed).
    #[arg(long, value_name = "FILE")]
    pub train: PathBuf,
    /// Test events; without it, the last `--validation-days` of TRAIN are held out instead (tuning).
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Hold out the sessions that end in the last N days of TRAIN as the test set (tuning on a split
    /// of the training data). Ignored with --test.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub validation_days: u32,
    /// How many items each prediction may show.
    #[arg(long, default_value_t = 20)]
    pub cutoff: usize,
    /// Print one JSON object keyed by ranker instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Evaluate at most this many sessions of the test set (a quick look; the report says so).
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,
    /// Also evaluate the blend with these weights (`session_knn=1,sequence=0.5`; sources not named
    /// keep the configured weight; `decay=2` sets recommender.session_position_decay,
    /// `recency=7` recommender.session_recency_decay_days and `click=3`
    /// recommender.session_click_decay, 0 turns each off), as ranker
    /// `blend[...]` (the blend alone, without the learned stage). Repeatable, for tuning.
    #[arg(long, value_name = "SPEC")]
    pub weights: Vec<String>,
    /// Ask with the session as the profile summary keeps it (its last `processor.session_items`
    /// clicks) instead of every click of the prefix: what the live recommender reads.
    #[arg(long)]
    pub summary_sessions: bool,
    /// Also write every prediction as a JSON line (ranker, session, prefix with its clicks' times,
    /// the next item, the ranked items with their scores and sources), for analysis.
    #[arg(long, value_name = "FILE")]
    pub dump: Option<PathBuf>,
    /// Score the blend without fitting the learned re-ranking stage first (faster; the blend is
    /// then the hand-set weights alone).
    #[arg(long)]
    pub no_learn: bool,
    /// The re-ranking model is fitted on the TRAIN sessions ending in its last N days, with the
    /// models built from the sessions before (`tailor ranker fit --days`).
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub learn_days: u32,
    #[command(flatten)]
    pub fit: crate::learn::FitParams,
}

/// One ranker's quality.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Quality {
    /// Hit rate: share of predictions whose target is in the top `cutoff`.
    pub hr: f64,
    /// Mean reciprocal rank of the target within the top `cutoff` (0 when absent).
    pub mrr: f64,
    /// Share of the training items ever recommended.
    pub coverage: f64,
    /// Mean popularity of the recommended items, relative to the most popular item's.
    pub popularity_bias: f64,
    pub predictions: usize,
    /// Standard errors of `hr` and `mrr`, clustered by test session.
    pub hr_se: f64,
    pub mrr_se: f64,
    /// The difference from V-SKNN (`session_knn`) on the same cases, with its paired standard
    /// errors (clustered by session); absent for V-SKNN itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus_session_knn: Option<Gain>,
}

/// A ranker's difference from another on the same cases.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gain {
    pub hr: f64,
    pub hr_se: f64,
    pub mrr: f64,
    pub mrr_se: f64,
}

/// The standard error of the mean of `values`, clustered by `clusters` (the cases of one session
/// are not independent): `sqrt(G/(G-1) × Σ_g (Σ_{i in g} (v_i - mean))²) / n`.
pub fn clustered_se(values: &[f64], clusters: &[&str]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut sums: HashMap<&str, f64> = HashMap::new();
    for (v, c) in values.iter().zip(clusters) {
        *sums.entry(c).or_default() += v - mean;
    }
    let g = sums.len() as f64;
    if g < 2.0 {
        return 0.0;
    }
    let ss: f64 = sums.values().map(|x| x * x).sum();
    (g / (g - 1.0) * ss).sqrt() / n as f64
}

/// Each case's outcome: the reciprocal rank of the target in the top `cutoff` (0 when absent).
type Outcomes = Vec<f64>;

/// Each case's hit (1 when the target was in the top `cutoff`).
fn hits(o: &Outcomes) -> Vec<f64> {
    o.iter().map(|r| f64::from(u8::from(*r > 0.0))).collect()
}

/// `a`'s difference from `b` on the same cases, with paired standard errors.
fn gain(a: &Outcomes, b: &Outcomes, clusters: &[&str]) -> Gain {
    let diff =
        |x: Vec<f64>, y: Vec<f64>| -> Vec<f64> { x.iter().zip(&y).map(|(p, q)| p - q).collect() };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let dh = diff(hits(a), hits(b));
    let dr = diff(a.clone(), b.clone());
    Gain {
        hr: mean(&dh),
        hr_se: clustered_se(&dh, clusters),
        mrr: mean(&dr),
        mrr_se: clustered_se(&dr, clusters),
    }
}

/// A test prediction: the prefix of a session and the item that came next.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The test session it comes from (standard errors are clustered by session).
    pub session: String,
    pub prefix: Vec<String>,
    /// When each click of the prefix happened (ms).
    pub prefix_ms: Vec<i64>,
    pub category: Option<String>,
    pub next: String,
}

impl Case {
    /// When the prediction is asked: the prefix's last click (ms).
    pub fn at_ms(&self) -> i64 {
        self.prefix_ms.last().copied().unwrap_or_default()
    }
}

/// Reads an event file (JSON lines, gzip by extension) into events, validated as the collector does.
pub fn read_events(path: &Path) -> anyhow::Result<Vec<Event>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.with_context(|| format!("reading {} line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not JSON", path.display(), n + 1))?;
        let event = RawEvent::from_json(value)
            .and_then(|r| r.validate(now))
            .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), n + 1))?;
        out.push(event);
    }
    Ok(out)
}

/// The item an event shows interest in as a click of a session, with its category.
fn click(e: &Event) -> Option<(String, Option<String>)> {
    match &e.body {
        EventBody::PageView {
            item_id: Some(i),
            category,
            ..
        }
        | EventBody::Click {
            item_id: Some(i),
            category,
            ..
        } => Some((i.to_string(), category.as_ref().map(|c| c.to_string()))),
        _ => None,
    }
}

/// Sessions as clicks in time order (ties in file order), keyed by session id (or anonymous id).
fn sessions(events: &[Event]) -> BTreeMap<String, Vec<(i64, String, Option<String>)>> {
    let mut out: BTreeMap<String, Vec<(i64, String, Option<String>)>> = BTreeMap::new();
    for e in events {
        if let Some((item, cat)) = click(e) {
            let id = e
                .session_id
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.anonymous_id.to_string());
            out.entry(id)
                .or_default()
                .push((e.timestamp.timestamp_millis(), item, cat));
        }
    }
    for clicks in out.values_mut() {
        clicks.sort_by_key(|c| c.0);
    }
    out
}

/// Every prediction of the protocol's step 4 for these test sessions.
pub fn cases(test: &[Event]) -> Vec<Case> {
    let mut out = Vec::new();
    for (session, clicks) in sessions(test) {
        for k in 1..clicks.len() {
            out.push(Case {
                session: session.clone(),
                prefix: clicks[..k].iter().map(|c| c.1.clone()).collect(),
                prefix_ms: clicks[..k].iter().map(|c| c.0).collect(),
                category: clicks[k - 1].2.clone(),
                next: clicks[k].1.clone(),
            });
        }
    }
    out
}

/// Splits events into training and validation by the protocol: sessions ending in the last `days`
/// days are held out; their clicks on items absent from the rest are dropped, then sessions left
/// with one click. Events without a session click stay in training.
pub fn split(events: Vec<Event>, days: u32) -> (Vec<Event>, Vec<Event>) {
    let last = events
        .iter()
        .map(|e| e.timestamp.timestamp_millis())
        .max()
        .unwrap_or(0);
    let cut = last - i64::from(days) * 86_400_000;
    let ends: HashMap<String, i64> = sessions(&events)
        .into_iter()
        .map(|(id, c)| (id, c.last().map_or(0, |c| c.0)))
        .collect();
    let session_of = |e: &Event| {
        e.session_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.anonymous_id.to_string())
    };
    let (test, train): (Vec<Event>, Vec<Event>) = events
        .into_iter()
        .partition(|e| ends.get(&session_of(e)).is_some_and(|end| *end > cut));
    let known: HashSet<String> = train.iter().filter_map(click).map(|c| c.0).collect();
    let test: Vec<Event> = test
        .into_iter()
        .filter(|e| click(e).is_none_or(|(i, _)| known.contains(&i)))
        .collect();
    let keep: HashSet<String> = sessions(&test)
        .into_iter()
        .filter(|(_, c)| c.len() >= 2)
        .map(|(id, _)| id)
        .collect();
    let test = test
        .into_iter()
        .filter(|e| keep.contains(&session_of(e)))
        .collect();
    (train, test)
}

/// A ranker of the evaluation: blend weights and the session neighbours' position decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant {
    pub weights: SourceWeights,
    pub position_decay: Option<f64>,
    pub recency_days: Option<f64>,
    pub click_decay: Option<f64>,
    /// Without the site's learned re-ranking model.
    pub blend_only: bool,
    /// Neighbour sessions compared (`None`: `recommender.session_sample`) ...
    pub session_sample: Option<usize>,
    /// ... and how many of the most similar vote (`None`: `recommender.session_neighbours`).
    pub session_neighbours: Option<usize>,
}

/// Parses `--weights` (`name=value,...`, `decay=clicks`) over a base.
pub fn parse_weights(spec: &str, base: Variant) -> anyhow::Result<Variant> {
    let mut v = base;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, value)) = part.split_once('=') else {
            bail!("--weights {spec:?}: expected name=value, got {part:?}");
        };
        let x: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .with_context(|| format!("--weights: {name} must be a number >= 0, got {value:?}"))?;
        match name.trim() {
            "decay" => v.position_decay = (x > 0.0).then_some(x),
            "recency" => v.recency_days = (x > 0.0).then_some(x),
            "click" => v.click_decay = (x > 0.0).then_some(x),
            source => {
                *v.weights
                    .get_mut(source)
                    .with_context(|| format!("--weights: unknown source {name:?}"))? = x
            }
        }
    }
    Ok(v)
}

/// Builds the shared models from `train` through the processor's batch path on an embedded store.
pub async fn train(config: &Config, train: &[Event]) -> anyhow::Result<(Arc<dyn Store>, KeySpace)> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let keys = KeySpace::new(config.redis.namespace.clone());
    let processor = Processor {
        store: store.clone(),
        keys: keys.clone(),
        config: config.processor.clone(),
        segments: Vec::new(),
        group: "evaluate".into(),
        changes: None,
        offer_secret: config.recommender.offer_secret.clone(),
    };
    let bar = progress(train.len() as u64, "training events");
    let shutdown = Shutdown::new();
    let mut offset = 0i64;
    for chunk in train.chunks(TRAIN_BATCH) {
        let batch: Vec<Message> = chunk
            .iter()
            .map(|e| {
                offset += 1;
                Message {
                    topic: "evaluate".into(),
                    partition: 0,
                    offset,
                    payload: serde_json::to_vec(e).expect("an event serialises"),
                    request_id: None,
                }
            })
            .collect();
        processor
            .apply_batch(&batch, &shutdown)
            .await
            .context("the processor gave up on a batch")?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let last = train
        .iter()
        .map(|e| e.timestamp.timestamp_millis())
        .max()
        .unwrap_or(0);
    let sites: HashSet<&SiteId> = train.iter().map(|e| &e.site_id).collect();
    for site in sites {
        processor.refresh_trending(site, last).await?;
    }
    Ok((store, keys))
}

/// `--dump`: one JSON line per prediction of a ranker.
fn write_dump(
    out: &mut impl std::io::Write,
    ranker: &str,
    cases: &[Case],
    answers: &[Answer],
) -> anyhow::Result<()> {
    for (case, answer) in cases.iter().zip(answers) {
        let line = serde_json::json!({
            "ranker": ranker,
            "session": case.session,
            "prefix": case.prefix,
            "prefix_ms": case.prefix_ms,
            "next": case.next,
            "items": answer,
        });
        writeln!(out, "{line}").context("writing --dump")?;
    }
    Ok(())
}

/// A progress bar of `len` steps of `what`, with rate and time left.
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} {{per_sec}} eta {{eta}}"
        ))
        .expect("a valid template"),
    );
    bar
}

/// How the cases are asked and scored (the same for every ranker of a run).
pub struct Scoring<'a> {
    pub cutoff: usize,
    /// Training clicks per item (coverage and popularity bias).
    pub popularity: &'a HashMap<String, f64>,
    /// See [`Evaluate::summary_sessions`]: `Some(cap)` asks with the session as the profile
    /// summary keeps it, at most `cap` clicks (`processor.session_items`).
    pub summary_sessions: Option<usize>,
}

/// A prefix as the profile summary keeps a session (built by the processor's own
/// `Session::push_click`: the `cap` most recent clicks), oldest first as the ranker takes it.
pub fn summarised(prefix: &[String], cap: usize) -> Vec<String> {
    let mut session = Session::default();
    for item in prefix {
        session.push_click(item, cap);
    }
    session.as_read().iter().rev().cloned().collect()
}

/// One prediction's answer: the ranked items with their scores and sources.
pub type Answer = Vec<(String, f64, Option<Source>)>;

/// Scores one ranker over every case; returns its quality, each case's outcome and each case's
/// answer.
pub async fn score(
    recommender: &Recommender,
    site: &SiteId,
    cases: &[Case],
    variant: Variant,
    scoring: &Scoring<'_>,
    bar: &ProgressBar,
) -> anyhow::Result<(Quality, Outcomes, Vec<Answer>)> {
    let (cutoff, popularity) = (scoring.cutoff, scoring.popularity);
    let mut answers = Vec::with_capacity(cases.len());
    let mut pop = 0.0;
    let mut outcomes = Vec::with_capacity(cases.len());
    let mut shown: HashSet<String> = HashSet::new();
    let max_pop = popularity.values().copied().fold(0.0, f64::max).max(1.0);
    let mut recommended = 0usize;
    for case in cases {
        let session = match scoring.summary_sessions {
            Some(cap) => summarised(&case.prefix, cap),
            None => case.prefix.clone(),
        };
        let ctx = Context {
            weights: Some(variant.weights),
            knn: Some(Tuning {
                position_decay: variant.position_decay,
                click_decay: variant.click_decay,
                recency_decay_ms: variant.recency_days.map(|d| d * 86_400_000.0),
                now_ms: 0.0,
            }),
            blend_only: variant.blend_only,
            session_sample: variant.session_sample,
            session_neighbours: variant.session_neighbours,
            ..crate::learn::context(case, session, cutoff)
        };
        let ranked = recommender.rank(site, &ctx).await?;
        let r = match ranked.items.iter().position(|r| r.item_id == case.next) {
            Some(pos) => 1.0 / (pos as f64 + 1.0),
            None => 0.0,
        };
        outcomes.push(r);
        answers.push(
            ranked
                .items
                .iter()
                .map(|r| (r.item_id.clone(), r.score, r.source))
                .collect(),
        );
        for r in &ranked.items {
            pop += popularity.get(&r.item_id).copied().unwrap_or(0.0) / max_pop;
            recommended += 1;
            if !shown.contains(&r.item_id) {
                shown.insert(r.item_id.clone());
            }
        }
        bar.inc(1);
    }
    let n = cases.len().max(1) as f64;
    let clusters: Vec<&str> = cases.iter().map(|c| c.session.as_str()).collect();
    let hit = hits(&outcomes);
    let q = Quality {
        hr: hit.iter().sum::<f64>() / n,
        mrr: outcomes.iter().sum::<f64>() / n,
        coverage: shown.len() as f64 / popularity.len().max(1) as f64,
        popularity_bias: pop / recommended.max(1) as f64,
        predictions: cases.len(),
        hr_se: clustered_se(&hit, &clusters),
        mrr_se: clustered_se(&outcomes, &clusters),
        versus_session_knn: None,
    };
    Ok((q, outcomes, answers))
}

pub async fn run(mut config: Config, args: Evaluate) -> anyhow::Result<()> {
    if args.cutoff == 0 {
        bail!("--cutoff must be at least 1");
    }
    let started = Instant::now();
    let events = read_events(&args.train)?;
    let (train_events, test_events, protocol) = match &args.test {
        Some(t) => (
            events,
            read_events(t)?,
            format!("test file {}", t.display()),
        ),
        None => {
            let (a, b) = split(events, args.validation_days);
            (
                a,
                b,
                format!(
                    "validation split: sessions ending in the last {} days of {}",
                    args.validation_days,
                    args.train.display()
                ),
            )
        }
    };
    let Some(site) = train_events.first().map(|e| e.site_id.clone()) else {
        bail!("{} holds no events", args.train.display());
    };
    let test_events = match args.max_sessions {
        Some(max) => {
            let keep: HashSet<String> = sessions(&test_events).into_keys().take(max).collect();
            test_events
                .into_iter()
                .filter(|e| {
                    let id = e.session_id.as_ref().map(|s| s.to_string());
                    keep.contains(&id.unwrap_or_else(|| e.anonymous_id.to_string()))
                })
                .collect()
        }
        None => test_events,
    };
    let all_cases = cases(&test_events);
    if all_cases.is_empty() {
        bail!("the test set holds no session with two or more item views");
    }
    // The evaluation asks with the protocol's context: never exclude the page's item.
    config.recommender.exclude_current_item = false;
    let config = Arc::new(config);
    let (store, keys) = train(&config, &train_events).await?;
    let trained_secs = started.elapsed().as_secs_f64();
    let mut popularity: HashMap<String, f64> = HashMap::new();
    for e in &train_events {
        if let Some((i, _)) = click(e) {
            *popularity.entry(i).or_default() += 1.0;
        }
    }
    let recommender = Recommender::new(store, keys, config.clone());
    let learned = if args.no_learn {
        None
    } else {
        let fitted = crate::learn::fit(&config, train_events.clone(), args.learn_days, args.fit)
            .await
            .context("fitting the re-ranking model")?;
        recommender.put_model(&site, &fitted.model).await?;
        Some(fitted)
    };
    let base = Variant {
        weights: config.recommender.weights,
        position_decay: config.recommender.session_position_decay,
        recency_days: config.recommender.session_recency_decay_days,
        click_decay: config.recommender.session_click_decay,
        blend_only: false,
        session_sample: None,
        session_neighbours: None,
    };
    // The single generators as the literature defines them: session_knn is plain V-SKNN.
    let mut rankers: Vec<(String, Variant)> = ["popular", "covisitation", "session_knn"]
        .iter()
        .map(|n| {
            let weights = SourceWeights::only(n, 1.0).expect("a source");
            (
                n.to_string(),
                Variant {
                    weights,
                    position_decay: None,
                    recency_days: None,
                    click_decay: None,
                    blend_only: true,
                    // V-SKNN as defined compares the 500 most recent sessions, and the 100 most
                    // similar vote.
                    session_sample: (*n == "session_knn").then_some(VSKNN_SAMPLE),
                    session_neighbours: (*n == "session_knn").then_some(VSKNN_K),
                },
            )
        })
        .collect();
    rankers.push(("blend".into(), base));
    // The hand-set weights alone, to show what the learned stage adds; the tuning variants too.
    let hand_set = Variant {
        blend_only: true,
        ..base
    };
    if learned.is_some() {
        rankers.push(("blend_without_model".into(), hand_set));
    }
    for spec in &args.weights {
        rankers.push((format!("blend[{spec}]"), parse_weights(spec, hand_set)?));
    }
    let scoring = Scoring {
        cutoff: args.cutoff,
        popularity: &popularity,
        summary_sessions: args
            .summary_sessions
            .then_some(config.processor.session_items as usize),
    };
    let mut dump = match &args.dump {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => None,
    };
    let bar = progress((all_cases.len() * rankers.len()) as u64, "predictions");
    let mut results: BTreeMap<String, Quality> = BTreeMap::new();
    let mut order = Vec::new();
    let mut outcomes: BTreeMap<String, Outcomes> = BTreeMap::new();
    for (name, w) in &rankers {
        let (q, o, answers) = score(&recommender, &site, &all_cases, *w, &scoring, &bar).await?;
        if let Some(out) = dump.as_mut() {
            write_dump(out, name, &all_cases, &answers)?;
        }
        results.insert(name.clone(), q);
        outcomes.insert(name.clone(), o);
        order.push(name.clone());
    }
    bar.finish_and_clear();
    if let Some(mut out) = dump {
        use std::io::Write as _;
        out.flush().context("writing --dump")?;
    }
    let clusters: Vec<&str> = all_cases.iter().map(|c| c.session.as_str()).collect();
    for (name, q) in results.iter_mut() {
        if name != "session_knn" {
            q.versus_session_knn = Some(gain(&outcomes[name], &outcomes["session_knn"], &clusters));
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    if let Some(f) = &learned {
        println!(
            "re-ranking model: {} trees fitted on {} of {} predictions of the TRAIN sessions ending in its last {} days",
            f.model.trees.len(),
            f.queries,
            f.cases,
            args.learn_days
        );
    }
    println!(
        "{} training events, {} test predictions ({protocol}{}); models built in {:.0} s, total {:.0} s",
        train_events.len(),
        all_cases.len(),
        if args.summary_sessions {
            "; sessions as the profile keeps them"
        } else {
            ""
        },
        trained_secs,
        started.elapsed().as_secs_f64()
    );
    let c = args.cutoff;
    println!(
        "{:<40} {:>16} {:>16} {:>9} {:>9} {:>24}",
        "ranker",
        format!("HR@{c} (se)"),
        format!("MRR@{c} (se)"),
        "coverage",
        "pop.bias",
        "vs V-SKNN: HR, MRR (se)"
    );
    for name in order {
        let q = &results[&name];
        let vs = q
            .versus_session_knn
            .as_ref()
            .map(|g| {
                format!(
                    "{:+.4} ({:.4}), {:+.4} ({:.4})",
                    g.hr, g.hr_se, g.mrr, g.mrr_se
                )
            })
            .unwrap_or_default();
        println!(
            "{name:<40} {:>7.4} ({:.4}) {:>7.4} ({:.4}) {:>9.4} {:>9.4}   {vs}",
            q.hr, q.hr_se, q.mrr, q.mrr_se, q.coverage, q.popularity_bias
        );
    }
    println!(
        "(se: standard errors clustered by test session; the differences from V-SKNN are paired)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(session: &str, t: &str, item: &str) -> Event {
        RawEvent::from_json(
            json!({"type": "page_view", "site_id": "eval", "anonymous_id": session,
            "session_id": session, "timestamp": t, "item_id": item,
            "event_id": format!("{session}-{t}-{item}")}),
        )
        .unwrap()
        .validate(chrono::Utc::now())
        .unwrap()
    }

    #[test]
    fn every_prefix_of_a_test_session_is_a_case() {
        let test = vec![
            view("s1", "2014-04-01T00:00:02Z", "b"),
            view("s1", "2014-04-01T00:00:01Z", "a"),
            view("s1", "2014-04-01T00:00:03Z", "a"),
            view("s2", "2014-04-01T00:00:01Z", "x"),
        ];
        let c = cases(&test);
        assert_eq!(c.len(), 2, "s2 has one click: no case");
        assert_eq!(c[0].prefix, ["a"]);
        assert_eq!(c[0].next, "b");
        assert_eq!(c[1].prefix, ["a", "b"]);
        assert_eq!(c[1].next, "a", "repeats are targets too");
        assert_eq!(c[1].prefix_ms.len(), 2);
        assert_eq!(c[1].prefix_ms[1] - c[1].prefix_ms[0], 1000);
        assert_eq!(c[1].at_ms(), c[1].prefix_ms[1]);
    }

    #[test]
    fn the_split_holds_out_late_sessions_and_drops_unknown_items() {
        let events = vec![
            view("old", "2014-04-01T00:00:00Z", "a"),
            view("old", "2014-04-01T00:01:00Z", "b"),
            view("new", "2014-04-20T00:00:00Z", "a"),
            view("new", "2014-04-20T00:01:00Z", "unseen"),
            view("new", "2014-04-20T00:02:00Z", "b"),
            view("short", "2014-04-20T00:00:00Z", "a"),
            view("short", "2014-04-20T00:01:00Z", "unseen"),
        ];
        let (train, test) = split(events, 7);
        assert_eq!(train.len(), 2);
        let c = cases(&test);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].prefix.clone(), c[0].next.clone()),
            (vec!["a".into()], "b".into())
        );
    }

    #[test]
    fn a_summarised_session_keeps_the_last_clicks_with_repeats() {
        let s = |v: &[&str]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summarised(&s(&["a", "b", "a", "c", "c"]), 30),
            s(&["a", "b", "a", "c", "c"])
        );
        assert!(summarised(&[], 30).is_empty());
        assert_eq!(
            summarised(&s(&["a", "b", "a", "c", "c"]), 2),
            s(&["c", "c"]),
            "the summary's cap keeps the most recent"
        );
    }

    #[test]
    fn standard_errors_are_clustered_by_session_and_paired() {
        // Two sessions of two cases each: the cases of a session move together, so the clustered
        // error is larger than the independent one would be (sqrt(0.25 / 3) = 0.289 for four
        // independent 0/1 cases; here sqrt(2 / 1 × (1² + 1²)) / 4 = 0.5).
        let v = [1.0, 1.0, 0.0, 0.0];
        let c = ["s1", "s1", "s2", "s2"];
        assert!((clustered_se(&v, &c) - 0.5).abs() < 1e-12);
        assert_eq!(clustered_se(&v, &["s", "s", "s", "s"]), 0.0, "one cluster");
        // The same cases, one ranker ahead by 1/2 everywhere: a difference with no spread.
        let a: Outcomes = vec![1.0, 0.5, 1.0, 0.5];
        let b: Outcomes = vec![0.5, 0.0, 0.5, 0.0];
        let g = gain(&a, &b, &c);
        assert_eq!((g.mrr, g.mrr_se), (0.5, 0.0));
        assert_eq!(g.hr, 0.5, "hits: 1,1,1,1 against 1,0,1,0");
        assert_eq!(g.hr_se, 0.0, "each session gains one hit");
        let g = gain(&a, &vec![0.5, 0.0, 0.5, 0.5], &c);
        assert_eq!(g.hr, 0.25);
        assert!((g.hr_se - 0.25).abs() < 1e-12, "{}", g.hr_se);
    }

    #[test]
    fn weights_parse_over_a_base_and_refuse_nonsense() {
        let base = Variant {
            weights: SourceWeights::default(),
            position_decay: None,
            recency_days: None,
            click_decay: None,
            blend_only: true,
            session_sample: None,
            session_neighbours: None,
        };
        let v = parse_weights("sequence=0.25, popular=0,decay=2", base).unwrap();
        assert_eq!(v.weights.sequence, 0.25);
        assert_eq!(v.weights.popular, 0.0);
        assert_eq!(v.weights.session_knn, SourceWeights::default().session_knn);
        assert_eq!(v.position_decay, Some(2.0));
        assert_eq!(parse_weights("decay=0", v).unwrap().position_decay, None);
        assert!(parse_weights("nope=1", base).is_err());
        assert!(parse_weights("sequence=-1", base).is_err());
        assert!(parse_weights("sequence", base).is_err());
    }
}
