//! The one path every event takes once its wire format is mapped: validate → check site and origin →
//! enrich → write to the bus, and dead-letter whatever was rejected. All three wire formats (Tailor's
//! API, Snowplow, Segment) and the dead-letter re-drive go through [`Collector::ingest`], so an event is
//! judged the same way whichever door it came in by.

use crate::enrich::RequestMeta;
use crate::error::IngestError;
use crate::mapped::Mapped;
use crate::Collector;
use chrono::{DateTime, Utc};
use std::time::Instant;
use tailor_core::deadletter::DeadLetter;
use tailor_core::event::{ErrorKind, Event, FieldError, RawEvent, Source};

/// Longest payload kept in a dead-letter record; longer ones are cut (and say so).
const MAX_DEAD_LETTER_PAYLOAD: usize = 256 * 1024;

/// Where a request came from and by which door.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub source: Source,
    /// The route, recorded in dead letters (`/v1/events`, `/com.snowplowanalytics.snowplow/tp2`, ...).
    pub route: String,
    pub meta: RequestMeta,
    /// The browser `Origin` header, checked against the site's `allowed_origins`.
    pub origin: Option<String>,
    /// What a request without `origin` may write (`tailor_core::access`).
    pub writer: Writer,
    /// The request's id (`X-Request-Id`), carried with its events to the bus.
    pub request_id: Option<String>,
}

/// Which sites a request that carries no `Origin` may write to.
#[derive(Debug, Clone)]
pub enum Writer {
    /// A browser's pixel (image requests carry no `Origin`): public, as the tag is.
    Browser,
    /// A server-side request with the `collect` key of one site.
    Key(tailor_core::access::Grant),
    /// A server-side request without a key: open sites only.
    Keyless,
    /// Authorized already for the sites its events name: a Segment write key (the site comes from
    /// it), an admin's re-drive (confined to the admin's site).
    Trusted,
}

/// What became of a request's events.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Event ids written to the bus (or the spool), in request order.
    pub accepted: Vec<String>,
    /// Rejected events by index in the request, each also dead-lettered.
    pub rejected: Vec<(usize, FieldError)>,
}

/// The answer of `POST /v1/events`: what was accepted, and what was rejected (each dead-lettered).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Events written to the bus (or the spool).
    pub accepted: usize,
    /// Their ids, in request order (assigned when the event had none).
    pub event_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
}

/// One rejected event of a request.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Rejected {
    /// Its position in the request's batch.
    pub index: usize,
    /// The offending field (`$` for the whole event).
    pub field: String,
    pub reason: String,
    /// `missing_field`, `invalid_type`, `invalid_value`, `unknown_type`, `unknown_site`,
    /// `forbidden`, `malformed`.
    #[schema(value_type = String)]
    pub kind: ErrorKind,
}

impl Outcome {
    /// A request none of whose events was accepted is a client error as a whole.
    pub fn into_result(self) -> Result<Outcome, IngestError> {
        if self.accepted.is_empty() && !self.rejected.is_empty() {
            Err(IngestError::Invalid(self.rejected))
        } else {
            Ok(self)
        }
    }

    /// The rejected events, as partial-success answers list them.
    pub fn rejected_list(&self) -> Vec<Rejected> {
        self.rejected
            .iter()
            .map(|(i, e)| Rejected {
                index: *i,
                field: e.field.clone(),
                reason: e.reason.clone(),
                kind: e.kind,
            })
            .collect()
    }

    /// [`Outcome::rejected_list`] as JSON.
    pub fn rejected_json(&self) -> serde_json::Value {
        serde_json::to_value(self.rejected_list()).expect("rejections serialize")
    }

    /// The answer of `POST /v1/events`.
    pub fn accepted(self) -> Accepted {
        Accepted {
            rejected: self.rejected_list(),
            accepted: self.accepted.len(),
            event_ids: self.accepted,
        }
    }
}

