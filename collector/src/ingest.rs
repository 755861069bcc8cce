//! Request body → validated events, with no I/O.
//!
//! A body is one event object or an array of them. A batch is all-or-nothing: if any event is invalid
//! the request is rejected with every error listed by index, so a client never has to work out which
//! part of a batch landed.

use crate::error::IngestError;
use chrono::{DateTime, Utc};
use tailor_core::config::Config;
use tailor_core::event::{Event, FieldError, RawEvent};

/// Parses and validates a request body.
pub fn parse_body(
    body: &[u8],
    config: &Config,
    received_at: DateTime<Utc>,
) -> Result<Vec<Event>, IngestError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| IngestError::NotJson(e.to_string()))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        single => vec![single],
    };
    if items.is_empty() {
        return Err(IngestError::EmptyBatch);
    }
    let max = config.collector.max_batch_events;
    if items.len() > max {
        return Err(IngestError::TooManyEvents {
            got: items.len(),
            max,
        });
    }
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match validate(item, config, received_at) {
            Ok(e) => events.push(e),
            Err(e) => {
                metrics::counter!("tailor_collector_events_total", "outcome" => "rejected", "reason" => e.metric_reason())
                    .increment(1);
                errors.push((i, e));
            }
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        if !events.is_empty() {
            metrics::counter!("tailor_collector_events_total", "outcome" => "rejected", "reason" => "batch_invalid")
                .increment(events.len() as u64);
        }
        Err(IngestError::Invalid(errors))
    }
}

fn validate(
    item: serde_json::Value,
    config: &Config,
    received_at: DateTime<Utc>,
) -> Result<Event, FieldError> {
    let event = RawEvent::from_json(item)?.validate(received_at)?;
    if !config.has_site(&event.site_id) {
        return Err(FieldError::new(
            tailor_core::event::ErrorKind::UnknownSite,
            "site_id",
            format!("unknown site {:?}", event.site_id.as_str()),
        ));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Vec<Event>, IngestError> {
        parse_body(body.as_bytes(), &Config::default(), Utc::now())
    }

    #[test]
    fn accepts_one_event_or_a_batch() {
        assert_eq!(
            parse(r#"{"type":"page_view","site_id":"demo","anonymous_id":"a"}"#)
                .unwrap()
                .len(),
            1
        );
        let batch = r#"[{"type":"page_view","site_id":"demo","anonymous_id":"a"},
                        {"type":"page_ping","site_id":"demo","anonymous_id":"a","dwell_ms":5000}]"#;
        assert_eq!(parse(batch).unwrap().len(), 2);
    }

    #[test]
    fn rejects_with_index_field_and_reason() {
        let batch = r#"[{"type":"page_view","site_id":"demo","anonymous_id":"a"},
                        {"type":"page_view","site_id":"other","anonymous_id":"a"},
                        {"type":"click","site_id":"demo"}]"#;
        let Err(IngestError::Invalid(errors)) = parse(batch) else {
            panic!("expected invalid")
        };
        assert_eq!(errors.len(), 2);
        assert_eq!((errors[0].0, errors[0].1.field.as_str()), (1, "site_id"));
        assert!(errors[0].1.reason.contains("unknown site"));
        assert_eq!(
            (errors[1].0, errors[1].1.field.as_str()),
            (2, "anonymous_id")
        );
    }

    #[test]
    fn rejects_malformed_bodies() {
        assert!(matches!(parse("{"), Err(IngestError::NotJson(_))));
        assert!(matches!(parse("[]"), Err(IngestError::EmptyBatch)));
        let mut config = Config::default();
        config.collector.max_batch_events = 1;
        let two = r#"[{"type":"page_view","site_id":"demo","anonymous_id":"a"},{"type":"page_view","site_id":"demo","anonymous_id":"a"}]"#;
        assert!(matches!(
            parse_body(two.as_bytes(), &config, Utc::now()),
            Err(IngestError::TooManyEvents { got: 2, max: 1 })
        ));
    }
}
