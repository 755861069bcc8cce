//! Reading erasure tombstones (`NS:{site:subj}:erased`, written by `POST /admin/erase`) for those
//! who drop an erased identity's records when they read them back: the export sink, and the
//! `/admin/changes` reader. (The worker reads tombstones in its own pipelined load.)

use std::collections::HashMap;
use tailor_infra::store::{Read, Store, StoreError};

/// When each of `keys` (tombstone keys) was erased, in ms since the epoch; keys without a tombstone
/// are left out. One round trip.
pub async fn erased_at(
    store: &dyn Store,
    mut keys: Vec<String>,
) -> Result<HashMap<String, i64>, StoreError> {
    keys.sort();
    keys.dedup();
    let reads: Vec<Read> = keys.iter().map(|k| Read::Get(k.clone())).collect();
    Ok(keys
        .into_iter()
        .zip(store.read(&reads).await?)
        .filter_map(|(k, v)| Some((k, v.into_text()?.parse().ok()?)))
        .collect())
}
