//! Stage three, proactive marketing: ranks items for a member on each page view.
//!
//! [`rank`] is the ranking itself: candidate generators and the blend, pure functions over what the
//! store holds; [`engine`] plans one request's reads (at most three pipelined round trips) and runs
//! them; [`api`] serves recommendations and profiles.
//! [`catalog`] and [`rules`] are the shop's product catalog and business rules, [`campaigns`] its
//! campaigns and the offers they put beside the items (their APIs and in-memory copies, kept fresh
//! by [`refresh`]); [`lists`] keeps the site's shared ranked lists in memory for a moment,
//! [`sessions`] past sessions' item lists; [`learned`] each site's
//! learned re-ranking model.

pub mod api;
pub mod campaigns;
pub mod catalog;
mod definitions;
pub mod engine;
pub mod learned;
pub mod lists;
pub mod openapi;
pub mod rank;
pub mod refresh;
pub mod rules;
pub mod sessions;

pub use api::{router, routes, Recommender};
