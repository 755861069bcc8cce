//! The recommendation and profile API.
//!
//! `GET /v1/recommendations?site=&member=|anonymous=&item=&category=&slot=&limit=`,
//! `POST /v1/recommendations` (the same as a JSON page context, with the cart's items; both answer
//! the slot's campaign offers beside the items, `crate::campaigns`) and
//! `GET /v1/profiles/{member}?site=`.
//! Query parameters are parsed here, at the edge, into typed ids; every failure becomes a 4xx naming the
//! parameter, and a store outage a 503.

use crate::engine::{Context, Recommendation};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use tailor_core::config::Config;
use tailor_core::keys::KeySpace;
use tailor_core::models::SiteModels;
use tailor_core::profile::Profile;
use tailor_core::state::{RecoView, SubjectState};
use tailor_core::{AnonymousId, ItemId, MemberId, SiteId, Subject};
use tailor_infra::auth::{Access, Gate, Routes};
use tailor_infra::store::{Read, Store, StoreError};

/// A site's popular items, best first.
pub(crate) type PopularList = Arc<Vec<(String, f64)>>;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Recommender {
    pub store: Arc<dyn Store>,
    pub keys: KeySpace,
    pub config: Arc<Config>,
    /// Each site's popular items as last refreshed: what a request past its deadline is answered with.
    pub(crate) popular: Arc<RwLock<HashMap<SiteId, PopularList>>>,
    pub catalog: Arc<crate::catalog::CatalogCache>,
    pub rules: Arc<crate::rules::RuleCache>,
    pub campaigns: Arc<crate::campaigns::CampaignCache>,
    /// Past sessions' item lists, for session-based neighbours.
    pub sessions: Arc<crate::sessions::SessionCache>,
    /// Items' most recent sessions (the session index's lists), for a moment.
    pub index: Arc<crate::lists::ListCache>,
    /// The site's other shared lists (co-visits, followers, co-purchases, popular, trending), for
    /// a moment.
    pub lists: Arc<crate::lists::ListCache>,
    /// Each site's learned re-ranking model and the popularity it reads.
    pub learned: Arc<crate::learned::LearnedCache>,
}

pub(crate) use tailor_infra::api::{bad, ApiError};

/// The recommender's route table: who may call each route (`tailor_infra::auth`).
pub fn routes(config: &Config) -> Routes<Recommender> {
    use axum::routing::post;
    use tailor_core::access::Scope;
    let cors = tailor_infra::http::browser_cors(config);
    Routes::new()
        .route(
            Method::GET,
            "/v1/recommendations",
            Access::Recommendations,
            get(recommendations).layer(cors.clone()),
        )
        .route(
            Method::POST,
            "/v1/recommendations",
            Access::Recommendations,
            post(recommend_for_page).layer(cors),
        )
        .route(
            Method::GET,
            "/v1/profiles/{member}",
            Access::Site(Scope::Serve),
            get(profile),
        )
        .merge(crate::catalog::routes())
        .merge(crate::rules::routes())
        .merge(crate::learned::routes())
        .merge(crate::campaigns::routes())
}

/// The recommender's routes.
pub fn router(r: Recommender) -> Router {
    let router = routes(&r.config)
        .into_router(Gate::new(&r.config))
        .with_state(r);
    tailor_infra::http::with_metrics(router, "recommender")
}

/// The answer of `GET` and `POST /v1/recommendations`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recommendations {
    pub site_id: String,
    /// `m:<member>`, `a:<anonymous>`, or absent for a visitor with no id.
    pub subject: Option<String>,
    /// `blend`, `learned` (the blend re-ordered by the site's re-ranking model), or `fallback` when
    /// the request ran out of time and got the cached popular items.
    #[schema(value_type = String)]
    pub strategy: &'static str,
    pub items: Vec<Recommendation>,
    /// Campaign offers for the request's slot (at most `recommender.offers_per_slot`; none without
    /// a slot or a visitor id), best first.
    pub offers: Vec<crate::campaigns::Offer>,
    /// Offers held back because the member is in a campaign's holdout: the tag sends each token in
    /// an `offer_impression`, shows nothing (the control group of the campaign's lift).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<crate::campaigns::HeldBack>,
}

/// The body of `POST /v1/recommendations`: the whole page context.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageContext {
    pub site: Option<String>,
    pub member: Option<String>,
    pub anonymous: Option<String>,
    /// The page's slot (`home`, `product`, `cart`, `checkout`, or the shop's own name).
    pub slot: Option<String>,
    /// The item on the page.
    pub item: Option<String>,
    /// The page's category.
    pub category: Option<String>,
    /// The items in the cart.
    #[serde(default)]
    pub cart: Vec<String>,
    pub limit: Option<usize>,
}

use tailor_infra::api::Params;

/// Most items a page context's cart may list.
const MAX_CART: usize = 100;

impl Recommender {
    pub(crate) fn cached_popular(&self, site: &SiteId) -> PopularList {
        self.popular
            .read()
            .ok()
            .and_then(|m| m.get(site).cloned())
            .unwrap_or_default()
    }

