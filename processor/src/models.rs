//! Site models, refreshed in the background every `processor.models_refresh_secs`:
//!
//! * RFM quintile cut points and value percentiles, read at fixed ranks of the site's customer
//!   indexes (a handful of `ZRANGE`s, whatever the number of customers), and the RFM grid;
//! * the BG/NBD and Gamma-Gamma fit on every customer's purchase days, once the site has
//!   `processor.min_customers_for_fit` customers;
//! * a sweep that re-judges every customer at the current time, so idle customers move to lapsing and
//!   lapsed (and time-dependent segments follow) without waiting for their next event.
//!
//! The fold applies the stored models per member on each event; the profile API applies them at read.

use crate::fold::{rejudge, SiteCtx};
use crate::worker::{doc_update, Processor};
use chrono::Utc;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tailor_core::clv::{BgNbd, Customer, GammaGamma};
use tailor_core::models::{ClvModel, RfmCuts};
use tailor_core::ops::{Applied, Update, WriteOp};
use tailor_core::state::day_of;
use tailor_core::{SiteId, Subject};
use tailor_infra::store::{Read, Store, StoreError, Value};
use tailor_infra::Shutdown;

/// Customers read per round trip.
const CHUNK: usize = 1000;
/// Most customers a fit or sweep reads.
pub const MAX_CUSTOMERS: usize = 5_000_000;
/// Most purchase days read per customer.
const MAX_DAYS: usize = 100_000;

/// The site's customers (from its customer index).
pub async fn customer_subjects(
    store: &dyn Store,
    keys: &tailor_core::keys::KeySpace,
    site: &SiteId,
) -> Result<Vec<Subject>, StoreError> {
    Ok(store
        .read(&[Read::Top(keys.customers(site), MAX_CUSTOMERS)])
        .await?
        .pop()
        .map(Value::into_top)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(s, _)| Subject::parse(&s).ok())
        .collect())
}

/// Every customer's purchase history summarised at `end_day`, and the number of purchase days read.
pub async fn load_customers(
    store: &dyn Store,
    keys: &tailor_core::keys::KeySpace,
    site: &SiteId,
    end_day: i64,
) -> Result<(Vec<Customer>, usize), StoreError> {
    let subjects = customer_subjects(store, keys, site).await?;
    summarise(store, keys, site, &subjects, end_day).await
}

/// The purchase histories of `subjects` summarised at `end_day`, and the purchase days read.
async fn summarise(
    store: &dyn Store,
    keys: &tailor_core::keys::KeySpace,
    site: &SiteId,
    subjects: &[Subject],
    end_day: i64,
) -> Result<(Vec<Customer>, usize), StoreError> {
    let mut summaries = Vec::with_capacity(subjects.len());
    let mut purchase_days = 0;
    for chunk in subjects.chunks(CHUNK) {
        let reads: Vec<Read> = chunk
            .iter()
            .map(|s| Read::Top(keys.purchase_days(site, s), MAX_DAYS))
            .collect();
        for v in store.read(&reads).await? {
            let days: Vec<(i64, f64)> = v
                .into_top()
                .into_iter()
                .filter_map(|(d, spend)| Some((d.parse().ok()?, spend)))
                .collect();
            purchase_days += days.len();
            summaries.extend(Customer::from_days(&days, end_day));
        }
    }
    Ok((summaries, purchase_days))
}

/// Items read from each hourly or daily popularity bucket for trending.
const TREND_READ: usize = 1000;
/// Trending items kept.
const TREND_KEEP: usize = 200;
/// Events a day added to every item's long-run rate, so one lucky view does not trend.
const TREND_PRIOR_PER_DAY: f64 = 1.0;
/// Fewest interactions in the window for an item to trend.
const TREND_MIN_RECENT: f64 = 3.0;

/// What one refresh did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Refreshed {
    pub customers: u64,
    pub fitted: bool,
    pub swept: usize,
    pub moved: usize,
}

impl Processor {
    /// Values at the given ranks of a sorted set, ascending.
    async fn at_ranks(&self, key: String, ranks: &[u64]) -> Result<Vec<f64>, StoreError> {
        let reads: Vec<Read> = ranks
            .iter()
            .map(|r| Read::Range(key.clone(), *r as isize, *r as isize))
            .collect();
        Ok(self
            .store
            .read(&reads)
            .await?
            .into_iter()
            .filter_map(|v| v.into_top().first().map(|(_, s)| *s))
            .collect())
    }

