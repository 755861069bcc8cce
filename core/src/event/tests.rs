//! Validation tests: what a client may send and what the bus receives.

use super::*;
use crate::ids::{AnonymousId, ItemId, Subject};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

fn now() -> DateTime<Utc> {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

fn parse(v: serde_json::Value) -> Result<Event, FieldError> {
    RawEvent::from_json(v)?.validate(now())
}

#[test]
fn minimal_page_view_gets_defaults() {
    let e = parse(json!({"type":"page_view","site_id":"demo","anonymous_id":"a1"})).unwrap();
    assert_eq!(e.event_type(), EventType::PageView);
    assert_eq!(e.timestamp, now());
    assert_eq!(e.received_at, now());
    assert!(!e.event_id.as_str().is_empty());
    assert_eq!(
        e.subject(),
        Subject::Anonymous(AnonymousId::parse("a1").unwrap())
    );
}

#[test]
fn purchase_round_trips_through_the_wire_format() {
    let e = parse(json!({
        "type":"purchase","site_id":"demo","anonymous_id":"a1","member_id":"m1",
        "event_id":"e-1","timestamp":"2026-11-24T11:00:00+01:00",
        "order":{"id":"o1","currency":"EUR","lines":[
            {"item_id":"sku1","category":"shoes","price":10.5,"quantity":2},
            {"item_id":"sku2","price":1.0}
        ]}
    }))
    .unwrap();
    let EventBody::Purchase { order } = &e.body else {
        panic!("not a purchase")
    };
    assert_eq!(order.revenue, 22.0);
    assert_eq!(order.lines[1].quantity, 1);
    assert_eq!(
        e.timestamp,
        "2026-11-24T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    let wire = serde_json::to_value(&e).unwrap();
    assert_eq!(wire["type"], "purchase");
    assert_eq!(wire["order"]["lines"][0]["item_id"], "sku1");
    let back: Event = serde_json::from_value(wire).unwrap();
    assert_eq!(back, e);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            json!({"site_id":"demo","anonymous_id":"a"}),
            "type",
            "is required",
        ),
        (
            json!({"type":"nope","site_id":"demo","anonymous_id":"a"}),
            "type",
            "must be one of",
        ),
        (
            json!({"type":"page_view","anonymous_id":"a"}),
            "site_id",
            "is required",
        ),
        (
            json!({"type":"page_view","site_id":"demo","anonymous_id":""}),
            "anonymous_id",
            "must not be empty",
        ),
        (
            json!({"type":"add_to_cart","site_id":"demo","anonymous_id":"a"}),
            "item_id",
            "is required",
        ),
        (
            json!({"type":"page_ping","site_id":"demo","anonymous_id":"a"}),
            "dwell_ms",
            "is required",
        ),
        (
            json!({"type":"identify","site_id":"demo","anonymous_id":"a"}),
            "member_id",
            "is required",
        ),
        (
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a","timestamp":"yesterday"}),
            "timestamp",
            "must be RFC 3339",
        ),
        (
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a","timestamp":"2027-01-01T00:00:00Z"}),
            "timestamp",
            "future",
        ),
        (
            json!({"type":"purchase","site_id":"demo","anonymous_id":"a","order":{"id":"o","currency":"eur","lines":[]}}),
            "order.currency",
            "ISO 4217",
        ),
        (
            json!({"type":"purchase","site_id":"demo","anonymous_id":"a","order":{"id":"o","currency":"EUR","lines":[{"item_id":"x","price":-1}]}}),
            "order.lines[0].price",
            "non-negative",
        ),
        (
            json!({"type":"purchase","site_id":"demo","anonymous_id":"a","order":{"id":"o","currency":"EUR","lines":[{"item_id":"x","price":"cheap"}]}}),
            "order.lines[0].price",
            "invalid type",
        ),
        (
            json!({"type":"page_view","site_id":"demo","anonymous_id":"a","dwell_ms":-5}),
            "dwell_ms",
            "invalid value",
        ),
        (json!([1]), "$", "JSON object"),
    ];
    for (input, field, reason) in cases {
        let err = parse(input.clone()).unwrap_err();
        assert_eq!(err.field, field, "{input}: {err}");
        assert!(err.reason.contains(reason), "{input}: {err}");
    }
}

