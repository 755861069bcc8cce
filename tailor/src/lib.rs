//! The `tailor` binary's library half: wiring the stages to their backends and serving them.
//!
//! [`app::start`] is the single place where configuration becomes running services; the CLI
//! (`main.rs`) and the end-to-end tests both go through it, so what the tests exercise is what ships.

pub mod admin;
pub mod app;
pub mod catalog;
pub mod changes;
pub mod cli;
pub mod connect;
pub mod demo;
pub mod evaluate;
pub mod import;
pub mod keys;
pub mod learn;
pub mod metrics;
pub mod openapi;
pub mod replay;
pub mod simulate;
pub mod traffic;
