//! The recommendation and profile API.
//!
//! `GET /v1/recommendations?site=&member=|anonymous=&item=&limit=` and `GET /v1/profiles/{member}?site=`.
//! Query parameters are parsed here, at the edge, into typed ids; every failure becomes a 4xx naming the
//! parameter, and a store outage a 503.

use crate::rank::{self, Recommendation, Seed};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tailor_core::config::Config;
use tailor_core::keys::KeySpace;
use tailor_core::profile::{Profile, ProfileParts};
use tailor_core::{AnonymousId, ItemId, MemberId, SiteId, Subject};
use tailor_infra::http::error_with;
use tailor_infra::store::{Read, Store, StoreError};

/// How many bought items are read to exclude them (the most bought first).
const BOUGHT_READ: usize = 1000;
/// How many popular items are read for fill-ins.
const POPULAR_READ: usize = 200;
/// Sizes of the profile view's top lists.
const PROFILE_TOP: usize = 20;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Recommender {
    pub store: Arc<dyn Store>,
    pub keys: KeySpace,
    pub config: Arc<Config>,
}

/// The API's errors, mapped to HTTP in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{param}: {reason}")]
    BadParam { param: &'static str, reason: String },
    #[error("no profile for {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn bad(param: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::BadParam {
        param,
        reason: reason.into(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ApiError::BadParam { param, .. } => error_with(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                message,
                Some(param.into()),
                vec![],
            ),
            ApiError::NotFound(_) => {
                error_with(StatusCode::NOT_FOUND, "not_found", message, None, vec![])
            }
            ApiError::Store(e) => {
                tracing::error!(error = %e, "profile store read failed");
                error_with(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    message,
                    None,
                    vec![],
                )
            }
        }
    }
}

/// The recommender's routes.
pub fn router(r: Recommender) -> Router {
    let cors = tailor_infra::http::browser_cors(&r.config);
    let router = Router::new()
        .route("/v1/recommendations", get(recommendations).layer(cors))
        .route("/v1/profiles/{member}", get(profile))
        .route("/admin/clv/fit", get(crate::clv::fit_handler))
        .with_state(r);
    tailor_infra::http::with_metrics(router, "recommender")
}

/// The answer of `GET /v1/recommendations`.
#[derive(Debug, Serialize)]
pub struct Recommendations {
    pub site_id: String,
    /// `m:<member>`, `a:<anonymous>`, or absent for a visitor with no id.
    pub subject: Option<String>,
    /// `covisitation`, `popular`, or `mixed`.
    pub strategy: &'static str,
    pub items: Vec<Recommendation>,
}

type Params = Query<HashMap<String, String>>;

impl Recommender {
    pub(crate) fn site(&self, q: &HashMap<String, String>) -> Result<SiteId, ApiError> {
        let raw = q.get("site").ok_or_else(|| bad("site", "is required"))?;
        let site = SiteId::parse(raw.clone()).map_err(|e| bad("site", e.to_string()))?;
        if !self.config.has_site(&site) {
            return Err(bad("site", format!("unknown site {raw:?}")));
        }
        Ok(site)
    }

    fn subject(q: &HashMap<String, String>) -> Result<Option<Subject>, ApiError> {
        if let Some(m) = q.get("member").filter(|m| !m.is_empty()) {
            return Ok(Some(Subject::Member(
                MemberId::parse(m.clone()).map_err(|e| bad("member", e.to_string()))?,
            )));
        }
        if let Some(a) = q.get("anonymous").filter(|a| !a.is_empty()) {
            return Ok(Some(Subject::Anonymous(
                AnonymousId::parse(a.clone()).map_err(|e| bad("anonymous", e.to_string()))?,
            )));
        }
        Ok(None)
    }

