//! Raw event → [`Event`]: ids, defaults, clock-skew correction and the type-specific fields.

use super::fields::{
    amount, bounded, parse_id, parse_url, quantity, required, required_text, small_map, timestamp,
};
use super::order::validate_order;
use super::{
    Context, ErrorKind, Event, EventBody, EventType, FieldError, RawEvent, MAX_DWELL_MS,
    MAX_FUTURE_SKEW, MAX_PRICE, MAX_PROPERTIES, MAX_SLOT_ITEMS, MAX_TEXT_LEN, MAX_TOKEN_LEN,
    MAX_TRAITS, MIN_TIMESTAMP_MS, SCHEMA_VERSION,
};
use crate::ids::{AnonymousId, Category, EventId, ItemId, MemberId, SessionId, SiteId};
use chrono::{DateTime, Utc};

/// An event time before [`MIN_TIMESTAMP_MS`], as sent or once corrected by `sent_at`.
fn too_early() -> FieldError {
    FieldError::invalid(
        "timestamp",
        "lies before 1990-01-01T00:00:00Z (after correction for the clock skew that sent_at shows, if sent)",
    )
}

impl RawEvent {
    /// Validates and completes the event: assigns an event id when absent, stamps `received_at`,
    /// defaults the timestamp and corrects it for clock skew, and checks the type-specific fields.
    ///
    /// Skew correction follows Snowplow's `derived_tstamp`: when the client says both when the event
    /// happened (`timestamp`) and when it sent it (`sent_at`), both by its own clock, the event happened
    /// `sent_at - timestamp` before the collector received it. The client's value is kept in
    /// `context.device_timestamp`.
    pub fn validate(self, received_at: DateTime<Utc>) -> Result<Event, FieldError> {
        let kind = required(self.kind, "type")?;
        let kind = EventType::parse(&kind).ok_or_else(|| {
            FieldError::new(
                ErrorKind::UnknownType,
                "type",
                format!(
                    "must be one of {}, got {kind:?}",
                    EventType::ALL.map(|t| t.as_str()).join(", ")
                ),
            )
        })?;
        let event_id =
            parse_id(self.event_id, "event_id", EventId::parse)?.unwrap_or_else(EventId::generate);
        let site_id = required(parse_id(self.site_id, "site_id", SiteId::parse)?, "site_id")?;
        let anonymous_id = required(
            parse_id(self.anonymous_id, "anonymous_id", AnonymousId::parse)?,
            "anonymous_id",
        )?;
        let member_id = parse_id(self.member_id, "member_id", MemberId::parse)?;
        let session_id = parse_id(self.session_id, "session_id", SessionId::parse)?;
        let mut context = Context::default();
        let timestamp = match (self.timestamp, self.sent_at) {
            (None, _) => received_at,
            (Some(t), None) => timestamp(&t, "timestamp")?,
            (Some(t), Some(sent)) => {
                let device = timestamp(&t, "timestamp")?;
                // Some trackers send `sent_at` at a coarser resolution than the event time (the
                // Snowplow Python tracker: whole seconds), so it can fall a little before it; the
                // event then happened at sending.
                let sent = timestamp(&sent, "sent_at")?.max(device);
                context.device_timestamp = Some(device);
                context.clock_skew_ms = Some((sent - received_at).num_milliseconds());
                received_at
                    .checked_sub_signed(sent - device)
                    .ok_or_else(too_early)?
            }
        };
        // Checked after the skew correction, so no correction moves an event out of range.
        if timestamp.timestamp_millis() < MIN_TIMESTAMP_MS {
            return Err(too_early());
        }
        if timestamp > received_at + MAX_FUTURE_SKEW {
            return Err(FieldError::invalid(
                "timestamp",
                "lies more than 24 hours in the future",
            ));
        }
        let url = parse_url(self.url, "url")?;
        let referrer = parse_url(self.referrer, "referrer")?;
        let item_id = parse_id(self.item_id, "item_id", ItemId::parse)?;
        let category = parse_id(self.category, "category", Category::parse)?;
        let brand = bounded(self.brand, "brand", crate::ids::MAX_ID_LEN)?;
        if let Some(c) = self.campaign {
            context.campaign = c;
        }

        let body = match kind {
            EventType::PageView => EventBody::PageView {
                item_id,
                category,
                brand,
                title: bounded(self.title, "title", MAX_TEXT_LEN)?,
            },
            EventType::Click => EventBody::Click {
                item_id,
                category,
                brand,
                offer_id: bounded(self.offer_id, "offer_id", MAX_TEXT_LEN)?,
            },
            EventType::AddToCart => EventBody::AddToCart {
                item_id: required(item_id, "item_id")?,
                category,
                brand,
                quantity: quantity(self.quantity, "quantity")?,
                price: self
                    .price
                    .map(|p| amount(p, "price", MAX_PRICE))
                    .transpose()?,
            },
            EventType::Purchase => EventBody::Purchase {
                order: validate_order(required(self.order, "order")?)?,
            },
            EventType::Identify => {
                if member_id.is_none() {
                    return Err(FieldError::new(
                        ErrorKind::MissingField,
                        "member_id",
                        "is required for an identify event",
                    ));
                }
                EventBody::Identify {
                    traits: small_map(self.traits, "traits", MAX_TRAITS)?,
                }
            }
            EventType::PagePing => {
                let dwell_ms = required(self.dwell_ms, "dwell_ms")?;
                if dwell_ms > MAX_DWELL_MS {
                    return Err(FieldError::invalid(
                        "dwell_ms",
                        format!("must be at most {MAX_DWELL_MS} (one day)"),
                    ));
                }
                EventBody::PagePing { dwell_ms }
            }
            EventType::Alias => {
                if member_id.is_none() {
                    return Err(FieldError::new(
                        ErrorKind::MissingField,
                        "member_id",
                        "is required for an alias event",
                    ));
                }
                EventBody::Alias {
                    previous_id: required_text(self.previous_id, "previous_id")?,
                }
            }
            EventType::OfferImpression => {
                let token = bounded(self.token, "token", MAX_TOKEN_LEN)?;
                let raw = match token {
                    Some(_) => self.item_ids.unwrap_or_default(),
                    None => required(self.item_ids, "item_ids")?,
                };
                if raw.len() > MAX_SLOT_ITEMS {
                    return Err(FieldError::invalid(
                        "item_ids",
                        format!("must hold at most {MAX_SLOT_ITEMS} items"),
                    ));
                }
                let item_ids = raw
                    .into_iter()
                    .enumerate()
                    .map(|(i, id)| {
                        ItemId::parse(id).map_err(|e| {
                            FieldError::invalid(format!("item_ids[{i}]"), e.to_string())
                        })
                    })
                    .collect::<Result<_, _>>()?;
                EventBody::OfferImpression {
                    slot: required_text(self.slot, "slot")?,
                    item_ids,
                    token,
                }
            }
            EventType::OfferClick => {
                let token = bounded(self.token, "token", MAX_TOKEN_LEN)?;
                EventBody::OfferClick {
                    slot: required_text(self.slot, "slot")?,
                    item_id: match token {
                        Some(_) => item_id,
                        None => Some(required(item_id, "item_id")?),
                    },
                    token,
                }
            }
            EventType::Custom => EventBody::Custom {
                name: required_text(self.name, "name")?,
                properties: small_map(self.properties, "properties", MAX_PROPERTIES)?,
            },
        };
        Ok(Event {
            schema_version: SCHEMA_VERSION,
            event_id,
            site_id,
            anonymous_id,
            member_id,
            session_id,
            timestamp,
            received_at,
            url,
            referrer,
            context,
            body,
        })
    }
}
