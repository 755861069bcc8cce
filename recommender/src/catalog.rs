//! The product catalog API and the recommender's in-memory copy of it.
//!
//! * `PUT /v1/catalog/items?site=` with a JSON array of items (`tailor_core::catalog`): upserts them
//!   all in one atomic update, or, if any element is invalid, writes nothing and answers 400 with
//!   every bad element's `index`, `field` and `reason`;
//! * `GET /v1/catalog/items/{item_id}?site=`: the stored item (404 if absent);
//! * `DELETE /v1/catalog/items/{item_id}?site=`: removes it (204, or 404).
//!
//! The catalog lives in the site's slot (`NS:{site}:catalog`, item id → JSON) with a revision
//! (`NS:{site}:catalog:meta` field `rev`) bumped in the same update as every write. [`CatalogCache`]
//! holds one immutable [`SiteCatalog`] per site: the background refresh (`crate::refresh`) reads the
//! revision, and only when it moved, the whole catalog, and swaps the snapshot. A write through this
//! recommender updates its copy before answering, so its own next request sees the change: in
//! memory when the revision moved by exactly that write (an import of many batches must not re-read
//! the growing catalog after each), else by a reload. A snapshot is never replaced by an older
//! revision, so concurrent refreshes cannot go backwards.
//!
//! Why no category index in the store: the recommender reads every item into memory anyway, and
//! [`SiteCatalog`] indexes categories there; a stored index would only have to be kept in step.

use crate::api::{bad, ApiError, Recommender};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tailor_core::access::Scope;
use tailor_core::catalog::{parse_batch, CatalogItem, SiteCatalog};
use tailor_core::keys::KeySpace;
use tailor_core::ops::{Update, WriteOp};
use tailor_core::{ItemId, SiteId};
use tailor_infra::auth::{Access, Routes};
use tailor_infra::http::error_with;
use tailor_infra::store::{Read, Store, StoreError};

/// Largest catalog request body (items carry long URLs; the item count is bounded by config).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One site's catalog as last loaded, with the revision it was read at.
struct Loaded {
    rev: i64,
    catalog: Arc<SiteCatalog>,
}

/// Every site's catalog, in memory. Cheap to read: a lookup takes a read lock for a hash lookup and
/// hands out an `Arc`.
#[derive(Default)]
pub struct CatalogCache {
    sites: RwLock<HashMap<SiteId, Loaded>>,
}

impl CatalogCache {
    pub fn new() -> CatalogCache {
        CatalogCache::default()
    }

    /// The item, if the site's catalog lists it.
    pub fn get(&self, site: &SiteId, item_id: &str) -> Option<Arc<CatalogItem>> {
        let sites = self.sites.read().expect("catalog cache lock");
        sites.get(site)?.catalog.get(item_id).cloned()
    }

    /// The site's whole catalog as one consistent snapshot (empty before the first load): take it
    /// once per request and look items up, or walk categories, in it.
    pub fn site(&self, site: &SiteId) -> Arc<SiteCatalog> {
        let sites = self.sites.read().expect("catalog cache lock");
        sites
            .get(site)
            .map_or_else(Default::default, |l| l.catalog.clone())
    }

    fn rev(&self, site: &SiteId) -> Option<i64> {
        let sites = self.sites.read().expect("catalog cache lock");
        sites.get(site).map(|l| l.rev)
    }

    /// Takes this recommender's own write into its copy: when the stored revision shows that no
    /// other write came since the copy was loaded, by changing the copy in memory; else by a reload.
    pub async fn wrote(
        &self,
        store: &dyn Store,
        keys: &KeySpace,
        site: &SiteId,
        upserted: Vec<CatalogItem>,
        deleted: &[&str],
    ) -> Result<(), StoreError> {
        let rev_read = Read::Field(keys.catalog_meta(site), KeySpace::CATALOG_REV.into());
        let stored_rev = parse_rev(store.read(&[rev_read]).await?);
        {
            let mut sites = self.sites.write().expect("catalog cache lock");
            if let Some(l) = sites.get(site).filter(|l| l.rev + 1 == stored_rev) {
                let catalog = Arc::new(l.catalog.with_changes(upserted, deleted));
                loaded(site, stored_rev, &catalog);
                sites.insert(
                    site.clone(),
                    Loaded {
                        rev: stored_rev,
                        catalog,
                    },
                );
                return Ok(());
            }
        }
        self.refresh(store, keys, site).await.map(|_| ())
    }

