//! One recommendation request, end to end: read what the ranking needs, run the generators, blend.
//!
//! Store round trips, each one pipelined:
//! 1. the member's recommendation summary (recent and bought items, the session in progress, top
//!    interests), following an anonymous id's stitch; skipped for a visitor with no id;
//! 2. every list the enabled generators need: per seed its co-visits, followers and co-purchases, per
//!    session item its recent sessions, the page category's and the interests' popular items,
//!    trending and popular;
//! 3. the items of the sampled neighbour sessions the session cache does not hold (only when
//!    session-based neighbours are enabled and the visitor has a session in progress); a session
//!    last written in the form before `si` lists (`tailor_core::keys`) takes one more.
//!
//! The blend's best `recommender.rerank_candidates` are then re-ordered by the site's learned model
//! when it has one (`crate::rank::rerank`; no read: the model and the popularity it reads are in
//! memory). A source whose weight is 0 for the request's slot costs no read. A request that cannot finish
//! within `recommender.timeout_ms` is answered from the site's popular list kept in memory by the
//! background refresh (`crate::refresh`; strategy `fallback`) instead of failing.

use crate::api::{ApiError, Recommender};
use crate::lists::SharedList;
use crate::rank::blend::{self, Blended};
use crate::rank::item_to_item::{self, Seed};
use crate::rank::popular::{self, Interest};
use crate::rank::reminder;
use crate::rank::rerank;
use crate::rank::session_knn::{self, PastSession, Tuning};
use crate::rank::{Because, Generated, Source};
use crate::sessions::RecentSessions;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use tailor_core::catalog::CatalogItem;
use tailor_core::config::SourceWeights;
use tailor_core::keys::Facet;
use tailor_core::models::{Facts, SiteModels};
use tailor_core::rules::{self, RuleContext, Scored};
use tailor_core::segment;
use tailor_core::state::{RecoView, SubjectState, DAY_MS};
use tailor_core::stored::session_list;
use tailor_core::{SiteId, Subject};
use tailor_infra::store::Read;

/// Co-purchase seeds taken from the member's purchases.
const BOUGHT_SEEDS: usize = 5;

/// What a request knows about the page and the visitor.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub subject: Option<Subject>,
    pub slot: Option<String>,
    /// The item on the current page.
    pub item: Option<String>,
    /// The current page's category.
    pub category: Option<String>,
    /// Items in the cart.
    pub cart: Vec<String>,
    /// The session in progress as clicks, oldest first; `None` takes it from the member's summary.
    pub session: Option<Vec<String>>,
    pub limit: usize,
    /// The request's time (ms), for the session timeout (the offline evaluation passes the events'
    /// clock).
    pub now_ms: i64,
    /// Blend weights replacing the slot's (the offline evaluation's single-source rankers).
    pub weights: Option<SourceWeights>,
    /// Replaces the configured session-neighbour refinements (`recommender.session_position_decay`,
    /// `session_recency_decay_days`); the evaluation's plain V-SKNN sets `Some(Tuning::default())`.
    pub knn: Option<Tuning>,
    /// Replaces `recommender.session_sample` (the evaluation's faithful V-SKNN compares its
    /// definition's 500 sessions).
    pub session_sample: Option<usize>,
    /// Replaces `recommender.session_neighbours` (the faithful V-SKNN's k of 100).
    pub session_neighbours: Option<usize>,
    /// The blend alone, without the site's learned re-ranking (the offline evaluation's
    /// single-source rankers and the blend it compares the model with).
    pub blend_only: bool,
}

/// One recommended item with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub item_id: String,
    pub score: f64,
    /// The source of the largest share of the score (absent for an item the shop pinned there).
    pub source: Option<Source>,
    /// A short reason a person understands ("because you viewed Dome Tent 2P").
    pub reason: String,
    /// The item's catalog entry (title, url, image, price, ...) when the catalog has it, so an
    /// offer slot renders without another call.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub product: Option<CatalogItem>,
}

/// What the rules pass through for each candidate.
#[derive(Debug, Clone, Default)]
struct Why {
    source: Option<Source>,
    because: Because,
}

/// A ranked answer and how it was made.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// `blend`, `learned` when the site's model re-ordered the blend, or `fallback` when it was
    /// answered from cached popular items.
    pub strategy: &'static str,
    pub items: Vec<Recommendation>,
}

/// What a request's generators read (round trips 1-3), owned: the candidates borrow from it.
pub struct Gathered {
    pub view: RecoView,
    /// The session in progress, oldest click first.
    pub session: Vec<String>,
    /// The page category's, trending and popular lists, in the order they were wanted.
    lists: Vec<(Source, Because, SharedList)>,
    covis: Vec<Seed>,
    follow: Vec<Seed>,
    bought_with: Vec<Seed>,
    interests: Vec<Interest>,
    reminder: bool,
    /// The sampled neighbour sessions, how many of them vote, and the tuning.
    past: Option<(Vec<Arc<PastSession>>, usize, Tuning)>,
    /// The blend's weights for the request.
    weights: SourceWeights,
}

