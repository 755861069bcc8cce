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
//!
//! The sweep keeps the event path's guarantees:
//! - **A document that does not parse is left alone.** Rewriting it (as a fresh prospect) would
//!   destroy the only copy; the event path sets it aside (`:state:quarantine`) when the member next
//!   has an event. The sweep skips it and counts it.
//! - **The document decides, the sets follow, and drift heals.** A document and the stage and segment
//!   sets it belongs to live in different hash slots, so no one write covers both: a crash (or a
//!   racing event) between the guarded document write and the set writes can leave them out of step.
//!   Each sweep therefore reads, for every customer, which of the site's stage and segment sets it is
//!   in (after loading its document), and makes the sets agree with the document: sets written after
//!   a guarded write of the document (a re-judged one, or the same one rewritten as a fence, so a
//!   document changed meanwhile by an event is never "repaired" from a stale copy). Set writes are idempotent, so a repeated sweep, or two
//!   processors sweeping at once, converge on the same sets; whatever a crash leaves out of step is
//!   repaired by the next sweep (`tailor_processor_sweep_repaired_total`).
//! - **One processor per site.** Each process refreshes and sweeps only the sites whose lease it holds
//!   ([`Processor::take_refresh_lease`]), so a group of processors does the work once.

use crate::fold::{rejudge, SiteCtx};
use crate::worker::{doc_update, Processor};
use chrono::Utc;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tailor_core::clv::{BgNbd, Customer, GammaGamma};
use tailor_core::models::{ClvModel, RfmCuts, STAGES};
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

    /// Which of `sets` each document's subject is in, read now (after the documents were loaded).
    async fn memberships<'a>(
        &self,
        docs: impl Iterator<Item = &'a crate::fold::Doc>,
        sets: &[String],
    ) -> Result<HashMap<String, BTreeSet<String>>, StoreError> {
        let pairs: Vec<(String, &String)> = docs
            .flat_map(|d| sets.iter().map(move |k| (d.subject.to_string(), k)))
            .collect();
        let reads: Vec<Read> = pairs
            .iter()
            .map(|(m, k)| Read::IsMember((*k).clone(), m.clone()))
            .collect();
        let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
        for ((m, k), v) in pairs.into_iter().zip(self.store.read(&reads).await?) {
            if v.into_count() == 1 {
                out.entry(m).or_default().insert(k.clone());
            }
        }
        Ok(out)
    }

    /// The set writes that make the sets agree with the document: in every set it belongs to, in
    /// no other of the site's stage and segment sets.
    fn membership_ops(
        &self,
        doc: &crate::fold::Doc,
        sets: &[String],
        actual: Option<&BTreeSet<String>>,
    ) -> Vec<WriteOp> {
        let member = doc.subject.to_string();
        let expected: BTreeSet<String> = doc
            .state
            .stage
            .iter()
            .map(|r| self.keys.stage(&doc.site, &r.stage))
            .chain(
                doc.state
                    .segments
                    .iter()
                    .map(|n| self.keys.segment(&doc.site, n)),
            )
            .filter(|k| sets.contains(k))
            .collect();
        let empty = BTreeSet::new();
        let actual = actual.unwrap_or(&empty);
        let add = expected.difference(actual).map(|key| WriteOp::SetAdd {
            key: key.clone(),
            member: member.clone(),
        });
        let remove = actual.difference(&expected).map(|key| WriteOp::SetRemove {
            key: key.clone(),
            member: member.clone(),
        });
        add.chain(remove).collect()
    }

    /// Re-judges every customer at `now_ms` and makes the sets agree with the documents (see the
    /// module docs); returns (customers read, documents changed).
    async fn sweep(
        &self,
        site: &SiteId,
        customers: &[Subject],
        now_ms: i64,
    ) -> Result<(usize, usize), StoreError> {
        let mut ctx = self.load_sites(std::slice::from_ref(site)).await?;
        let ctx: SiteCtx = ctx.remove(site).unwrap_or_default();
        // The site's stage and segment sets, whose membership follows the documents.
        let sets: Vec<String> = STAGES
            .iter()
            .map(|st| self.keys.stage(site, st))
            .chain(ctx.segments.iter().map(|(n, _)| self.keys.segment(site, n)))
            .collect();
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
            let members = self.memberships(loaded.docs.values(), &sets).await?;
            let mut updates = Vec::new();
            // Per update: the set writes that follow it, and whether it moved the customer.
            let mut follow: Vec<(Vec<WriteOp>, bool)> = Vec::new();
            let mut changes = Vec::new();
            for doc in loaded.docs.values_mut() {
                swept += 1;
                if doc.rev.is_none() {
                    continue;
                }
                if !doc.extra.is_empty() {
                    // Freshly loaded, `extra` holds only the quarantine note of a document that
                    // does not parse: leave the document to the event path (module docs).
                    metrics::counter!("tailor_processor_sweep_skipped_total", "reason" => "unparsable")
                        .increment(1);
                    continue;
                }
                let before = (doc.state.stage.clone(), doc.state.segments.clone());
                let (mut ops, ch) = rejudge(
                    &folder,
                    doc,
                    &ctx,
                    now_ms,
                    format!("sweep-{day}-{}", doc.subject),
                );
                let changed = (doc.state.stage.clone(), doc.state.segments.clone()) != before;
                let repair = self.membership_ops(doc, &sets, members.get(&doc.subject.to_string()));
                if changed {
                    // The judgement's own moves, then whatever else was out of step.
                    ops.extend(repair);
                    updates.push(doc_update(&self.keys, doc, self.config.compact_storage));
                    follow.push((ops, true));
                    changes.extend(ch);
                } else if !repair.is_empty() {
                    // Out of step, nothing to judge: rewrite the same document as a fence, so the
                    // repair lands only if no event changed the document since it was read.
                    updates.push(doc_update(&self.keys, doc, self.config.compact_storage));
                    follow.push((repair, false));
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
            // Documents first: a guard conflict (the member was just updated by an event, which
            // judged them itself) skips that member's set writes too.
            let outcomes = self.store.apply(&updates).await?;
            let mut ops = Vec::new();
            for (o, (set_ops, judged)) in outcomes.iter().zip(follow) {
                if *o != Applied::Applied {
                    continue;
                }
                if judged {
                    moved += 1;
                } else {
                    metrics::counter!("tailor_processor_sweep_repaired_total").increment(1);
                }
                ops.extend(set_ops);
            }
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

impl Processor {
    /// Takes, or renews, `owner`'s lease on refreshing `site` until `now_ms + ttl_ms`: a
    /// compare-and-set under the lease's own `until` (a guarded update), so of two processors
    /// trying at once one wins. False while another owner's lease runs.
    pub async fn take_refresh_lease(
        &self,
        site: &SiteId,
        owner: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = self.keys.refresh_lease(site);
        let lease = self
            .store
            .read(&[Read::Hash(key.clone())])
            .await?
            .pop()
            .map(Value::into_hash)
            .unwrap_or_default();
        let until = lease.get("until").cloned();
        let held_by_other = lease.get("owner").is_some_and(|o| o != owner)
            && until
                .as_deref()
                .and_then(|u| u.parse::<i64>().ok())
                .is_some_and(|u| u > now_ms);
        if held_by_other {
            return Ok(false);
        }
        let set = |field: &str, value: String| WriteOp::HashSet {
            key: key.clone(),
            field: field.into(),
            value,
        };
        let outcome = self
            .store
            .apply(&[Update {
                guard: Some(tailor_core::ops::Guard {
                    key: key.clone(),
                    field: "until".into(),
                    expected: until,
                }),
                ops: vec![
                    set("owner", owner.to_string()),
                    set("until", (now_ms + ttl_ms).to_string()),
                ],
                ..Default::default()
            }])
            .await?;
        Ok(outcome.first() == Some(&Applied::Applied))
    }
}

/// Refreshes the models of every site whose lease this process holds, until shutdown.
pub async fn run_refresh(processor: Processor, sites: Vec<SiteId>, shutdown: Shutdown) {
    let every = Duration::from_secs(processor.config.models_refresh_secs);
    // Two intervals: a live holder renews well before it lapses; a dead one's lapses soon.
    let ttl_ms = 2 * every.as_millis() as i64;
    let owner = uuid::Uuid::new_v4().to_string();
    loop {
        for site in &sites {
            let now_ms = Utc::now().timestamp_millis();
            match processor
                .take_refresh_lease(site, &owner, now_ms, ttl_ms)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(%site, "another processor refreshes this site");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%site, error = %e, "cannot take the refresh lease; will retry");
                    continue;
                }
            }
            let started = std::time::Instant::now();
            match processor.refresh_site(site, now_ms).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tailor_core::config::ProcessorConfig;
    use tailor_core::keys::KeySpace;
    use tailor_core::state::SubjectState;
    use tailor_infra::store::{memory::MemoryStore, redis::RedisStore};
    use tailor_infra::testkit;

    /// A processor on `store`, in a namespace of its own.
    fn processor(store: Arc<dyn Store>) -> Processor {
        Processor {
            store,
            keys: KeySpace::new(testkit::unique("ns")),
            config: ProcessorConfig::default(),
            segments: vec![],
            group: "g".into(),
            changes: None,
            offer_secret: tailor_core::config::DEV_OFFER_SECRET.into(),
        }
    }

    async fn members(p: &Processor, key: String) -> Vec<String> {
        let mut m = p.store.read(&[Read::Members(key)]).await.unwrap()[0]
            .clone()
            .into_list();
        m.sort();
        m
    }

    async fn raw_doc(p: &Processor, site: &SiteId, s: &Subject) -> Option<String> {
        p.store
            .read(&[Read::Hash(p.keys.state(site, s))])
            .await
            .unwrap()[0]
            .clone()
            .into_hash()
            .remove("doc")
    }

    /// On one backend: a crash left the sets out of step with a document, and another customer's
    /// document no longer parses; a sweep repairs the first and leaves the second alone.
    async fn sweep_keeps_the_event_paths_guarantees(store: Arc<dyn Store>) {
        let p = processor(store);
        let site = SiteId::parse("demo".to_string()).unwrap();
        let ok = Subject::parse("m:ok").unwrap();
        let broken = Subject::parse("m:broken").unwrap();
        let state = SubjectState {
            member_id: Some("ok".into()),
            ..Default::default()
        };
        let mut ops = Vec::new();
        for (s, doc) in [
            (&ok, state.to_json()),
            (&broken, "{\"not\": a document".into()),
        ] {
            ops.push(WriteOp::HashSet {
                key: p.keys.state(&site, s),
                field: "doc".into(),
                value: doc,
            });
            ops.push(WriteOp::HashSet {
                key: p.keys.state(&site, s),
                field: "rev".into(),
                value: "1".into(),
            });
            ops.push(WriteOp::ZSet {
                key: p.keys.customers(&site),
                member: s.to_string(),
                score: 1.0,
            });
        }
        p.store
            .apply(&[Update {
                ops,
                ..Default::default()
            }])
            .await
            .unwrap();
        let now = 100 * tailor_core::state::DAY_MS;
        p.refresh_site(&site, now).await.unwrap();
        let prospects = p.keys.stage(&site, "prospect");
        assert_eq!(members(&p, prospects.clone()).await, ["m:ok"]);

        // The sets fall out of step (a crash between a document and its sets): the next sweep,
        // with nothing to judge, puts them back.
        p.store
            .apply(&[Update {
                ops: vec![
                    WriteOp::SetRemove {
                        key: prospects.clone(),
                        member: "m:ok".into(),
                    },
                    WriteOp::SetAdd {
                        key: p.keys.stage(&site, "lapsed"),
                        member: "m:ok".into(),
                    },
                ],
                ..Default::default()
            }])
            .await
            .unwrap();
        p.refresh_site(&site, now + 1).await.unwrap();
        assert_eq!(members(&p, prospects).await, ["m:ok"]);
        assert!(members(&p, p.keys.stage(&site, "lapsed")).await.is_empty());

        // The unparsable document was never rewritten (as a fresh prospect) by either sweep.
        assert_eq!(
            raw_doc(&p, &site, &broken).await.as_deref(),
            Some("{\"not\": a document")
        );
    }

    async fn one_processor_holds_a_sites_lease(store: Arc<dyn Store>) {
        let p = processor(store);
        let site = SiteId::parse("demo".to_string()).unwrap();
        let ttl = 1000;
        assert!(p.take_refresh_lease(&site, "a", 0, ttl).await.unwrap());
        assert!(
            !p.take_refresh_lease(&site, "b", 10, ttl).await.unwrap(),
            "a holds it"
        );
        assert!(
            p.take_refresh_lease(&site, "a", 500, ttl).await.unwrap(),
            "a renews"
        );
        assert!(
            !p.take_refresh_lease(&site, "b", 1400, ttl).await.unwrap(),
            "renewed to 1500"
        );
        assert!(
            p.take_refresh_lease(&site, "b", 1501, ttl).await.unwrap(),
            "a's lapsed"
        );
        assert!(
            !p.take_refresh_lease(&site, "a", 1600, ttl).await.unwrap(),
            "now b holds it"
        );
    }

    #[tokio::test]
    async fn a_sites_refresh_lease_has_one_holder_at_a_time() {
        one_processor_holds_a_sites_lease(Arc::new(MemoryStore::new())).await;
        let redis = RedisStore::connect(&testkit::redis_url()).await.unwrap();
        one_processor_holds_a_sites_lease(Arc::new(redis)).await;
    }

    #[tokio::test]
    async fn the_sweep_repairs_sets_left_out_of_step_and_never_rewrites_an_unparsable_document() {
        sweep_keeps_the_event_paths_guarantees(Arc::new(MemoryStore::new())).await;
        let redis = RedisStore::connect(&testkit::redis_url()).await.unwrap();
        sweep_keeps_the_event_paths_guarantees(Arc::new(redis)).await;
    }
}
