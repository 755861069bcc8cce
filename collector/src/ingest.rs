//! Tailor's own JSON API (`POST /v1/events`, used by the JS tag and by back ends): body → [`Mapped`]
//! events, with no I/O.
//!
//! A body is one event object or an array of them. Each element is mapped on its own, so one bad event
//! does not sink its batch; only a body that is not JSON at all, an empty array or an oversized batch is
//! refused as a whole.

use crate::error::IngestError;
use crate::mapped::{Mapped, Payload};
use tailor_core::event::RawEvent;

/// Maps a request body to one entry per event.
pub fn parse_body(body: &[u8], max_batch_events: usize) -> Result<Vec<Mapped>, IngestError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::Malformed(format!("request body is not valid JSON: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        single => vec![single],
    };
    check_batch(items.len(), max_batch_events)?;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| Mapped {
            index,
            site_id: item
                .get("site_id")
                .and_then(|s| s.as_str())
                .map(str::to_string),
            user_agent: item
                .pointer("/context/user_agent")
                .and_then(|s| s.as_str())
                .map(str::to_string),
            result: RawEvent::from_json_ref(&item),
            payload: Payload::Json(item),
        })
        .collect())
}

/// The batch-size rule every wire format shares.
pub fn check_batch(len: usize, max: usize) -> Result<(), IngestError> {
    if len == 0 {
        return Err(IngestError::EmptyBatch);
    }
    if len > max {
        return Err(IngestError::TooManyEvents { got: len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Vec<Mapped>, IngestError> {
        parse_body(body.as_bytes(), 500)
    }

    #[test]
    fn maps_one_event_or_a_batch_element_by_element() {
        let one = parse(r#"{"type":"page_view","site_id":"demo","anonymous_id":"a"}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].site_id.as_deref(), Some("demo"));
        let batch = parse(
            r#"[{"type":"page_view","site_id":"demo","anonymous_id":"a"},
                {"type":"page_view","site_id":"demo","dwell_ms":"x"}, 7]"#,
        )
        .unwrap();
        assert_eq!(batch.len(), 3);
        assert!(batch[0].result.is_ok());
        assert_eq!(batch[1].result.as_ref().unwrap_err().field, "dwell_ms");
        assert_eq!(batch[2].result.as_ref().unwrap_err().field, "$");
        assert_eq!(batch[2].payload.clone().into_text(), "7");
        assert_eq!(batch[2].index, 2);
        let relayed = parse(
            r#"{"type":"page_view","site_id":"demo","anonymous_id":"a","context":{"user_agent":"Googlebot/2.1"}}"#,
        )
        .unwrap();
        assert_eq!(relayed[0].user_agent.as_deref(), Some("Googlebot/2.1"));
        assert!(
            relayed[0].result.is_ok(),
            "context is the collector's to fill"
        );
        assert_eq!(one[0].user_agent, None);
    }

    #[test]
    fn refuses_unusable_bodies() {
        assert!(matches!(parse("{"), Err(IngestError::Malformed(_))));
        assert!(matches!(parse("[]"), Err(IngestError::EmptyBatch)));
        let two = r#"[{"type":"page_view"},{"type":"page_view"}]"#;
        assert!(matches!(
            parse_body(two.as_bytes(), 1),
            Err(IngestError::TooManyEvents { got: 2, max: 1 })
        ));
    }
}
