//! The recommender's in-memory copies of what shops change rarely but every request reads: the
//! product catalog ([`CatalogCache`]), the business rules ([`RuleCache`]) and the campaigns with
//! their counters ([`CampaignCache`]) and the learned re-ranking model
//! ([`crate::learned::LearnedCache`]), kept fresh by one background task per process, which also
//! keeps each site's popular items for the answers past `recommender.timeout_ms`.
//!
//! Each tick costs one small read per site and cache when nothing changed (the catalog's revision,
//! the rules hash, the campaigns and counters hashes); a request never waits for the store to learn
//! them. A failed refresh keeps the last copy and is retried at the next tick.

use crate::api::Recommender;
use crate::campaigns::CampaignCache;
use crate::catalog::CatalogCache;
use crate::lists::ListCache;
use crate::rules::RuleCache;
use crate::sessions::SessionCache;
use std::sync::Arc;
use std::time::Duration;
use tailor_core::config::Config;
use tailor_core::keys::KeySpace;
use tailor_core::SiteId;
use tailor_infra::store::Store;
use tailor_infra::Shutdown;

impl Recommender {
    /// A recommender over `store` with empty caches; start [`run`] to fill and refresh them.
    pub fn new(store: Arc<dyn Store>, keys: KeySpace, config: Arc<Config>) -> Recommender {
        Recommender {
            store,
            keys,
            catalog: Arc::new(CatalogCache::new()),
            rules: Arc::new(RuleCache::new(config.rules.clone())),
            campaigns: Arc::new(CampaignCache::new(config.campaigns.clone())),
            sessions: Arc::new(SessionCache::new(
                config.recommender.session_cache,
                Duration::from_millis(config.recommender.session_index_cache_ms),
                f64::from(config.recommender.session_timeout_mins) * 60_000.0,
            )),
            index: Arc::new(ListCache::new(
                "session_index",
                config.recommender.session_index_cache,
                Duration::from_millis(config.recommender.session_index_cache_ms),
            )),
            lists: Arc::new(ListCache::new(
                "shared_lists",
                config.recommender.shared_list_cache,
                Duration::from_millis(config.recommender.shared_list_cache_ms),
            )),
            learned: Arc::default(),
            config,
            popular: Arc::default(),
        }
    }

    /// Refreshes every cache of one site once.
    pub async fn refresh_caches(&self, site: &SiteId) {
        if let Err(e) = self.catalog.refresh(&*self.store, &self.keys, site).await {
            tracing::warn!(%site, error = %e, "catalog refresh failed; keeping the last copy");
        }
        if let Err(e) = self.rules.refresh(&*self.store, &self.keys, site).await {
            tracing::warn!(%site, error = %e, "rules refresh failed; keeping the last copy");
        }
        if let Err(e) = self.campaigns.refresh(&*self.store, &self.keys, site).await {
            tracing::warn!(%site, error = %e, "campaigns refresh failed; keeping the last copy");
        }
        if let Err(e) = self.refresh_learned(site).await {
            tracing::warn!(%site, error = %e, "re-ranking model refresh failed; keeping the last copy");
        }
        if let Err(e) = self.refresh_popular(site).await {
            tracing::warn!(%site, error = %e, "popular items refresh failed; keeping the last copy");
        }
    }
}

/// Refreshes the caches of every configured site now and then every `catalog.refresh_ms`, until
/// shutdown.
pub async fn run(r: Recommender, shutdown: Shutdown) {
    let sites: Vec<SiteId> = r
        .config
        .sites
        .iter()
        .filter_map(|s| SiteId::parse(s.id.clone()).ok())
        .collect();
    let every = Duration::from_millis(r.config.catalog.refresh_ms);
    loop {
        for site in &sites {
            r.refresh_caches(site).await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
