//! The business rules' admin API and the recommender's compiled copy of them.
//!
//! * `GET /admin/rules?site=`: every rule in force on the site, configured (`source: "config"`) and
//!   added here (`source: "api"`), by name;
//! * `PUT /admin/rules/{name}?site=` with a rule (`tailor_core::rules::RuleDef`, without `name` and
//!   `site`, which come from the path and query): adds or replaces it; a bad rule is refused with
//!   400 naming the field, a configured name with 409;
//! * `DELETE /admin/rules/{name}?site=`: removes a rule added here (204; configured: 409; 404).
//!
//! Rules added here live in the site's slot (`NS:{site}:rules`, name → JSON). [`RuleCache`] holds each
//! site's compiled rules ([`tailor_core::rules::site_rules`]); the background refresh
//! (`crate::refresh`) re-reads the small hash and recompiles only when it changed, and a write here
//! refreshes its site before answering.

use crate::api::{bad, ApiError, Recommender};
use crate::definitions;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::Json;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tailor_core::access::Scope;
use tailor_core::event::FieldError;
use tailor_core::keys::KeySpace;
use tailor_core::rules::{self, Rule, RuleDef, MAX_RULES_PER_SITE};
use tailor_core::SiteId;
use tailor_infra::auth::{Access, Routes};
use tailor_infra::http::error_with;
use tailor_infra::store::{Store, StoreError};

/// One site's rules as last compiled, with the stored hash they came from.
struct Compiled {
    stored: HashMap<String, String>,
    rules: Arc<[Rule]>,
}

/// Every site's business rules, compiled, in memory.
pub struct RuleCache {
    configured: Vec<RuleDef>,
    sites: RwLock<HashMap<SiteId, Compiled>>,
}

impl RuleCache {
    /// A cache over the configured rules (`[[rules]]`); stored ones join at each site's first refresh.
    pub fn new(configured: Vec<RuleDef>) -> RuleCache {
        RuleCache {
            configured,
            sites: RwLock::default(),
        }
    }

    /// The rules in force on the site, sorted by name, for `tailor_core::rules::apply`.
    pub fn for_site(&self, site: &SiteId) -> Arc<[Rule]> {
        if let Some(c) = self.sites.read().expect("rule cache lock").get(site) {
            return c.rules.clone();
        }
        rules::site_rules(&self.configured, &HashMap::new(), site)
            .0
            .into()
    }

    fn configured_for<'a>(&'a self, site: &'a SiteId) -> impl Iterator<Item = &'a RuleDef> {
        self.configured
            .iter()
            .filter(move |d| d.site.as_deref().is_none_or(|s| s == site.as_str()))
    }

    /// Re-reads the site's stored rules and recompiles them if they changed.
    pub async fn refresh(
        &self,
        store: &dyn Store,
        keys: &KeySpace,
        site: &SiteId,
    ) -> Result<(), StoreError> {
        let stored = definitions::stored(store, &keys.rules(site)).await?;
        let same = self
            .sites
            .read()
            .expect("rule cache lock")
            .get(site)
            .is_some_and(|c| c.stored == stored);
        if same {
            return Ok(());
        }
        let (compiled, problems) = rules::site_rules(&self.configured, &stored, site);
        for p in problems {
            tracing::warn!(%site, problem = %p, "business rule skipped");
        }
        metrics::gauge!("tailor_recommender_rules", "site" => site.to_string())
            .set(compiled.len() as f64);
        self.sites.write().expect("rule cache lock").insert(
            site.clone(),
            Compiled {
                stored,
                rules: compiled.into(),
            },
        );
        Ok(())
    }
}

/// The rules routes, merged into the recommender's router.
pub(crate) fn routes() -> Routes<Recommender> {
    let admin = Access::Site(Scope::Admin);
    Routes::new()
        .route(Method::GET, "/admin/rules", admin, get(list_rules))
        .route(Method::PUT, "/admin/rules/{name}", admin, put(put_rule))
        .route(
            Method::DELETE,
            "/admin/rules/{name}",
            admin,
            delete(delete_rule),
        )
}

/// A rule as listed.
#[derive(Debug, Serialize)]
pub struct RuleInfo {
    #[serde(flatten)]
    pub rule: RuleDef,
    /// `config` or `api`.
    pub source: &'static str,
}

use tailor_infra::api::Params;

fn invalid_rule(field: String, message: String) -> Response {
    error_with(
        StatusCode::BAD_REQUEST,
        "invalid_rule",
        message,
        Some(field),
        vec![],
    )
}

/// The site's business rules, configured and added through the API.
#[utoipa::path(get, path = "/admin/rules", tag = "rules",
    params(("site" = String, Query, description = "the site id")),
    responses(
        (status = 200, description = "every rule with where it is defined", body = Vec<Object>),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody)))]