    /// Ranks the site's trending items at `now_ms` from the hourly and daily popularity buckets
    /// (`tailor_core::trending`) and replaces `NS:{site}:trending`; returns how many trend.
    pub async fn refresh_trending(&self, site: &SiteId, now_ms: i64) -> Result<usize, StoreError> {
        let k = &self.keys;
        let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let hours = self.config.trending_window_hours;
        let days = self.config.trending_baseline_days;
        let mut reads: Vec<Read> = (0..hours)
            .map(|h| {
                let t = now - chrono::Duration::hours(i64::from(h));
                Read::Top(
                    k.popular_hour(site, &t.format("%Y%m%d%H").to_string()),
                    TREND_READ,
                )
            })
            .collect();
        reads.extend((1..=days).map(|d| {
            let t = now - chrono::Duration::days(i64::from(d));
            Read::Top(
                k.popular_day(site, &t.format("%Y%m%d").to_string()),
                TREND_READ,
            )
        }));
        let values = self.store.read(&reads).await?;
        let (mut recent, mut baseline) = (HashMap::new(), HashMap::new());
        for (i, v) in values.into_iter().enumerate() {
            let into = if i < hours as usize {
                &mut recent
            } else {
                &mut baseline
            };
            for (item, n) in v.into_top() {
                *into.entry(item).or_insert(0.0) += n;
            }
        }
        for n in baseline.values_mut() {
            *n /= f64::from(days);
        }
        let ranked = tailor_core::trending::trending(
            &recent,
            &baseline,
            f64::from(hours) / 24.0,
            TREND_PRIOR_PER_DAY,
            TREND_MIN_RECENT,
        );
        let key = k.trending(site);
        let mut ops = vec![WriteOp::Delete { key: key.clone() }];
        ops.extend(
            ranked
                .iter()
                .take(TREND_KEEP)
                .map(|(item, score)| WriteOp::ZSet {
                    key: key.clone(),
                    member: item.clone(),
                    score: *score,
                }),
        );
        self.store
            .apply(&[Update {
                ops,
                ..Default::default()
            }])
            .await?;
        Ok(ranked.len().min(TREND_KEEP))
    }

    /// Recomputes a site's models and stores them; then sweeps its customers.
    pub async fn refresh_site(&self, site: &SiteId, now_ms: i64) -> Result<Refreshed, StoreError> {
        self.refresh_trending(site, now_ms).await?;
        let k = &self.keys;
        let n = self
            .store
            .read(&[Read::ZCard(k.customers(site))])
            .await?
            .pop()
            .map(Value::into_count)
            .unwrap_or(0);
        let mut out = Refreshed {
            customers: n,
            ..Default::default()
        };
        if n == 0 {
            return Ok(out);
        }
        let q = RfmCuts::cut_ranks(n, 5);
        let cuts = RfmCuts {
            recency: self.at_ranks(k.recency_index(site), &q).await?,
            frequency: self.at_ranks(k.frequency_index(site), &q).await?,
            monetary: self.at_ranks(k.customers(site), &q).await?,
            value_percentiles: self
                .at_ranks(k.customers(site), &RfmCuts::cut_ranks(n, 100))
                .await?,
            customers: n,
            refreshed_ms: now_ms,
        };
        let grid = self.rfm_grid(site, &cuts).await?;
        let mut ops = vec![
            WriteOp::HashSet {
                key: k.models(site),
                field: "rfm".into(),
                value: serde_json::to_string(&cuts).expect("serialises"),
            },
            WriteOp::HashSet {
                key: k.models(site),
                field: "grid".into(),
                value: serde_json::to_string(&grid).expect("serialises"),
            },
        ];
        // Read once, for the fit and the sweep.
        let subjects = customer_subjects(self.store.as_ref(), k, site).await?;
        if n >= u64::from(self.config.min_customers_for_fit) {
            let (customers, _) =
                summarise(self.store.as_ref(), k, site, &subjects, day_of(now_ms)).await?;
            if let Some(bg) = BgNbd::fit(&customers) {
                let model = ClvModel {
                    bg_nbd: bg,
                    gamma_gamma: GammaGamma::fit(&customers),
                    customers: customers.len() as u64,
                    fitted_ms: now_ms,
                };
                ops.push(WriteOp::HashSet {
                    key: k.models(site),
                    field: "clv".into(),
                    value: serde_json::to_string(&model).expect("serialises"),
                });
                out.fitted = true;
            }
        }
        self.store
            .apply(&[Update {
                ops,
                ..Default::default()
            }])
            .await?;
        let (swept, moved) = self.sweep(site, &subjects, now_ms).await?;
        out.swept = swept;
        out.moved = moved;
        Ok(out)
    }