    /// Re-reads the site's popular items for the fallback (enough for the largest answer even when
    /// the page's item is among them).
    pub(crate) async fn refresh_popular(&self, site: &SiteId) -> Result<(), StoreError> {
        let n = self.config.recommender.max_limit + 1;
        let list = self
            .store
            .read(&[Read::Top(self.keys.popular(site), n)])
            .await?
            .pop()
            .map(|v| v.into_top())
            .unwrap_or_default();
        if let Ok(mut m) = self.popular.write() {
            m.insert(site.clone(), Arc::new(list));
        }
        Ok(())
    }

    pub(crate) fn site(&self, q: &HashMap<String, String>) -> Result<SiteId, ApiError> {
        self.site_named(q.get("site").map(String::as_str))
    }

    fn site_named(&self, raw: Option<&str>) -> Result<SiteId, ApiError> {
        tailor_infra::api::site(&self.config, raw)
    }

    fn subject(member: Option<&str>, anonymous: Option<&str>) -> Result<Option<Subject>, ApiError> {
        if let Some(m) = member.filter(|m| !m.is_empty()) {
            return Ok(Some(Subject::Member(
                MemberId::parse(m.to_string()).map_err(|e| bad("member", e.to_string()))?,
            )));
        }
        if let Some(a) = anonymous.filter(|a| !a.is_empty()) {
            return Ok(Some(Subject::Anonymous(
                AnonymousId::parse(a.to_string()).map_err(|e| bad("anonymous", e.to_string()))?,
            )));
        }
        Ok(None)
    }

    fn limit(&self, l: Option<usize>, raw: Option<&str>) -> Result<usize, ApiError> {
        let max = self.config.recommender.max_limit;
        match (l, raw) {
            (Some(n), _) if (1..=max).contains(&n) => Ok(n),
            (None, None) => Ok(self.config.recommender.default_limit),
            (_, Some(r)) if r.parse::<usize>().is_ok_and(|n| (1..=max).contains(&n)) => {
                Ok(r.parse().expect("checked"))
            }
            (l, r) => Err(bad(
                "limit",
                format!(
                    "must be an integer from 1 to {max}, got {}",
                    r.map(|r| format!("{r:?}"))
                        .or(l.map(|l| l.to_string()))
                        .unwrap_or_default()
                ),
            )),
        }
    }

    fn item(param: &'static str, raw: Option<&str>) -> Result<Option<String>, ApiError> {
        raw.filter(|i| !i.is_empty())
            .map(|i| {
                ItemId::parse(i.to_string())
                    .map(|i| i.to_string())
                    .map_err(|e| bad(param, e.to_string()))
            })
            .transpose()
    }

    /// Parses a page context (query parameters or a JSON body) into the site and a ranking context.
    pub fn context(&self, p: PageContext) -> Result<(SiteId, Context), ApiError> {
        let site = self.site_named(p.site.as_deref())?;
        if p.cart.len() > MAX_CART {
            return Err(bad(
                "cart",
                format!("at most {MAX_CART} items, got {}", p.cart.len()),
            ));
        }
        let cart = p
            .cart
            .iter()
            .map(|i| Self::item("cart", Some(i)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let ctx = Context {
            subject: Self::subject(p.member.as_deref(), p.anonymous.as_deref())?,
            slot: p.slot.filter(|s| !s.is_empty()),
            item: Self::item("item", p.item.as_deref())?,
            category: p.category.filter(|c| !c.is_empty()),
            cart,
            session: None,
            limit: self.limit(p.limit, None)?,
            now_ms: chrono::Utc::now().timestamp_millis(),
            weights: None,
            knn: None,
            session_sample: None,
            session_neighbours: None,
            blend_only: false,
        };
        Ok((site, ctx))
    }

    /// Ranks for a page context and counts the answer.
    pub async fn recommend(&self, p: PageContext) -> Result<Recommendations, ApiError> {
        let (site, ctx) = self.context(p)?;
        let start = std::time::Instant::now();
        let (ranked, offers) = tokio::join!(
            self.recommend_in_time(&site, &ctx),
            self.offers_in_time(&site, &ctx)
        );
        let ranked = ranked?;
        metrics::histogram!("tailor_recommender_duration_seconds")
            .record(start.elapsed().as_secs_f64());
        metrics::counter!("tailor_recommender_responses_total", "strategy" => ranked.strategy)
            .increment(1);
        Ok(Recommendations {
            site_id: site.to_string(),
            subject: ctx.subject.map(|s| s.to_string()),
            strategy: ranked.strategy,
            items: ranked.items,
            offers: offers.offers,
            held_back: offers.held_back,
        })
    }

    /// A subject's state document, following an anonymous id's stitch; `None` if never seen.
    pub async fn state_of(
        &self,
        site: &SiteId,
        subject: &Subject,
    ) -> Result<Option<(Subject, SubjectState)>, ApiError> {
        tailor_infra::api::state_of(&*self.store, &self.keys, site, subject).await
    }

    /// A subject's recommendation summary, following an anonymous id's stitch.
    pub(crate) async fn reco_of(
        &self,
        site: &SiteId,
        subject: &Subject,
    ) -> Result<Option<RecoView>, ApiError> {
        Ok(tailor_infra::api::stitched_field(
            &*self.store,
            &self.keys,
            site,
            subject,
            "reco",
            tailor_core::stored::parse,
            |v: &RecoView| v.stitched_to.as_ref(),
        )
        .await?
        .map(|(_, v)| v))
    }

    /// The site's models as last refreshed.
    pub async fn models(&self, site: &SiteId) -> Result<SiteModels, ApiError> {
        let h = self
            .store
            .read(&[Read::Hash(self.keys.models(site))])
            .await?
            .pop()
            .map(|v| v.into_hash())
            .unwrap_or_default();
        Ok(SiteModels::from_hash(&h))
    }

    /// Reads a profile as of now; `NotFound` if the subject was never seen.
    pub async fn profile(&self, site: &SiteId, subject: &Subject) -> Result<Profile, ApiError> {
        let (resolved, state) = self
            .state_of(site, subject)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("profile for {subject}")))?;
        let models = self.models(site).await?;
        Ok(Profile::view(
            site.as_str(),
            &resolved.to_string(),
            &state,
            &models,
            &self.config.processor,
            chrono::Utc::now().timestamp_millis(),
        ))
    }
}

