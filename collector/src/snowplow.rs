//! The Snowplow tracker protocol, so pages and servers already running the official Snowplow trackers
//! can point them at Tailor unchanged: `GET /i` (one event in the query string, answered with a pixel)
//! and `POST /com.snowplowanalytics.snowplow/tp2` (a `payload_data` envelope of events whose values are
//! all strings). Pure mapping to [`Mapped`] raw events; validation happens in the pipeline.
//!
//! | Snowplow | Tailor |
//! |---|---|
//! | `aid` (app id) | the site whose `snowplow_app_ids` lists it |
//! | `eid`, `uid`, `sid` | `event_id`, `member_id`, `session_id` |
//! | `duid`, else `nuid`/`tnuid`, else `uid` | `anonymous_id`; with none, `nuid-<eid>` (as a Snowplow collector assigns a network id) |
//! | `dtm` (or `ttm`), `stm` | `timestamp`, `sent_at` (clock-skew correction; `ttm` is trusted as is) |
//! | `url`, `refr`, `page` | `url`, `referrer`, `title` |
//! | `ua` | the event's own user agent ([`Mapped::user_agent`]: describes it and judges whether it is a bot) |
//! | `e=pv` | `page_view` |
//! | `e=pp` | `page_ping` of [`HEARTBEAT_MS`] (the protocol carries no interval; 10 s is the trackers' usual heartbeat) |
//! | `e=se` | `custom` named `<se_ca>:<se_ac>`, with `label`, `property`, `value` |
//! | `e=ue` e-commerce action `product_view` / `add_to_cart` / `transaction` | `page_view` / `add_to_cart` / `purchase` from the `product` and `transaction` entities |
//! | `e=ue` `link_click` | `click` |
//! | other `e=ue` (and other e-commerce actions) | `custom` named by the schema, with its data |
//! | `e=tr` with its `e=ti` items in the same request | `purchase` (the `ti` events become `custom` `transaction_item`) |

use crate::error::IngestError;
use crate::mapped::{count, number, Mapped, Payload};
use base64::Engine;
use serde_json::{Map, Value};
use tailor_core::config::Config;
use tailor_core::event::{ErrorKind, EventType, FieldError, RawEvent, RawLine, RawOrder};

/// Dwell credited per page ping.
pub const HEARTBEAT_MS: u64 = 10_000;

const ECOMMERCE_ACTION: &str =
    "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/";
const ECOMMERCE_PRODUCT: &str = "iglu:com.snowplowanalytics.snowplow.ecommerce/product/";
const ECOMMERCE_TRANSACTION: &str = "iglu:com.snowplowanalytics.snowplow.ecommerce/transaction/";
const LINK_CLICK: &str = "iglu:com.snowplowanalytics.snowplow/link_click/";

type Params = Map<String, Value>;

/// `GET /i`: one event in the query string.
pub fn from_query(query: &str, config: &Config) -> Mapped {
    let params: Params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    let (site_id, result) = map_event(&params, &[], config);
    Mapped {
        index: 0,
        site_id,
        payload: Payload::Text(query.to_string()),
        user_agent: text(&params, "ua").map(str::to_string),
        result,
    }
}

/// `POST /com.snowplowanalytics.snowplow/tp2`: a `payload_data` envelope.
pub fn from_post(body: &[u8], config: &Config) -> Result<Vec<Mapped>, IngestError> {
    let envelope: Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::Malformed(format!("request body is not valid JSON: {e}")))?;
    let data = envelope
        .get("data")
        .and_then(Value::as_array)
        .filter(|_| {
            envelope
                .get("schema")
                .and_then(Value::as_str)
                .is_some_and(|s| s.contains("payload_data"))
        })
        .ok_or_else(|| {
            IngestError::Malformed(
                "expected a Snowplow payload_data envelope: {\"schema\": \"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4\", \"data\": [...]}".into(),
            )
        })?;
    // Legacy e-commerce: a transaction (`tr`) and its items (`ti`) are separate events of one request.
    let items: Vec<&Params> = data
        .iter()
        .filter_map(Value::as_object)
        .filter(|p| text(p, "e") == Some("ti"))
        .collect();
    Ok(data
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let (site_id, result) = match v.as_object() {
                Some(p) => map_event(p, &items, config),
                None => (
                    None,
                    Err(FieldError::new(
                        ErrorKind::Malformed,
                        format!("data[{index}]"),
                        "must be an object of tracker parameters",
                    )),
                ),
            };
            Mapped {
                index,
                site_id,
                payload: Payload::Text(v.to_string()),
                user_agent: v.get("ua").and_then(Value::as_str).map(str::to_string),
                result,
            }
        })
        .collect())
}