async fn list_rules(
    State(r): State<Recommender>,
    Query(q): Params,
) -> Result<Json<Vec<RuleInfo>>, ApiError> {
    let site = r.site(&q)?;
    let stored = definitions::stored(&*r.store, &r.keys.rules(&site)).await?;
    let mut all: Vec<RuleInfo> = r
        .rules
        .configured_for(&site)
        .map(|d| RuleInfo {
            rule: d.clone(),
            source: "config",
        })
        .collect();
    for raw in stored.values() {
        match serde_json::from_str::<RuleDef>(raw) {
            Ok(d) if !all.iter().any(|i| i.rule.name == d.name) => all.push(RuleInfo {
                rule: d,
                source: "api",
            }),
            _ => {}
        }
    }
    all.sort_by(|a, b| a.rule.name.cmp(&b.rule.name));
    Ok(Json(all))
}

/// Adds or replaces a business rule (docs/catalog.md, "Business rules").
#[utoipa::path(put, path = "/admin/rules/{name}", tag = "rules",
    params(("name" = String, Path, description = "the rule's name"), ("site" = String, Query, description = "the site id")),
    request_body(content = Object, description = "the rule: kind, selectors, scope"),
    responses(
        (status = 200, description = "the stored rule", body = Object),
        (status = 400, description = "a bad rule (`invalid_rule`, `field` names the field)", body = tailor_infra::http::ErrorBody),
        (status = 409, description = "the rule is defined in the configuration", body = tailor_infra::http::ErrorBody)))]
async fn put_rule(
    State(r): State<Recommender>,
    Path(name): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let mut def: RuleDef = match serde_path_to_error::deserialize(&mut de) {
        Ok(d) => d,
        Err(e) => {
            let mut e = FieldError::from_path_error(e);
            if e.field == "." {
                e.field = "body".into();
            }
            return Ok(invalid_rule(e.field.clone(), e.to_string()));
        }
    };
    if !def.name.is_empty() && def.name != name {
        return Err(bad("name", "must be absent or match the path"));
    }
    if def.site.as_deref().is_some_and(|s| s != site.as_str()) {
        return Err(bad("site", "must be absent or match the query's site"));
    }
    def.name = name.clone();
    def.site = Some(site.to_string());
    if let Err(e) = rules::check(&def) {
        return Ok(invalid_rule(e.field.clone(), e.to_string()));
    }
    if r.rules.configured_for(&site).any(|d| d.name == name) {
        return Err(ApiError::Configured(format!("rule {name:?}")));
    }
    definitions::put(
        &*r.store,
        r.keys.rules(&site),
        name,
        serde_json::to_string(&def).expect("a rule serialises"),
        MAX_RULES_PER_SITE,
        "name",
        "rules",
    )
    .await?;
    r.rules.refresh(&*r.store, &r.keys, &site).await?;
    Ok(Json(def).into_response())
}

/// Removes a business rule added through the API.
#[utoipa::path(delete, path = "/admin/rules/{name}", tag = "rules",
    params(("name" = String, Path, description = "the rule's name"), ("site" = String, Query, description = "the site id")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "no such rule", body = tailor_infra::http::ErrorBody),
        (status = 409, description = "the rule is defined in the configuration", body = tailor_infra::http::ErrorBody)))]
async fn delete_rule(
    State(r): State<Recommender>,
    Path(name): Path<String>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    if r.rules.configured_for(&site).any(|d| d.name == name) {
        return Err(ApiError::Configured(format!("rule {name:?}")));
    }
    definitions::delete(&*r.store, r.keys.rules(&site), name, "rule").await?;
    r.rules.refresh(&*r.store, &r.keys, &site).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tailor_core::ops::{Update, WriteOp};
    use tailor_infra::store::memory::MemoryStore;

    #[tokio::test]
    async fn the_cache_merges_configured_and_stored_rules_per_site() {
        let configured: Vec<RuleDef> = serde_json::from_value(json!([
            {"name": "everywhere", "kind": "exclude", "items": ["x"]},
            {"name": "only-other", "kind": "exclude", "items": ["x"], "site": "other"}]))
        .unwrap();
        let cache = RuleCache::new(configured);
        let store = MemoryStore::new();
        let keys = KeySpace::default();
        let site = SiteId::parse("demo").unwrap();
        let names = |c: &RuleCache| -> Vec<String> {
            c.for_site(&site).iter().map(|r| r.name.clone()).collect()
        };
        assert_eq!(
            names(&cache),
            ["everywhere"],
            "configured ones before any refresh"
        );
        store
            .apply(&[Update {
                ops: vec![WriteOp::HashSet {
                    key: keys.rules(&site),
                    field: "added".into(),
                    value: json!({"name": "added", "kind": "boost", "tags": ["t"], "factor": 2})
                        .to_string(),
                }],
                ..Default::default()
            }])
            .await
            .unwrap();
        assert_eq!(names(&cache), ["everywhere"]);
        cache.refresh(&store, &keys, &site).await.unwrap();
        assert_eq!(names(&cache), ["added", "everywhere"]);
    }
}
