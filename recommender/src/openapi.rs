//! The recommender's part of the OpenAPI document (served whole at `/openapi.json` by the binary),
//! generated from the handlers' own annotations and types.
//!

use crate::engine::Recommendation;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::api::recommendations,
        crate::api::recommend_for_page,
        crate::api::profile,
        crate::catalog::put_items,
        crate::catalog::get_item,
        crate::catalog::delete_item,
        crate::rules::list_rules,
        crate::rules::put_rule,
        crate::rules::delete_rule,
        crate::learned::put_ranker,
        crate::learned::get_ranker,
        crate::learned::delete_ranker,
        crate::campaigns::list_campaigns,
        crate::campaigns::get_campaign,
        crate::campaigns::campaign_report,
        crate::campaigns::dead_actions,
        crate::campaigns::put_campaign,
        crate::campaigns::delete_campaign,
    ),
    components(schemas(
        crate::api::Recommendations,
        crate::api::PageContext,
        Recommendation,
        crate::rank::Source,
        crate::campaigns::Offer,
        crate::campaigns::CampaignInfo,
        crate::learned::RankerInfo,
    ))
)]
struct RecommenderApi;

/// The recommender's routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    RecommenderApi::openapi()
}