impl Gathered {
    /// Every enabled generator's candidates.
    pub fn generate(&self) -> Vec<Generated<'_>> {
        let mut generated: Vec<Generated<'_>> = self
            .lists
            .iter()
            .map(|(source, because, list)| Generated {
                source: *source,
                candidates: popular::from_list(list, because.cause()),
            })
            .collect();
        let seeded = [
            (Source::Covisitation, &self.covis),
            (Source::Sequence, &self.follow),
            (Source::Copurchase, &self.bought_with),
        ];
        generated.extend(seeded.map(|(source, seeds)| Generated {
            source,
            candidates: item_to_item::generate(seeds),
        }));
        generated.push(Generated {
            source: Source::Interest,
            candidates: popular::interests(&self.interests),
        });
        if self.reminder {
            generated.push(Generated {
                source: Source::Reminder,
                candidates: reminder::generate(&self.session),
            });
        }
        if let Some((past, k, tuning)) = &self.past {
            generated.push(Generated {
                source: Source::SessionKnn,
                candidates: session_knn::generate(&self.session, past, *k, *tuning),
            });
        }
        generated
    }

    /// The generators' candidates and the blend's first `head` items (`usize::MAX`: all of it).
    pub fn candidates(&self, head: usize) -> Candidates<'_> {
        let generated = self.generate();
        let best = blend::best(&generated, |s| weight_of(&self.weights, s), head);
        Candidates {
            generated,
            ranked: best.items,
            cut: best.cut,
            weights: self.weights,
        }
    }
}

/// A request's blended candidates with what they were made from (the learned stage's inputs).
pub struct Candidates<'a> {
    pub generated: Vec<Generated<'a>>,
    /// The blend, best first: all of it, or its head when `cut`.
    pub ranked: Vec<Blended>,
    /// `ranked` holds only the blend's first items ([`head_size`]): enough for an answer, unless
    /// the rules or diversity drop most of them, when [`Candidates::blend_all`] gives the rest.
    pub cut: bool,
    weights: SourceWeights,
}

impl Candidates<'_> {
    /// The whole blend, best first (`ranked` when it was not cut).
    pub fn blend_all(&self) -> Vec<Blended> {
        blend::blend(&self.generated, |s| weight_of(&self.weights, s))
    }
}

/// How many of the blend's best items a request sorts and hands on when the site's rules only
/// filter (`Rule::only_filters`): what the learned re-ranking reads, and room for the rules and
/// diversity to drop three items of four before the answer runs short (then the whole blend is
/// taken: the answer is the same either way).
pub fn head_size(limit: usize, rerank_candidates: usize) -> usize {
    rerank_candidates.max(4 * limit)
}

/// The reads of round trip 2, in order, with what each feeds.
enum Want {
    Seed(Source, usize),
    Copurchase(usize),
    /// An item's recent sessions.
    Sessions,
    Category(String),
    Interest(Because, f64),
    Trending,
    Popular,
}

impl Recommender {
    /// Ranks for a request (round trips 1-3, see the module docs), within `recommender.timeout_ms`.
    pub async fn recommend_in_time(
        &self,
        site: &SiteId,
        ctx: &Context,
    ) -> Result<Ranked, ApiError> {
        let budget = std::time::Duration::from_millis(self.config.recommender.timeout_ms);
        match tokio::time::timeout(budget, self.rank(site, ctx)).await {
            Ok(r) => r,
            Err(_) => {
                metrics::counter!("tailor_recommender_fallbacks_total", "reason" => "timeout")
                    .increment(1);
                Ok(self.fallback(site, ctx))
            }
        }
    }

    /// The cached popular items, minus the current item.
    fn fallback(&self, site: &SiteId, ctx: &Context) -> Ranked {
        let popular = self.cached_popular(site);
        let items = popular
            .iter()
            .filter(|(i, _)| Some(i) != ctx.item.as_ref())
            .take(ctx.limit)
            .map(|(i, s)| Recommendation {
                item_id: i.clone(),
                score: *s,
                source: Some(Source::Popular),
                reason: reason(Some(Source::Popular), &Because::Source, |_| None),
                product: None,
            })
            .collect();
        Ranked {
            strategy: "fallback",
            items,
        }
    }

