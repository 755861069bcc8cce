//! Each site's learned re-ranking model (`crate::rank::rerank`) in memory, with the item popularity
//! it reads, kept fresh by the background refresh (`crate::refresh`), and its admin API:
//!
//! * `PUT /admin/ranker?site=` with a model (the JSON `tailor ranker fit` writes): checked (400 naming
//!   what is wrong: not a model, other features than this build computes, a malformed tree), stored
//!   and loaded before the answer (its revision, trees and features);
//! * `GET /admin/ranker?site=`: the model in force (revision, trees, features), 404 without one;
//! * `DELETE /admin/ranker?site=`: back to the blend alone (204; 404 without a model).
//!
//! The model lives in the site's slot (`NS:{site}:ranker`: `model`, the JSON, and `rev`, a digest
//! of it, written together by [`store_model`]). A refresh reads the revision and only when it moved
//! the model; a model that does not parse or reads other features than this build computes is
//! refused with a warning and the site ranks with the blend alone, as a site without a model does.
//! The popularity (the `rerank_popular_items` most popular items) is re-read every 30 s while the
//! site has a model.

use crate::api::{bad, ApiError, Recommender};
use crate::rank::boost::{Booster, Forest};
use crate::rank::rerank;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::Json;
use serde::Serialize;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tailor_core::access::Scope;
use tailor_core::keys::KeySpace;
use tailor_core::ops::{Update, WriteOp};
use tailor_core::SiteId;
use tailor_infra::api::Params;
use tailor_infra::auth::{Access, Routes};
use tailor_infra::store::{Read, Store, StoreError, Value};

/// A site's model with what it reads.
pub struct Learned {
    rev: String,
    pub model: Arc<Booster>,
    /// The model as it is evaluated.
    pub forest: Arc<Forest>,
    pub popularity: HashMap<String, f64>,
    read_at: Instant,
}

/// The popularity is re-read this often (it moves slowly; a model change is loaded at once).
const POPULARITY_EVERY: Duration = Duration::from_secs(30);

/// Every site's [`Learned`] as last refreshed.
#[derive(Default)]
pub struct LearnedCache {
    sites: RwLock<HashMap<SiteId, Arc<Learned>>>,
    /// The revision each site's model was refused at, so it is not read again until it changes.
    refused: RwLock<HashMap<SiteId, String>>,
}

/// The read of the site's `n` most popular items with their popularity ...
pub fn popularity_read(keys: &KeySpace, site: &SiteId, n: usize) -> Read {
    Read::Top(keys.popular(site), n)
}

