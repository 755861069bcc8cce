//! The demo shop served by `tailor run` at `/`: a small catalogue whose page sends Tailor events
//! (page views, add to cart, purchase, login) to `/v1/events` and shows `/v1/recommendations` for the
//! visitor, so the whole loop can be watched in a browser. It is a demonstration of the public APIs and
//! uses nothing private.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const SHOP_HTML: &str = include_str!("demo/shop.html");

pub fn router() -> Router {
    Router::new().route("/", get(shop))
}

/// The demo shop.
#[utoipa::path(get, path = "/", tag = "demo",
    responses((status = 200, description = "the demo shop page", body = String, content_type = "text/html")))]
pub(crate) async fn shop() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        SHOP_HTML,
    )
}
