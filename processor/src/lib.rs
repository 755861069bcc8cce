//! Stage two, mining: turns the event stream into live member profiles and shared models.
//!
//! [`plan`] decides what each event changes, as pure data ([`tailor_core::ops::WriteOp`]s); [`worker`]
//! runs the consumer loop: poll a batch, read the little state planning needs (session item lists),
//! plan, apply the batch atomically per event through the store, and only then commit the offsets.

pub mod plan;
pub mod worker;

pub use worker::{run, Processor};
