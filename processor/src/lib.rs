//! Stage two, mining: turns the event stream into live member profiles and shared models.
//!
//! [`fold`] decides what a batch of events does to the subjects' state documents and the sites'
//! shared keys, as pure data; [`worker`] runs the consumer loop (poll, load the documents, fold, emit
//! change events, write the site updates, then the documents under their guards, then commit the
//! offsets); [`models`] refreshes the site models in the background (RFM cut points, the
//! lifetime-value fit) and sweeps idle customers through the time-driven stages; [`health`] is what
//! the loop reports to `/healthz` (not stuck) and `/readyz` (consuming); [`admin`] is the admin API over
//! the mined data (segments, analytics, the lifetime-value fit, erasure).

pub mod actions;
pub mod admin;
pub mod erasure;
pub mod export;
pub mod fold;
pub mod health;
pub mod lanes;
pub mod models;
pub mod worker;

pub use health::Health;
pub use lanes::run;
pub use worker::Processor;
