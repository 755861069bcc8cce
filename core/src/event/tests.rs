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
            "a number from 0 to",
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
            item_ids: vec![ItemId::parse("i1").unwrap(), ItemId::parse("i2").unwrap()],
            token: None,
        }
    );
    // A campaign offer's impression and click carry its token instead of items.
    let e = parse(
        json!({"type":"offer_impression","site_id":"demo","anonymous_id":"a",
        "slot":"home","token":"t.s"}),
    )
    .unwrap();
    assert!(
        matches!(e.body, EventBody::OfferImpression { ref item_ids, token: Some(_), .. } if item_ids.is_empty())
    );
    let e = parse(
        json!({"type":"offer_click","site_id":"demo","anonymous_id":"a",
        "slot":"home","token":"t.s"}),
    )
    .unwrap();
    assert!(matches!(
        e.body,
        EventBody::OfferClick {
            item_id: None,
            token: Some(_),
            ..
        }
    ));
    let err = parse(
        json!({"type":"offer_impression","site_id":"demo","anonymous_id":"a",
        "slot":"home"}),
    )
    .unwrap_err();
    assert_eq!(err.field, "item_ids");
    let err = parse(
        json!({"type":"offer_click","site_id":"demo","anonymous_id":"a",
        "slot":"home","token":"x".repeat(MAX_TOKEN_LEN + 1)}),
    )
    .unwrap_err();
    assert_eq!(err.field, "token");
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

fn order(lines: serde_json::Value, revenue: Option<f64>) -> serde_json::Value {
    let mut o = json!({"id":"o","currency":"EUR","lines":lines});
    if let Some(r) = revenue {
        o["revenue"] = json!(r);
    }
    json!({"type":"purchase","site_id":"demo","anonymous_id":"a","order":o})
}

#[test]
fn money_and_quantities_are_bounded_naming_the_field() {
    let err = |v| parse(v).unwrap_err();
    // price x quantity overflowed to infinity and was acknowledged, then dropped by the processor.
    let e = err(order(
        json!([{"item_id":"x","price":1.7e308,"quantity":2}]),
        None,
    ));
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("order.lines[0].price", ErrorKind::InvalidValue)
    );
    // Each line within bounds, the sum above the most an order may total.
    let lines: Vec<_> = (0..20)
        .map(|i| json!({"item_id":format!("x{i}"),"price":MAX_PRICE,"quantity":MAX_QUANTITY}))
        .collect();
    let e = err(order(json!(lines), None));
    assert_eq!(e.field, "order.lines", "{e}");
    assert!(e.reason.contains("more than an order may total"), "{e}");
    // A given total of 1e308 made the site's revenue 1e308.
    let one = json!([{"item_id":"x","price":1.0}]);
    assert_eq!(err(order(one.clone(), Some(1e308))).field, "order.revenue");
    assert_eq!(
        err(order(
            json!([{"item_id":"x","price":1.0,"quantity":MAX_QUANTITY + 1}]),
            None
        ))
        .field,
        "order.lines[0].quantity"
    );
    let cart = |price: f64, quantity: u32| {
        json!({"type":"add_to_cart","site_id":"demo","anonymous_id":"a","item_id":"i",
            "price":price,"quantity":quantity})
    };
    assert_eq!(err(cart(MAX_PRICE * 10.0, 1)).field, "price");
    assert_eq!(err(cart(1.0, MAX_QUANTITY + 1)).field, "quantity");
    // The bounds themselves are accepted.
    parse(cart(MAX_PRICE, MAX_QUANTITY)).unwrap();
    parse(order(one, Some(MAX_REVENUE))).unwrap();
}

#[test]
fn the_wire_never_carries_an_amount_no_reader_can_decode() {
    let mut e = parse(order(json!([{"item_id":"x","price":2.5}]), None)).unwrap();
    let EventBody::Purchase { order } = &mut e.body else {
        panic!("not a purchase")
    };
    order.revenue = f64::INFINITY;
    assert!(
        e.to_wire().is_err(),
        "a non-finite amount must not be written"
    );
    // What collectors before the check wrote (`null`) still decodes, so the order counts.
    let EventBody::Purchase { order } = &mut e.body else {
        unreachable!()
    };
    order.revenue = 3.0;
    let mut wire: serde_json::Value = serde_json::from_slice(&e.to_wire().unwrap()).unwrap();
    wire["order"]["revenue"] = serde_json::Value::Null;
    let back: Event = serde_json::from_value(wire).unwrap();
    let EventBody::Purchase { order } = back.body else {
        panic!("not a purchase")
    };
    assert_eq!(order.revenue, 0.0);
    assert_eq!(order.lines[0].price, 2.5);
}

#[test]
fn event_times_stay_between_1990_and_a_day_ahead_even_after_skew_correction() {
    let at = |t: &str, sent: Option<&str>| {
        let mut v = json!({"type":"page_view","site_id":"demo","anonymous_id":"a","timestamp":t});
        if let Some(s) = sent {
            v["sent_at"] = json!(s);
        }
        parse(v)
    };
    // Year 1 sent in year 9999 was stored as year -7973.
    let e = at("0001-01-01T00:00:00Z", Some("9999-12-31T23:59:59Z")).unwrap_err();
    assert_eq!(
        (e.field.as_str(), e.kind),
        ("timestamp", ErrorKind::InvalidValue)
    );
    assert!(e.reason.contains("1990-01-01"), "{e}");
    assert_eq!(
        at("0001-01-01T00:00:00Z", None).unwrap_err().field,
        "timestamp"
    );
    assert_eq!(
        at("1989-12-31T23:59:59Z", None).unwrap_err().field,
        "timestamp"
    );
    // History imports (CDNOW is from 1997) keep working, and so does the floor itself.
    assert_eq!(
        at("1997-01-01T00:00:00Z", None).unwrap().timestamp,
        "1997-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    at("1990-01-01T00:00:00Z", None).unwrap();
    // A device whose clock was reset to 1970 but says when it sent is corrected into range.
    let e = at("1970-01-01T00:00:00Z", Some("1970-01-01T00:00:10Z")).unwrap();
    assert_eq!(e.timestamp, now() - Duration::seconds(10));
    // A correction may not push an event into the future either.
    assert_eq!(
        at("2026-11-24T12:00:00Z", Some("2026-11-20T12:00:00Z"))
            .unwrap()
            .timestamp,
        now(),
        "sent_at before timestamp means sent at once"
    );
    assert_eq!(
        at("2026-11-26T12:00:00Z", None).unwrap_err().field,
        "timestamp"
    );
}