/// ... and its answer as the re-ranking stage reads it.
pub fn popularity_of(value: Option<Value>) -> HashMap<String, f64> {
    value
        .map(|v| v.into_top())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// A digest of a model's JSON: its revision.
fn digest(json: &str) -> String {
    // SipHash with fixed keys: the same digest in every process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Why a model was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreModelError {
    /// Not a model this build can use (`rerank::check` says why).
    #[error("the model cannot be used: {0}")]
    Unusable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores a site's model (replacing any), checked first; returns its revision.
pub async fn store_model(
    store: &dyn Store,
    keys: &KeySpace,
    site: &SiteId,
    model: &Booster,
) -> Result<String, StoreModelError> {
    rerank::check(model).map_err(StoreModelError::Unusable)?;
    let json = serde_json::to_string(model).expect("a model serialises");
    let rev = digest(&json);
    let key = keys.ranker(site);
    store
        .apply(&[Update {
            ops: vec![
                WriteOp::HashSet {
                    key: key.clone(),
                    field: "model".into(),
                    value: json,
                },
                WriteOp::HashSet {
                    key,
                    field: "rev".into(),
                    value: rev.clone(),
                },
            ],
            ..Default::default()
        }])
        .await?;
    Ok(rev)
}

impl LearnedCache {
    /// The site's model, if it has one.
    pub fn site(&self, site: &SiteId) -> Option<Arc<Learned>> {
        self.sites.read().ok()?.get(site).cloned()
    }

    /// Re-reads the site's model if its revision moved, and its items' popularity.
    pub async fn refresh(
        &self,
        store: &dyn Store,
        keys: &KeySpace,
        site: &SiteId,
        popular_items: usize,
    ) -> Result<(), StoreError> {
        let key = keys.ranker(site);
        let rev = store
            .read(&[Read::Field(key.clone(), "rev".into())])
            .await?
            .pop()
            .and_then(|v| v.into_text());
        let Some(rev) = rev else {
            if let Ok(mut m) = self.sites.write() {
                m.remove(site);
            }
            return Ok(());
        };
        let current = self.site(site).filter(|l| l.rev == rev);
        if current
            .as_ref()
            .is_some_and(|l| l.read_at.elapsed() < POPULARITY_EVERY)
        {
            return Ok(());
        }
        let refused = self.refused.read().ok().and_then(|r| r.get(site).cloned());
        if current.is_none() && refused.as_deref() == Some(rev.as_str()) {
            return Ok(()); // said once, when it was refused
        }
        let mut reads = vec![popularity_read(keys, site, popular_items)];
        if current.is_none() {
            reads.push(Read::Field(key, "model".into()));
        }
        let mut values = store.read(&reads).await?.into_iter();
        let popularity = popularity_of(values.next());
        let (model, forest) = match current {
            Some(l) => (l.model.clone(), l.forest.clone()),
            None => {
                let json = values
                    .next()
                    .and_then(|v| v.into_text())
                    .unwrap_or_default();
                let parsed = serde_json::from_str::<Booster>(&json)
                    .map_err(|e| e.to_string())
                    .and_then(|m| rerank::check(&m).map(|()| m));
                match parsed {
                    Ok(m) => {
                        tracing::info!(%site, %rev, trees = m.trees.len(), "re-ranking model loaded");
                        let forest = Arc::new(m.forest());
                        (Arc::new(m), forest)
                    }
                    Err(e) => {
                        tracing::warn!(%site, %rev, error = %e, "re-ranking model refused; ranking with the blend alone");
                        if let Ok(mut m) = self.sites.write() {
                            m.remove(site);
                        }
                        if let Ok(mut r) = self.refused.write() {
                            r.insert(site.clone(), rev);
                        }
                        return Ok(());
                    }
                }
            }
        };
        if let Ok(mut m) = self.sites.write() {
            m.insert(
                site.clone(),
                Arc::new(Learned {
                    rev,
                    model,
                    forest,
                    popularity,
                    read_at: Instant::now(),
                }),
            );
        }
        Ok(())
    }
}

impl Recommender {
    /// Re-reads the site's model (if its revision moved) and popularity into this recommender.
    pub async fn refresh_learned(&self, site: &SiteId) -> Result<(), StoreError> {
        let n = self.config.recommender.rerank_popular_items;
        self.learned
            .refresh(&*self.store, &self.keys, site, n)
            .await
    }

    /// Stores a site's model (checked first) and puts it in force here at once; the other
    /// recommenders load it at their next refresh.
    pub async fn put_model(&self, site: &SiteId, model: &Booster) -> Result<(), StoreModelError> {
        store_model(&*self.store, &self.keys, site, model).await?;
        self.refresh_learned(site).await?;
        Ok(())
    }
}

/// Largest model accepted (a 300-tree model of 31 leaves is about 1 MB of JSON).
const MAX_MODEL_BYTES: usize = 32 * 1024 * 1024;

/// The re-ranking model's routes, merged into the recommender's router.
pub(crate) fn routes() -> Routes<Recommender> {
    let admin = Access::Site(Scope::Admin);
    Routes::new()
        .route(Method::GET, "/admin/ranker", admin, get(get_ranker))
        .route(
            Method::PUT,
            "/admin/ranker",
            admin,
            put(put_ranker).layer(DefaultBodyLimit::max(MAX_MODEL_BYTES)),
        )
        .route(
            Method::DELETE,
            "/admin/ranker",
            admin,
            delete(delete_ranker),
        )
}

/// The model in force on a site.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RankerInfo {
    pub site_id: String,
    /// A digest of the model's JSON.
    pub rev: String,
    pub trees: usize,
    pub features: Vec<String>,
}

fn info(site: &SiteId, l: &Learned) -> RankerInfo {
    RankerInfo {
        site_id: site.to_string(),
        rev: l.rev.clone(),
        trees: l.model.trees.len(),
        features: l.model.features.clone(),
    }
}

/// Loads a re-ranking model (`tailor ranker fit`) for a site.
#[utoipa::path(put, path = "/admin/ranker", tag = "ranker",
    params(("site" = String, Query, description = "the site id")),
    request_body(content = Object, description = "the model, as `tailor ranker fit` writes it"),
    responses(
        (status = 200, description = "stored and in force", body = RankerInfo),
        (status = 400, description = "not a model this build can use (the message says why)", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn put_ranker(
    State(r): State<Recommender>,
    Query(q): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let model: Booster = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| bad("model", format!("at {}: {}", e.path(), e.inner())))?;
    // A store outage is a 503 like any other, not the model's fault.
    r.put_model(&site, &model).await.map_err(|e| match e {
        StoreModelError::Unusable(why) => bad("model", why),
        StoreModelError::Store(e) => e.into(),
    })?;
    let loaded = r
        .learned
        .site(&site)
        .ok_or_else(|| ApiError::NotFound(format!("re-ranking model of {site}")))?;
    Ok(Json(info(&site, &loaded)).into_response())
}

/// The re-ranking model in force on a site.
#[utoipa::path(get, path = "/admin/ranker", tag = "ranker",
    params(("site" = String, Query, description = "the site id")),
    responses(
        (status = 200, description = "the model in force", body = RankerInfo),
        (status = 404, description = "the site ranks with the blend alone", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn get_ranker(
    State(r): State<Recommender>,
    Query(q): Params,
) -> Result<Json<RankerInfo>, ApiError> {
    let site = r.site(&q)?;
    r.refresh_learned(&site).await?;
    match r.learned.site(&site) {
        Some(l) => Ok(Json(info(&site, &l))),
        None => Err(ApiError::NotFound(format!("re-ranking model of {site}"))),
    }
}

/// Removes a site's re-ranking model: it ranks with the blend alone.
#[utoipa::path(delete, path = "/admin/ranker", tag = "ranker",
    params(("site" = String, Query, description = "the site id")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "the site has no model", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn delete_ranker(
    State(r): State<Recommender>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    let key = r.keys.ranker(&site);
    let had = r
        .store
        .read(&[Read::Field(key.clone(), "rev".into())])
        .await?
        .pop()
        .and_then(|v| v.into_text())
        .is_some();
    if !had {
        return Err(ApiError::NotFound(format!("re-ranking model of {site}")));
    }
    r.store
        .apply(&[Update {
            ops: vec![WriteOp::Delete { key }],
            ..Default::default()
        }])
        .await?;
    r.refresh_learned(&site).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rank::boost::Tree;
    use tailor_infra::store::memory::MemoryStore;

    fn stump(value: f32) -> Booster {
        Booster {
            features: rerank::names(),
            trees: vec![Tree {
                feature: vec![-1],
                value: vec![value],
                left: vec![0],
                right: vec![0],
            }],
        }
    }

    #[tokio::test]
    async fn a_model_loads_with_its_revision_and_a_bad_one_leaves_the_blend_alone() {
        let store = MemoryStore::new();
        let keys = KeySpace::new("t");
        let site = SiteId::parse("s").unwrap();
        let cache = LearnedCache::default();
        cache.refresh(&store, &keys, &site, 10).await.unwrap();
        assert!(cache.site(&site).is_none(), "no model stored");

        store
            .apply(&[Update {
                ops: vec![WriteOp::ZIncr {
                    key: keys.popular(&site),
                    member: "a".into(),
                    by: 3.0,
                }],
                ..Default::default()
            }])
            .await
            .unwrap();
        let rev = store_model(&store, &keys, &site, &stump(1.0))
            .await
            .unwrap();
        cache.refresh(&store, &keys, &site, 10).await.unwrap();
        let loaded = cache.site(&site).expect("loaded");
        assert_eq!(loaded.rev, rev);
        assert_eq!(*loaded.model, stump(1.0));
        assert_eq!(loaded.popularity.get("a"), Some(&3.0));
        // Another model is another revision.
        let rev2 = store_model(&store, &keys, &site, &stump(2.0))
            .await
            .unwrap();
        assert_ne!(rev, rev2);
        cache.refresh(&store, &keys, &site, 10).await.unwrap();
        assert_eq!(*cache.site(&site).unwrap().model, stump(2.0));

        // A model of other features is refused at the door, and one written past it is not loaded.
        let other = Booster {
            features: vec!["x".into()],
            ..stump(1.0)
        };
        let err = store_model(&store, &keys, &site, &other).await.unwrap_err();
        assert!(err.to_string().contains("this build computes"), "{err}");
        store
            .apply(&[Update {
                ops: vec![
                    WriteOp::HashSet {
                        key: keys.ranker(&site),
                        field: "model".into(),
                        value: serde_json::to_string(&other).unwrap(),
                    },
                    WriteOp::HashSet {
                        key: keys.ranker(&site),
                        field: "rev".into(),
                        value: "by-hand".into(),
                    },
                ],
                ..Default::default()
            }])
            .await
            .unwrap();
        cache.refresh(&store, &keys, &site, 10).await.unwrap();
        assert!(cache.site(&site).is_none(), "refused: the blend alone");
    }
}