impl Collector {
    /// Validates, enriches and writes a request's events; dead-letters the rejected ones (unless
    /// `dead_letter` is false, as for a re-drive of records that are dead letters already).
    /// Fails only when accepted events could not be made durable (503).
    pub async fn ingest(
        &self,
        req: &RequestInfo,
        items: Vec<Mapped>,
        dead_letter: bool,
    ) -> Result<Outcome, IngestError> {
        let received_at = Utc::now();
        let rc = self.enricher.request(&req.meta);
        let mut events = Vec::with_capacity(items.len());
        let mut rejected = Vec::new();
        let mut letters = Vec::new();
        for m in items {
            let admitted = self.admit(req, m.result, received_at).and_then(|mut e| {
                self.enricher
                    .apply(&rc, m.user_agent.as_deref(), req.source, &mut e);
                // Serialized here, before anything is acknowledged: what cannot be written so that
                // the processor reads it back is refused now, never acknowledged and then dropped.
                let wire = e.to_wire().map_err(|err| {
                    FieldError::invalid("$", format!("cannot be written to the bus: {err}"))
                })?;
                Ok((e, wire))
            });
            match admitted {
                Ok(pair) => events.push(pair),
                Err(err) => {
                    metrics::counter!("tailor_collector_events_total", "outcome" => "rejected",
                        "reason" => err.metric_reason(), "source" => req.source.as_str())
                    .increment(1);
                    if dead_letter {
                        let mut l = DeadLetter::new(
                            req.source,
                            &req.route,
                            m.index,
                            m.payload.into_text(),
                            err.clone(),
                            received_at,
                        );
                        l.site_id = m.site_id;
                        letters.push(l);
                    }
                    rejected.push((m.index, err));
                }
            }
        }
        let letters = async {
            if !letters.is_empty() {
                self.write_dead_letters(req, letters).await;
            }
        };
        let accepted = events.iter().map(|(e, _)| e.event_id.to_string()).collect();
        let records = events
            .into_iter()
            .map(|(e, wire)| (e.partition_key(), wire))
            .collect();
        let (sent, ()) = futures::join!(
            self.send(records, req.source, req.request_id.as_deref()),
            letters
        );
        sent?;
        Ok(Outcome { accepted, rejected })
    }

    /// Dead-letters a request refused as a whole (not JSON, bad envelope, unknown write key): the
    /// body is kept so that, once the cause is fixed, it can be re-driven.
    pub async fn reject_request(&self, req: &RequestInfo, body: &[u8], err: &IngestError) {
        let kind = match err {
            IngestError::Unauthorized(_) => ErrorKind::Forbidden,
            _ => ErrorKind::Malformed,
        };
        metrics::counter!("tailor_collector_events_total", "outcome" => "rejected",
            "reason" => kind.as_str(), "source" => req.source.as_str())
        .increment(1);
        let letter = DeadLetter::new(
            req.source,
            &req.route,
            0,
            String::from_utf8_lossy(body).into_owned(),
            FieldError::new(kind, "$", err.to_string()),
            Utc::now(),
        );
        self.write_dead_letters(req, vec![letter]).await;
    }