    /// Reloads the site's catalog if its stored revision moved; returns whether it did.
    pub async fn refresh(
        &self,
        store: &dyn Store,
        keys: &KeySpace,
        site: &SiteId,
    ) -> Result<bool, StoreError> {
        let rev_read = Read::Field(keys.catalog_meta(site), KeySpace::CATALOG_REV.into());
        let stored_rev = parse_rev(store.read(std::slice::from_ref(&rev_read)).await?);
        if self.rev(site) == Some(stored_rev) {
            return Ok(false);
        }
        // The revision is read before the items, so the items are at least that new.
        let mut v = store
            .read(&[rev_read, Read::Hash(keys.catalog(site))])
            .await?;
        let hash = v.pop().map(|h| h.into_hash()).unwrap_or_default();
        let rev = parse_rev(v);
        let mut unreadable = 0usize;
        let items: Vec<CatalogItem> = hash
            .into_iter()
            .filter_map(|(id, raw)| match serde_json::from_str(&raw) {
                Ok(item) => Some(item),
                Err(e) => {
                    unreadable += 1;
                    tracing::debug!(%site, item = %id, error = %e, "unreadable catalog item");
                    None
                }
            })
            .collect();
        let catalog = Arc::new(SiteCatalog::new(items));
        let mut sites = self.sites.write().expect("catalog cache lock");
        if sites.get(site).is_some_and(|l| l.rev > rev) {
            return Ok(false);
        }
        if unreadable > 0 {
            tracing::warn!(%site, unreadable, "catalog items skipped");
        }
        loaded(site, rev, &catalog);
        sites.insert(site.clone(), Loaded { rev, catalog });
        Ok(true)
    }
}

/// Reports a new copy of a site's catalog (the one place its gauge is set).
fn loaded(site: &SiteId, rev: i64, catalog: &SiteCatalog) {
    metrics::gauge!("tailor_recommender_catalog_items", "site" => site.to_string())
        .set(catalog.len() as f64);
    tracing::debug!(%site, rev, items = catalog.len(), "catalog loaded");
}