fn text<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn owned(p: &Params, key: &str) -> Option<String> {
    text(p, key).map(str::to_string)
}

/// Milliseconds since the epoch → RFC 3339.
fn millis(p: &Params, key: &str) -> Result<Option<String>, FieldError> {
    let Some(v) = text(p, key) else {
        return Ok(None);
    };
    let ms: i64 = v.parse().map_err(|_| {
        FieldError::new(
            ErrorKind::InvalidType,
            key,
            format!("must be epoch milliseconds, got {v:?}"),
        )
    })?;
    let t = chrono::DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| FieldError::invalid(key, format!("{ms} is out of range")))?;
    Ok(Some(t.to_rfc3339()))
}

/// A self-describing JSON carried as `plain` (JSON text) or `encoded` (base64url JSON).
fn self_describing(p: &Params, plain: &str, encoded: &str) -> Result<Option<Value>, FieldError> {
    if let Some(s) = text(p, plain) {
        return serde_json::from_str(s).map(Some).map_err(|e| {
            FieldError::new(
                ErrorKind::Malformed,
                plain,
                format!("is not valid JSON: {e}"),
            )
        });
    }
    let Some(s) = text(p, encoded) else {
        return Ok(None);
    };
    // Trackers send base64url, with or without padding; older ones plain base64.
    let cleaned: String = s.trim_end_matches('=').replace('+', "-").replace('/', "_");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cleaned.as_bytes())
        .map_err(|e| {
            FieldError::new(
                ErrorKind::Malformed,
                encoded,
                format!("is not valid base64: {e}"),
            )
        })?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        FieldError::new(
            ErrorKind::Malformed,
            encoded,
            format!("is not valid JSON: {e}"),
        )
    })
}

/// The entities attached to the event (`co`/`cx`): (schema, data) pairs.
fn entities(p: &Params) -> Result<Vec<(String, Value)>, FieldError> {
    let Some(ctx) = self_describing(p, "co", "cx")? else {
        return Ok(vec![]);
    };
    let list = ctx.get("data").and_then(Value::as_array).ok_or_else(|| {
        FieldError::new(
            ErrorKind::Malformed,
            "co",
            "must be a contexts envelope {schema, data: [...]}",
        )
    })?;
    Ok(list
        .iter()
        .filter_map(|e| {
            Some((
                e.get("schema")?.as_str()?.to_string(),
                e.get("data").cloned().unwrap_or(Value::Null),
            ))
        })
        .collect())
}

fn entity<'a>(entities: &'a [(String, Value)], prefix: &str) -> impl Iterator<Item = &'a Value> {
    let prefix = prefix.to_string();
    entities
        .iter()
        .filter(move |(s, _)| s.starts_with(&prefix))
        .map(|(_, d)| d)
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Maps one event's parameters; returns the resolved site too (for dead letters).
fn map_event(
    p: &Params,
    items: &[&Params],
    config: &Config,
) -> (Option<String>, Result<RawEvent, FieldError>) {
    let Some(aid) = text(p, "aid") else {
        return (None, Err(FieldError::missing("aid")));
    };
    let Some(site) = config.site_for_app_id(aid) else {
        return (
            None,
            Err(FieldError::new(
                ErrorKind::UnknownSite,
                "aid",
                format!("no site lists the Snowplow app id {aid:?} (sites[].snowplow_app_ids)"),
            )),
        );
    };
    let site_id = site.id.clone();
    (Some(site_id.clone()), map_body(p, items, site_id))
}

