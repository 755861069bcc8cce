//! Marketers' endpoints over what the processor mined:
//!
//! * `GET /admin/segments?site=`: every segment (configured and added here) with its size;
//! * `PUT /admin/segments/{name}?site=` with `{"rule": "...", "description": "..."}`: adds or replaces
//!   a segment; an invalid rule is refused with 400 and the column of the mistake. The processor picks
//!   it up with its next batch; members enter as their profiles next change, or at the next sweep;
//! * `DELETE /admin/segments/{name}?site=`: removes a segment added here (configured ones: 409);
//! * `GET /admin/segments/{name}/members?site=&limit=`: who is in it;
//! * `GET /admin/analytics?site=&from=&to=`: traffic by channel and referrer, top pages, the dwell
//!   distribution, the view/cart/purchase funnel per hour and day, segment and stage sizes, and the
//!   RFM grid;
//! * `GET /insights?site=`: the same as pictures (funnel, channels, hours, dwell, the RFM heat map,
//!   stages, segments), refreshed every five seconds.

use super::Admin;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use tailor_core::models::STAGES;
use tailor_core::ops::{Update, WriteOp};
use tailor_core::segment::{self, SegmentDef};
use tailor_infra::api::{bad, ApiError};
use tailor_infra::store::Read;

use tailor_infra::api::Params;

/// The insights page (self-contained HTML and SVG, no external assets).
#[utoipa::path(get, path = "/insights", tag = "insights",
    params(("site" = Option<String>, Query, description = "the site the page shows (chosen on the page otherwise)")),
    responses((status = 200, description = "the marketers' insights page", body = String, content_type = "text/html")))]
pub(crate) async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("insights.html"))
}

/// A segment as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentInfo {
    pub name: String,
    pub rule: String,
    pub description: Option<String>,
    /// `config` or `api`.
    #[schema(value_type = String)]
    pub source: &'static str,
    pub members: u64,
    /// Why a stored definition no longer loads (it is set aside: never evaluated, members frozen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of `PUT /admin/segments/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    pub rule: String,
    #[serde(default)]
    pub description: Option<String>,
}

impl Admin {
    async fn stored_segments(
        &self,
        site: &tailor_core::SiteId,
    ) -> Result<Vec<SegmentDef>, ApiError> {
        let h = self
            .store
            .read(&[Read::Hash(self.keys.segment_defs(site))])
            .await?
            .pop()
            .map(|v| v.into_hash())
            .unwrap_or_default();
        Ok(h.values()
            .filter_map(|raw| serde_json::from_str(raw).ok())
            .collect())
    }

    fn configured_segments(&self, site: &tailor_core::SiteId) -> Vec<SegmentDef> {
        self.config
            .segments
            .iter()
            .filter(|d| d.site.as_deref().is_none_or(|s| s == site.as_str()))
            .cloned()
            .collect()
    }
}

