//! Tailor's I/O seams and plumbing.
//!
//! The two traits that business logic talks through, each with a production and an embedded backend:
//! - [`bus`]: the event log. [`bus::kafka`] (rdkafka, acks=all, idempotent producer, consumer group with
//!   manual commits) or [`bus::memory`] (in-process, bounded).
//! - [`store`]: the profile store. [`store::redis`] (one Lua script per event, pipelined) or
//!   [`store::memory`] (in-process).
//!
//! Both embedded backends interpret exactly the same data ([`tailor_core::ops::Update`], [`store::Read`])
//! as the production ones, so every line of business logic is shared. Also here: [`telemetry`] (tracing,
//! Prometheus), [`api`] (the JSON APIs' error type and `site` parameter), [`auth`] (keys and tenant isolation on every route), [`http`] (health, metrics middleware, JSON errors) and [`server`] (the HTTP server with
//! its connection limits) used by every service.

pub mod api;
pub mod auth;
pub mod bus;
pub mod http;
pub mod ops;
pub mod server;
pub mod store;
pub mod telemetry;

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Whether the failpoint `name` is armed (`TAILOR_FAILPOINT=name`): crash tests make a process die at
/// the one place where a crash hurts most. Never armed in production.
pub fn failpoint(name: &str) -> bool {
    std::env::var("TAILOR_FAILPOINT").is_ok_and(|v| v == name)
}
pub mod testkit;
