//! Campaigns: their admin API, the recommender's in-memory copy of them and their counters, and
//! the offers a page view gets.
//!
//! * `GET /admin/campaigns?site=`: every campaign in force on the site, configured
//!   (`source: "config"`) and added here (`source: "api"`), by id, with its counters per variant;
//! * `GET /admin/campaigns/{id}?site=`: one of them (404 when absent);
//! * `PUT /admin/campaigns/{id}?site=` with a campaign (`tailor_core::campaign::CampaignDef`, without
//!   `id` and `site`, which come from the path and query): adds or replaces it; a bad campaign is
//!   refused with 400 naming the field, a configured id with 409;
//! * `DELETE /admin/campaigns/{id}?site=`: removes one added here (204; configured: 409; 404).
//!
//! Campaigns added here live in the site's slot (`NS:{site}:campaigns`, id → JSON), their counters
//! beside them (`NS:{site}:campaigns:stats`, written by the processor exactly once per event).
//! [`CampaignCache`] holds each site's compiled campaigns and last-read counters; the background
//! refresh (`crate::refresh`) re-reads both small hashes every `catalog.refresh_ms` (recompiling
//! only when the definitions changed), and a write here refreshes its site before answering. So a
//! budget is enforced against counters at most one refresh old: it may overshoot by the offers
//! shown in that interval.
//!
//! [`Recommender::offers`] is the hot path: for a request naming a slot, the campaigns filling it
//! that are eligible for the visitor (`tailor_core::campaign::Campaign::eligible`), highest
//! `priority` first, ties broken by a Thompson draw, at most `recommender.offers_per_slot`, each
//! with a signed token. It costs no store read when no campaign fills the slot, else one read of
//! the visitor's document (and the site's models when an audience rule needs facts). A visitor
//! with no id gets no offers: without one there is no stable assignment and no cap.

use crate::api::{bad, ApiError, Recommender};
use crate::definitions;
use crate::engine::Context;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::Json;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use tailor_core::access::Scope;
use tailor_core::campaign::{
    self, Campaign, CampaignDef, Counts, Member, OfferToken, Rng, Stats, MAX_CAMPAIGNS_PER_SITE,
};
use tailor_core::event::FieldError;
use tailor_core::keys::KeySpace;
use tailor_core::models::Facts;
use tailor_core::state::DAY_MS;
use tailor_core::SiteId;
use tailor_infra::auth::{Access, Routes};
use tailor_infra::http::error_with;
use tailor_infra::store::{Read, Store, StoreError};

/// One site's campaigns as last compiled, with the stored hash they came from, and its counters.
struct Loaded {
    stored: HashMap<String, String>,
    campaigns: Arc<[Campaign]>,
    stats: Arc<Stats>,
}

/// Every site's campaigns and counters, in memory.
pub struct CampaignCache {
    configured: Vec<CampaignDef>,
    sites: RwLock<HashMap<SiteId, Loaded>>,
}

impl CampaignCache {
    /// A cache over the configured campaigns; stored ones join at each site's first refresh.
    pub fn new(configured: Vec<CampaignDef>) -> CampaignCache {
        CampaignCache {
            configured,
            sites: RwLock::default(),
        }
    }

    /// The campaigns in force on the site, by id, and the counters last read.
    pub fn for_site(&self, site: &SiteId) -> (Arc<[Campaign]>, Arc<Stats>) {
        if let Some(l) = self.sites.read().expect("campaign cache lock").get(site) {
            return (l.campaigns.clone(), l.stats.clone());
        }
        let (c, _) = campaign::site_campaigns(&self.configured, &HashMap::new(), site);
        (c.into(), Arc::default())
    }

    fn configured_for<'a>(&'a self, site: &'a SiteId) -> impl Iterator<Item = &'a CampaignDef> {
        self.configured
            .iter()
            .filter(move |d| d.site.as_deref().is_none_or(|s| s == site.as_str()))
    }

