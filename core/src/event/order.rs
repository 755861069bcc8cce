//! Validation of a purchase's order: id, currency, lines and amounts.

use super::fields::{amount, bounded, parse_id, quantity, required};
use super::{FieldError, Order, OrderLine, RawOrder, MAX_ORDER_LINES, MAX_PRICE, MAX_REVENUE};
use crate::ids::{Category, ItemId};

pub(super) fn validate_order(o: RawOrder) -> Result<Order, FieldError> {
    let order_id = required(o.id, "order.id")?;
    if order_id.is_empty() || order_id.len() > crate::ids::MAX_ID_LEN {
        return Err(FieldError::invalid("order.id", "must be 1 to 128 bytes"));
    }
    let currency = required(o.currency, "order.currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(FieldError::invalid(
            "order.currency",
            "must be an ISO 4217 code of three upper-case letters",
        ));
    }
    let raw_lines = required(o.lines, "order.lines")?;
    if raw_lines.is_empty() || raw_lines.len() > MAX_ORDER_LINES {
        return Err(FieldError::invalid(
            "order.lines",
            format!("must hold 1 to {MAX_ORDER_LINES} lines"),
        ));
    }
    let mut lines = Vec::with_capacity(raw_lines.len());
    for (i, l) in raw_lines.into_iter().enumerate() {
        let f = |name: &str| format!("order.lines[{i}].{name}");
        let item_id = required(
            parse_id(l.item_id, &f("item_id"), ItemId::parse)?,
            &f("item_id"),
        )?;
        let category = parse_id(l.category, &f("category"), Category::parse)?;
        let brand = bounded(l.brand, &f("brand"), crate::ids::MAX_ID_LEN)?;
        let price = amount(required(l.price, &f("price"))?, &f("price"), MAX_PRICE)?;
        lines.push(OrderLine {
            item_id,
            category,
            brand,
            price,
            quantity: quantity(l.quantity, &f("quantity"))?,
        });
    }
    let revenue = match o.revenue {
        Some(r) => amount(r, "order.revenue", MAX_REVENUE)?,
        None => {
            // Bounded prices and quantities keep each product finite; the total is bounded too.
            let total: f64 = lines.iter().map(|l| l.price * f64::from(l.quantity)).sum();
            if total > MAX_REVENUE {
                return Err(FieldError::invalid(
                    "order.lines",
                    format!("add up to {total:e}, more than an order may total ({MAX_REVENUE:e})"),
                ));
            }
            total
        }
    };
    Ok(Order {
        id: order_id,
        revenue,
        currency,
        lines,
    })
}
