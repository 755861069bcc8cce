//! Fitting the learned re-ranking stage (`tailor_recommender::rank::rerank`) on a shop's own
//! sessions: `tailor ranker fit`, and `tailor evaluate` before it scores the blend.
//!
//! The events are split as the evaluation splits them (the sessions ending in the last `days` days
//! are held out); the shared models are built from the rest by the real processor code; every
//! prefix of every held-out session is asked of the real recommender (the blend alone, the session
//! as the request gives it), and each answer's first `recommender.rerank_candidates` items become a
//! query whose relevant row is the next click. Queries whose next click is not among them teach
//! nothing and are skipped. The model is fitted for MRR@20 (LambdaMART, `rank::boost`), so the
//! features are computed by the very function the live recommender calls.

use crate::evaluate::{self, Case};
use anyhow::{bail, Context as _};
use std::path::PathBuf;
use std::sync::Arc;
use tailor_core::config::Config;
use tailor_core::{Event, SiteId};
use tailor_recommender::engine::Context;
use tailor_recommender::learned::{popularity_of, popularity_read};
use tailor_recommender::rank::boost::{self, Booster, Params, Queries};
use tailor_recommender::rank::rerank;
use tailor_recommender::Recommender;

/// `tailor ranker fit`'s options.
#[derive(Debug, clap::Args)]
pub struct Fit {
    /// The shop's events (JSON lines in the event schema, `.gz` allowed), oldest to newest.
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,
    /// Fit on the sessions ending in the last N days of the file, with the models built from the
    /// sessions before.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub days: u32,
    #[command(flatten)]
    pub params: FitParams,
    /// Where to write the model (JSON); load it with `PUT /admin/ranker?site=S`.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// How the model is fitted (`rank::boost::Params`; the defaults were chosen on a split of the
/// clickstream's training file, docs/quality.md).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct FitParams {
    /// Trees of the re-ranking model.
    #[arg(long, default_value_t = 300)]
    pub trees: usize,
    /// Leaves per tree.
    #[arg(long, default_value_t = 31)]
    pub leaves: usize,
    /// Each tree's step.
    #[arg(long, default_value_t = 0.02)]
    pub learning_rate: f64,
    /// Candidates a leaf holds at least.
    #[arg(long, default_value_t = 100)]
    pub min_leaf: usize,
    /// Fit on at most this many held-out predictions (an even spread of them): the fit holds each
    /// one's candidates' features in memory, about 6 KB a prediction.
    #[arg(long, default_value_t = 200_000)]
    pub max_cases: usize,
}

impl FitParams {
    pub fn params(self) -> anyhow::Result<Params> {
        if self.trees == 0 || self.leaves < 2 || self.min_leaf == 0 || self.max_cases == 0 {
            bail!("--trees, --min-leaf and --max-cases must be at least 1, --leaves at least 2");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            bail!(
                "--learning-rate must be in (0, 1], got {}",
                self.learning_rate
            );
        }
        Ok(Params {
            trees: self.trees,
            leaves: self.leaves,
            learning_rate: self.learning_rate,
            min_leaf: self.min_leaf,
            ..Params::default()
        })
    }
}

/// What a fit saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub model: Booster,
    /// Held-out predictions asked, and those whose next click was among the candidates.
    pub cases: usize,
    pub queries: usize,
}

/// At most `max` of `cases`, evenly spread over them (every k-th), so a big shop's fit stays
/// within memory and keeps every part of the period.
pub fn spread(cases: Vec<Case>, max: usize) -> Vec<Case> {
    let step = cases.len().div_ceil(max.max(1)).max(1);
    cases.into_iter().step_by(step).collect()
}

/// The request a case asks: the prefix as the session, its last item as the page's.
pub fn context(case: &Case, session: Vec<String>, limit: usize) -> Context {
    Context {
        item: case.prefix.last().cloned(),
        category: case.category.clone(),
        session: Some(session),
        limit,
        now_ms: case.at_ms(),
        ..Default::default()
    }
}

