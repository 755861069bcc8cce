//! The Segment HTTP Tracking API, so shops sending events with Segment's libraries can point them at
//! Tailor unchanged: `POST /v1/track|page|screen|identify|alias|group|batch` with the write key as the
//! HTTP Basic user name (server libraries), and the one-letter paths `POST /v1/t|p|s|i|a|g|b` with the
//! write key in the body, sent as `text/plain` by the browser library `@segment/analytics-next`.
//! Pure mapping to [`Mapped`] raw events; validation happens in the pipeline.
//!
//! | Segment | Tailor |
//! |---|---|
//! | write key | the site whose `segment_write_keys` lists it (unknown or missing: 401) |
//! | `messageId`, `userId`, `anonymousId` (else `userId`) | `event_id`, `member_id`, `anonymous_id` |
//! | `timestamp`, `sentAt` (message or batch) | `timestamp`, `sent_at` (clock-skew correction) |
//! | `context.page.url/referrer/title`, `context.campaign` | `url`, `referrer`, `title`, `campaign` |
//! | `context.userAgent` | the event's own user agent ([`Mapped::user_agent`]: describes it and judges whether it is a bot) |
//! | `page` | `page_view` |
//! | `identify` (`traits`) | `identify` |
//! | `alias` (`previousId`) | `alias` |
//! | `track` "Product Viewed" / "Product Clicked" / "Product Added" / "Order Completed" (e-commerce spec v2) | `page_view` / `click` / `add_to_cart` / `purchase` |
//! | other `track`, `screen`, `group` | `custom` (`<event>`, `screen:<name>`, `group`) with the properties |

use crate::error::IngestError;
use crate::mapped::{self, Mapped, Payload};
use serde_json::{Map, Value};
use tailor_core::config::Config;
use tailor_core::event::{Campaign, ErrorKind, EventType, FieldError, RawEvent, RawLine, RawOrder};

/// A Segment API call, from the request path or a batch message's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Track,
    Page,
    Screen,
    Identify,
    Alias,
    Group,
    Batch,
}

impl Call {
    /// `track` or `t`, ...; also accepts `/v1/track`-style paths. `None` for anything else.
    pub fn from_path(path: &str) -> Option<Call> {
        let last = path.rsplit('/').next().unwrap_or(path);
        Some(match last {
            "track" | "t" => Call::Track,
            "page" | "p" => Call::Page,
            "screen" | "s" => Call::Screen,
            "identify" | "i" => Call::Identify,
            "alias" | "a" => Call::Alias,
            "group" | "g" => Call::Group,
            "batch" | "b" | "import" => Call::Batch,
            _ => return None,
        })
    }
}

/// Maps a request body; `basic_key` is the HTTP Basic user name, if any.
pub fn from_body(
    call: Call,
    body: &[u8],
    basic_key: Option<&str>,
    config: &Config,
) -> Result<Vec<Mapped>, IngestError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::Malformed(format!("request body is not valid JSON: {e}")))?;
    let Some(obj) = root.as_object() else {
        return Err(IngestError::Malformed(
            "the body must be a JSON object".into(),
        ));
    };
    let key = basic_key
        .map(str::to_string)
        .or_else(|| text(obj, "writeKey"))
        .or_else(|| {
            obj.get("batch").and_then(Value::as_array).and_then(|b| {
                b.iter()
                    .find_map(|m| m.as_object().and_then(|m| text(m, "writeKey")))
            })
        })
        .ok_or_else(|| {
            IngestError::Unauthorized(
                "a Segment write key is required (HTTP Basic user name, or writeKey in the body)"
                    .into(),
            )
        })?;
    let site = config.site_for_write_key(&key).ok_or_else(|| {
        IngestError::Unauthorized("unknown Segment write key (sites[].segment_write_keys)".into())
    })?;
    let (messages, batch_sent_at): (Vec<(Option<Call>, &Value)>, Option<String>) = match call {
        Call::Batch => {
            let batch = obj.get("batch").and_then(Value::as_array).ok_or_else(|| {
                IngestError::Malformed("a batch body must be {\"batch\": [messages...]}".into())
            })?;
            (
                batch
                    .iter()
                    .map(|m| {
                        let c = m
                            .get("type")
                            .and_then(Value::as_str)
                            .and_then(Call::from_path);
                        (c.filter(|c| *c != Call::Batch), m)
                    })
                    .collect(),
                text(obj, "sentAt"),
            )
        }
        single => (vec![(Some(single), &root)], None),
    };
    Ok(messages
        .into_iter()
        .enumerate()
        .map(|(index, (call, m))| {
            let result = match (call, m.as_object()) {
                (Some(call), Some(m)) => map_message(call, m, batch_sent_at.as_deref(), &site.id),
                (None, Some(m)) => Err(FieldError::new(
                    ErrorKind::UnknownType,
                    "type",
                    format!(
                        "must be one of track, page, screen, identify, alias, group, got {}",
                        m.get("type").map_or("nothing".into(), Value::to_string)
                    ),
                )),
                (_, None) => Err(FieldError::new(
                    ErrorKind::Malformed,
                    format!("batch[{index}]"),
                    "must be a message object",
                )),
            };
            Mapped {
                index,
                site_id: Some(site.id.clone()),
                payload: Payload::Text(m.to_string()),
                user_agent: m
                    .pointer("/context/userAgent")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                result,
            }
        })
        .collect())
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn object<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

