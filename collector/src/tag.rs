//! The JS tag, served at `/tag.js` (filled in by the tag work; see `collector/tag/`).

use axum::Router;

/// Routes serving the tag.
pub fn router() -> Router {
    Router::new()
}
