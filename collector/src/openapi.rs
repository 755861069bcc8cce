//! The collector's part of the OpenAPI document (served whole at `/openapi.json` by the binary),
//! generated from the handlers' own annotations and types.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::api,
        crate::snowplow_get,
        crate::snowplow_post,
        crate::segment_call,
        crate::tag::serve,
        crate::sites::list,
        crate::deadletters::list_handler,
        crate::deadletters::redrive_handler,
    ),
    components(schemas(
        crate::pipeline::Accepted,
        crate::pipeline::Rejected,
        crate::sites::Sites,
        crate::sites::Site,
        crate::deadletters::Filter,
        crate::deadletters::Listing,
        crate::deadletters::RedriveRequest,
        crate::deadletters::RedriveReport,
        crate::deadletters::RedriveResult,
    ))
)]
struct CollectorApi;

/// The collector's routes. The pixel is served at two paths, described once by its handler.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = CollectorApi::openapi();
    if let Some(mut pixel) = doc.paths.paths.get("/i").cloned() {
        if let Some(op) = &mut pixel.get {
            op.operation_id = Some("snowplow_get_vendor_path".into());
        }
        doc.paths
            .paths
            .insert("/com.snowplowanalytics.snowplow/i".into(), pixel);
    }
    doc
}