fn map_body(p: &Params, items: &[&Params], site_id: String) -> Result<RawEvent, FieldError> {
    let e = text(p, "e").ok_or_else(|| FieldError::missing("e"))?;
    let entities = entities(p)?;
    let mut raw = match e {
        "pv" => RawEvent::of_type(EventType::PageView),
        "pp" => RawEvent {
            dwell_ms: Some(HEARTBEAT_MS),
            ..RawEvent::of_type(EventType::PagePing)
        },
        "se" => {
            let category = owned(p, "se_ca").ok_or_else(|| FieldError::missing("se_ca"))?;
            let action = owned(p, "se_ac").ok_or_else(|| FieldError::missing("se_ac"))?;
            let mut properties = Map::new();
            for (key, name) in [("se_la", "label"), ("se_pr", "property")] {
                if let Some(v) = owned(p, key) {
                    properties.insert(name.into(), Value::String(v));
                }
            }
            if let Some(v) = number(p.get("se_va"), "se_va")? {
                properties.insert("value".into(), v.into());
            }
            RawEvent {
                name: Some(format!("{category}:{action}")),
                properties: Some(properties),
                ..RawEvent::of_type(EventType::Custom)
            }
        }
        "ue" => {
            let ue = self_describing(p, "ue_pr", "ue_px")?
                .ok_or_else(|| FieldError::missing("ue_pr"))?;
            let inner = ue.get("data").unwrap_or(&Value::Null);
            let schema = inner.get("schema").and_then(Value::as_str).ok_or_else(|| {
                FieldError::new(
                    ErrorKind::Malformed,
                    "ue_pr",
                    "must be {schema, data: {schema, data}}",
                )
            })?;
            let data = inner.get("data").cloned().unwrap_or(Value::Null);
            self_describing_event(schema, data, &entities)?
        }
        "tr" => transaction(p, items)?,
        "ti" => {
            let mut properties = Map::new();
            for (key, name) in [
                ("ti_id", "order_id"),
                ("ti_sk", "sku"),
                ("ti_nm", "name"),
                ("ti_ca", "category"),
                ("ti_pr", "price"),
                ("ti_qu", "quantity"),
                ("ti_cu", "currency"),
            ] {
                if let Some(v) = owned(p, key) {
                    properties.insert(name.into(), Value::String(v));
                }
            }
            RawEvent {
                name: Some("transaction_item".into()),
                properties: Some(properties),
                ..RawEvent::of_type(EventType::Custom)
            }
        }
        other => {
            return Err(FieldError::new(
                ErrorKind::UnknownType,
                "e",
                format!("must be one of pv, pp, se, ue, tr, ti, got {other:?}"),
            ))
        }
    };
    raw.site_id = Some(site_id);
    raw.event_id = owned(p, "eid");
    raw.member_id = owned(p, "uid");
    raw.session_id = owned(p, "sid");
    raw.anonymous_id = ["duid", "nuid", "tnuid", "uid"]
        .iter()
        .find_map(|k| owned(p, k))
        .or_else(|| raw.event_id.as_ref().map(|eid| format!("nuid-{eid}")));
    if raw.anonymous_id.is_none() {
        return Err(FieldError::new(
            ErrorKind::MissingField,
            "duid",
            "one of duid, nuid, tnuid, uid or eid is required to tell visitors apart",
        ));
    }
    match millis(p, "ttm")? {
        Some(t) => raw.timestamp = Some(t),
        None => {
            raw.timestamp = millis(p, "dtm")?;
            if raw.timestamp.is_some() {
                raw.sent_at = millis(p, "stm")?;
            }
        }
    }
    raw.url = owned(p, "url");
    raw.referrer = owned(p, "refr");
    if raw.kind.as_deref() == Some(EventType::PageView.as_str()) {
        raw.title = owned(p, "page");
    }
    Ok(raw)
}

