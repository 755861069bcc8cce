//! The shared model of Tailor: what every stage agrees on.
//!
//! This crate holds plain data and pure functions only, no I/O: the versioned event schema and its
//! validation at the edge ([`event`]), identifier newtypes ([`ids`]), the profile model served to
//! storefronts ([`profile`]), the Redis key layout ([`keys`]), the small write-op language in which the
//! processor expresses a profile update ([`ops`]), the typed configuration ([`config`]) with its
//! per-site API keys ([`access`]), the product
//! catalog ([`catalog`]) and the shop's business rules over it ([`rules`]).
//! The I/O seams (event bus, profile store) live in `tailor-infra` and interpret these types.

pub mod access;
pub mod campaign;
pub mod catalog;
pub mod change;
pub mod clv;
pub mod config;
pub mod deadletter;
pub mod event;
pub mod generations;
pub mod hash;
pub mod ids;
pub mod keys;
pub mod models;
pub mod ops;
pub mod profile;
pub mod rules;
pub mod segment;
pub mod state;
pub mod stored;
pub mod trending;

pub use event::{Event, EventBody, EventType};
pub use ids::{AnonymousId, Category, EventId, ItemId, MemberId, SessionId, SiteId, Subject};
