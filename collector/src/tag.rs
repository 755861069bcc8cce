//! The JS tag, served at `/tag.js`.
//!
//! The source is `collector/tag/src/tailor.js`; `npm run build` in `collector/tag/` minifies it into
//! `collector/tag/dist/tailor.min.js`, which is committed and compiled into the binary, so a collector
//! needs no Node at run time. The cache lifetime is short on purpose (a fixed tag reaches shops within
//! minutes) and revalidation is cheap: an ETag answers `If-None-Match` with 304. The ETag is weak
//! because the service gzips the tag for browsers that accept it (`tailor_infra::http::compress_pages`),
//! and one strong ETag must not name two byte sequences.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use tailor_infra::auth::{Access, Routes};

/// The minified tag.
pub const TAG: &str = include_str!("../tag/dist/tailor.min.js");
/// The budget: what a page pays to load the tag, minified and gzipped.
pub const BUDGET_GZIP_BYTES: usize = 4096;

fn etag() -> &'static HeaderValue {
    static ETAG: OnceLock<HeaderValue> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = Sha256::digest(TAG.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        HeaderValue::from_str(&format!("W/\"{hex}\"")).expect("hex is a valid header value")
    })
}

/// Routes serving the tag.
/// `/tag.js`, public.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Routes<S> {
    Routes::new().route(Method::GET, "/tag.js", Access::Public, get(serve))
}

/// The JS tag (docs/tag.md), gzip-compressed for clients that accept it.
#[utoipa::path(get, path = "/tag.js", tag = "collection",
    params(("If-None-Match" = Option<String>, Header, description = "the ETag of a cached copy")),
    responses(
        (status = 200, description = "the minified tag", body = String, content_type = "application/javascript"),
        (status = 304, description = "the cached copy is current")))]
pub(crate) async fn serve(headers: HeaderMap) -> Response {
    let etag = etag();
    // If-None-Match compares weakly: `W/"x"` and `"x"` name the same tag.
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = opaque(etag.to_str().expect("the ETag is ASCII"));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| opaque(t) == ours || t.trim() == "*"));
    let common = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ),
        (
            header::HeaderName::from_static("x-tailor-tag-version"),
            HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript; charset=utf-8"),
        )],
        TAG,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    fn router() -> axum::Router {
        super::routes().into_router(std::sync::Arc::new(Default::default()))
    }

    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use std::io::Write;
    use tower::ServiceExt;

    #[test]
    fn the_tag_stays_within_its_budget() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(TAG.as_bytes()).unwrap();
        let size = gz.finish().unwrap().len();
        assert!(
            size <= BUDGET_GZIP_BYTES,
            "tag.js is {size} bytes gzipped, over the {BUDGET_GZIP_BYTES}-byte budget"
        );
        assert!(
            TAG.contains("tailor"),
            "the committed build is the tag (npm run build in collector/tag)"
        );
    }

    #[tokio::test]
    async fn serves_with_cache_headers_and_revalidates() {
        let r = router()
            .oneshot(Request::get("/tag.js").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/javascript; charset=utf-8"
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=300");
        assert_eq!(
            r.headers()["x-tailor-tag-version"],
            env!("CARGO_PKG_VERSION")
        );
        let etag = r.headers()[header::ETAG].clone();
        let again = router()
            .oneshot(
                Request::get("/tag.js")
                    .header(header::IF_NONE_MATCH, etag.clone())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        assert_eq!(again.headers()[header::ETAG], etag);
        assert!(
            etag.to_str().unwrap().starts_with("W/"),
            "one tag for both encodings"
        );
        let strong = etag.to_str().unwrap().trim_start_matches("W/").to_string();
        let again = router()
            .oneshot(
                Request::get("/tag.js")
                    .header(header::IF_NONE_MATCH, strong)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "compared weakly");
        let stale = router()
            .oneshot(
                Request::get("/tag.js")
                    .header(header::IF_NONE_MATCH, "\"old\"")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(stale.status(), 200);
    }
}