/// Self-describing events: the e-commerce plugin's actions become Tailor's e-commerce events.
fn self_describing_event(
    schema: &str,
    data: Value,
    entities: &[(String, Value)],
) -> Result<RawEvent, FieldError> {
    if schema.starts_with(ECOMMERCE_ACTION) {
        let action = data.get("type").and_then(Value::as_str).unwrap_or("");
        let product = entity(entities, ECOMMERCE_PRODUCT).next();
        let product_field = |name: &str| format!("co.product.{name}");
        match action {
            "product_view" | "add_to_cart" => {
                let product = product.ok_or_else(|| {
                    FieldError::missing(format!("co.{}", ECOMMERCE_PRODUCT.trim_end_matches('/')))
                })?;
                let mut raw = RawEvent::of_type(if action == "product_view" {
                    EventType::PageView
                } else {
                    EventType::AddToCart
                });
                raw.item_id = Some(
                    str_of(product, "id")
                        .ok_or_else(|| FieldError::missing(product_field("id")))?,
                );
                raw.category = str_of(product, "category");
                raw.brand = str_of(product, "brand");
                if action == "add_to_cart" {
                    raw.quantity = count(product.get("quantity"), &product_field("quantity"))?;
                    raw.price = number(product.get("price"), &product_field("price"))?;
                }
                return Ok(raw);
            }
            "transaction" => {
                let t = entity(entities, ECOMMERCE_TRANSACTION)
                    .next()
                    .ok_or_else(|| {
                        FieldError::missing(format!(
                            "co.{}",
                            ECOMMERCE_TRANSACTION.trim_end_matches('/')
                        ))
                    })?;
                let mut lines = Vec::new();
                for (i, prod) in entity(entities, ECOMMERCE_PRODUCT).enumerate() {
                    let f = |name: &str| format!("co.product[{i}].{name}");
                    lines.push(RawLine {
                        item_id: str_of(prod, "id"),
                        category: str_of(prod, "category"),
                        brand: str_of(prod, "brand"),
                        price: number(prod.get("price"), &f("price"))?,
                        quantity: count(prod.get("quantity"), &f("quantity"))?,
                    });
                }
                return Ok(RawEvent {
                    order: Some(RawOrder {
                        id: str_of(t, "transaction_id"),
                        revenue: number(t.get("revenue"), "co.transaction.revenue")?,
                        currency: str_of(t, "currency").map(|c| c.to_ascii_uppercase()),
                        lines: Some(lines),
                    }),
                    ..RawEvent::of_type(EventType::Purchase)
                });
            }
            _ => {
                return Ok(custom(format!("ecommerce:{action}"), data));
            }
        }
    }
    if schema.starts_with(LINK_CLICK) {
        return Ok(RawEvent::of_type(EventType::Click));
    }
    Ok(custom(schema.to_string(), data))
}

fn custom(name: String, data: Value) -> RawEvent {
    let properties = match data {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => Map::from_iter([("data".to_string(), other)]),
    };
    RawEvent {
        name: Some(name),
        properties: Some(properties),
        ..RawEvent::of_type(EventType::Custom)
    }
}

