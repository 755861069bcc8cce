//! The recommender's part of the OpenAPI document (served whole at `/openapi.json` by the binary),
//! generated from the handlers' own annotations and types.
//!
//! The schema of a ranked item ([`Recommendation`]) is written here rather than derived in
//! `rank.rs`, which stays free of API concerns; a test keeps it equal to what the type serializes.

use crate::rank::Recommendation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::OpenApi;

impl utoipa::PartialSchema for Recommendation {
    fn schema() -> RefOr<Schema> {
        let text = |d: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .description(Some(d.to_string()))
        };
        ObjectBuilder::new()
            .property("item_id", text("the recommended item"))
            .required("item_id")
            .property(
                "score",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::Number))
                    .description(Some(
                        "ranking score; co-visited items always above popular fill-ins",
                    )),
            )
            .required("score")
            .property(
                "source",
                text("where it came from").enum_values(Some(["covisitation", "popular"])),
            )
            .required("source")
            .property(
                "reason",
                text("a short, human-readable reason (\"viewed together with tent-2p\")"),
            )
            .required("reason")
            .description(Some("One recommended item with its explanation."))
            .into()
    }
}

impl utoipa::ToSchema for Recommendation {}

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::api::recommendations,
        crate::api::profile,
        crate::clv::fit_handler,
        crate::insights::list_segments,
        crate::insights::put_segment,
        crate::insights::delete_segment,
        crate::insights::segment_members,
        crate::insights::analytics,
        crate::insights::page,
        crate::privacy::erase,
    ),
    components(schemas(
        crate::api::Recommendations,
        Recommendation,
        crate::clv::Fit,
        crate::insights::SegmentInfo,
        crate::insights::SegmentBody,
        crate::insights::Members,
        crate::insights::Analytics,
        crate::insights::Day,
        crate::insights::Funnel,
        crate::privacy::Erased,
    ))
)]
struct RecommenderApi;

/// The recommender's routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    RecommenderApi::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    /// The written schema names exactly the fields a ranked item serializes.
    #[test]
    fn the_recommendation_schema_matches_the_type() {
        let seeds = crate::rank::seeds(Some("a"), &[], 5);
        let seeds: Vec<crate::rank::Seed> = seeds
            .into_iter()
            .map(|(item_id, weight)| crate::rank::Seed {
                item_id,
                weight,
                neighbours: vec![("b".into(), 3.0)],
            })
            .collect();
        let ranked = crate::rank::rank(&seeds, &[("c".into(), 1.0)], &HashSet::new(), 5);
        assert!(!ranked.is_empty());
        let json = serde_json::to_value(&ranked[0]).unwrap();
        let fields: BTreeSet<String> = json.as_object().unwrap().keys().cloned().collect();
        let schema =
            serde_json::to_value(<Recommendation as utoipa::PartialSchema>::schema()).unwrap();
        let props: BTreeSet<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(props, fields);
    }
}
