//! Stage three, proactive marketing: ranks items for a member on each page view.
//!
//! [`rank`] is the ranking itself: candidate generators and the blend, pure functions over what the
//! store holds; [`engine`] plans one request's reads (at most three pipelined round trips) and runs
//! them; [`api`] serves recommendations and profiles.

pub mod api;
pub mod clv;
pub mod engine;
pub mod insights;
pub mod privacy;
pub mod rank;

pub use api::{router, Recommender};