    /// Re-reads the site's stored campaigns and counters; recompiles the campaigns if they changed.
    pub async fn refresh(
        &self,
        store: &dyn Store,
        keys: &KeySpace,
        site: &SiteId,
    ) -> Result<(), StoreError> {
        let (stored, stats) = read_stored(store, keys, site).await?;
        let stats = Arc::new(stats);
        let mut sites = self.sites.write().expect("campaign cache lock");
        if let Some(l) = sites.get_mut(site).filter(|l| l.stored == stored) {
            l.stats = stats;
            return Ok(());
        }
        let (compiled, problems) = campaign::site_campaigns(&self.configured, &stored, site);
        for p in problems {
            tracing::warn!(%site, problem = %p, "campaign skipped");
        }
        metrics::gauge!("tailor_recommender_campaigns", "site" => site.to_string())
            .set(compiled.len() as f64);
        sites.insert(
            site.clone(),
            Loaded {
                stored,
                campaigns: compiled.into(),
                stats,
            },
        );
        Ok(())
    }
}

async fn read_stored(
    store: &dyn Store,
    keys: &KeySpace,
    site: &SiteId,
) -> Result<(HashMap<String, String>, Stats), StoreError> {
    let mut v = store
        .read(&[
            Read::Hash(keys.campaigns(site)),
            Read::Hash(keys.campaign_stats(site)),
        ])
        .await?
        .into_iter();
    let mut next = || v.next().map(|v| v.into_hash()).unwrap_or_default();
    let stored = next();
    let stats = Stats::from_hash(&next());
    Ok((stored, stats))
}

/// One offer in an answer: the variant's fields, why, and the token to send back with its
/// impression and click.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Offer {
    pub campaign: String,
    pub variant: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// A reason a person understands ("you have not ordered for 4 months").
    pub reason: String,
    /// Opaque and signed: the tag sends it back with `offer_impression` and `offer_click` events.
    pub token: String,
}

/// An offer held back because the member is in the campaign's holdout: nothing to show, only a token
/// the tag reports as an `offer_impression` so the control group's exposures and purchases are
/// counted like the treated members' (the lift in the campaign's report).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeldBack {
    pub campaign: String,
    pub token: String,
}

/// A request's offers and held-back offers.
#[derive(Debug, Default)]
pub struct SlotOffers {
    pub offers: Vec<Offer>,
    pub held_back: Vec<HeldBack>,
}

impl Recommender {
    /// The offers for a request, within `recommender.timeout_ms`; none (logged and counted) when
    /// they cannot be decided in time or the store fails, so offers never break the items.
    pub async fn offers_in_time(&self, site: &SiteId, ctx: &Context) -> SlotOffers {
        let budget = std::time::Duration::from_millis(self.config.recommender.timeout_ms);
        let outcome = match tokio::time::timeout(budget, self.offers(site, ctx)).await {
            Ok(Ok(offers)) => return offers,
            Ok(Err(e)) => {
                tracing::warn!(%site, error = %e, "offers skipped");
                "error"
            }
            Err(_) => "timeout",
        };
        metrics::counter!("tailor_recommender_offers_skipped_total", "reason" => outcome)
            .increment(1);
        SlotOffers::default()
    }