    /// Ranks for a request with no deadline (the offline evaluation calls this directly).
    pub async fn rank(&self, site: &SiteId, ctx: &Context) -> Result<Ranked, ApiError> {
        let cfg = &self.config.recommender;
        let rules = self.rules.for_site(site);
        let g = self.gather(site, ctx).await?;
        let mut c = g.candidates(self.head(&rules, ctx));
        let learned = self.learned.site(site).filter(|_| !ctx.blend_only);
        let order = |ranked: Vec<Blended>, c: &Candidates| match &learned {
            Some(learned) => {
                let inputs = rerank::Inputs {
                    generated: &c.generated,
                    session: &g.session,
                    popularity: &learned.popularity,
                };
                rerank::rerank(&learned.forest, ranked, &inputs, cfg.rerank_candidates)
            }
            None => ranked,
        };
        // What the rules read, once: for the blend's head and, if it runs short, for all of it.
        let doc = self.rule_profile(site, ctx, &rules).await?;
        let finish = |ranked| self.finish(site, ctx, &g.view, &rules, doc.as_ref(), ranked);
        let mut items = finish(order(std::mem::take(&mut c.ranked), &c));
        if c.cut && items.len() < ctx.limit {
            // The rules or diversity dropped too much of the blend's head: the whole blend.
            metrics::counter!("tailor_recommender_blend_heads_short_total").increment(1);
            items = finish(order(c.blend_all(), &c));
        }
        let strategy = if learned.is_some() {
            "learned"
        } else {
            "blend"
        };
        Ok(Ranked { strategy, items })
    }

    /// How much of the blend a request sorts: its head when the site's rules only filter (the answer
    /// is then the first items that pass), all of it when a boost or pin may re-order or place.
    fn head(&self, rules: &[rules::Rule], ctx: &Context) -> usize {
        if rules.iter().all(|r| r.only_filters()) {
            head_size(ctx.limit, self.config.recommender.rerank_candidates)
        } else {
            usize::MAX
        }
    }

