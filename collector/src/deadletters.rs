//! Operators' view of the dead-letter topic: list rejected events with their reasons, and re-drive them
//! once the cause is fixed (a site or write key added, a tracker repaired).
//!
//! A re-drive maps each record's payload again through the same wire format it came in by and sends
//! the result down the normal [`Collector::ingest`] path, without dead-lettering it a second time. An
//! event that had no id gets the record's id, so re-driving a record twice still counts its event once.
//! Served under `/admin/dead-letters` and used by `tailor dead-letters`.

use crate::enrich::RequestMeta;
use crate::error::IngestError;
use crate::mapped::Mapped;
use crate::pipeline::RequestInfo;
use crate::{ingest, segment, snowplow, Collector};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tailor_core::deadletter::DeadLetter;
use tailor_core::event::Source;
use tailor_infra::http::error_with;

/// Most records scanned from the topic by one request.
const SCAN_LIMIT: usize = 200_000;

/// Which records a listing or re-drive selects; every given criterion must match.
#[derive(Debug, Default, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Record ids; empty selects by the other criteria.
    #[serde(default)]
    pub ids: Vec<String>,
    pub reason: Option<String>,
    pub site: Option<String>,
    pub source: Option<String>,
}

impl Filter {
    fn matches(&self, l: &DeadLetter) -> bool {
        (self.ids.is_empty() || self.ids.contains(&l.id))
            && self.reason.as_ref().is_none_or(|r| *r == l.reason)
            && self
                .site
                .as_ref()
                .is_none_or(|s| l.site_id.as_ref() == Some(s))
            && self.source.as_ref().is_none_or(|s| s == l.source.as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    limit: Option<usize>,
    reason: Option<String>,
    site: Option<String>,
    source: Option<String>,
}

/// The answer of a listing: the newest `limit` matching records, oldest first, and the counts.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Listing {
    /// Records in the topic.
    pub total: usize,
    /// Records matching the filter.
    pub matching: usize,
    /// Matching records per reason.
    pub by_reason: std::collections::BTreeMap<String, usize>,
    /// Dead-letter records (docs/events.md, "Dead letters").
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<DeadLetter>,
}

/// A re-drive request: the records to re-drive (`all: true` is needed to select without ids).
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    #[serde(flatten)]
    pub filter: Filter,
    #[serde(default)]
    pub all: bool,
}