    /// The eligible campaigns' offers for the request's slot (see the module docs).
    pub async fn offers(&self, site: &SiteId, ctx: &Context) -> Result<SlotOffers, ApiError> {
        let max = self.config.recommender.offers_per_slot;
        let (Some(slot), Some(subject)) = (ctx.slot.as_deref(), ctx.subject.as_ref()) else {
            return Ok(SlotOffers::default());
        };
        let (campaigns, stats) = self.campaigns.for_site(site);
        let here: Vec<&Campaign> = campaigns.iter().filter(|c| c.fills(slot)).collect();
        if max == 0 || here.is_empty() {
            return Ok(SlotOffers::default());
        }
        // Assignment keys on the member an anonymous id was stitched to, so it holds across devices.
        let (who, state) = match self.state_of(site, subject).await? {
            Some((resolved, state)) => (resolved.to_string(), Some(state)),
            None => (subject.to_string(), None),
        };
        let facts = match &state {
            Some(s) if here.iter().any(|c| c.needs_facts()) => {
                let models = self.models(site).await?;
                Some(Facts::of(
                    s,
                    &models,
                    &self.config.processor.lifecycle,
                    ctx.now_ms,
                ))
            }
            _ => None,
        };
        let member = Member {
            subject: &who,
            state: state.as_ref(),
            facts: facts.as_ref(),
            now_ms: ctx.now_ms,
            half_life_ms: (self.config.processor.interest_half_life_days * DAY_MS as f64) as i64,
        };
        let mut rng = Rng::for_request(&who, ctx.now_ms);
        let secret = &self.config.recommender.offer_secret;
        let sign = |c: &Campaign, variant: &str| {
            campaign::token(
                secret,
                &OfferToken {
                    site: site.to_string(),
                    campaign: c.def.id.clone(),
                    variant: variant.to_string(),
                    subject: who.clone(),
                    issued_ms: ctx.now_ms,
                    windows: c.def.attribution,
                },
            )
        };
        let mut picked: Vec<(i32, f64, &Campaign, usize, String)> = Vec::new();
        let mut held_back = Vec::new();
        for c in here {
            match c.eligible(&member, &stats) {
                Ok(reason) => {
                    let (variant, draw) =
                        campaign::pick_variant(c, c.assign(&who), &stats, &mut rng);
                    picked.push((c.def.priority, draw, c, variant, reason));
                }
                Err(why) => {
                    if why == campaign::Ineligible::Holdout {
                        held_back.push(HeldBack {
                            campaign: c.def.id.clone(),
                            token: sign(c, campaign::HOLDOUT),
                        });
                    }
                    metrics::counter!("tailor_recommender_offers_ineligible_total", "reason" => why.as_str())
                        .increment(1);
                }
            }
        }
        picked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
        let offers: Vec<Offer> = picked
            .into_iter()
            .take(max)
            .map(|(_, _, c, i, reason)| {
                let v = &c.def.variants[i];
                Offer {
                    campaign: c.def.id.clone(),
                    variant: v.name.clone(),
                    title: v.title.clone(),
                    body: v.body.clone(),
                    url: v.url.clone(),
                    image: v.image.clone(),
                    coupon: v.coupon.clone(),
                    items: v.items.clone(),
                    reason,
                    token: sign(c, &v.name),
                }
            })
            .collect();
        metrics::counter!("tailor_recommender_offers_total").increment(offers.len() as u64);
        Ok(SlotOffers { offers, held_back })
    }
}

/// The campaigns routes, merged into the recommender's router.
pub(crate) fn routes() -> Routes<Recommender> {
    let admin = Access::Site(Scope::Admin);
    Routes::new()
        .route(Method::GET, "/admin/campaigns", admin, get(list_campaigns))
        .route(
            Method::GET,
            "/admin/campaigns/{id}",
            admin,
            get(get_campaign),
        )
        .route(
            Method::PUT,
            "/admin/campaigns/{id}",
            admin,
            put(put_campaign),
        )
        .route(
            Method::DELETE,
            "/admin/campaigns/{id}",
            admin,
            delete(delete_campaign),
        )
        .route(
            Method::GET,
            "/admin/campaigns/{id}/report",
            admin,
            get(campaign_report),
        )
        .route(Method::GET, "/admin/actions/dead", admin, get(dead_actions))
}

/// A campaign as listed: its definition, where it is defined, and its counters per variant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignInfo {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub campaign: CampaignDef,
    /// `config` or `api`.
    pub source: String,
    /// Per variant: impressions, clicks, conversions.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<String, Counts>,
}

use tailor_infra::api::Params;

fn invalid_campaign(e: FieldError) -> Response {
    error_with(
        StatusCode::BAD_REQUEST,
        "invalid_campaign",
        e.to_string(),
        Some(e.field),
        vec![],
    )
}

