//! Stage three, proactive marketing: ranks items for a member on each page view.
//!
//! [`rank`] is the ranking itself, a pure function over what the store holds; [`api`] reads those
//! inputs in two pipelined round trips (the member's recent and bought items, then the co-visitation
//! lists of the seeds and the site's popular items) and serves recommendations and profiles.
//! [`catalog`] and [`rules`] are the shop's product catalog and business rules (their APIs and
//! in-memory copies, kept fresh by [`refresh`]).

pub mod api;
pub mod catalog;
pub mod clv;
pub mod insights;
pub mod privacy;
pub mod rank;
pub mod refresh;
pub mod rules;

pub use api::{router, Recommender};