/// What became of each re-driven record.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RedriveReport {
    pub selected: usize,
    pub accepted: usize,
    pub still_rejected: usize,
    pub results: Vec<RedriveResult>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RedriveResult {
    pub id: String,
    pub accepted: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

pub fn router(c: Collector) -> Router {
    Router::new()
        .route("/admin/dead-letters", get(list_handler))
        .route("/admin/dead-letters/redrive", post(redrive_handler))
        .with_state(c)
}

fn bad(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Response {
    error_with(status, code, msg, None, vec![])
}

/// The newest dead letters matching the filter, with counts by reason.
#[utoipa::path(get, path = "/admin/dead-letters", tag = "operations",
    params(
        ("limit" = Option<usize>, Query, description = "records to return, the newest (default 100)"),
        ("reason" = Option<String>, Query, description = "only this reason"),
        ("site" = Option<String>, Query, description = "only this site"),
        ("source" = Option<String>, Query, description = "only this source: api, snowplow, segment")),
    responses(
        (status = 200, description = "the listing", body = Listing),
        (status = 400, description = "an unknown or malformed parameter", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the dead-letter topic cannot be read", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn list_handler(
    State(c): State<Collector>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad(StatusCode::BAD_REQUEST, "bad_query", e.body_text()),
    };
    let filter = Filter {
        ids: vec![],
        reason: q.reason,
        site: q.site,
        source: q.source,
    };
    match c.list_dead_letters(&filter, q.limit.unwrap_or(100)).await {
        Ok(l) => Json(l).into_response(),
        Err(e) => bad(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

/// Sends dead letters through validation again; each event counted once however often re-driven.
#[utoipa::path(post, path = "/admin/dead-letters/redrive", tag = "operations",
    request_body = RedriveRequest,
    responses(
        (status = 200, description = "what became of each record", body = RedriveReport),
        (status = 400, description = "a malformed request, or neither `ids` nor `all: true`", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the dead-letter topic cannot be read, or the bus is unavailable", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn redrive_handler(
    State(c): State<Collector>,
    body: Result<Json<RedriveRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let req = match body {
        Ok(Json(r)) => r,
        Err(e) => return bad(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
    };
    if req.filter.ids.is_empty() && !req.all {
        return bad(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "name the records with `ids`, or select by reason/site/source with `all: true`",
        );
    }
    match c.redrive(&req.filter).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => bad(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

impl Collector {
    async fn read_dead_letters(&self) -> Result<(usize, Vec<DeadLetter>), String> {
        let messages = self
            .dead_letter_reader
            .read_all(SCAN_LIMIT)
            .await
            .map_err(|e| format!("cannot read {}: {e}", self.config.kafka.dead_letter_topic))?;
        let total = messages.len();
        let mut letters: Vec<DeadLetter> = messages
            .iter()
            .filter_map(|m| serde_json::from_slice(&m.payload).ok())
            .collect();
        letters.sort_by(|a, b| a.received_at.cmp(&b.received_at).then(a.id.cmp(&b.id)));
        Ok((total, letters))
    }

    /// The newest `limit` records matching `filter`, oldest first.
    pub async fn list_dead_letters(
        &self,
        filter: &Filter,
        limit: usize,
    ) -> Result<Listing, String> {
        let (total, letters) = self.read_dead_letters().await?;
        let matching: Vec<DeadLetter> = letters.into_iter().filter(|l| filter.matches(l)).collect();
        let mut by_reason = std::collections::BTreeMap::new();
        for l in &matching {
            *by_reason.entry(l.reason.clone()).or_insert(0) += 1;
        }
        let n = matching.len();
        Ok(Listing {
            total,
            matching: n,
            by_reason,
            records: matching.into_iter().skip(n.saturating_sub(limit)).collect(),
        })
    }

    /// Re-drives every record matching `filter`; see the module docs.
    pub async fn redrive(&self, filter: &Filter) -> Result<RedriveReport, String> {
        let (_, letters) = self.read_dead_letters().await?;
        let selected: Vec<DeadLetter> = letters.into_iter().filter(|l| filter.matches(l)).collect();
        let mut report = RedriveReport {
            selected: selected.len(),
            accepted: 0,
            still_rejected: 0,
            results: Vec::new(),
        };
        for l in selected {
            let req = RequestInfo {
                source: l.source,
                route: l.route.clone(),
                meta: RequestMeta {
                    user_agent: l.user_agent.clone(),
                    ip: None,
                    // The record keeps no `Origin`: only a pixel request is known to be a browser's.
                    browser: l.route == "/i",
                },
                origin: None,
            };
            let result = match self.remap(&l) {
                Ok(mut items) => {
                    for m in &mut items {
                        if let Ok(raw) = &mut m.result {
                            if raw.event_id.is_none() {
                                raw.event_id = Some(if m.index == 0 {
                                    l.id.clone()
                                } else {
                                    format!("{}-{}", l.id, m.index)
                                });
                            }
                        }
                    }
                    match self.ingest(&req, items, false).await {
                        Ok(o) => RedriveResult {
                            id: l.id.clone(),
                            accepted: o.accepted,
                            errors: o
                                .rejected
                                .iter()
                                .map(|(i, e)| format!("[{i}] {e}"))
                                .collect(),
                        },
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Err(e) => RedriveResult {
                    id: l.id.clone(),
                    accepted: vec![],
                    errors: vec![e.to_string()],
                },
            };
            if result.accepted.is_empty() {
                report.still_rejected += 1;
            } else {
                report.accepted += 1;
            }
            report.results.push(result);
        }
        metrics::counter!("tailor_collector_dead_letters_redriven_total", "outcome" => "accepted")
            .increment(report.accepted as u64);
        metrics::counter!("tailor_collector_dead_letters_redriven_total", "outcome" => "rejected")
            .increment(report.still_rejected as u64);
        Ok(report)
    }

    /// Maps a record's payload again through the wire format it arrived in.
    fn remap(&self, l: &DeadLetter) -> Result<Vec<Mapped>, IngestError> {
        let payload = l.payload.as_bytes();
        let max = self.config.collector.max_batch_events;
        match l.source {
            Source::Api | Source::Import => ingest::parse_body(payload, max),
            Source::Snowplow => {
                let trimmed = l.payload.trim_start();
                if !trimmed.starts_with('{') {
                    return Ok(vec![snowplow::from_query(&l.payload, &self.config)]);
                }
                if trimmed.contains("\"data\"") && trimmed.contains("\"schema\"") {
                    snowplow::from_post(payload, &self.config)
                } else {
                    // One event of a POST: re-wrap it in the envelope it came in.
                    let body = format!(
                        r#"{{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":[{}]}}"#,
                        l.payload
                    );
                    snowplow::from_post(body.as_bytes(), &self.config)
                }
            }
            Source::Segment => {
                // The write key is not kept in the record (it is a credential); the site is.
                let key = l
                    .site_id
                    .as_deref()
                    .and_then(|s| self.config.site(s))
                    .and_then(|s| s.segment_write_keys.first())
                    .map(String::as_str);
                let call = segment::Call::from_path(&l.route).unwrap_or(segment::Call::Batch);
                let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| {
                    IngestError::Malformed(format!("request body is not valid JSON: {e}"))
                })?;
                let call = match value.get("type").and_then(|t| t.as_str()) {
                    Some(t) if !value.get("batch").is_some_and(|b| b.is_array()) => {
                        segment::Call::from_path(t).unwrap_or(call)
                    }
                    _ => call,
                };
                segment::from_body(call, payload, key, &self.config)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use tailor_core::event::{ErrorKind, FieldError};

    fn letter(reason: ErrorKind, site: Option<&str>) -> DeadLetter {
        let mut l = DeadLetter::new(
            Source::Api,
            "/v1/events",
            0,
            "{}".into(),
            FieldError::new(reason, "x", "y"),
            Utc::now(),
        );
        l.site_id = site.map(str::to_string);
        l
    }

    #[test]
    fn filters_combine_criteria() {
        let a = letter(ErrorKind::UnknownSite, Some("s1"));
        let b = letter(ErrorKind::MissingField, Some("s1"));
        let f = Filter {
            reason: Some("unknown_site".into()),
            ..Filter::default()
        };
        assert!(f.matches(&a) && !f.matches(&b));
        let f = Filter {
            ids: vec![b.id.clone()],
            site: Some("s1".into()),
            ..Filter::default()
        };
        assert!(!f.matches(&a) && f.matches(&b));
        assert!(!Filter {
            source: Some("segment".into()),
            ..Filter::default()
        }
        .matches(&a));
    }
}