    fn limit(&self, q: &HashMap<String, String>) -> Result<usize, ApiError> {
        let max = self.config.recommender.max_limit;
        match q.get("limit") {
            None => Ok(self.config.recommender.default_limit),
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(bad(
                    "limit",
                    format!("must be an integer from 1 to {max}, got {l:?}"),
                )),
            },
        }
    }

    /// Reads the inputs of [`rank::rank`] and ranks.
    pub async fn recommend(
        &self,
        q: &HashMap<String, String>,
    ) -> Result<Recommendations, ApiError> {
        let site = self.site(q)?;
        let subject = Self::subject(q)?;
        let limit = self.limit(q)?;
        let context = q
            .get("item")
            .filter(|i| !i.is_empty())
            .map(|i| ItemId::parse(i.clone()).map_err(|e| bad("item", e.to_string())))
            .transpose()?;
        let cfg = &self.config.recommender;
        let (recent, bought) = match &subject {
            Some(s) => {
                let mut v = self
                    .store
                    .read(&[
                        Read::List(self.keys.recent_items(&site, s), cfg.seed_items),
                        Read::Top(self.keys.bought(&site, s), BOUGHT_READ),
                    ])
                    .await?
                    .into_iter();
                let recent = v.next().map(|v| v.into_list()).unwrap_or_default();
                let bought = v.next().map(|v| v.into_top()).unwrap_or_default();
                (recent, bought)
            }
            None => (Vec::new(), Vec::new()),
        };
        let seed_items = rank::seeds(
            context.as_ref().map(|c| c.as_str()),
            &recent,
            cfg.seed_items,
        );
        let mut reads: Vec<Read> = seed_items
            .iter()
            .map(|(item, _)| Read::Top(self.keys.covisits(&site, item), cfg.neighbours_per_seed))
            .collect();
        reads.push(Read::Top(self.keys.popular(&site), POPULAR_READ + limit));
        let mut values = self.store.read(&reads).await?;
        let popular = values.pop().map(|v| v.into_top()).unwrap_or_default();
        let seeds: Vec<Seed> = seed_items
            .into_iter()
            .zip(values)
            .map(|((item_id, weight), v)| Seed {
                item_id,
                weight,
                neighbours: v.into_top(),
            })
            .collect();
        let exclude: HashSet<String> = bought.into_iter().map(|(i, _)| i).collect();
        let items = rank::rank(&seeds, &popular, &exclude, limit);
        let covis = items
            .iter()
            .filter(|r| r.source == rank::Source::Covisitation)
            .count();
        let strategy = match covis {
            0 => "popular",
            n if n == items.len() => "covisitation",
            _ => "mixed",
        };
        metrics::counter!("tailor_recommender_responses_total", "strategy" => strategy)
            .increment(1);
        Ok(Recommendations {
            site_id: site.to_string(),
            subject: subject.map(|s| s.to_string()),
            strategy,
            items,
        })
    }

    /// Reads a member's profile; `NotFound` if the member was never seen.
    pub async fn profile(&self, site: &SiteId, subject: &Subject) -> Result<Profile, ApiError> {
        let k = &self.keys;
        let mut v = self
            .store
            .read(&[
                Read::Hash(k.profile(site, subject)),
                Read::List(
                    k.recent_items(site, subject),
                    self.config.processor.recent_items as usize,
                ),
                Read::Top(k.item_views(site, subject), PROFILE_TOP),
                Read::Top(k.category_views(site, subject), PROFILE_TOP),
                Read::Top(k.bought(site, subject), PROFILE_TOP),
            ])
            .await?
            .into_iter();
        let mut next = || v.next().expect("one value per read");
        let parts = ProfileParts {
            hash: next().into_hash(),
            recent: next().into_list(),
            items: next().into_top(),
            categories: next().into_top(),
            bought: next().into_top(),
        };
        if parts.is_empty() {
            return Err(ApiError::NotFound(subject.to_string()));
        }
        Ok(Profile::from_parts(
            site.as_str(),
            &subject.to_string(),
            parts,
        ))
    }
}

async fn recommendations(
    State(r): State<Recommender>,
    Query(q): Params,
) -> Result<Json<Recommendations>, ApiError> {
    r.recommend(&q).await.map(Json)
}

async fn profile(
    State(r): State<Recommender>,
    Path(member): Path<String>,
    Query(q): Params,
) -> Result<Json<Profile>, ApiError> {
    let site = r.site(&q)?;
    let member = MemberId::parse(member).map_err(|e| bad("member", e.to_string()))?;
    r.profile(&site, &Subject::Member(member)).await.map(Json)
}
