//! Stage three, proactive marketing: ranks items for a member on each page view.
//!
//! [`rank`] is the ranking itself, a pure function over what the store holds; [`api`] reads those
//! inputs in two pipelined round trips (the member's recent and bought items, then the co-visitation
//! lists of the seeds and the site's popular items) and serves recommendations and profiles.

pub mod api;
pub mod clv;
pub mod insights;
pub mod openapi;
pub mod privacy;
pub mod rank;

pub use api::{router, Recommender};