    /// Round trips 1-3: what the generators read ([`Gathered::candidates`] ranks it).
    pub async fn gather(&self, site: &SiteId, ctx: &Context) -> Result<Gathered, ApiError> {
        let cfg = &self.config.recommender;
        let (slot_weights, _, _) = cfg.for_slot(ctx.slot.as_deref());
        let w = ctx.weights.unwrap_or(slot_weights);
        let view = match &ctx.subject {
            Some(s) => self.reco_of(site, s).await?.unwrap_or_default(),
            None => RecoView::default(),
        };
        // The session in progress, oldest click first.
        let session: Vec<String> = match &ctx.session {
            Some(s) => s.clone(),
            None => {
                let live = view.session_end_ms.is_some_and(|end| {
                    ctx.now_ms - end <= i64::from(cfg.session_timeout_mins) * 60_000
                });
                if live {
                    view.session.iter().rev().cloned().collect()
                } else {
                    Vec::new()
                }
            }
        };
        // History newest first: the session, then the member's recent items.
        let mut history: Vec<String> = session.iter().rev().cloned().collect();
        history.extend(view.recent.iter().cloned());
        let seeds = item_to_item::seeds(ctx.item.as_deref(), &history, cfg.seed_items);

        let k = &self.keys;
        // Each list wanted, from memory when read a moment ago (`crate::lists`), else read.
        let cache_of = |what: &Want| match what {
            Want::Sessions => &*self.index,
            _ => &*self.lists,
        };
        let mut wants: Vec<Want> = Vec::new();
        let mut lists: Vec<Option<SharedList>> = Vec::new();
        let mut reads: Vec<Read> = Vec::new();
        let mut read_for: Vec<usize> = Vec::new();
        // The `n` best of the ranked list at `key`.
        let mut want = |(key, n): (String, usize), what: Want| {
            let hit = cache_of(&what).lookup(&key, n);
            if hit.is_none() {
                read_for.push(wants.len());
                reads.push(Read::Top(key, n));
            }
            lists.push(hit);
            wants.push(what);
        };
        let n = cfg.neighbours_per_seed;
        for (i, (item, _)) in seeds.iter().enumerate() {
            if w.covisitation > 0.0 {
                want(
                    (k.covisits(site, item), n),
                    Want::Seed(Source::Covisitation, i),
                );
            }
            if w.sequence > 0.0 {
                want(
                    (k.followers(site, item), n),
                    Want::Seed(Source::Sequence, i),
                );
            }
        }
        // Co-purchase seeds: the page's item, the cart, then what the member bought.
        let mut buy_seeds: Vec<(String, f64)> = Vec::new();
        if w.copurchase > 0.0 {
            let from = ctx
                .item
                .iter()
                .map(|i| (i, item_to_item::CONTEXT_WEIGHT))
                .chain(ctx.cart.iter().map(|i| (i, 1.0)))
                .chain(view.bought.iter().take(BOUGHT_SEEDS).map(|i| (i, 0.5)));
            for (item, weight) in from {
                if !buy_seeds.iter().any(|(s, _)| s == item) {
                    want(
                        (k.copurchases(site, item), n),
                        Want::Copurchase(buy_seeds.len()),
                    );
                    buy_seeds.push((item.clone(), weight));
                }
            }
        }
        // Each session item's recent sessions, from memory when read a moment ago.
        let sample = ctx.session_sample.unwrap_or(cfg.session_sample);
        let mut distinct_session: Vec<&String> = Vec::new();
        let mut per_item_sessions: Vec<RecentSessions> = Vec::new();
        if w.session_knn > 0.0 {
            for item in &session {
                if !distinct_session.contains(&item) {
                    distinct_session.push(item);
                    want((k.item_sessions(site, item), sample), Want::Sessions);
                }
            }
        }
        let p = cfg.popular_read;
        if w.category > 0.0 {
            if let Some(c) = &ctx.category {
                want(
                    (k.popular_in(site, Facet::Category, c), p),
                    Want::Category(c.clone()),
                );
            }
        }
        if w.interest > 0.0 {
            for (c, share) in &view.categories {
                want(
                    (k.popular_in(site, Facet::Category, c), p),
                    Want::Interest(Because::Category(c.clone()), *share),
                );
            }
            for (b, share) in &view.brands {
                want(
                    (k.popular_in(site, Facet::Brand, b), p),
                    Want::Interest(Because::Brand(b.clone()), *share),
                );
            }
        }
        if w.trending > 0.0 {
            want((k.trending(site), p), Want::Trending);
        }
        if w.popular > 0.0 {
            want((k.popular(site), p + ctx.limit), Want::Popular);
        }

        let values = if reads.is_empty() {
            Vec::new()
        } else {
            self.store.read(&reads).await?
        };
        for ((read, at), value) in reads.into_iter().zip(read_for).zip(values) {
            if let Read::Top(key, n) = read {
                let list: SharedList = value.into_top().into();
                cache_of(&wants[at]).store(key, n, list.clone());
                lists[at] = Some(list);
            }
        }
        let mut covis: Vec<Seed> = Vec::new();
        let mut follow: Vec<Seed> = Vec::new();
        let mut bought_with: Vec<Seed> = Vec::new();
        let mut interests: Vec<Interest> = Vec::new();
        let mut popular_lists: Vec<(Source, Because, SharedList)> = Vec::new();
        for (what, list) in wants.into_iter().zip(lists) {
            let list = list.unwrap_or_default();
            match what {
                Want::Seed(source, i) => {
                    let seed = Seed {
                        item_id: seeds[i].0.clone(),
                        weight: seeds[i].1,
                        neighbours: list,
                    };
                    if source == Source::Covisitation {
                        covis.push(seed)
                    } else {
                        follow.push(seed)
                    }
                }
                Want::Copurchase(i) => bought_with.push(Seed {
                    item_id: buy_seeds[i].0.clone(),
                    weight: buy_seeds[i].1,
                    neighbours: list,
                }),
                Want::Sessions => per_item_sessions.push(list),
                Want::Category(c) => {
                    popular_lists.push((Source::Category, Because::Category(c), list))
                }
                Want::Interest(because, share) => interests.push(Interest {
                    because,
                    share,
                    popular: list,
                }),
                Want::Trending => popular_lists.push((Source::Trending, Because::Source, list)),
                Want::Popular => popular_lists.push((Source::Popular, Because::Source, list)),
            }
        }
        let past = if per_item_sessions.is_empty() {
            None
        } else {
            let past = self
                .past_sessions(site, &per_item_sessions, sample, ctx.now_ms as f64)
                .await?;
            let tuning = Tuning {
                now_ms: ctx.now_ms as f64,
                ..ctx.knn.unwrap_or(Tuning {
                    position_decay: cfg.session_position_decay,
                    click_decay: cfg.session_click_decay,
                    recency_decay_ms: cfg.session_recency_decay_days.map(|d| d * DAY_MS as f64),
                    now_ms: 0.0,
                })
            };
            let k = ctx.session_neighbours.unwrap_or(cfg.session_neighbours);
            Some((past, k, tuning))
        };
        Ok(Gathered {
            view,
            session,
            lists: popular_lists,
            covis,
            follow,
            bought_with,
            interests,
            reminder: w.reminder > 0.0,
            past,
            weights: w,
        })
    }

    /// What segment-scoped rules read: the visitor's whole document and the site's models (`None`
    /// when no rule of the site needs them, or the request names no visitor).
    async fn rule_profile(
        &self,
        site: &SiteId,
        ctx: &Context,
        rules: &[rules::Rule],
    ) -> Result<Option<(SubjectState, SiteModels)>, ApiError> {
        let doc = match &ctx.subject {
            Some(s) if rules.iter().any(|r| r.needs_profile()) => {
                self.state_of(site, s).await?.map(|(_, state)| state)
            }
            _ => None,
        };
        Ok(match doc {
            Some(state) => Some((state, self.models(site).await?)),
            None => None,
        })
    }