/// Fits the re-ranking model on `events` (see the module docs).
pub async fn fit(
    config: &Arc<Config>,
    events: Vec<Event>,
    days: u32,
    fit: FitParams,
) -> anyhow::Result<Fitted> {
    let params = fit.params()?;
    let Some(site) = events.first().map(|e| e.site_id.clone()) else {
        bail!("no events to fit on");
    };
    let (before, held_out) = evaluate::split(events, days);
    let cases = spread(evaluate::cases(&held_out), fit.max_cases);
    if cases.is_empty() {
        bail!(
            "no session of two or more item views ends in the last {days} days: nothing to fit on"
        );
    }
    let (store, keys) = evaluate::train(config, &before).await?;
    let top = config.recommender.rerank_candidates;
    let popularity = popularity_of(
        store
            .read(&[popularity_read(
                &keys,
                &site,
                config.recommender.rerank_popular_items,
            )])
            .await?
            .pop(),
    );
    let recommender = Recommender::new(store, keys, config.clone());
    let (mut x, mut starts, mut relevant) = (Vec::new(), vec![0], Vec::new());
    let bar = evaluate::progress(cases.len() as u64, "fitting cases");
    for case in &cases {
        let ctx = context(case, case.prefix.clone(), top);
        let g = recommender
            .gather(&site, &ctx)
            .await
            .map_err(|e| anyhow::anyhow!("ranking a fitting case: {e:?}"))?;
        let c = g.candidates(top);
        bar.inc(1);
        let head = &c.ranked[..c.ranked.len().min(top)];
        if !head.iter().any(|b| b.item_id == case.next) {
            continue;
        }
        let inputs = rerank::Inputs {
            generated: &c.generated,
            session: &g.session,
            popularity: &popularity,
        };
        x.extend(rerank::features(head, &inputs, top));
        relevant.extend(head.iter().map(|b| b.item_id == case.next));
        starts.push(relevant.len());
    }
    bar.finish_and_clear();
    let queries = starts.len() - 1;
    if queries == 0 {
        bail!("no held-out next click is among the blend's candidates: nothing to fit on");
    }
    let bar = evaluate::progress(params.trees as u64, "trees");
    let data = Queries {
        x: &x,
        starts: &starts,
        relevant: &relevant,
    };
    let model = boost::fit(&rerank::names(), &data, params, |t| {
        bar.set_position(t as u64)
    });
    bar.finish_and_clear();
    Ok(Fitted {
        model,
        cases: cases.len(),
        queries,
    })
}

/// `tailor ranker fit`.
pub async fn run(config: Config, args: Fit) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let events = evaluate::read_events(&args.events)?;
    let sites: std::collections::BTreeSet<&SiteId> = events.iter().map(|e| &e.site_id).collect();
    if sites.len() > 1 {
        bail!(
            "{} holds events of {} sites: fit one site's events at a time",
            args.events.display(),
            sites.len()
        );
    }
    let fitted = fit(&config, events, args.days, args.params).await?;
    std::fs::write(&args.out, serde_json::to_string(&fitted.model)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "fitted {} trees on {} of {} held-out predictions (the rest had their next click outside the blend's first {}); wrote {}",
        fitted.model.trees.len(),
        fitted.queries,
        fitted.cases,
        config.recommender.rerank_candidates,
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_fitting_set_is_thinned_evenly() {
        let case = |n: usize| Case {
            session: format!("s{n}"),
            prefix: vec!["a".into()],
            prefix_ms: vec![0],
            category: None,
            next: "b".into(),
        };
        let ids = |c: Vec<Case>| c.into_iter().map(|c| c.session).collect::<Vec<_>>();
        assert_eq!(
            ids(spread((0..10).map(case).collect(), 4)),
            ["s0", "s3", "s6", "s9"]
        );
        assert_eq!(spread((0..10).map(case).collect(), 10).len(), 10);
        assert_eq!(spread((0..3).map(case).collect(), 100).len(), 3);
        assert!(spread(Vec::new(), 5).is_empty());
    }
}