fn number(m: &Map<String, Value>, key: &str, field: &str) -> Result<Option<f64>, FieldError> {
    mapped::number(m.get(key), field)
}

fn quantity(m: &Map<String, Value>, key: &str, field: &str) -> Result<Option<u32>, FieldError> {
    mapped::count(m.get(key), field)
}

/// The product id under the names the e-commerce spec allows.
fn product_id(p: &Map<String, Value>) -> Option<String> {
    text(p, "product_id")
        .or_else(|| text(p, "sku"))
        .or_else(|| text(p, "id"))
}

fn map_message(
    call: Call,
    m: &Map<String, Value>,
    batch_sent_at: Option<&str>,
    site_id: &str,
) -> Result<RawEvent, FieldError> {
    let empty = Map::new();
    let props = object(m, "properties").unwrap_or(&empty);
    let context = object(m, "context").unwrap_or(&empty);
    let page = object(context, "page").unwrap_or(&empty);
    let mut raw = match call {
        Call::Page => RawEvent {
            title: text(props, "title").or_else(|| text(m, "name")),
            ..RawEvent::of_type(EventType::PageView)
        },
        Call::Identify => RawEvent {
            traits: object(m, "traits")
                .or_else(|| object(context, "traits"))
                .cloned(),
            ..RawEvent::of_type(EventType::Identify)
        },
        Call::Alias => RawEvent {
            previous_id: text(m, "previousId"),
            ..RawEvent::of_type(EventType::Alias)
        },
        Call::Screen => custom(
            format!("screen:{}", text(m, "name").unwrap_or_default()),
            props.clone(),
        ),
        Call::Group => {
            let mut p = object(m, "traits").cloned().unwrap_or_default();
            if let Some(g) = m.get("groupId") {
                p.insert("groupId".into(), g.clone());
            }
            custom("group".into(), p)
        }
        Call::Track => {
            let event = text(m, "event").ok_or_else(|| FieldError::missing("event"))?;
            track(&event, props)?
        }
        Call::Batch => unreachable!("batches are split into messages"),
    };
    raw.site_id = Some(site_id.to_string());
    raw.event_id = text(m, "messageId");
    raw.member_id = text(m, "userId");
    raw.anonymous_id = text(m, "anonymousId").or_else(|| raw.member_id.clone());
    if raw.anonymous_id.is_none() {
        return Err(FieldError::new(
            ErrorKind::MissingField,
            "anonymousId",
            "anonymousId or userId is required",
        ));
    }
    raw.timestamp = text(m, "timestamp");
    if raw.timestamp.is_some() {
        raw.sent_at = text(m, "sentAt").or_else(|| batch_sent_at.map(str::to_string));
    }
    raw.url = text(props, "url").or_else(|| text(page, "url"));
    raw.referrer = text(props, "referrer").or_else(|| text(page, "referrer"));
    if raw.title.is_none() && raw.kind.as_deref() == Some(EventType::PageView.as_str()) {
        raw.title = text(page, "title");
    }
    if let Some(c) = object(context, "campaign") {
        let campaign = Campaign {
            source: text(c, "source"),
            medium: text(c, "medium"),
            name: text(c, "name"),
            term: text(c, "term"),
            content: text(c, "content"),
        };
        if !campaign.is_empty() {
            raw.campaign = Some(campaign);
        }
    }
    Ok(raw)
}

