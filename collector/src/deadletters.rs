//! Operators' view of the dead-letter topic: list rejected events with their reasons, and re-drive them
//! once the cause is fixed (a site or write key added, a tracker repaired).
//!
//! A re-drive maps each record's payload again through the same wire format it came in by and sends
//! the result down the normal [`Collector::ingest`] path, without dead-lettering it a second time. An
//! event that had no id gets the record's id, so re-driving a record twice still counts its event once.
//! Served under `/admin/dead-letters` and used by `tailor dead-letters`.
//!
//! The store is bounded by bytes, in two lanes (see `docs/events.md`, "Dead letters"): records of up
//! to [`SMALL_RECORD`] bytes (nearly every rejected event) go to partition 0, bigger ones (whole
//! refused bodies) to partition 1, and each partition keeps the newest records within half of
//! `collector.dead_letter_max_bytes`. A flood of big bodies therefore pushes out only big records.
//!
//! Nothing here loads the whole store: a listing is one page (at most `limit` records, read with a
//! byte budget per partition) and says where the next one starts (`next_cursor`); a re-drive walks
//! the store page by page.

use crate::enrich::RequestMeta;
use crate::error::IngestError;
use crate::mapped::Mapped;
use crate::pipeline::RequestInfo;
use crate::{ingest, segment, snowplow, Collector};
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use tailor_core::access::Scope;
use tailor_core::deadletter::DeadLetter;
use tailor_core::event::Source;
use tailor_infra::auth::{Access, Routes};
use tailor_infra::http::error_with;

/// Largest record (serialized) that goes to the small lane, partition 0.
pub const SMALL_RECORD: usize = 16 * 1024;
/// Most records one page holds.
pub const MAX_PAGE: usize = 1000;
/// Most payload bytes one page reads from one partition (the record that crosses it included).
const PAGE_BYTES: usize = 8 * 1024 * 1024;
/// Records per page when a re-drive walks the store.
const REDRIVE_PAGE: usize = 500;

/// The partition (lane) a serialized record goes to.
pub fn lane(record_len: usize) -> i32 {
    i32::from(record_len > SMALL_RECORD)
}

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
    cursor: Option<String>,
    reason: Option<String>,
    site: Option<String>,
    source: Option<String>,
}

/// One page of a listing: the next `scanned` records of the store (oldest first, from the cursor),
/// those of them matching the filter, and where the next page starts.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Listing {
    /// Records in the store.
    pub total: usize,
    /// Records this page read.
    #[serde(default)]
    pub scanned: usize,
    /// Records of this page matching the filter.
    pub matching: usize,
    /// Matching records of this page per reason.
    pub by_reason: std::collections::BTreeMap<String, usize>,
    /// Dead-letter records (docs/events.md, "Dead letters").
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<DeadLetter>,
    /// Pass as `cursor` for the next page; absent at the end of the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Where a page starts: the next offset to read per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(std::collections::BTreeMap<i32, i64>);

impl Cursor {
    /// `0:120,1:7` (partition:offset pairs).
    pub fn parse(s: &str) -> Result<Cursor, String> {
        let bad = || format!("cursor {s:?} is not one given by a listing");
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (p, o) = pair.split_once(':').ok_or_else(bad)?;
                Ok((p.parse().map_err(|_| bad())?, o.parse().map_err(|_| bad())?))
            })
            .collect::<Result<_, String>>()
            .map(Cursor)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs: Vec<String> = self.0.iter().map(|(p, o)| format!("{p}:{o}")).collect();
        f.write_str(&pairs.join(","))
    }
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