/// The site's segments (from the configuration and the admin API) with their sizes.
#[utoipa::path(get, path = "/admin/segments", tag = "segments",
    params(("site" = String, Query, description = "the site id")),
    responses(
        (status = 200, description = "the segments", body = Vec<SegmentInfo>),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn list_segments(
    State(r): State<Admin>,
    Query(q): Params,
) -> Result<Json<Vec<SegmentInfo>>, ApiError> {
    let site = r.site(&q)?;
    let stored = r.stored_segments(&site).await?;
    let mut all: Vec<(SegmentDef, &'static str)> = r
        .configured_segments(&site)
        .into_iter()
        .filter(|c| !stored.iter().any(|s| s.name == c.name))
        .map(|d| (d, "config"))
        .collect();
    all.extend(stored.into_iter().map(|d| (d, "api")));
    all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let reads: Vec<Read> = all
        .iter()
        .map(|(d, _)| Read::SCard(r.keys.segment(&site, &d.name)))
        .collect();
    let sizes = r.store.read(&reads).await?;
    Ok(Json(
        all.into_iter()
            .zip(sizes)
            .map(|((d, source), n)| SegmentInfo {
                error: segment::check(&d).err(),
                name: d.name,
                rule: d.rule,
                description: d.description,
                source,
                members: n.into_count(),
            })
            .collect(),
    ))
}

/// Adds or replaces a segment written as a rule (docs/mining.md, "Segments").
#[utoipa::path(put, path = "/admin/segments/{name}", tag = "segments",
    params(("name" = String, Path, description = "the segment name"), ("site" = String, Query, description = "the site id")),
    request_body = SegmentBody,
    responses(
        (status = 200, description = "the stored definition (`name`, `rule`, `description`, `site`)", body = Object),
        (status = 400, description = "a missing or invalid parameter, body or rule (`field` names it)", body = tailor_infra::http::ErrorBody),
        (status = 409, description = "the segment comes from the configuration file", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn put_segment(
    State(r): State<Admin>,
    Path(name): Path<String>,
    Query(q): Params,
    body: Result<Json<SegmentBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    if r.configured_segments(&site).iter().any(|d| d.name == name) {
        return Err(ApiError::Configured(format!("segment {name:?}")));
    }
    let Json(body) = body.map_err(|e| bad("body", e.body_text()))?;
    let def = SegmentDef {
        name: name.clone(),
        rule: body.rule,
        description: body.description,
        site: Some(site.to_string()),
    };
    segment::check(&def).map_err(|e| bad("rule", e))?;
    r.store
        .apply(&[Update {
            ops: vec![WriteOp::HashSet {
                key: r.keys.segment_defs(&site),
                field: name,
                value: serde_json::to_string(&def).expect("serialises"),
            }],
            ..Default::default()
        }])
        .await?;
    Ok((StatusCode::OK, Json(def)).into_response())
}

/// Removes a segment added through the admin API.
#[utoipa::path(delete, path = "/admin/segments/{name}", tag = "segments",
    params(("name" = String, Path, description = "the segment name"), ("site" = String, Query, description = "the site id")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 404, description = "no such segment", body = tailor_infra::http::ErrorBody),
        (status = 409, description = "the segment comes from the configuration file", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn delete_segment(
    State(r): State<Admin>,
    Path(name): Path<String>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let site = r.site(&q)?;
    if !r
        .stored_segments(&site)
        .await?
        .iter()
        .any(|d| d.name == name)
    {
        if r.configured_segments(&site).iter().any(|d| d.name == name) {
            return Err(ApiError::Configured(format!("segment {name:?}")));
        }
        return Err(ApiError::NotFound(format!("segment {name}")));
    }
    // One atomic update in the site's slot: the member set and the definition go together.
    let ops = vec![
        WriteOp::Delete {
            key: r.keys.segment(&site, &name),
        },
        WriteOp::HashDelete {
            key: r.keys.segment_defs(&site),
            field: name,
        },
    ];
    r.store
        .apply(&[Update {
            ops,
            ..Default::default()
        }])
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Members of a segment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Members {
    pub segment: String,
    pub total: u64,
    pub members: Vec<String>,
}

/// A segment's size and members (sorted, at most `limit`).
#[utoipa::path(get, path = "/admin/segments/{name}/members", tag = "segments",
    params(("name" = String, Path, description = "the segment name"), ("site" = String, Query, description = "the site id"),
        ("limit" = Option<usize>, Query, description = "members to list, 1 to 10000 (default 100)")),
    responses(
        (status = 200, description = "the members", body = Members),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn segment_members(
    State(r): State<Admin>,
    Path(name): Path<String>,
    Query(q): Params,
) -> Result<Json<Members>, ApiError> {
    let site = r.site(&q)?;
    let limit = tailor_infra::api::limit(&q, 100, 10_000)?;
    let key = r.keys.segment(&site, &name);
    let mut v = r
        .store
        .read(&[Read::SCard(key.clone()), Read::Members(key)])
        .await?
        .into_iter();
    let total = v.next().map(|v| v.into_count()).unwrap_or(0);
    let mut members = v.next().map(|v| v.into_list()).unwrap_or_default();
    members.sort();
    members.truncate(limit);
    Ok(Json(Members {
        segment: name,
        total,
        members,
    }))
}

/// One day of traffic.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Day {
    pub date: String,
    pub events: BTreeMap<String, u64>,
    pub bot_events: u64,
    pub sessions: u64,
    pub channels: BTreeMap<String, u64>,
    pub revenue: f64,
    /// Hour (UTC, `00`..`23`) → views of products, add-to-carts, purchases.
    pub funnel: BTreeMap<String, Funnel>,
    /// Dwell reports by duration bucket.
    pub dwell: BTreeMap<String, u64>,
}

/// The view → cart → purchase funnel.
#[derive(Debug, Default, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Funnel {
    pub view: u64,
    pub cart: u64,
    pub purchase: u64,
}

/// The answer of `GET /admin/analytics`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Analytics {
    pub site_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<Day>,
    /// The whole range's funnel.
    pub funnel: Funnel,
    pub channels: BTreeMap<String, u64>,
    pub top_pages: Vec<(String, f64)>,
    pub top_referrers: Vec<(String, f64)>,
    pub segments: BTreeMap<String, u64>,
    pub stages: BTreeMap<String, u64>,
    /// Customers per recency and frequency score ("51": R=5, F=1), as of the last model refresh.
    pub rfm_grid: BTreeMap<String, u64>,
}

fn date(
    q: &HashMap<String, String>,
    name: &'static str,
    default: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|e| bad(name, format!("expected YYYY-MM-DD: {e}"))),
    }
}

/// The site's analytics over a date range (docs/mining.md, "Site analytics").
#[utoipa::path(get, path = "/admin/analytics", tag = "insights",
    params(("site" = String, Query, description = "the site id"),
        ("from" = Option<String>, Query, description = "first day, YYYY-MM-DD (default six days before `to`)"),
        ("to" = Option<String>, Query, description = "last day, YYYY-MM-DD (default today)")),
    responses(
        (status = 200, description = "the analytics", body = Analytics),
        (status = 400, description = "a missing or invalid parameter", body = tailor_infra::http::ErrorBody),
        (status = 503, description = "the profile store is unavailable", body = tailor_infra::http::ErrorBody)))]