fn custom(name: String, properties: Map<String, Value>) -> RawEvent {
    RawEvent {
        name: Some(name),
        properties: Some(properties),
        ..RawEvent::of_type(EventType::Custom)
    }
}

/// A `track` call: the e-commerce spec's events map to Tailor's, the rest are custom.
fn track(event: &str, props: &Map<String, Value>) -> Result<RawEvent, FieldError> {
    let item = |kind| RawEvent {
        item_id: product_id(props),
        category: text(props, "category"),
        brand: text(props, "brand"),
        ..RawEvent::of_type(kind)
    };
    Ok(match event {
        "Product Viewed" => {
            let raw = item(EventType::PageView);
            if raw.item_id.is_none() {
                return Err(FieldError::missing("properties.product_id"));
            }
            raw
        }
        "Product Clicked" => item(EventType::Click),
        "Product Added" => RawEvent {
            quantity: quantity(props, "quantity", "properties.quantity")?,
            price: number(props, "price", "properties.price")?,
            ..item(EventType::AddToCart)
        },
        "Order Completed" => {
            let mut lines = Vec::new();
            if let Some(products) = props.get("products").and_then(Value::as_array) {
                for (i, p) in products.iter().enumerate() {
                    let f = |name: &str| format!("properties.products[{i}].{name}");
                    let p = p.as_object().ok_or_else(|| {
                        FieldError::new(ErrorKind::InvalidType, f(""), "must be an object")
                    })?;
                    lines.push(RawLine {
                        item_id: product_id(p),
                        category: text(p, "category"),
                        brand: text(p, "brand"),
                        price: number(p, "price", &f("price"))?,
                        quantity: quantity(p, "quantity", &f("quantity"))?,
                    });
                }
            }
            let revenue = match number(props, "total", "properties.total")? {
                Some(t) => Some(t),
                None => number(props, "revenue", "properties.revenue")?,
            };
            RawEvent {
                order: Some(RawOrder {
                    id: text(props, "order_id").or_else(|| text(props, "checkout_id")),
                    revenue,
                    // The spec's default currency.
                    currency: Some(
                        text(props, "currency").map_or("USD".into(), |c| c.to_ascii_uppercase()),
                    ),
                    lines: Some(lines),
                }),
                ..RawEvent::of_type(EventType::Purchase)
            }
        }
        other => custom(other.to_string(), props.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tailor_core::event::EventBody;
    use tailor_core::Event;

    fn map(call: Call, body: Value, key: Option<&str>) -> Result<Vec<Mapped>, IngestError> {
        from_body(call, body.to_string().as_bytes(), key, &Config::default())
    }

    fn event(m: &Mapped) -> Event {
        m.result
            .clone()
            .unwrap()
            .validate(chrono::Utc::now())
            .unwrap()
    }

    #[test]
    fn paths_name_calls() {
        assert_eq!(Call::from_path("track"), Some(Call::Track));
        assert_eq!(Call::from_path("/v1/t"), Some(Call::Track));
        assert_eq!(Call::from_path("b"), Some(Call::Batch));
        assert_eq!(Call::from_path("events"), None);
    }

    #[test]
    fn a_server_batch_maps_every_call() {
        let body = json!({"sentAt": "2026-11-25T10:00:01Z", "batch": [
            {"type": "identify", "userId": "m-42", "anonymousId": "anon-1", "traits": {"plan": "gold"},
             "messageId": "msg-1", "timestamp": "2026-11-25T10:00:00Z"},
            {"type": "page", "anonymousId": "anon-1", "name": "Tent", "properties": {"url": "https://shop.example/p/1"},
             "context": {"campaign": {"name": "spring", "medium": "email"}}},
            {"type": "track", "userId": "m-42", "event": "Product Viewed", "properties": {"product_id": "tent", "category": "camping"}},
            {"type": "track", "userId": "m-42", "event": "Product Added", "properties": {"sku": "tent", "quantity": 2, "price": "189.5"}},
            {"type": "track", "userId": "m-42", "anonymousId": "anon-1", "event": "Order Completed",
             "properties": {"order_id": "o-1", "total": 208, "currency": "eur",
                            "products": [{"product_id": "tent", "price": 189, "quantity": 1}, {"sku": "socks", "price": 19}]}},
            {"type": "alias", "userId": "m-42", "previousId": "anon-1"},
            {"type": "track", "userId": "m-42", "event": "Signed Up", "properties": {"plan": "pro"}},
            {"type": "group", "userId": "m-42", "groupId": "acme"},
        ]});
        let got = map(Call::Batch, body, Some("demo")).unwrap();
        let e: Vec<Event> = got.iter().map(event).collect();
        assert!(got.iter().all(|m| m.site_id.as_deref() == Some("demo")));
        assert_eq!(e[0].event_type(), EventType::Identify);
        assert_eq!(e[0].member_id.as_ref().unwrap().as_str(), "m-42");
        assert_eq!(e[0].anonymous_id.as_str(), "anon-1");
        assert_eq!(e[0].event_id.as_str(), "msg-1");
        assert!(
            e[0].context.clock_skew_ms.is_some(),
            "batch sentAt corrects skew"
        );
        assert!(matches!(&e[1].body, EventBody::PageView { title: Some(t), .. } if t == "Tent"));
        assert_eq!(e[1].context.campaign.name.as_deref(), Some("spring"));
        assert_eq!(e[2].item().unwrap().0.as_str(), "tent");
        assert!(
            matches!(&e[3].body, EventBody::AddToCart { quantity: 2, price: Some(p), .. } if *p == 189.5)
        );
        let EventBody::Purchase { order } = &e[4].body else {
            panic!()
        };
        assert_eq!(
            (
                order.id.as_str(),
                order.currency.as_str(),
                order.revenue,
                order.lines.len()
            ),
            ("o-1", "EUR", 208.0, 2)
        );
        assert!(matches!(&e[5].body, EventBody::Alias { previous_id } if previous_id == "anon-1"));
        assert!(matches!(&e[6].body, EventBody::Custom { name, .. } if name == "Signed Up"));
        assert!(
            matches!(&e[7].body, EventBody::Custom { name, properties } if name == "group" && properties["groupId"] == "acme")
        );
    }

    #[test]
    fn the_browser_library_puts_the_write_key_in_the_body() {
        let body = json!({"type": "track", "event": "Product Clicked", "writeKey": "demo", "anonymousId": "a",
            "properties": {"product_id": "p1"}, "context": {"page": {"url": "https://shop.example/", "title": "Home"}},
            "sentAt": "2026-11-25T10:00:01Z", "timestamp": "2026-11-25T10:00:00Z", "messageId": "ajs-1"});
        let got = map(Call::from_path("t").unwrap(), body, None).unwrap();
        let e = event(&got[0]);
        assert_eq!(e.event_type(), EventType::Click);
        assert_eq!(e.url.as_deref(), Some("https://shop.example/"));
        assert_eq!(got[0].user_agent, None);
        let relayed = json!({"type": "page", "writeKey": "demo", "anonymousId": "a",
            "context": {"userAgent": "Mozilla/5.0 Googlebot"}});
        let got = map(Call::from_path("p").unwrap(), relayed, None).unwrap();
        assert_eq!(got[0].user_agent.as_deref(), Some("Mozilla/5.0 Googlebot"));
    }

    #[test]
    fn errors() {
        let ok = json!({"type": "page", "anonymousId": "a"});
        assert!(matches!(
            map(Call::Page, ok.clone(), None),
            Err(IngestError::Unauthorized(_))
        ));
        assert!(matches!(
            map(Call::Page, ok, Some("wrong")),
            Err(IngestError::Unauthorized(_))
        ));
        assert!(matches!(
            from_body(Call::Page, b"nope", Some("demo"), &Config::default()),
            Err(IngestError::Malformed(_))
        ));
        assert!(matches!(
            map(Call::Batch, json!({"x": 1}), Some("demo")),
            Err(IngestError::Malformed(_))
        ));
        let got = map(
            Call::Batch,
            json!({"batch": [{"type": "page"}, {"type": "nope", "userId": "u"}, 5,
                             {"type": "track", "userId": "u"},
                             {"type": "track", "userId": "u", "event": "Product Added", "properties": {"quantity": 1.5, "product_id": "x"}}]}),
            Some("demo"),
        )
        .unwrap();
        let field = |i: usize| got[i].result.as_ref().unwrap_err().field.clone();
        assert_eq!(field(0), "anonymousId");
        assert_eq!(
            got[1].result.as_ref().unwrap_err().kind,
            ErrorKind::UnknownType
        );
        assert_eq!(field(2), "batch[2]");
        assert_eq!(field(3), "event");
        assert_eq!(field(4), "properties.quantity");
    }
}