    /// Validation plus the checks that need configuration: the site exists and, for a browser
    /// request, the page's origin may write to it.
    fn admit(
        &self,
        req: &RequestInfo,
        raw: Result<RawEvent, FieldError>,
        received_at: DateTime<Utc>,
    ) -> Result<Event, FieldError> {
        let event = raw?.validate(received_at)?;
        let Some(site) = self.config.site(event.site_id.as_str()) else {
            return Err(FieldError::new(
                ErrorKind::UnknownSite,
                "site_id",
                format!(
                    "unknown site {:?} (see sites[] in the configuration)",
                    event.site_id.as_str()
                ),
            ));
        };
        if let Some(origin) = &req.origin {
            if !site.allows_origin(origin) {
                return Err(FieldError::new(
                    ErrorKind::Forbidden,
                    "origin",
                    format!(
                        "origin {origin:?} may not write to site {:?} (sites[].allowed_origins)",
                        site.id
                    ),
                ));
            }
            return Ok(event);
        }
        match &req.writer {
            Writer::Browser | Writer::Trusted => Ok(event),
            Writer::Key(k) if k.site == site.id => Ok(event),
            Writer::Keyless if site.open => Ok(event),
            Writer::Key(k) => Err(FieldError::new(
                ErrorKind::Forbidden,
                "site_id",
                format!(
                    "key {:?} writes to site {:?}, not {:?}",
                    k.name, k.site, site.id
                ),
            )),
            Writer::Keyless => Err(FieldError::new(
                ErrorKind::Unauthorized,
                "site_id",
                format!(
                    "site {:?} takes server-side events with a collect key only (Authorization: Bearer <secret>; `tailor keys create`)",
                    site.id
                ),
            )),
        }
    }

    /// Writes events' wire forms, each under its partition key.
    async fn send(
        &self,
        events: Vec<(String, Vec<u8>)>,
        source: Source,
        request_id: Option<&str>,
    ) -> Result<(), IngestError> {
        if events.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let n = events.len();
        let sends = events.into_iter().map(|(key, wire)| async move {
            self.producer.send_traced(&key, wire, request_id).await
        });
        let results = futures::future::join_all(sends).await;
        metrics::histogram!("tailor_collector_delivery_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        if let Some(Err(first)) = results.iter().find(|r| r.is_err()) {
            let failed = results.iter().filter(|r| r.is_err()).count();
            metrics::counter!("tailor_collector_events_total", "outcome" => "unavailable",
                "reason" => "bus_unavailable", "source" => source.as_str())
            .increment(n as u64);
            tracing::error!(error = %first, failed, total = n, "events could not be made durable");
            return Err(IngestError::Unavailable(first.to_string()));
        }
        metrics::counter!("tailor_collector_events_total", "outcome" => "accepted",
            "source" => source.as_str())
        .increment(n as u64);
        Ok(())
    }

    /// Writes dead letters; a failure here is logged and counted, never turned into a 5xx for a
    /// request that was the client's fault.
    async fn write_dead_letters(&self, req: &RequestInfo, letters: Vec<DeadLetter>) {
        let rc = self.enricher.request(&req.meta);
        let writes = letters.into_iter().map(|mut l| {
            let rc = &rc;
            async move {
                if l.payload.len() > MAX_DEAD_LETTER_PAYLOAD {
                    let mut cut = MAX_DEAD_LETTER_PAYLOAD;
                    while !l.payload.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    l.payload.truncate(cut);
                    l.errors.push(FieldError::new(
                        ErrorKind::Malformed,
                        "$",
                        format!("payload cut to {MAX_DEAD_LETTER_PAYLOAD} bytes in this record"),
                    ));
                }
                l.user_agent = rc.user_agent().map(str::to_string);
                l.ip = rc.ip().map(str::to_string);
                let payload = serde_json::to_vec(&l).expect("a dead letter serializes");
                // Big and small records keep apart, so a flood of big bodies cannot push out the
                // small rejects (see `deadletters`).
                let key = tailor_infra::bus::pinned_key(crate::deadletters::lane(payload.len()));
                match self.dead_letters.send(&key, payload).await {
                    Ok(_) => metrics::counter!("tailor_collector_dead_letters_total", "outcome" => "written", "reason" => l.reason.clone()).increment(1),
                    Err(e) => {
                        metrics::counter!("tailor_collector_dead_letters_total", "outcome" => "lost", "reason" => l.reason.clone()).increment(1);
                        tracing::error!(error = %e, id = %l.id, reason = %l.reason, "could not write a dead letter");
                    }
                }
            }
        });
        futures::future::join_all(writes).await;
    }
}
