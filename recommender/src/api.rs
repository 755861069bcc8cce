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
use tailor_core::models::SiteModels;
use tailor_core::profile::Profile;
use tailor_core::state::{RecoView, SubjectState};
use tailor_core::{AnonymousId, ItemId, MemberId, SiteId, Subject};
use tailor_infra::http::error_with;
use tailor_infra::store::{Read, Store, StoreError};

/// How many popular items are read for fill-ins.
const POPULAR_READ: usize = 200;

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
        .route("/admin/segments", get(crate::insights::list_segments))
        .route(
            "/admin/segments/{name}",
            axum::routing::put(crate::insights::put_segment)
                .delete(crate::insights::delete_segment),
        )
        .route(
            "/admin/segments/{name}/members",
            get(crate::insights::segment_members),
        )
        .route("/admin/analytics", get(crate::insights::analytics))
        .route("/insights", get(crate::insights::page))
        .route("/admin/erase", axum::routing::post(crate::privacy::erase))
        .with_state(r);
    tailor_infra::http::with_metrics(router, "recommender")
}

/// The answer of `GET /v1/recommendations`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recommendations {
    pub site_id: String,
    /// `m:<member>`, `a:<anonymous>`, or absent for a visitor with no id.
    pub subject: Option<String>,
    /// `covisitation`, `popular`, or `mixed`.
    #[schema(value_type = String)]
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
            Some(s) => match self.reco_of(&site, s).await? {
                Some(mut v) => {
                    v.recent.truncate(cfg.seed_items);
                    (v.recent, v.bought)
                }
                None => (Vec::new(), Vec::new()),
            },
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
        let exclude: HashSet<String> = bought.into_iter().collect();
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

    /// One JSON field of a subject's state hash (`doc`: the whole document, `reco`: the
    /// recommendation summary), following an anonymous id's stitch to the member now holding its
    /// history; `None` if never seen.
    async fn stitched_field<T: serde::de::DeserializeOwned>(
        &self,
        site: &SiteId,
        subject: &Subject,
        field: &str,
        stitched_to: fn(&T) -> Option<&String>,
    ) -> Result<Option<(Subject, T)>, ApiError> {
        let mut subject = subject.clone();
        for _ in 0..2 {
            let raw = self
                .store
                .read(&[Read::Field(self.keys.state(site, &subject), field.into())])
                .await?
                .pop()
                .and_then(|v| v.into_text());
            let Some(raw) = raw else { return Ok(None) };
            let value: T = serde_json::from_str(&raw).map_err(|e| {
                ApiError::Store(StoreError::Rejected(format!(
                    "the {field} of {subject} does not parse: {e}"
                )))
            })?;
            match (&subject, stitched_to(&value)) {
                (Subject::Anonymous(_), Some(m)) => {
                    subject = Subject::Member(
                        MemberId::parse(m.clone())
                            .map_err(|e| ApiError::Store(StoreError::Rejected(e.to_string())))?,
                    );
                }
                _ => return Ok(Some((subject, value))),
            }
        }
        Ok(None)
    }

    /// A subject's state document, following an anonymous id's stitch; `None` if never seen.
    pub async fn state_of(
        &self,
        site: &SiteId,
        subject: &Subject,
    ) -> Result<Option<(Subject, SubjectState)>, ApiError> {
        self.stitched_field(site, subject, "doc", |s: &SubjectState| {
            s.stitched_to.as_ref()
        })
        .await
    }

    /// A subject's recommendation summary, following an anonymous id's stitch.
    async fn reco_of(
        &self,
        site: &SiteId,
        subject: &Subject,
    ) -> Result<Option<RecoView>, ApiError> {
        Ok(self
            .stitched_field(site, subject, "reco", |v: &RecoView| v.stitched_to.as_ref())
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
            .ok_or_else(|| ApiError::NotFound(subject.to_string()))?;
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

/// Items for a member or visitor: co-visitation with their recent items and the page's item,
/// popular items as fill-ins; never what they bought or are looking at.
#[utoipa::path(get, path = "/v1/recommendations", tag = "recommendations",
    params(
        ("site" = String, Query, description = "the site id"),
        ("member" = Option<String>, Query, description = "the logged-in member"),
        ("anonymous" = Option<String>, Query, description = "the visitor's anonymous id (followed to the member it was stitched to)"),
        ("item" = Option<String>, Query, description = "the item on the current page"),
        ("limit" = Option<usize>, Query, description = "how many items (default recommender.default_limit, at most recommender.max_limit)")),
    responses(
        (status = 200, description = "ranked items, each with its reason", body = Recommendations),
        (status = 400, description = "a missing or invalid parameter (`invalid_parameter`, `field` names it)", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
async fn recommendations(
    State(r): State<Recommender>,
    Query(q): Params,
) -> Result<Json<Recommendations>, ApiError> {
    r.recommend(&q).await.map(Json)
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