    /// The shop's side of an answer: only catalog items once the site has a catalog, the business
    /// rules (stock, already bought, filters, boosts, pins), never the page's item when the slot says
    /// so, diversity, and the catalog fields and reasons of what is left.
    fn finish(
        &self,
        site: &SiteId,
        ctx: &Context,
        view: &RecoView,
        rules: &[rules::Rule],
        doc: Option<&(SubjectState, SiteModels)>,
        ranked: Vec<Blended>,
    ) -> Vec<Recommendation> {
        let (_, max_per_category, exclude_current) =
            self.config.recommender.for_slot(ctx.slot.as_deref());
        let catalog = self.catalog.site(site);
        let facts = doc.map(|(state, models)| {
            Facts::of(state, models, &self.config.processor.lifecycle, ctx.now_ms)
        });
        let half_life_ms = (self.config.processor.interest_half_life_days * DAY_MS as f64) as i64;
        let profile = doc
            .map(|(state, _)| state)
            .zip(facts.as_ref())
            .map(|(state, facts)| segment::Subject {
                facts,
                state,
                now_ms: ctx.now_ms,
                half_life_ms,
            });
        let current = ctx.item.as_deref().filter(|_| exclude_current);
        let candidates: Vec<Scored<Why>> = ranked
            .into_iter()
            .filter(|b| Some(b.item_id.as_str()) != current)
            .filter(|b| catalog.is_empty() || catalog.get(&b.item_id).is_some())
            .map(|b| {
                let why = Why {
                    source: Some(b.source),
                    because: b.because,
                };
                Scored::new(b.item_id, b.score, why)
            })
            .collect();
        let bought: HashSet<String> = view.bought.iter().cloned().collect();
        let rule_ctx = RuleContext {
            site,
            slot: ctx.slot.as_deref(),
            bought: &bought,
            profile: profile.as_ref(),
        };
        let kept = rules::apply(
            rules,
            &rule_ctx,
            |id| catalog.get(id).map(|i| &**i),
            candidates,
        );
        let kept = blend::diversify(
            kept,
            max_per_category,
            ctx.limit,
            |c| catalog.get(&c.item_id).and_then(|i| i.category.as_deref()),
            |c| c.pinned,
        );
        let title = |id: &str| catalog.get(id).map(|i| i.title.clone());
        kept.into_iter()
            .map(|c| Recommendation {
                reason: if c.pinned {
                    "recommended by the shop".into()
                } else {
                    reason(c.meta.source, &c.meta.because, title)
                },
                product: catalog.get(&c.item_id).map(|i| (**i).clone()),
                item_id: c.item_id,
                score: c.score,
                source: c.meta.source,
            })
            .collect()
    }

    /// Round trip 3: the items of the most recent sessions sharing an item with the session, read
    /// only for those the session cache does not hold current (`crate::sessions`).
    async fn past_sessions(
        &self,
        site: &SiteId,
        per_item: &[RecentSessions],
        sample: usize,
        now_ms: f64,
    ) -> Result<Vec<Arc<PastSession>>, ApiError> {
        let sampled = session_knn::sample(per_item, sample);
        let cached = self.sessions.lookup(site, &sampled, now_ms);
        let missing: Vec<&(String, f64)> = sampled
            .iter()
            .zip(&cached)
            .filter(|(_, c)| c.is_none())
            .map(|(s, _)| s)
            .collect();
        metrics::counter!("tailor_recommender_session_reads_total", "from" => "memory")
            .increment((sampled.len() - missing.len()) as u64);
        metrics::counter!("tailor_recommender_session_reads_total", "from" => "store")
            .increment(missing.len() as u64);
        let reads: Vec<Read> = missing
            .iter()
            .map(|(id, _)| Read::Get(self.keys.session_list(site, id)))
            .collect();
        let values = if reads.is_empty() {
            Vec::new()
        } else {
            self.store.read(&reads).await?
        };
        // (last click, items oldest first) of each session read.
        let mut lists: Vec<Option<(f64, Vec<String>)>> = values
            .into_iter()
            .map(|v| v.into_text().and_then(|t| session_list::decode(&t)))
            .collect();
        // A session last written by an earlier version (or with `processor.compact_storage = false`)
        // is a sorted set of item → last click: read as such, ascending (the session's order).
        let earlier: Vec<usize> = (0..lists.len()).filter(|&i| lists[i].is_none()).collect();
        if !earlier.is_empty() {
            let reads: Vec<Read> = earlier
                .iter()
                .map(|&i| Read::Range(self.keys.session_items(site, &missing[i].0), 0, -1))
                .collect();
            for (i, v) in earlier.into_iter().zip(self.store.read(&reads).await?) {
                let items = v.into_top();
                let last = items.last().map_or(f64::MIN, |(_, t)| *t);
                lists[i] = Some((last, items.into_iter().map(|(i, _)| i).collect()));
            }
        }
        let read: Vec<Arc<PastSession>> = missing
            .into_iter()
            .zip(lists)
            .map(|((id, score), list)| {
                let (last, items) = list.unwrap_or((f64::MIN, Vec::new()));
                Arc::new(PastSession {
                    id: id.clone(),
                    // At least the score it was sampled by (its list may have expired).
                    last_ms: last.max(*score),
                    items,
                })
            })
            .collect();
        self.sessions.store(site, &read);
        let mut read = read.into_iter();
        Ok(cached
            .into_iter()
            .filter_map(|c| c.or_else(|| read.next()))
            .filter(|p| !p.items.is_empty())
            .collect())
    }
}