/// Items for a member or visitor, blended from every candidate source (docs/ranking.md), under the
/// shop's business rules, each with its reason and catalog fields.
#[utoipa::path(get, path = "/v1/recommendations", tag = "recommendations",
    params(
        ("site" = String, Query, description = "the site id"),
        ("member" = Option<String>, Query, description = "the logged-in member"),
        ("anonymous" = Option<String>, Query, description = "the visitor's anonymous id (followed to the member it was stitched to)"),
        ("item" = Option<String>, Query, description = "the item on the current page"),
        ("category" = Option<String>, Query, description = "the current page's category"),
        ("slot" = Option<String>, Query, description = "the page's slot (home, product, cart, checkout, ...): its weights and rules apply"),
        ("limit" = Option<usize>, Query, description = "how many items (default recommender.default_limit, at most recommender.max_limit)")),
    responses(
        (status = 200, description = "ranked items, each with its reason", body = Recommendations),
        (status = 400, description = "a missing or invalid parameter (`invalid_parameter`, `field` names it)", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
async fn recommendations(
    State(r): State<Recommender>,
    Query(q): Params,
) -> Result<Json<Recommendations>, ApiError> {
    let get = |k: &str| q.get(k).cloned();
    let limit = q.get("limit").map(|l| r.limit(None, Some(l))).transpose()?;
    r.recommend(PageContext {
        site: get("site"),
        member: get("member"),
        anonymous: get("anonymous"),
        slot: get("slot"),
        item: get("item"),
        category: get("category"),
        cart: Vec::new(),
        limit,
    })
    .await
    .map(Json)
}

/// The same as `GET`, for a whole page context (with the cart's items) as a JSON body.
#[utoipa::path(post, path = "/v1/recommendations", tag = "recommendations",
    request_body = PageContext,
    responses(
        (status = 200, description = "ranked items, each with its reason", body = Recommendations),
        (status = 400, description = "a bad body or field (`field` names it)", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
async fn recommend_for_page(
    State(r): State<Recommender>,
    body: Result<Json<PageContext>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Recommendations>, ApiError> {
    let Json(page) = body.map_err(|e| bad("body", e.body_text()))?;
    r.recommend(page).await.map(Json)
}

/// What Tailor knows about a member, judged at the time of reading (docs/mining.md).
#[utoipa::path(get, path = "/v1/profiles/{member}", tag = "profiles",
    params(
        ("member" = String, Path, description = "the member id (or an anonymous id with `as=anonymous`)"),
        ("site" = String, Query, description = "the site id"),
        ("as" = Option<String>, Query, description = "`member` (default) or `anonymous`")),
    responses(
        (status = 200, description = "the profile (docs/mining.md, \"The profile\")", body = Object),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 404, description = "no profile for this member", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
async fn profile(
    State(r): State<Recommender>,
    Path(member): Path<String>,
    Query(q): Params,
) -> Result<Json<Profile>, ApiError> {
    let site = r.site(&q)?;
    // `?as=anonymous` reads an anonymous visitor's profile (or the member it was stitched to).
    let subject = match q.get("as").map(String::as_str) {
        None | Some("member") => {
            Subject::Member(MemberId::parse(member).map_err(|e| bad("member", e.to_string()))?)
        }
        Some("anonymous") => Subject::Anonymous(
            AnonymousId::parse(member).map_err(|e| bad("member", e.to_string()))?,
        ),
        Some(other) => {
            return Err(bad(
                "as",
                format!("expected member or anonymous, got {other:?}"),
            ))
        }
    };
    r.profile(&site, &subject).await.map(Json)
}