pub(crate) async fn analytics(
    State(r): State<Admin>,
    Query(q): Params,
) -> Result<Json<Analytics>, ApiError> {
    let site = r.site(&q)?;
    let today = Utc::now().date_naive();
    let to = date(&q, "to", today)?;
    let from = date(&q, "from", to - Duration::days(6))?;
    if from > to || (to - from).num_days() > 366 {
        return Err(bad(
            "from",
            "must be on or before `to`, at most 366 days earlier",
        ));
    }
    let dates: Vec<String> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    let k = &r.keys;
    let mut reads: Vec<Read> = Vec::new();
    for d in &dates {
        reads.push(Read::Hash(k.analytics(&site, d)));
        reads.push(Read::Top(k.analytics_pages(&site, d), 50));
        reads.push(Read::Top(k.analytics_referrers(&site, d), 50));
    }
    let values = r.store.read(&reads).await?;
    let mut it = values.into_iter();
    let mut days = Vec::new();
    let mut funnel = Funnel::default();
    let mut channels = BTreeMap::new();
    let mut pages: HashMap<String, f64> = HashMap::new();
    let mut referrers: HashMap<String, f64> = HashMap::new();
    for d in dates {
        let h = it.next().map(|v| v.into_hash()).unwrap_or_default();
        let mut day = Day {
            date: d,
            ..Default::default()
        };
        for (field, v) in h {
            let n: u64 = v.parse().unwrap_or(0);
            if let Some(t) = field.strip_prefix("events:") {
                day.events.insert(t.into(), n);
            } else if let Some(c) = field.strip_prefix("channel:") {
                day.channels.insert(c.into(), n);
                *channels.entry(c.to_string()).or_default() += n;
            } else if let Some(b) = field.strip_prefix("dwell:") {
                day.dwell.insert(b.into(), n);
            } else if let Some(rest) = field.strip_prefix("funnel:") {
                if let Some((hour, step)) = rest.split_once(':') {
                    let f = day.funnel.entry(hour.into()).or_default();
                    let (slot, total) = match step {
                        "view" => (&mut f.view, &mut funnel.view),
                        "cart" => (&mut f.cart, &mut funnel.cart),
                        _ => (&mut f.purchase, &mut funnel.purchase),
                    };
                    *slot += n;
                    *total += n;
                }
            } else if field == "sessions" {
                day.sessions = n;
            } else if field == "bots" {
                day.bot_events = n;
            } else if field == "revenue" {
                day.revenue = v.parse().unwrap_or(0.0);
            }
        }
        for (p, n) in it.next().map(|v| v.into_top()).unwrap_or_default() {
            *pages.entry(p).or_default() += n;
        }
        for (p, n) in it.next().map(|v| v.into_top()).unwrap_or_default() {
            *referrers.entry(p).or_default() += n;
        }
        days.push(day);
    }
    let top = |m: HashMap<String, f64>| {
        let mut v: Vec<(String, f64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(20);
        v
    };
    let mut names: Vec<String> = r
        .configured_segments(&site)
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.extend(r.stored_segments(&site).await?.into_iter().map(|d| d.name));
    names.sort();
    names.dedup();
    let mut reads: Vec<Read> = names
        .iter()
        .map(|n| Read::SCard(k.segment(&site, n)))
        .collect();
    reads.extend(STAGES.iter().map(|s| Read::SCard(k.stage(&site, s))));
    reads.push(Read::Hash(k.models(&site)));
    let mut v = r.store.read(&reads).await?.into_iter();
    let segments = names
        .into_iter()
        .map(|n| (n, v.next().map(|c| c.into_count()).unwrap_or(0)))
        .collect();
    let stages = STAGES
        .iter()
        .map(|s| (s.to_string(), v.next().map(|c| c.into_count()).unwrap_or(0)))
        .collect();
    let rfm_grid = v
        .next()
        .map(|h| h.into_hash())
        .and_then(|h| h.get("grid").and_then(|g| serde_json::from_str(g).ok()))
        .unwrap_or_default();
    Ok(Json(Analytics {
        site_id: site.to_string(),
        from,
        to,
        days,
        funnel,
        channels,
        top_pages: top(pages),
        top_referrers: top(referrers),
        segments,
        stages,
        rfm_grid,
    }))
}