/// The blend weight of a source.
pub fn weight_of(w: &SourceWeights, s: Source) -> f64 {
    match s {
        Source::SessionKnn => w.session_knn,
        Source::Reminder => w.reminder,
        Source::Sequence => w.sequence,
        Source::Covisitation => w.covisitation,
        Source::Copurchase => w.copurchase,
        Source::Interest => w.interest,
        Source::Trending => w.trending,
        Source::Category => w.category,
        Source::Popular => w.popular,
    }
}

/// The sentence shown for an item; `title` names an item by its catalog title when it has one.
pub fn reason(
    source: Option<Source>,
    because: &Because,
    title: impl Fn(&str) -> Option<String>,
) -> String {
    let name = |i: &str| title(i).unwrap_or_else(|| i.to_string());
    match (source, because) {
        (Some(Source::SessionKnn), Because::Item(i)) => {
            format!(
                "shoppers who viewed {} in a visit like yours also viewed this",
                name(i)
            )
        }
        (Some(Source::Sequence), Because::Item(i)) => {
            format!("often viewed next after {}", name(i))
        }
        (Some(Source::Covisitation), Because::Item(i)) => format!("because you viewed {}", name(i)),
        (Some(Source::Copurchase), Because::Item(i)) => format!("often bought with {}", name(i)),
        (Some(Source::Interest), Because::Category(c)) => {
            format!("popular in {c}, one of your interests")
        }
        (Some(Source::Interest), Because::Brand(b)) => {
            format!("popular from {b}, a brand you like")
        }
        (Some(Source::Category), Because::Category(c)) => format!("popular in {c}"),
        (Some(Source::Trending), _) => "trending now".into(),
        (Some(Source::Reminder), _) => "you viewed this earlier in your visit".into(),
        (None, _) => "recommended by the shop".into(),
        _ => "popular on this site".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A store that counts the reads of the session index, of sessions' item lists, of
    /// co-visitation lists and of members' summaries.
    #[derive(Default)]
    struct Counting {
        inner: tailor_infra::store::memory::MemoryStore,
        index: std::sync::atomic::AtomicUsize,
        sessions: std::sync::atomic::AtomicUsize,
        covisits: std::sync::atomic::AtomicUsize,
        summaries: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl tailor_infra::store::Store for Counting {
        async fn apply(
            &self,
            u: &[tailor_core::ops::Update],
        ) -> Result<Vec<tailor_core::ops::Applied>, tailor_infra::store::StoreError> {
            self.inner.apply(u).await
        }
        async fn read(
            &self,
            reads: &[Read],
        ) -> Result<Vec<tailor_infra::store::Value>, tailor_infra::store::StoreError> {
            use std::sync::atomic::Ordering::Relaxed;
            for r in reads {
                match r {
                    Read::Top(k, _) if k.contains(":isess:") => self.index.fetch_add(1, Relaxed),
                    Read::Range(k, _, _) if k.contains(":sess:") => {
                        self.sessions.fetch_add(1, Relaxed)
                    }
                    Read::Top(k, _) if k.contains(":covis:") => self.covisits.fetch_add(1, Relaxed),
                    Read::Field(_, f) if f == "reco" => self.summaries.fetch_add(1, Relaxed),
                    _ => 0,
                };
            }
            self.inner.read(reads).await
        }
        async fn check(&self) -> Result<(), tailor_infra::store::StoreError> {
            Ok(())
        }
        async fn scan(&self, p: &str) -> Result<Vec<String>, tailor_infra::store::StoreError> {
            self.inner.scan(p).await
        }
    }

    #[tokio::test]
    async fn neighbour_sessions_are_read_once_until_they_change() {
        use std::sync::atomic::Ordering::Relaxed;
        use tailor_core::ops::{Update, WriteOp};
        use tailor_infra::store::Store;
        let store = Arc::new(Counting::default());
        let keys = tailor_core::keys::KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        // Two past sessions holding "a": each click places the session in the clicked item's
        // index and the item in the session's list.
        let click = |session: &str, item: &str, t: f64| Update {
            ops: vec![
                WriteOp::ZSet {
                    key: keys.item_sessions(&site, item),
                    member: session.into(),
                    score: t,
                },
                WriteOp::ZSet {
                    key: keys.session_items(&site, session),
                    member: item.into(),
                    score: t,
                },
            ],
            ..Default::default()
        };
        store
            .apply(&[
                click("d/1", "a", 1.0),
                click("d/1", "x", 2.0),
                click("d/2", "a", 3.0),
            ])
            .await
            .unwrap();
        let mut config = tailor_core::config::Config::default();
        config.recommender.session_index_cache_ms = 0;
        let r = Recommender::new(store.clone(), keys.clone(), Arc::new(config));
        // Asked a day later: both sessions have ended.
        let ctx = Context {
            session: Some(vec!["a".into()]),
            limit: 10,
            now_ms: 86_400_000,
            ..Default::default()
        };
        let first = r.rank(&site, &ctx).await.unwrap();
        assert!(
            first.items.iter().any(|i| i.item_id == "x"),
            "{:?}",
            first.items
        );
        assert_eq!(store.sessions.load(Relaxed), 2, "both read");
        r.rank(&site, &ctx).await.unwrap();
        assert_eq!(store.sessions.load(Relaxed), 2, "unchanged: from memory");
        // d/2 clicks "y", then "a" again (late events): a's index shows a later click than the list
        // read, so d/2 alone is read again, and y is offered.
        store
            .apply(&[click("d/2", "y", 4.0), click("d/2", "a", 5.0)])
            .await
            .unwrap();
        let third = r.rank(&site, &ctx).await.unwrap();
        assert_eq!(store.sessions.load(Relaxed), 3);
        assert!(
            third.items.iter().any(|i| i.item_id == "y"),
            "{:?}",
            third.items
        );
        // Asked while the sessions may still be going on (a click could have reached an item the
        // sample does not go through), with no freshness allowed: both are read again.
        let going_on = Context {
            now_ms: 6,
            ..ctx.clone()
        };
        r.rank(&site, &going_on).await.unwrap();
        assert_eq!(store.sessions.load(Relaxed), 5);
        // The index itself is read every time with no index cache ...
        assert_eq!(store.index.load(Relaxed), 4);
        // ... and once a moment with it.
        let cached = Recommender::new(
            store.clone(),
            keys,
            Arc::new(tailor_core::config::Config::default()),
        );
        cached.rank(&site, &ctx).await.unwrap();
        cached.rank(&site, &ctx).await.unwrap();
        assert_eq!(store.index.load(Relaxed), 5);
    }

    #[tokio::test]
    async fn past_sessions_are_read_in_either_stored_form() {
        use tailor_core::ops::{Update, WriteOp};
        use tailor_infra::store::Store;
        let store = Arc::new(tailor_infra::store::memory::MemoryStore::new());
        let keys = tailor_core::keys::KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        let indexed = |session: &str, item: &str, t: f64| WriteOp::ZSet {
            key: keys.item_sessions(&site, item),
            member: session.into(),
            score: t,
        };
        // d/1 as this version writes it (a, then x), d/2 as a sorted set (a, then y).
        let ops = vec![
            indexed("d/1", "a", 1.0),
            WriteOp::Put {
                key: keys.session_list(&site, "d/1"),
                value: session_list::encode(2, ["a", "x"]),
                ttl_secs: None,
            },
            indexed("d/2", "a", 3.0),
            WriteOp::ZSet {
                key: keys.session_items(&site, "d/2"),
                member: "a".into(),
                score: 3.0,
            },
            WriteOp::ZSet {
                key: keys.session_items(&site, "d/2"),
                member: "y".into(),
                score: 4.0,
            },
        ];
        store
            .apply(&[Update {
                ops,
                ..Default::default()
            }])
            .await
            .unwrap();
        let r = Recommender::new(
            store.clone(),
            keys,
            Arc::new(tailor_core::config::Config::default()),
        );
        let ctx = Context {
            session: Some(vec!["a".into()]),
            limit: 10,
            now_ms: 86_400_000,
            ..Default::default()
        };
        let g = r.gather(&site, &ctx).await.unwrap();
        let (past, _, _) = g.past.as_ref().expect("sessions sampled");
        let mut read: Vec<(String, f64, Vec<String>)> = past
            .iter()
            .map(|p| (p.id.clone(), p.last_ms, p.items.clone()))
            .collect();
        read.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            read,
            [
                (
                    "d/1".to_string(),
                    2.0,
                    vec!["a".to_string(), "x".to_string()]
                ),
                (
                    "d/2".to_string(),
                    4.0,
                    vec!["a".to_string(), "y".to_string()]
                ),
            ]
        );
    }

    #[tokio::test]
    async fn shared_lists_are_read_once_a_moment_and_the_visitors_summary_every_time() {
        use std::sync::atomic::Ordering::Relaxed;
        use tailor_core::ops::{Update, WriteOp};
        use tailor_infra::store::Store;
        let store = Arc::new(Counting::default());
        let keys = tailor_core::keys::KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        let covisit = |item: &str, score: f64| Update {
            ops: vec![WriteOp::ZIncr {
                key: keys.covisits(&site, "a"),
                member: item.into(),
                by: score,
            }],
            ..Default::default()
        };
        store.apply(&[covisit("b", 1.0)]).await.unwrap();
        let ctx = Context {
            subject: Some(Subject::parse("a:v1").unwrap()),
            item: Some("a".into()),
            limit: 10,
            now_ms: 86_400_000,
            ..Default::default()
        };
        let ids =
            |r: &Ranked| -> Vec<String> { r.items.iter().map(|i| i.item_id.clone()).collect() };
        let r = Recommender::new(
            store.clone(),
            keys.clone(),
            Arc::new(tailor_core::config::Config::default()),
        );
        assert!(ids(&r.rank(&site, &ctx).await.unwrap()).contains(&"b".to_string()));
        assert_eq!(store.covisits.load(Relaxed), 1);
        // The list changes; asked again within `shared_list_cache_ms` (1 s) it is served from
        // memory, as it was a moment ago, while the visitor's summary is read again.
        store.apply(&[covisit("c", 5.0)]).await.unwrap();
        let second = ids(&r.rank(&site, &ctx).await.unwrap());
        assert_eq!(store.covisits.load(Relaxed), 1, "from memory");
        assert!(!second.contains(&"c".to_string()), "{second:?}");
        assert_eq!(store.summaries.load(Relaxed), 2, "the summary every time");
        // Without the cache every request reads the list, and sees the change.
        let mut config = tailor_core::config::Config::default();
        config.recommender.shared_list_cache_ms = 0;
        let uncached = Recommender::new(store.clone(), keys, Arc::new(config));
        let fresh = ids(&uncached.rank(&site, &ctx).await.unwrap());
        assert_eq!(store.covisits.load(Relaxed), 2);
        assert_eq!(fresh.first().map(String::as_str), Some("c"), "{fresh:?}");
    }

    #[tokio::test]
    async fn a_filtered_answer_is_the_same_from_the_blends_head_as_from_all_of_it() {
        use tailor_core::ops::{Update, WriteOp};
        use tailor_infra::store::Store;
        let store = Arc::new(tailor_infra::store::memory::MemoryStore::new());
        let keys = tailor_core::keys::KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        // 300 items co-visited with "a", n000 the most.
        let ops = (0..300)
            .map(|i| WriteOp::ZIncr {
                key: keys.covisits(&site, "a"),
                member: format!("n{i:03}"),
                by: 1000.0 - i as f64,
            })
            .collect();
        store
            .apply(&[Update {
                ops,
                ..Default::default()
            }])
            .await
            .unwrap();
        let ctx = Context {
            item: Some("a".into()),
            limit: 10,
            now_ms: 86_400_000,
            ..Default::default()
        };
        let answer = |rules: serde_json::Value| {
            let mut config = tailor_core::config::Config {
                rules: serde_json::from_value(rules).unwrap(),
                ..Default::default()
            };
            config.recommender.neighbours_per_seed = 300;
            let r = Recommender::new(store.clone(), keys.clone(), Arc::new(config));
            let (site, ctx) = (site.clone(), ctx.clone());
            async move {
                let g = r.gather(&site, &ctx).await.unwrap();
                let c = g.candidates(r.head(&r.rules.for_site(&site), &ctx));
                let ranked = r.rank(&site, &ctx).await.unwrap();
                let ids: Vec<String> = ranked.items.into_iter().map(|i| i.item_id).collect();
                (c.ranked.len(), c.cut, ids)
            }
        };
        let dropped =
            |n: std::ops::Range<usize>| -> Vec<String> { n.map(|i| format!("n{i:03}")).collect() };
        let expected = |from: usize| -> Vec<String> {
            (from..from + 10).map(|i| format!("n{i:03}")).collect()
        };
        // Filters only: the head (max(50 re-ranked, 4 × 10)) is all a request sorts.
        let few = json!([{"name": "few", "kind": "exclude", "items": dropped(0..5)}]);
        assert_eq!(answer(few).await, (50, true, expected(5)));
        // The filters drop the whole head: the answer comes from the whole blend, the same as when
        // a boost (here of nothing) makes the request rank every item.
        // (A rule names at most 100 items.)
        let most = json!([
            {"name": "most", "kind": "exclude", "items": dropped(0..60)},
            {"name": "more", "kind": "exclude", "items": dropped(60..120)},
        ]);
        assert_eq!(answer(most.clone()).await, (50, true, expected(120)));
        let mut boosted = most.as_array().unwrap().clone();
        boosted
            .push(json!({"name": "none", "kind": "boost", "tags": ["no-such-tag"], "factor": 2}));
        assert_eq!(answer(json!(boosted)).await, (300, false, expected(120)));
    }

    #[test]
    fn every_source_has_a_reason_a_person_reads() {
        let title = |i: &str| (i == "tent-2p").then(|| "Dome Tent 2P".to_string());
        assert_eq!(
            reason(
                Some(Source::Covisitation),
                &Because::Item("tent-2p".into()),
                title
            ),
            "because you viewed Dome Tent 2P"
        );
        assert_eq!(
            reason(Some(Source::Sequence), &Because::Item("x".into()), title),
            "often viewed next after x",
            "an item the catalog does not know goes by its id"
        );
        assert_eq!(
            reason(
                Some(Source::Interest),
                &Because::Category("outdoor/tents".into()),
                title
            ),
            "popular in outdoor/tents, one of your interests"
        );
        assert_eq!(
            reason(Some(Source::Trending), &Because::Source, title),
            "trending now"
        );
        for s in Source::ALL {
            assert!(!reason(Some(s), &Because::Source, title).is_empty());
        }
    }
}