#[test]
fn errors_carry_their_kind() {
    let kind = |v| parse(v).unwrap_err().kind;
    assert_eq!(
        kind(json!({"site_id":"demo","anonymous_id":"a"})),
        ErrorKind::MissingField
    );
    assert_eq!(
        kind(json!({"type":"x","site_id":"demo","anonymous_id":"a"})),
        ErrorKind::UnknownType
    );
    assert_eq!(
        kind(json!({"type":"page_view","site_id":"demo","anonymous_id":"a","dwell_ms":"x"})),
        ErrorKind::InvalidType
    );
    assert_eq!(
        kind(
            json!({"type":"add_to_cart","site_id":"demo","anonymous_id":"a","item_id":"i","quantity":0})
        ),
        ErrorKind::InvalidValue
    );
    assert_eq!(kind(json!("x")), ErrorKind::Malformed);
    assert_eq!(ErrorKind::MissingField.as_str(), "missing_field");
}

#[test]
fn clock_skew_is_corrected_from_sent_at() {
    // The device clock runs 1 hour fast; the event happened 10 s before it was sent.
    let e = parse(
        json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
        "timestamp":"2026-11-24T12:59:50Z","sent_at":"2026-11-24T13:00:00Z"}),
    )
    .unwrap();
    assert_eq!(e.timestamp, now() - Duration::seconds(10));
    assert_eq!(e.context.clock_skew_ms, Some(3_600_000));
    assert_eq!(
        e.context.device_timestamp,
        Some("2026-11-24T12:59:50Z".parse().unwrap())
    );
    // A sent_at a little before the event time (a coarser clock) means it was sent at once.
    let e = parse(
        json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
        "timestamp":"2026-11-24T12:59:59.351Z","sent_at":"2026-11-24T12:59:59Z"}),
    )
    .unwrap();
    assert_eq!(e.timestamp, now());
    let err = parse(
        json!({"type":"page_view","site_id":"demo","anonymous_id":"a",
        "timestamp":"2026-11-24T13:00:00Z","sent_at":"yesterday"}),
    )
    .unwrap_err();
    assert_eq!(err.field, "sent_at");
}

#[test]
fn new_event_types_validate_their_fields() {
    let e = parse(
        json!({"type":"offer_impression","site_id":"demo","anonymous_id":"a",
        "slot":"home","item_ids":["i1","i2"]}),
    )
    .unwrap();
    assert_eq!(
        e.body,
        EventBody::OfferImpression {
            slot: "home".into(),
            item_ids: vec![ItemId::parse("i1").unwrap(), ItemId::parse("i2").unwrap()]
        }
    );
    let err = parse(
        json!({"type":"offer_impression","site_id":"demo","anonymous_id":"a",
        "slot":"home","item_ids":["ok","bad id"]}),
    )
    .unwrap_err();
    assert_eq!(err.field, "item_ids[1]");
    let err =
        parse(json!({"type":"offer_click","site_id":"demo","anonymous_id":"a","item_id":"i"}))
            .unwrap_err();
    assert_eq!(err.field, "slot");
    let err = parse(json!({"type":"alias","site_id":"demo","anonymous_id":"a","previous_id":"x"}))
        .unwrap_err();
    assert_eq!(err.field, "member_id");
    let e = parse(
        json!({"type":"custom","site_id":"demo","anonymous_id":"a","name":"signup",
        "properties":{"plan":"pro"}}),
    )
    .unwrap();
    let wire = serde_json::to_value(&e).unwrap();
    assert_eq!(wire["properties"]["plan"], "pro");
    assert_eq!(serde_json::from_value::<Event>(wire).unwrap(), e);
}