/// The query of a re-drive: the one site it may touch.
#[derive(Debug, Deserialize)]
pub(crate) struct SiteOnly {
    site: Option<String>,
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

/// The dead-letter admin routes: an admin key sees and re-drives its own site's records only.
pub fn routes() -> Routes<Collector> {
    let admin = Access::OwnSite(Scope::Admin);
    Routes::new()
        .route(Method::GET, "/admin/dead-letters", admin, get(list_handler))
        .route(
            Method::POST,
            "/admin/dead-letters/redrive",
            admin,
            post(redrive_handler),
        )
}

fn bad(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Response {
    error_with(status, code, msg, None, vec![])
}

/// One page of the dead-letter store from a cursor: its matching records, counts by reason, and
/// the cursor of the next page.
#[utoipa::path(get, path = "/admin/dead-letters", tag = "operations",
    params(
        ("limit" = Option<usize>, Query, description = "records to read, from 1 to 1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "where the page starts: a listing's `next_cursor` (default: the oldest record kept)"),
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
    let cursor = match q.cursor.as_deref().map(Cursor::parse).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return bad(StatusCode::BAD_REQUEST, "bad_query", e),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return bad(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("limit must be from 1 to {MAX_PAGE}"),
        );
    }
    match c.list_dead_letters(&filter, &cursor, limit).await {
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
    Query(only): Query<SiteOnly>,
    body: Result<Json<RedriveRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let mut req = match body {
        Ok(Json(r)) => r,
        Err(e) => return bad(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
    };
    // `?site=` is what an admin key may touch (set by the auth guard): the body's filter narrows
    // within it, never past it.
    if let Some(site) = only.site {
        if req.filter.site.as_ref().is_some_and(|s| *s != site) {
            return bad(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this key may re-drive site {site:?} only"),
            );
        }
        req.filter.site = Some(site);
    }
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
    /// The next page of the store from `cursor`: up to `limit` records in the order they arrived,
    /// merged across the lanes, and the cursor after them (`None` at the end of the store).
    async fn page(
        &self,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<(usize, Vec<DeadLetter>, Option<Cursor>), String> {
        let unreadable = |e| format!("cannot read {}: {e}", self.config.kafka.dead_letter_topic);
        let reader = &self.dead_letter_reader;
        let marks = reader.watermarks().await.map_err(unreadable)?;
        let total = marks.iter().map(|w| (w.high - w.low) as usize).sum();
        // Each lane's next `limit` records; then the `limit` oldest of them all.
        let mut read: Vec<(i32, i64, DeadLetter)> = Vec::new();
        for w in &marks {
            let from = cursor
                .0
                .get(&w.partition)
                .copied()
                .unwrap_or(w.low)
                .max(w.low);
            let to = w.high.min(from + limit as i64);
            for m in reader
                .read_range(w.partition, from, to, PAGE_BYTES)
                .await
                .map_err(unreadable)?
            {
                // A record that is not a dead letter still takes its place, so the cursor moves on.
                let letter = serde_json::from_slice(&m.payload).unwrap_or_else(|_| unparsable(&m));
                read.push((m.partition, m.offset, letter));
            }
        }
        read.sort_by(|a, b| (a.2.received_at, &a.2.id).cmp(&(b.2.received_at, &b.2.id)));
        read.truncate(limit);
        let mut next = cursor.clone();
        for w in &marks {
            let n = next.0.entry(w.partition).or_insert(w.low);
            *n = (*n).max(w.low);
        }
        for (p, offset, _) in &read {
            let n = next.0.entry(*p).or_default();
            *n = (*n).max(offset + 1);
        }
        // A page that read nothing ends the walk, so a cursor can never repeat forever.
        let more = !read.is_empty()
            && marks
                .iter()
                .any(|w| next.0.get(&w.partition).is_some_and(|n| *n < w.high));
        Ok((
            total,
            read.into_iter().map(|(_, _, l)| l).collect(),
            more.then_some(next),
        ))
    }

    /// One page of the store from `cursor` (see [`Listing`]).
    pub async fn list_dead_letters(
        &self,
        filter: &Filter,
        cursor: &Cursor,
        limit: usize,
    ) -> Result<Listing, String> {
        let (total, letters, next) = self.page(cursor, limit).await?;
        let scanned = letters.len();
        let matching: Vec<DeadLetter> = letters.into_iter().filter(|l| filter.matches(l)).collect();
        let mut by_reason = std::collections::BTreeMap::new();
        for l in &matching {
            *by_reason.entry(l.reason.clone()).or_insert(0) += 1;
        }
        Ok(Listing {
            total,
            scanned,
            matching: matching.len(),
            by_reason,
            records: matching,
            next_cursor: next.map(|c| c.to_string()),
        })
    }

    /// Re-drives every record matching `filter`, walking the store page by page; see the module docs.
    pub async fn redrive(&self, filter: &Filter) -> Result<RedriveReport, String> {
        let mut report = RedriveReport {
            selected: 0,
            accepted: 0,
            still_rejected: 0,
            results: Vec::new(),
        };
        let mut cursor = Some(Cursor::default());
        while let Some(from) = cursor {
            let (_, letters, next) = self.page(&from, REDRIVE_PAGE).await?;
            cursor = next;
            for l in letters.into_iter().filter(|l| filter.matches(l)) {
                report.selected += 1;
                self.redrive_one(&l, &mut report).await?;
            }
        }
        metrics::counter!("tailor_collector_dead_letters_redriven_total", "outcome" => "accepted")
            .increment(report.accepted as u64);
        metrics::counter!("tailor_collector_dead_letters_redriven_total", "outcome" => "rejected")
            .increment(report.still_rejected as u64);
        Ok(report)
    }

    async fn redrive_one(&self, l: &DeadLetter, report: &mut RedriveReport) -> Result<(), String> {
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
            request_id: None,
            // Selected through the admin API, which confines a key to its own site's records.
            writer: crate::pipeline::Writer::Trusted,
        };
        let result = match self.remap(l) {
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
                let o = self
                    .ingest(&req, items, false)
                    .await
                    .map_err(|e| e.to_string())?;
                RedriveResult {
                    id: l.id.clone(),
                    accepted: o.accepted,
                    errors: o
                        .rejected
                        .iter()
                        .map(|(i, e)| format!("[{i}] {e}"))
                        .collect(),
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
        Ok(())
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

/// A record of the dead-letter topic that is not a dead letter (written by something else): listed
/// as such, so a page still accounts for it.
fn unparsable(m: &tailor_infra::bus::Message) -> DeadLetter {
    DeadLetter::new(
        Source::Api,
        "",
        0,
        String::from_utf8_lossy(&m.payload).into_owned(),
        tailor_core::event::FieldError::new(
            tailor_core::event::ErrorKind::Malformed,
            "$",
            format!("record {}:{} is not a dead letter", m.partition, m.offset),
        ),
        chrono::DateTime::UNIX_EPOCH,
    )
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