    /// Customers per (R, F) score: the RFM grid of the site analytics.
    async fn rfm_grid(
        &self,
        site: &SiteId,
        cuts: &RfmCuts,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let k = &self.keys;
        let mut v = self
            .store
            .read(&[
                Read::Range(k.recency_index(site), 0, -1),
                Read::Range(k.frequency_index(site), 0, -1),
            ])
            .await?
            .into_iter();
        let recency: std::collections::HashMap<String, f64> = v
            .next()
            .map(Value::into_top)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut grid = BTreeMap::new();
        for (subject, orders) in v.next().map(Value::into_top).unwrap_or_default() {
            let last = recency.get(&subject).copied().unwrap_or(0.0);
            let score = cuts.score(last as i64, orders as u64, 0.0);
            *grid.entry(format!("{}{}", score.r, score.f)).or_default() += 1;
        }
        Ok(grid)
    }

    /// Re-judges every customer at `now_ms`; returns (customers read, documents changed).
    async fn sweep(
        &self,
        site: &SiteId,
        customers: &[Subject],
        now_ms: i64,
    ) -> Result<(usize, usize), StoreError> {
        let mut ctx = self.load_sites(std::slice::from_ref(site)).await?;
        let ctx: SiteCtx = ctx.remove(site).unwrap_or_default();
        let folder = self.folder();
        let day = chrono::DateTime::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .format("%Y-%m-%d");
        let (mut swept, mut moved) = (0, 0);
        for chunk in customers.chunks(CHUNK) {
            let mut loaded = crate::fold::Loaded::default();
            let wanted = chunk
                .iter()
                .map(|s| (self.keys.state(site, s), site.clone(), s.clone()))
                .collect();
            self.load_docs(&mut loaded, wanted).await?;
            let mut updates = Vec::new();
            let mut site_ops: Vec<Vec<WriteOp>> = Vec::new();
            let mut changes = Vec::new();
            for doc in loaded.docs.values_mut() {
                swept += 1;
                if doc.rev.is_none() {
                    continue;
                }
                let before = (doc.state.stage.clone(), doc.state.segments.clone());
                let (ops, ch) = rejudge(
                    &folder,
                    doc,
                    &ctx,
                    now_ms,
                    format!("sweep-{day}-{}", doc.subject),
                );
                if (doc.state.stage.clone(), doc.state.segments.clone()) != before {
                    doc.extra.clear();
                    updates.push(doc_update(&self.keys, doc));
                    site_ops.push(ops);
                    changes.extend(ch);
                }
            }
            if updates.is_empty() {
                continue;
            }
            if let Some(p) = &self.changes {
                for c in &changes {
                    let payload = serde_json::to_vec(c).expect("a change serialises");
                    p.send(&format!("{}/{}", c.site_id, c.subject), payload)
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    metrics::counter!("tailor_processor_changes_total", "kind" => c.kind.name())
                        .increment(1);
                }
            }
            // Documents first here: a guard conflict (the member was just updated by an event, which
            // judged them itself) skips that member's site ops too.
            let outcomes = self.store.apply(&updates).await?;
            let ops: Vec<WriteOp> = outcomes
                .iter()
                .zip(site_ops)
                .filter(|(o, _)| **o == Applied::Applied)
                .flat_map(|(_, ops)| ops)
                .collect();
            moved += outcomes.iter().filter(|o| **o == Applied::Applied).count();
            self.store
                .apply(&[Update {
                    ops,
                    ..Default::default()
                }])
                .await?;
        }
        Ok((swept, moved))
    }
}

/// Refreshes every site's models until shutdown.
pub async fn run_refresh(processor: Processor, sites: Vec<SiteId>, shutdown: Shutdown) {
    let every = Duration::from_secs(processor.config.models_refresh_secs);
    loop {
        for site in &sites {
            let started = std::time::Instant::now();
            match processor
                .refresh_site(site, Utc::now().timestamp_millis())
                .await
            {
                Ok(r) => {
                    metrics::histogram!("tailor_processor_models_refresh_seconds")
                        .record(started.elapsed().as_secs_f64());
                    tracing::debug!(%site, customers = r.customers, fitted = r.fitted, swept = r.swept,
                        moved = r.moved, "site models refreshed");
                }
                Err(e) => {
                    tracing::warn!(%site, error = %e, "site model refresh failed; will retry")
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