/// Every campaign of the site with its counters, by id.
async fn all(r: &Recommender, site: &SiteId) -> Result<Vec<CampaignInfo>, ApiError> {
    let (stored, stats) = read_stored(&*r.store, &r.keys, site).await?;
    let info = |d: CampaignDef, source: &str| CampaignInfo {
        counts: d
            .variants
            .iter()
            .map(|v| (v.name.clone(), stats.of(&d.id, &v.name)))
            .collect(),
        campaign: d,
        source: source.into(),
    };
    let mut out: Vec<CampaignInfo> = r
        .campaigns
        .configured_for(site)
        .map(|d| info(d.clone(), "config"))
        .collect();
    for raw in stored.values() {
        match serde_json::from_str::<CampaignDef>(raw) {
            Ok(d) if !out.iter().any(|i| i.campaign.id == d.id) => out.push(info(d, "api")),
            _ => {}
        }
    }
    out.sort_by(|a, b| a.campaign.id.cmp(&b.campaign.id));
    Ok(out)
}

/// The site's campaigns, configured and added through the API, with their counters.
#[utoipa::path(get, path = "/admin/campaigns", tag = "campaigns",
    params(("site" = String, Query, description = "the site id")),
    responses(
        (status = 200, description = "every campaign with where it is defined and its counters", body = Vec<CampaignInfo>),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody)))]
async fn list_campaigns(
    State(r): State<Recommender>,
    Query(q): Params,
) -> Result<Json<Vec<CampaignInfo>>, ApiError> {
    let site = r.site(&q)?;
    Ok(Json(all(&r, &site).await?))
}

/// One campaign with its counters per variant.
#[utoipa::path(get, path = "/admin/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, description = "the campaign's id"), ("site" = String, Query, description = "the site id")),
    responses(
        (status = 200, description = "the campaign, where it is defined, its counters", body = CampaignInfo),
        (status = 404, description = "no such campaign", body = tailor_infra::http::ErrorBody)))]
async fn get_campaign(
    State(r): State<Recommender>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Result<Json<CampaignInfo>, ApiError> {
    let site = r.site(&q)?;
    all(&r, &site)
        .await?
        .into_iter()
        .find(|i| i.campaign.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id}")))
}

/// A campaign's results: per variant and for all treated members, impressions, clicks, CTR,
/// conversions, revenue, and the lift of the conversion rate over the holdout with a 95 % interval
/// (docs/marketing.md, "Reports").
#[utoipa::path(get, path = "/admin/campaigns/{id}/report", tag = "campaigns",
    params(("id" = String, Path, description = "the campaign's id"), ("site" = String, Query, description = "the site id")),
    responses(
        (status = 200, description = "the report", body = Object),
        (status = 404, description = "no such campaign", body = tailor_infra::http::ErrorBody)))]
async fn campaign_report(
    State(r): State<Recommender>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Result<Json<campaign::Report>, ApiError> {
    let site = r.site(&q)?;
    let (stored, stats) = read_stored(&*r.store, &r.keys, &site).await?;
    let def = match r.campaigns.configured_for(&site).find(|d| d.id == id) {
        Some(d) => d.clone(),
        None => stored
            .get(&id)
            .and_then(|raw| serde_json::from_str::<CampaignDef>(raw).ok())
            .ok_or_else(|| ApiError::NotFound(format!("campaign {id}")))?,
    };
    Ok(Json(campaign::report(&def, site.as_str(), &stats)))
}

/// Outbound actions whose webhook kept failing, newest first: each with the action and the last error.
#[utoipa::path(get, path = "/admin/actions/dead", tag = "campaigns",
    params(("site" = String, Query, description = "the site id"),
           ("limit" = Option<usize>, Query, description = "at most this many (default 100, at most 1000)")),
    responses(
        (status = 200, description = "the dead actions", body = Vec<Object>),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody)))]