/// The revision from the answer to one `Read::Field` (0 when no catalog was ever written).
fn parse_rev(mut v: Vec<tailor_infra::store::Value>) -> i64 {
    v.pop()
        .and_then(|t| t.into_text())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// The catalog routes, merged into the recommender's router.
pub(crate) fn routes() -> Routes<Recommender> {
    let catalog = Access::Site(Scope::Catalog);
    Routes::new()
        .route(
            Method::PUT,
            "/v1/catalog/items",
            catalog,
            put(put_items).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route(
            Method::GET,
            "/v1/catalog/items/{item_id}",
            catalog,
            get(get_item),
        )
        .route(
            Method::DELETE,
            "/v1/catalog/items/{item_id}",
            catalog,
            delete(delete_item),
        )
}

/// Counts catalog writes by outcome (`upserted`, `rejected`, `deleted`), in one place.
fn count(outcome: &'static str, n: usize) {
    metrics::counter!("tailor_catalog_items_total", "outcome" => outcome).increment(n as u64);
}

use tailor_infra::api::Params;

/// Upserts catalog items (a JSON array; all or nothing, docs/catalog.md).
#[utoipa::path(put, path = "/v1/catalog/items", tag = "catalog",
    params(("site" = String, Query, description = "the site id")),
    request_body(content = Vec<Object>, description = "catalog items (docs/catalog.md)"),
    responses(
        (status = 200, description = "how many items were upserted", body = Object),
        (status = 400, description = "a bad site, body or element (`invalid_items` lists each with its index and field)", body = tailor_infra::http::ErrorBody),
        (status = 413, description = "more items than catalog.max_items_per_request", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the store is unavailable", body = tailor_infra::http::ErrorBody)))]
async fn put_items(
    State(r): State<Recommender>,
    Query(q): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| bad("body", format!("not JSON: {e}")))?;
    let Value::Array(elements) = value else {
        return Err(bad("body", "must be a JSON array of items"));
    };
    let max = r.config.catalog.max_items_per_request;
    if elements.is_empty() {
        return Err(bad("body", "holds no items"));
    }
    if elements.len() > max {
        return Ok(error_with(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!(
                "{} items in one request; at most {max} (catalog.max_items_per_request)",
                elements.len()
            ),
            Some("body".into()),
            vec![],
        ));
    }
    let total = elements.len();
    let items = match parse_batch(elements) {
        Ok(items) => items,
        Err(bad) => {
            count("rejected", bad.len());
            let details: Vec<Value> = bad
                .iter()
                .map(|(index, e)| json!({"index": index, "field": e.field, "reason": e.reason}))
                .collect();
            return Ok(error_with(
                StatusCode::BAD_REQUEST,
                "invalid_items",
                format!(
                    "{} of {total} items are invalid; nothing was written",
                    bad.len()
                ),
                None,
                details,
            ));
        }
    };
    let mut ops: Vec<WriteOp> = items
        .iter()
        .map(|item| WriteOp::HashSet {
            key: r.keys.catalog(&site),
            field: item.item_id.to_string(),
            value: serde_json::to_string(item).expect("an item serialises"),
        })
        .collect();
    ops.push(bump_rev(&r.keys, &site));
    r.store
        .apply(&[Update {
            ops,
            ..Default::default()
        }])
        .await?;
    count("upserted", total);
    r.catalog
        .wrote(&*r.store, &r.keys, &site, items, &[])
        .await?;
    Ok(Json(json!({"site_id": site.to_string(), "upserted": total})).into_response())
}

fn bump_rev(keys: &KeySpace, site: &SiteId) -> WriteOp {
    WriteOp::HashIncr {
        key: keys.catalog_meta(site),
        field: KeySpace::CATALOG_REV.into(),
        by: 1,
    }
}

/// The site and item of a per-item request, and the item's stored JSON (`None`: not in the catalog).
async fn stored_item(
    r: &Recommender,
    item_id: String,
    q: &HashMap<String, String>,
) -> Result<(SiteId, ItemId, Option<String>), ApiError> {
    let site = r.site(q)?;
    let item = ItemId::parse(item_id).map_err(|e| bad("item_id", e.to_string()))?;
    let raw = r
        .store
        .read(&[Read::Field(r.keys.catalog(&site), item.to_string())])
        .await?
        .pop()
        .and_then(|v| v.into_text());
    Ok((site, item, raw))
}

/// One catalog item.
#[utoipa::path(get, path = "/v1/catalog/items/{item_id}", tag = "catalog",
    params(("item_id" = String, Path, description = "the item"), ("site" = String, Query, description = "the site id")),
    responses(
        (status = 200, description = "the item", body = Object),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 404, description = "no such item", body = tailor_infra::http::ErrorBody)))]
async fn get_item(
    State(r): State<Recommender>,
    Path(item_id): Path<String>,
    Query(q): Params,
) -> Result<Json<CatalogItem>, ApiError> {
    let (_, item, raw) = stored_item(&r, item_id, &q).await?;
    let raw = raw.ok_or_else(|| ApiError::NotFound(format!("catalog item {item}")))?;
    serde_json::from_str(&raw).map(Json).map_err(|e| {
        ApiError::Store(StoreError::Rejected(format!(
            "catalog item {item} does not parse: {e}"
        )))
    })
}

