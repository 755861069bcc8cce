//! Definitions a shop adds through the admin API beside its configuration file (business rules,
//! campaigns): one hash per site in the site's slot, name → JSON, at most a fixed number per site.
//! The handlers check the definition and the configuration's precedence (409) first; these two
//! functions are the store side every such resource shares.

use crate::api::{bad, ApiError};
use std::collections::HashMap;
use tailor_core::ops::{Update, WriteOp};
use tailor_infra::store::{Read, Store, StoreError};

/// The stored definitions of `key`'s hash, name → JSON.
pub(crate) async fn stored(
    store: &dyn Store,
    key: &str,
) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .read(&[Read::Hash(key.to_string())])
        .await?
        .pop()
        .map(|v| v.into_hash())
        .unwrap_or_default())
}

/// Stores `json` as `name` in `key`'s hash; a new name past `max` definitions is a 400 on `param`
/// ("the site already has 200 rules added through the API", with `plural` = "rules").
pub(crate) async fn put(
    store: &dyn Store,
    key: String,
    name: String,
    json: String,
    max: usize,
    param: &'static str,
    plural: &str,
) -> Result<(), ApiError> {
    let stored = stored(store, &key).await?;
    if !stored.contains_key(&name) && stored.len() >= max {
        return Err(bad(
            param,
            format!("the site already has {max} {plural} added through the API"),
        ));
    }
    store
        .apply(&[Update {
            ops: vec![WriteOp::HashSet {
                key,
                field: name,
                value: json,
            }],
            ..Default::default()
        }])
        .await?;
    Ok(())
}

/// Deletes `name` from `key`'s hash; 404 naming `what` ("rule x") when it is not there.
pub(crate) async fn delete(
    store: &dyn Store,
    key: String,
    name: String,
    what: &str,
) -> Result<(), ApiError> {
    if !stored(store, &key).await?.contains_key(&name) {
        return Err(ApiError::NotFound(format!("{what} {name}")));
    }
    store
        .apply(&[Update {
            ops: vec![WriteOp::HashDelete { key, field: name }],
            ..Default::default()
        }])
        .await?;
    Ok(())
}