async fn dead_actions(
    State(r): State<Recommender>,
    Query(q): Params,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let site = r.site(&q)?;
    let limit = tailor_infra::api::limit(&q, 100, 1000)?;
    let list = r
        .store
        .read(&[Read::List(r.keys.actions_dead(&site), limit)])
        .await?
        .pop()
        .map(|v| v.into_list())
        .unwrap_or_default();
    Ok(Json(
        list.iter()
            .filter_map(|raw| serde_json::from_str(raw).ok())
            .collect(),
    ))
}

/// Adds or replaces a campaign (docs/marketing.md).
#[utoipa::path(put, path = "/admin/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, description = "the campaign's id"), ("site" = String, Query, description = "the site id")),
    request_body(content = Object, description = "the campaign: audience, trigger, slots, priority, schedule, variants, cap, budget, holdout"),
    responses(
        (status = 200, description = "the stored campaign", body = Object),
        (status = 400, description = "a bad campaign (`invalid_campaign`, `field` names the field)", body = tailor_infra::http::ErrorBody),
        (status = 409, description = "the campaign is defined in the configuration", body = tailor_infra::http::ErrorBody)))]
async fn put_campaign(
    State(r): State<Recommender>,
    Path(id): Path<String>,
    Query(q): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let mut def: CampaignDef = match serde_path_to_error::deserialize(&mut de) {
        Ok(d) => d,
        Err(e) => {
            let mut e = FieldError::from_path_error(e);
            if e.field == "." {
                e.field = "body".into();
            }
            return Ok(invalid_campaign(e));
        }
    };
    if !def.id.is_empty() && def.id != id {
        return Err(bad("id", "must be absent or match the path"));
    }
    if def.site.as_deref().is_some_and(|s| s != site.as_str()) {
        return Err(bad("site", "must be absent or match the query's site"));
    }
    def.id = id.clone();
    def.site = Some(site.to_string());
    if let Err(e) = campaign::check(&def) {
        return Ok(invalid_campaign(e));
    }
    if r.campaigns.configured_for(&site).any(|d| d.id == id) {
        return Err(ApiError::Configured(format!("campaign {id:?}")));
    }
    definitions::put(
        &*r.store,
        r.keys.campaigns(&site),
        id,
        serde_json::to_string(&def).expect("a campaign serialises"),
        MAX_CAMPAIGNS_PER_SITE,
        "id",
        "campaigns",
    )
    .await?;
    r.campaigns.refresh(&*r.store, &r.keys, &site).await?;
    Ok(Json(def).into_response())
}

/// Removes a campaign added through the API (its counters stay, for reports).
#[utoipa::path(delete, path = "/admin/campaigns/{id}", tag = "campaigns",
    params(("id" = String, Path, description = "the campaign's id"), ("site" = String, Query, description = "the site id")),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "no such campaign", body = tailor_infra::http::ErrorBody),
        (status = 409, description = "the campaign is defined in the configuration", body = tailor_infra::http::ErrorBody)))]
