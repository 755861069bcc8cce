//! `POST /admin/erase?site=&member=` (or `&anonymous=`): the right to be forgotten.
//!
//! Erases the subject and every identity merged into it (its devices, earlier member ids): all keys in
//! their hash slots (state document, purchase days, dedupe markers), their entries in the site's
//! indexes, segment and stage sets; then leaves a tombstone per identity with the time of erasure. The
//! processor drops every event of a tombstoned identity received before that time, so neither
//! redelivery nor `tailor replay` rebuilds the profile; events received later (the person comes back)
//! start a new profile. The sessions of each device leave the session index of the session-based
//! neighbours (`NS:{site}:si:<device>/<session>`, or `:sess:` as earlier versions wrote them, and
//! their entries in `:isess:<item>`), since they
//! name the device. What stays: anonymous aggregates (popularity, co-visitation, followers,
//! co-purchase, daily analytics) and the event log itself until its retention expires (see
//! ARCHITECTURE.md, "Erasure").

use super::Admin;
use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use tailor_core::models::STAGES;
use tailor_core::ops::{Update, WriteOp};
use tailor_core::stored::session_list;
use tailor_core::{AnonymousId, MemberId, Subject};
use tailor_infra::api::{bad, ApiError};
use tailor_infra::store::{Read, Value};

/// What an erasure did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub site_id: String,
    /// Identities erased and tombstoned.
    pub subjects: Vec<String>,
    pub keys_deleted: usize,
    /// When (ms since the epoch); events received up to then are never applied again.
    pub erased_at_ms: i64,
}

/// Forgets a member (with every device and identity merged into them) or an anonymous visitor.
#[utoipa::path(post, path = "/admin/erase", tag = "privacy",
    params(
        ("site" = String, Query, description = "the site id"),
        ("member" = Option<String>, Query, description = "the member to erase (give this or `anonymous`)"),
        ("anonymous" = Option<String>, Query, description = "an anonymous id to erase instead")),
    responses(
        (status = 200, description = "what was erased", body = Erased),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn erase(
    State(r): State<Admin>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Erased>, ApiError> {
    let site = r.site(&q)?;
    let subject = match (q.get("member"), q.get("anonymous")) {
        (Some(m), None) => {
            Subject::Member(MemberId::parse(m.clone()).map_err(|e| bad("member", e.to_string()))?)
        }
        (None, Some(a)) => Subject::Anonymous(
            AnonymousId::parse(a.clone()).map_err(|e| bad("anonymous", e.to_string()))?,
        ),
        _ => return Err(bad("member", "give exactly one of member or anonymous")),
    };
    let now = chrono::Utc::now().timestamp_millis();
    let k = &r.keys;
    let mut subjects: BTreeSet<String> = BTreeSet::from([subject.to_string()]);
    let mut segments: BTreeSet<String> = BTreeSet::new();
    if let Some((resolved, state)) = r.state_of(&site, &subject).await? {
        subjects.insert(resolved.to_string());
        subjects.extend(state.merged.iter().cloned());
        subjects.extend(state.anonymous_ids.iter().map(|a| format!("a:{a}")));
        segments.extend(state.segments.iter().cloned());
    }
    segments.extend(r.config.segments.iter().map(|d| d.name.clone()));
    let defs = r
        .store
        .read(&[Read::Hash(k.segment_defs(&site))])
        .await?
        .pop()
        .map(|v| v.into_hash())
        .unwrap_or_default();
    segments.extend(defs.into_keys());

    let mut updates = Vec::new();
    let mut keys_deleted = 0;
    let mut erased_subjects = Vec::new();
    for name in &subjects {
        let Ok(s) = Subject::parse(name) else {
            continue;
        };
        let tombstone = k.erased(&site, &s);
        let slot_prefix = tombstone.trim_end_matches("erased").to_string();
        let mut ops: Vec<WriteOp> = r
            .store
            .scan(&slot_prefix)
            .await?
            .into_iter()
            .filter(|key| *key != tombstone)
            .map(|key| WriteOp::Delete { key })
            .collect();
        keys_deleted += ops.len();
        ops.push(WriteOp::Put {
            key: tombstone,
            value: now.to_string(),
            ttl_secs: None,
        });
        updates.push(Update {
            ops,
            ..Default::default()
        });
        let mut site_ops = r.session_index_removal(&site, &s).await?;
        keys_deleted += site_ops
            .iter()
            .filter(|op| matches!(op, WriteOp::Delete { .. }))
            .count();
        for key in [
            k.customers(&site),
            k.recency_index(&site),
            k.frequency_index(&site),
        ] {
            site_ops.push(WriteOp::ZRemove {
                key,
                member: name.clone(),
            });
        }
        for seg in &segments {
            site_ops.push(WriteOp::SetRemove {
                key: k.segment(&site, seg),
                member: name.clone(),
            });
        }
        for stage in STAGES {
            site_ops.push(WriteOp::SetRemove {
                key: k.stage(&site, stage),
                member: name.clone(),
            });
        }
        updates.push(Update {
            ops: site_ops,
            ..Default::default()
        });
        erased_subjects.push(name.clone());
    }
    r.store.apply(&updates).await?;
    metrics::counter!("tailor_erasures_total").increment(1);
    tracing::info!(%site, subjects = ?erased_subjects, keys_deleted, "erased");
    Ok(Json(Erased {
        site_id: site.to_string(),
        subjects: erased_subjects,
        keys_deleted,
        erased_at_ms: now,
    }))
}

impl Admin {
    /// The ops that take a device's sessions out of the session index: each session's item list is
    /// deleted and the session leaves the recent-sessions index of every item it held.
    async fn session_index_removal(
        &self,
        site: &tailor_core::SiteId,
        s: &Subject,
    ) -> Result<Vec<WriteOp>, ApiError> {
        let Subject::Anonymous(device) = s else {
            return Ok(Vec::new());
        };
        let mut ops = Vec::new();
        // Each session's list in both stored forms: a string (`si`), or a sorted set as earlier
        // versions wrote it (`sess`).
        let forms = [
            (self.keys.session_list(site, ""), true),
            (self.keys.session_items(site, ""), false),
        ];
        for (base, string) in forms {
            let keys = self.store.scan(&format!("{base}{device}/")).await?;
            let reads: Vec<Read> = keys
                .iter()
                .map(|k| match string {
                    true => Read::Get(k.clone()),
                    false => Read::Range(k.clone(), 0, -1),
                })
                .collect();
            let values = self.store.read(&reads).await?;
            for (key, value) in keys.into_iter().zip(values) {
                let session = key.strip_prefix(&base).unwrap_or_default().to_string();
                let items: Vec<String> = match value {
                    Value::Text(t) => t
                        .and_then(|t| session_list::decode(&t))
                        .map(|(_, items)| items)
                        .unwrap_or_default(),
                    other => other.into_top().into_iter().map(|(i, _)| i).collect(),
                };
                for item in items {
                    ops.push(WriteOp::ZRemove {
                        key: self.keys.item_sessions(site, &item),
                        member: session.clone(),
                    });
                }
                ops.push(WriteOp::Delete { key });
            }
        }
        Ok(ops)
    }
}