/// Removes a catalog item.
#[utoipa::path(delete, path = "/v1/catalog/items/{item_id}", tag = "catalog",
    params(("item_id" = String, Path, description = "the item"), ("site" = String, Query, description = "the site id")),
    responses(
        (status = 204, description = "removed (or absent)"),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the store is unavailable", body = tailor_infra::http::ErrorBody)))]
async fn delete_item(
    State(r): State<Recommender>,
    Path(item_id): Path<String>,
    Query(q): Params,
) -> Result<StatusCode, ApiError> {
    let (site, item, raw) = stored_item(&r, item_id, &q).await?;
    if raw.is_none() {
        return Err(ApiError::NotFound(format!("catalog item {item}")));
    }
    let ops = vec![
        WriteOp::HashDelete {
            key: r.keys.catalog(&site),
            field: item.to_string(),
        },
        bump_rev(&r.keys, &site),
    ];
    r.store
        .apply(&[Update {
            ops,
            ..Default::default()
        }])
        .await?;
    count("deleted", 1);
    r.catalog
        .wrote(&*r.store, &r.keys, &site, vec![], &[item.as_str()])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailor_core::catalog::parse_item;
    use tailor_infra::store::memory::MemoryStore;

    fn item(id: &str, in_stock: bool) -> String {
        json!({"item_id": id, "title": id, "url": "/p", "price": 1, "currency": "EUR",
            "in_stock": in_stock, "category": "a/b"})
        .to_string()
    }

    async fn write(store: &MemoryStore, keys: &KeySpace, site: &SiteId, id: &str, in_stock: bool) {
        store
            .apply(&[Update {
                ops: vec![
                    WriteOp::HashSet {
                        key: keys.catalog(site),
                        field: id.into(),
                        value: item(id, in_stock),
                    },
                    bump_rev(keys, site),
                ],
                ..Default::default()
            }])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_cache_follows_the_stored_revision() {
        let store = MemoryStore::new();
        let keys = KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        let cache = CatalogCache::new();
        assert!(cache.get(&site, "x").is_none(), "nothing before a load");
        assert!(cache.site(&site).is_empty());
        assert!(
            cache.refresh(&store, &keys, &site).await.unwrap(),
            "first load"
        );
        assert!(
            !cache.refresh(&store, &keys, &site).await.unwrap(),
            "unchanged"
        );
        write(&store, &keys, &site, "x", true).await;
        assert!(cache.get(&site, "x").is_none(), "not before a refresh");
        assert!(cache.refresh(&store, &keys, &site).await.unwrap());
        assert!(cache.get(&site, "x").unwrap().in_stock);
        write(&store, &keys, &site, "x", false).await;
        write(&store, &keys, &site, "y", true).await;
        assert!(cache.refresh(&store, &keys, &site).await.unwrap());
        assert!(!cache.get(&site, "x").unwrap().in_stock);
        assert_eq!(cache.site(&site).in_category("a").count(), 2);
        assert!(!cache.refresh(&store, &keys, &site).await.unwrap());
        let other = SiteId::parse("other").unwrap();
        assert!(cache.get(&other, "x").is_none(), "sites are apart");
    }

    fn parsed(id: &str) -> CatalogItem {
        parse_item(serde_json::from_str(&item(id, true)).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn an_own_write_changes_the_copy_in_memory_unless_another_came_between() {
        let store = MemoryStore::new();
        let keys = KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        let cache = CatalogCache::new();
        write(&store, &keys, &site, "x", true).await;
        cache.refresh(&store, &keys, &site).await.unwrap();
        // Our write only: the copy gains the item without a reload. The stored JSON is made to
        // differ from what we pass, so a reload would show.
        store
            .apply(&[Update {
                ops: vec![
                    WriteOp::HashSet {
                        key: keys.catalog(&site),
                        field: "y".into(),
                        value: item("y", false),
                    },
                    bump_rev(&keys, &site),
                ],
                ..Default::default()
            }])
            .await
            .unwrap();
        cache
            .wrote(&store, &keys, &site, vec![parsed("y")], &["x"])
            .await
            .unwrap();
        assert!(cache.get(&site, "y").unwrap().in_stock, "taken from memory");
        assert!(cache.get(&site, "x").is_none());
        assert!(
            !cache.refresh(&store, &keys, &site).await.unwrap(),
            "up to date"
        );
        // Someone else wrote in between: a reload, which sees both writes as stored.
        write(&store, &keys, &site, "z", true).await;
        write(&store, &keys, &site, "w", true).await;
        cache
            .wrote(&store, &keys, &site, vec![parsed("w")], &[])
            .await
            .unwrap();
        assert!(cache.get(&site, "z").is_some(), "the other write is seen");
        assert!(
            !cache.get(&site, "y").unwrap().in_stock,
            "reloaded from the store"
        );
        assert!(
            cache.get(&site, "x").is_some(),
            "x was never deleted in the store"
        );
    }
}
