//! A store that times its round trips: `tailor_store_duration_seconds{op}` (`apply`, `read`), the one
//! place that metric is emitted. Wrapped around whichever backend a process uses, so the stages'
//! code does not time its own calls.

use super::{Read, Store, StoreError, Value};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;
use tailor_core::ops::{Applied, Update};

pub struct Timed(Arc<dyn Store>);

/// `store`, timing each `apply` and `read`.
pub fn timed(store: Arc<dyn Store>) -> Arc<dyn Store> {
    Arc::new(Timed(store))
}

fn observe(op: &'static str, start: Instant) {
    metrics::histogram!("tailor_store_duration_seconds", "op" => op)
        .record(start.elapsed().as_secs_f64());
}

#[async_trait]
impl Store for Timed {
    async fn apply(&self, updates: &[Update]) -> Result<Vec<Applied>, StoreError> {
        let start = Instant::now();
        let r = self.0.apply(updates).await;
        observe("apply", start);
        r
    }

    async fn read(&self, reads: &[Read]) -> Result<Vec<Value>, StoreError> {
        let start = Instant::now();
        let r = self.0.read(reads).await;
        observe("read", start);
        r
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.0.check().await
    }

    async fn scan(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.0.scan(prefix).await
    }
}