async fn delete_campaign(
    State(r): State<Recommender>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    if r.campaigns.configured_for(&site).any(|d| d.id == id) {
        return Err(ApiError::Configured(format!("campaign {id:?}")));
    }
    definitions::delete(&*r.store, r.keys.campaigns(&site), id, "campaign").await?;
    r.campaigns.refresh(&*r.store, &r.keys, &site).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tailor_core::config::Config;
    use tailor_core::{AnonymousId, Subject};
    use tailor_infra::store::memory::MemoryStore;

    fn recommender(offers_per_slot: usize) -> Recommender {
        let mut config = Config::default();
        config.recommender.offers_per_slot = offers_per_slot;
        let variant = json!([{"name": "a", "title": "An offer"}]);
        config.campaigns = serde_json::from_value(json!([
            {"id": "low", "slots": ["home"], "priority": 1, "variants": variant},
            {"id": "high", "slots": ["home"], "priority": 9, "variants": variant,
             "reason": "because we said so"},
            {"id": "elsewhere", "slots": ["cart"], "priority": 50, "variants": variant},
            {"id": "later", "slots": ["home"], "priority": 99, "variants": variant,
             "start": "2100-01-01T00:00:00Z"}]))
        .unwrap();
        Recommender::new(
            Arc::new(MemoryStore::new()),
            KeySpace::default(),
            Arc::new(config),
        )
    }

    fn ctx(slot: Option<&str>, subject: Option<&str>) -> Context {
        Context {
            slot: slot.map(str::to_string),
            subject: subject
                .map(|s| Subject::Anonymous(AnonymousId::parse(s.to_string()).unwrap())),
            now_ms: 1_800_000_000_000,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn offers_fill_the_slot_by_priority_with_verifiable_tokens() {
        let r = recommender(2);
        let site = SiteId::parse("demo").unwrap();
        let got = r
            .offers(&site, &ctx(Some("home"), Some("dev")))
            .await
            .unwrap()
            .offers;
        let ids: Vec<&str> = got.iter().map(|o| o.campaign.as_str()).collect();
        assert_eq!(
            ids,
            ["high", "low"],
            "not yet started and other slots stay out"
        );
        assert_eq!(got[0].reason, "because we said so");
        assert_eq!(got[1].reason, "picked for you");
        let t = campaign::verify(&r.config.recommender.offer_secret, &got[0].token).unwrap();
        assert_eq!(
            (
                t.site.as_str(),
                t.campaign.as_str(),
                t.variant.as_str(),
                t.subject.as_str()
            ),
            ("demo", "high", "a", "a:dev")
        );
        let one = recommender(1);
        let got = one
            .offers(&site, &ctx(Some("home"), Some("dev")))
            .await
            .unwrap()
            .offers;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].campaign, "high");
        for (slot, who) in [
            (None, Some("dev")),
            (Some("home"), None),
            (Some("nowhere"), Some("dev")),
        ] {
            assert!(r
                .offers(&site, &ctx(slot, who))
                .await
                .unwrap()
                .offers
                .is_empty());
        }
        assert!(recommender(0)
            .offers(&site, &ctx(Some("home"), Some("dev")))
            .await
            .unwrap()
            .offers
            .is_empty());
    }

    #[tokio::test]
    async fn a_holdout_member_gets_a_held_back_token_instead_of_the_offer() {
        let config = Config {
            campaigns: serde_json::from_value(json!([
                {"id": "half", "slots": ["home"], "holdout": 0.5,
                 "variants": [{"name": "a", "title": "An offer"}],
                 "attribution": {"click_days": 3, "view_days": 0}}]))
            .unwrap(),
            ..Default::default()
        };
        let r = Recommender::new(
            Arc::new(MemoryStore::new()),
            KeySpace::default(),
            Arc::new(config),
        );
        let site = SiteId::parse("demo").unwrap();
        let (mut shown, mut held) = (0, 0);
        for i in 0..40 {
            let got = r
                .offers(&site, &ctx(Some("home"), Some(&format!("dev{i}"))))
                .await
                .unwrap();
            assert_eq!(
                got.offers.len() + got.held_back.len(),
                1,
                "one or the other"
            );
            if let Some(h) = got.held_back.first() {
                held += 1;
                let t = campaign::verify(&r.config.recommender.offer_secret, &h.token).unwrap();
                assert_eq!(
                    (t.campaign.as_str(), t.variant.as_str()),
                    ("half", campaign::HOLDOUT)
                );
                assert_eq!(t.subject, format!("a:dev{i}"));
            } else {
                shown += 1;
                let t = campaign::verify(&r.config.recommender.offer_secret, &got.offers[0].token)
                    .unwrap();
                assert_eq!(
                    t.windows.click_days, 3,
                    "the campaign's windows travel in the token"
                );
                assert_eq!(t.windows.view_days, 0);
            }
        }
        assert!(
            shown > 5 && held > 5,
            "about half each: {shown} shown, {held} held back"
        );
    }
}