/// A legacy `tr` transaction with the `ti` items of the same request that carry its order id.
fn transaction(p: &Params, items: &[&Params]) -> Result<RawEvent, FieldError> {
    let id = owned(p, "tr_id").ok_or_else(|| FieldError::missing("tr_id"))?;
    let mut lines = Vec::new();
    for ti in items
        .iter()
        .filter(|ti| text(ti, "ti_id") == Some(id.as_str()))
    {
        lines.push(RawLine {
            item_id: owned(ti, "ti_sk"),
            category: owned(ti, "ti_ca"),
            brand: None,
            price: number(ti.get("ti_pr"), "ti_pr")?,
            quantity: count(ti.get("ti_qu"), "ti_qu")?,
        });
    }
    if lines.is_empty() {
        return Err(FieldError::new(
            ErrorKind::MissingField,
            "ti",
            format!("transaction {id:?} has no ti items in the same request (send it with POST so they travel together)"),
        ));
    }
    Ok(RawEvent {
        order: Some(RawOrder {
            id: Some(id),
            revenue: number(p.get("tr_tt"), "tr_tt")?,
            currency: owned(p, "tr_cu").map(|c| c.to_ascii_uppercase()),
            lines: Some(lines),
        }),
        ..RawEvent::of_type(EventType::Purchase)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tailor_core::event::EventBody;
    use tailor_core::Event;

    fn validate(m: &Mapped) -> Result<Event, FieldError> {
        m.result.clone()?.validate(chrono::Utc::now())
    }

    fn b64(v: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn post(events: Value) -> Vec<Mapped> {
        let body = json!({"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": events});
        from_post(body.to_string().as_bytes(), &Config::default()).unwrap()
    }

    fn contexts(entities: Value) -> String {
        json!({"schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0", "data": entities}).to_string()
    }

    fn ecommerce(action: &str) -> String {
        json!({"schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
            "data": {"schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-2",
                     "data": {"type": action}}})
        .to_string()
    }

    fn product(id: &str, price: f64, quantity: u32) -> Value {
        json!({"schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0",
            "data": {"id": id, "name": "Tent", "category": "camping", "price": price, "currency": "EUR", "quantity": quantity}})
    }

    #[test]
    fn a_pixel_page_view_maps_ids_times_and_page() {
        let q = "e=pv&aid=demo&eid=5a1f&duid=d-1&uid=m-42&sid=s-9&dtm=1764036000000&stm=1764036000500\
                 &url=https%3A%2F%2Fshop.example%2Fp%2F1&refr=https%3A%2F%2Fwww.google.com%2F&page=Tent&p=web&tv=js-4.0.0";
        let m = from_query(q, &Config::default());
        assert_eq!(m.site_id.as_deref(), Some("demo"));
        assert_eq!(m.payload.clone().into_text(), q);
        assert_eq!(m.user_agent, None);
        let relayed = from_query(
            &format!("{q}&ua=Mozilla%2F5.0%20Googlebot"),
            &Config::default(),
        );
        assert_eq!(relayed.user_agent.as_deref(), Some("Mozilla/5.0 Googlebot"));
        let e = validate(&m).unwrap();
        assert_eq!(e.event_id.as_str(), "5a1f");
        assert_eq!(e.anonymous_id.as_str(), "d-1");
        assert_eq!(e.member_id.as_ref().unwrap().as_str(), "m-42");
        assert_eq!(e.session_id.as_ref().unwrap().as_str(), "s-9");
        assert_eq!(e.url.as_deref(), Some("https://shop.example/p/1"));
        assert_eq!(e.referrer.as_deref(), Some("https://www.google.com/"));
        assert!(matches!(&e.body, EventBody::PageView { title: Some(t), .. } if t == "Tent"));
        assert_eq!(
            e.context.device_timestamp.unwrap().timestamp_millis(),
            1_764_036_000_000
        );
    }

    #[test]
    fn pings_structured_and_unknown_self_describing_events() {
        let unknown = json!({"schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
            "data": {"schema": "iglu:com.acme/signup/jsonschema/1-0-0", "data": {"plan": "pro"}}});
        let got = post(json!([
            {"e": "pp", "aid": "demo", "duid": "d", "eid": "1"},
            {"e": "se", "aid": "demo", "duid": "d", "eid": "2", "se_ca": "video", "se_ac": "play", "se_la": "intro", "se_va": "1.5"},
            {"e": "ue", "aid": "demo", "duid": "d", "eid": "3", "ue_px": b64(&unknown)},
        ]));
        let events: Vec<Event> = got.iter().map(|m| validate(m).unwrap()).collect();
        assert_eq!(
            events[0].body,
            EventBody::PagePing {
                dwell_ms: HEARTBEAT_MS
            }
        );
        let EventBody::Custom { name, properties } = &events[1].body else {
            panic!()
        };
        assert_eq!(name, "video:play");
        assert_eq!(properties["label"], "intro");
        assert_eq!(properties["value"], 1.5);
        let EventBody::Custom { name, properties } = &events[2].body else {
            panic!()
        };
        assert_eq!(name, "iglu:com.acme/signup/jsonschema/1-0-0");
        assert_eq!(properties["plan"], "pro");
    }

    #[test]
    fn ecommerce_plugin_actions_become_tailor_commerce_events() {
        let got = post(json!([
            {"e": "ue", "aid": "demo", "duid": "d", "eid": "v", "ue_pr": ecommerce("product_view"),
             "co": contexts(json!([product("tent-2p", 189.0, 1)]))},
            {"e": "ue", "aid": "demo", "duid": "d", "eid": "c", "ue_pr": ecommerce("add_to_cart"),
             "cx": b64(&serde_json::from_str::<Value>(&contexts(json!([product("tent-2p", 189.0, 2)]))).unwrap())},
            {"e": "ue", "aid": "demo", "duid": "d", "uid": "m-42", "eid": "t", "ue_pr": ecommerce("transaction"),
             "co": contexts(json!([
                {"schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/transaction/jsonschema/1-0-0",
                 "data": {"transaction_id": "o-1", "revenue": 208.0, "currency": "eur", "payment_method": "card"}},
                product("tent-2p", 189.0, 1), product("socks", 19.0, 1)]))},
            {"e": "ue", "aid": "demo", "duid": "d", "eid": "l", "ue_pr": ecommerce("list_view")},
        ]));
        let events: Vec<Event> = got.iter().map(|m| validate(m).unwrap()).collect();
        assert_eq!(events[0].item().unwrap().0.as_str(), "tent-2p");
        assert_eq!(events[0].event_type(), EventType::PageView);
        assert!(
            matches!(&events[1].body, EventBody::AddToCart { quantity: 2, price: Some(p), .. } if *p == 189.0)
        );
        let EventBody::Purchase { order } = &events[2].body else {
            panic!()
        };
        assert_eq!(
            (order.id.as_str(), order.currency.as_str(), order.revenue),
            ("o-1", "EUR", 208.0)
        );
        assert_eq!(order.lines.len(), 2);
        assert!(
            matches!(&events[3].body, EventBody::Custom { name, .. } if name == "ecommerce:list_view")
        );
    }

    #[test]
    fn legacy_transactions_gather_their_items() {
        let got = post(json!([
            {"e": "tr", "aid": "demo", "duid": "d", "eid": "t", "tr_id": "o-9", "tr_tt": "30", "tr_cu": "USD"},
            {"e": "ti", "aid": "demo", "duid": "d", "eid": "i1", "ti_id": "o-9", "ti_sk": "a", "ti_pr": "10", "ti_qu": "2"},
            {"e": "ti", "aid": "demo", "duid": "d", "eid": "i2", "ti_id": "o-9", "ti_sk": "b", "ti_pr": "10", "ti_qu": "1"},
        ]));
        let e = validate(&got[0]).unwrap();
        let EventBody::Purchase { order } = &e.body else {
            panic!()
        };
        assert_eq!(order.lines.len(), 2);
        assert_eq!(order.revenue, 30.0);
        assert!(matches!(
            validate(&got[1]).unwrap().body,
            EventBody::Custom { .. }
        ));
        let alone = from_query("e=tr&aid=demo&duid=d&tr_id=o-1&tr_tt=5", &Config::default());
        assert_eq!(alone.result.unwrap_err().field, "ti");
    }

    #[test]
    fn errors_name_the_parameter() {
        let c = Config::default();
        let err = |q: &str| from_query(q, &c).result.unwrap_err();
        assert_eq!(err("e=pv&duid=d").field, "aid");
        let e = err("e=pv&aid=nope&duid=d");
        assert_eq!((e.field.as_str(), e.kind), ("aid", ErrorKind::UnknownSite));
        assert_eq!(err("e=zz&aid=demo&duid=d").kind, ErrorKind::UnknownType);
        assert_eq!(err("e=pv&aid=demo").field, "duid");
        assert_eq!(err("e=pv&aid=demo&duid=d&dtm=yesterday").field, "dtm");
        assert_eq!(err("e=ue&aid=demo&duid=d&ue_px=%%%").field, "ue_px");
        assert_eq!(err("e=ue&aid=demo&duid=d&ue_pr=%7Bnope").field, "ue_pr");
        assert_eq!(err("e=se&aid=demo&duid=d&se_ca=x").field, "se_ac");
        let m = from_query("e=pv&aid=demo&eid=abc", &c);
        assert_eq!(validate(&m).unwrap().anonymous_id.as_str(), "nuid-abc");
        assert!(matches!(
            from_post(b"{", &c),
            Err(IngestError::Malformed(_))
        ));
        assert!(matches!(
            from_post(br#"{"data": []}"#, &c),
            Err(IngestError::Malformed(_))
        ));
        let got = post(json!([7, {"e": "pv", "aid": "demo", "duid": "d"}]));
        assert_eq!(got[0].result.as_ref().unwrap_err().field, "data[0]");
        assert!(validate(&got[1]).is_ok());
    }
}
