//! The product catalog: what a shop sells, as the recommender shows it and the business rules read it.
//!
//! An item arrives as JSON (`PUT /v1/catalog/items`, a JSON-lines file) or as a CSV row (`tailor
//! catalog import`); both go through [`parse_item`], so every door accepts and refuses exactly the
//! same items with the same `field: reason` errors ([`FieldError`], as events use). A CSV row is
//! first turned into the JSON object it stands for ([`parse_csv`]).
//!
//! Invariants of a [`CatalogItem`]: `item_id` is a valid [`ItemId`]; `title` and `url` are present;
//! `category`, when given, is a path of one or more non-empty `/`-separated parts that is also a
//! valid [`Category`] (the form events carry, so interests and the catalog name categories alike);
//! `price` is from 0 to [`MAX_PRICE`] (the bound events have); `margin` is finite; `currency` is an
//! ISO 4217 code; tags are unique, non-empty and bounded. Items seen in events but absent from the
//! catalog are legal everywhere: lookups answer `None` and callers carry on without product data.
//!
//! [`SiteCatalog`] is one site's catalog indexed for the ranker: by item id, and by category with each
//! category's items newest first (for "new in the categories you like"). The recommender keeps one per
//! site in memory, rebuilt when the stored catalog changes.

use crate::event::{
    amount, bounded, parse_id, required, timestamp, ErrorKind, FieldError, MAX_PRICE,
};
use crate::ids::{Category, ItemId, MAX_ID_LEN};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Longest title or brand, in bytes.
pub const MAX_TITLE_LEN: usize = 512;
/// Longest URL or image URL, in bytes.
pub const MAX_URL_LEN: usize = crate::event::MAX_URL_LEN;
/// Deepest category path (`a/b/c` is 3).
pub const MAX_CATEGORY_DEPTH: usize = 8;
/// Most tags per item.
pub const MAX_TAGS: usize = 32;
/// Longest tag, in bytes.
pub const MAX_TAG_LEN: usize = 64;
/// The tag that lets an item be offered again to someone who already bought it (consumables).
pub const REPEATABLE_TAG: &str = "repeatable";

/// One product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogItem {
    pub item_id: ItemId,
    pub title: String,
    /// The product page (absolute `http(s)://` URL or a site-relative path starting with `/`).
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A path such as `outdoor/tents`; rules select by prefix (`outdoor` covers `outdoor/tents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Unit price in `currency`.
    pub price: f64,
    pub currency: String,
    pub in_stock: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// Gross margin as a fraction of the price (0.3 = 30%); negative for a loss leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<f64>,
}

impl CatalogItem {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// Whether the item's category is `prefix` or lies below it.
    pub fn in_category(&self, prefix: &str) -> bool {
        self.category
            .as_deref()
            .is_some_and(|c| category_under(c, prefix))
    }

    /// `published_at` in ms since the epoch; items without one sort as the oldest.
    pub fn published_ms(&self) -> i64 {
        self.published_at.map_or(i64::MIN, |t| t.timestamp_millis())
    }
}

/// Whether category path `category` is `prefix` or one of its descendants, part by part
/// (`outdoor` covers `outdoor/tents`, not `outdoors`).
pub fn category_under(category: &str, prefix: &str) -> bool {
    category == prefix
        || (category.len() > prefix.len()
            && category.starts_with(prefix)
            && category.as_bytes()[prefix.len()] == b'/')
}

/// What a client may send: loosely typed, so a bad value gets a precise error rather than a serde one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    item_id: Option<String>,
    title: Option<String>,
    url: Option<String>,
    image: Option<String>,
    category: Option<String>,
    brand: Option<String>,
    price: Option<f64>,
    currency: Option<String>,
    in_stock: Option<bool>,
    tags: Option<Vec<String>>,
    published_at: Option<String>,
    margin: Option<f64>,
}

/// Checks a category path: a valid [`Category`] id made of 1 to [`MAX_CATEGORY_DEPTH`] non-empty
/// `/`-separated parts. Shared with the rules, whose category selectors are paths too.
pub fn check_category(path: &str, field: &str) -> Result<(), FieldError> {
    Category::parse(path).map_err(|e| FieldError::invalid(field, e.to_string()))?;
    let parts: Vec<&str> = path.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(FieldError::invalid(
            field,
            "must be a path like outdoor/tents: no empty part, no leading or trailing '/'",
        ));
    }
    if parts.len() > MAX_CATEGORY_DEPTH {
        return Err(FieldError::invalid(
            field,
            format!("must be at most {MAX_CATEGORY_DEPTH} levels deep"),
        ));
    }
    Ok(())
}

/// A link a page may follow or load when the tag renders it: `http(s)://` or a path on the shop's
/// own site. Anything else (`javascript:`, `data:`) would run in the shop's page. Campaign offers'
/// links follow the same rule.
pub fn is_safe_link(u: &str) -> bool {
    let scheme = |p: &str| u.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    (scheme("https://") || scheme("http://") || u.starts_with('/'))
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_url(v: Option<String>, field: &str) -> Result<Option<String>, FieldError> {
    let v = bounded(v, field, MAX_URL_LEN)?;
    if let Some(u) = &v {
        if !is_safe_link(u) {
            return Err(FieldError::invalid(
                field,
                "must be an http(s):// URL or a path starting with '/', without spaces",
            ));
        }
    }
    Ok(v)
}

fn check_tags(tags: Vec<String>) -> Result<Vec<String>, FieldError> {
    if tags.len() > MAX_TAGS {
        return Err(FieldError::invalid(
            "tags",
            format!("must hold at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, t) in tags.into_iter().enumerate() {
        let field = format!("tags[{i}]");
        if t.trim().is_empty() || t.len() > MAX_TAG_LEN {
            return Err(FieldError::invalid(
                field,
                format!("must be 1 to {MAX_TAG_LEN} bytes, not blank"),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn finite(v: Option<f64>, field: &str) -> Result<Option<f64>, FieldError> {
    match v {
        Some(x) if !x.is_finite() => Err(FieldError::invalid(field, "must be a finite number")),
        other => Ok(other),
    }
}

/// Parses and validates one item from its JSON form, naming the offending field on any error.
pub fn parse_item(value: Value) -> Result<CatalogItem, FieldError> {
    if !value.is_object() {
        return Err(FieldError::new(
            ErrorKind::Malformed,
            "$",
            "must be a JSON object",
        ));
    }
    let raw: RawItem =
        serde_path_to_error::deserialize(value).map_err(FieldError::from_path_error)?;
    let item_id = required(parse_id(raw.item_id, "item_id", ItemId::parse)?, "item_id")?;
    let title = required(bounded(raw.title, "title", MAX_TITLE_LEN)?, "title")?;
    let url = required(check_url(raw.url, "url")?, "url")?;
    let image = check_url(raw.image, "image")?;
    let category = bounded(raw.category, "category", MAX_ID_LEN)?;
    if let Some(c) = &category {
        check_category(c, "category")?;
    }
    let brand = bounded(raw.brand, "brand", MAX_ID_LEN)?;
    let price = amount(required(raw.price, "price")?, "price", MAX_PRICE)?;
    let currency = required(raw.currency, "currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(FieldError::invalid(
            "currency",
            "must be an ISO 4217 code of three upper-case letters",
        ));
    }
    let margin = finite(raw.margin, "margin")?;
    if margin.is_some_and(|m| !(-1.0..=1.0).contains(&m)) {
        return Err(FieldError::invalid(
            "margin",
            "must be a fraction of the price from -1 to 1",
        ));
    }
    let published_at = bounded(raw.published_at, "published_at", MAX_ID_LEN)?
        .map(|t| timestamp(&t, "published_at"))
        .transpose()?;
    Ok(CatalogItem {
        item_id,
        title,
        url,
        image,
        category,
        brand,
        price,
        currency,
        in_stock: raw.in_stock.unwrap_or(true),
        tags: check_tags(raw.tags.unwrap_or_default())?,
        published_at,
        margin,
    })
}

/// A batch of items (one API request), all or nothing: the items, or every refused element's index
/// and error. An item id given twice is refused at its second place.
pub fn parse_batch(elements: Vec<Value>) -> Result<Vec<CatalogItem>, Vec<(usize, FieldError)>> {
    let mut items: Vec<CatalogItem> = Vec::with_capacity(elements.len());
    let mut first_at: HashMap<String, usize> = HashMap::new();
    let mut refused = Vec::new();
    for (index, element) in elements.into_iter().enumerate() {
        match parse_item(element) {
            Ok(item) => match first_at.get(item.item_id.as_str()) {
                Some(first) => refused.push((
                    index,
                    FieldError::invalid(
                        "item_id",
                        format!("{} is given twice (first at index {first})", item.item_id),
                    ),
                )),
                None => {
                    first_at.insert(item.item_id.to_string(), index);
                    items.push(item);
                }
            },
            Err(e) => refused.push((index, e)),
        }
    }
    if refused.is_empty() {
        Ok(items)
    } else {
        Err(refused)
    }
}

/// One record of an import file: its 1-based line and the item, or why it was refused.
pub type Record = (usize, Result<CatalogItem, FieldError>);

/// JSON lines, one item per non-blank line.
pub fn parse_jsonl(text: &str) -> Vec<Record> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let item = serde_json::from_str::<Value>(line)
                .map_err(|e| FieldError::new(ErrorKind::Malformed, "$", format!("not JSON: {e}")))
                .and_then(parse_item);
            (i + 1, item)
        })
        .collect()
}

/// The fields of an item, and so the columns a catalog CSV may have (header row, any order,
/// case-insensitive).
pub const CSV_COLUMNS: &[&str] = &[
    "item_id",
    "title",
    "url",
    "image",
    "category",
    "brand",
    "price",
    "currency",
    "in_stock",
    "tags",
    "published_at",
    "margin",
];

/// Separator of several tags in one CSV cell.
pub const CSV_TAG_SEPARATOR: char = '|';

/// A CSV file with a header row naming [`CSV_COLUMNS`]: empty cells are absent values, `tags` are
/// separated by `|`, `in_stock` is `true`/`false`/`yes`/`no`/`1`/`0`, `published_at` is RFC 3339 or a
/// date (`YYYY-MM-DD`, midnight UTC). Fails as a whole only on a bad header.
pub fn parse_csv(text: &str) -> Result<Vec<Record>, FieldError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| FieldError::new(ErrorKind::Malformed, "header", e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    for (i, h) in headers.iter().enumerate() {
        if !CSV_COLUMNS.contains(&h.as_str()) {
            return Err(FieldError::invalid(
                format!("header column {}", i + 1),
                format!("unknown column {h:?}; known: {}", CSV_COLUMNS.join(", ")),
            ));
        }
        if headers[..i].contains(h) {
            return Err(FieldError::invalid(
                format!("header column {}", i + 1),
                format!("column {h:?} is given twice"),
            ));
        }
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let (line, item) = match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                (line, csv_object(&headers, &r).and_then(parse_item))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                let err = FieldError::new(ErrorKind::Malformed, "$", e.to_string());
                (line, Err(err))
            }
        };
        out.push((line, item));
    }
    Ok(out)
}

/// The JSON object a CSV row stands for; numbers and booleans that do not parse stay text, so
/// [`parse_item`] reports them with its usual error.
fn csv_object(headers: &[String], row: &csv::StringRecord) -> Result<Value, FieldError> {
    if row.len() > headers.len() {
        return Err(FieldError::new(
            ErrorKind::Malformed,
            "$",
            format!(
                "the row has {} cells, the header {}",
                row.len(),
                headers.len()
            ),
        ));
    }
    let mut o = Map::new();
    for (h, cell) in headers.iter().zip(row.iter()) {
        if cell.is_empty() {
            continue;
        }
        let v = match h.as_str() {
            "price" | "margin" => cell
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map_or_else(|| Value::from(cell), Value::from),
            "in_stock" => match cell.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => Value::from(cell),
            },
            "tags" => Value::from(
                cell.split(CSV_TAG_SEPARATOR)
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>(),
            ),
            "published_at" => match NaiveDate::parse_from_str(cell, "%Y-%m-%d") {
                Ok(d) => Value::from(
                    d.and_hms_opt(0, 0, 0)
                        .expect("midnight")
                        .and_utc()
                        .to_rfc3339(),
                ),
                Err(_) => Value::from(cell),
            },
            _ => Value::from(cell),
        };
        o.insert(h.clone(), v);
    }
    Ok(Value::Object(o))
}

/// One site's catalog, indexed for the ranker. Immutable: the recommender swaps in a new one when
/// the stored catalog changes, so a request holds one consistent snapshot.
#[derive(Debug, Default)]
pub struct SiteCatalog {
    items: HashMap<String, Arc<CatalogItem>>,
    /// Category path → its own items (not its descendants'), newest first.
    by_category: BTreeMap<String, Vec<Arc<CatalogItem>>>,
}

impl SiteCatalog {
    pub fn new(items: impl IntoIterator<Item = CatalogItem>) -> SiteCatalog {
        SiteCatalog::index(
            items
                .into_iter()
                .map(|i| (i.item_id.to_string(), Arc::new(i)))
                .collect(),
        )
    }

    /// This catalog with `upserted` items added or replaced and `deleted` ids removed, sharing the
    /// unchanged items (no re-parse of the whole catalog after a small write).
    pub fn with_changes(&self, upserted: Vec<CatalogItem>, deleted: &[&str]) -> SiteCatalog {
        let mut items = self.items.clone();
        for id in deleted {
            items.remove(*id);
        }
        for item in upserted {
            items.insert(item.item_id.to_string(), Arc::new(item));
        }
        SiteCatalog::index(items)
    }

    fn index(items: HashMap<String, Arc<CatalogItem>>) -> SiteCatalog {
        let mut c = SiteCatalog {
            items,
            by_category: BTreeMap::new(),
        };
        for item in c.items.values() {
            if let Some(cat) = &item.category {
                c.by_category
                    .entry(cat.clone())
                    .or_default()
                    .push(item.clone());
            }
        }
        for list in c.by_category.values_mut() {
            list.sort_by(|a, b| {
                b.published_ms()
                    .cmp(&a.published_ms())
                    .then_with(|| a.item_id.cmp(&b.item_id))
            });
        }
        c
    }

    pub fn get(&self, item_id: &str) -> Option<&Arc<CatalogItem>> {
        self.items.get(item_id)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every item, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<CatalogItem>> {
        self.items.values()
    }

    /// The categories that hold items directly, in path order, each with its items newest first.
    pub fn categories(&self) -> impl Iterator<Item = (&str, &[Arc<CatalogItem>])> {
        self.by_category
            .iter()
            .map(|(c, items)| (c.as_str(), items.as_slice()))
    }

    /// The items of category `prefix` and everything below it, each category's newest first
    /// (categories in path order).
    pub fn in_category<'a, 'p>(
        &'a self,
        prefix: &'p str,
    ) -> impl Iterator<Item = &'a Arc<CatalogItem>> + use<'a, 'p> {
        self.by_category
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(c, _)| c.starts_with(prefix))
            .filter(move |(c, _)| category_under(c, prefix))
            .flat_map(|(_, items)| items.iter())
    }

    /// The `n` newest items of category `prefix` and below, newest first; in-stock items only.
    pub fn newest_in(&self, prefix: &str, n: usize) -> Vec<&Arc<CatalogItem>> {
        let mut all: Vec<&Arc<CatalogItem>> =
            self.in_category(prefix).filter(|i| i.in_stock).collect();
        all.sort_by(|a, b| {
            b.published_ms()
                .cmp(&a.published_ms())
                .then_with(|| a.item_id.cmp(&b.item_id))
        });
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tent() -> Value {
        json!({"item_id": "tent-2p", "title": "Dome Tent 2P", "url": "https://shop.example/p/tent-2p",
            "image": "https://cdn.example/tent.jpg", "category": "outdoor/tents", "brand": "Acme",
            "price": 129.9, "currency": "EUR", "in_stock": true, "tags": ["new", "new", "summer"],
            "published_at": "2026-03-01T10:00:00Z", "margin": 0.35})
    }

    fn err(v: Value) -> String {
        parse_item(v).unwrap_err().to_string()
    }

    fn with(field: &str, value: Value) -> Value {
        let mut v = tent();
        v[field] = value;
        v
    }

    fn without(field: &str) -> Value {
        let mut v = tent();
        v.as_object_mut().unwrap().remove(field);
        v
    }

    #[test]
    fn a_full_item_parses_and_round_trips() {
        let item = parse_item(tent()).unwrap();
        assert_eq!(item.item_id.as_str(), "tent-2p");
        assert_eq!(item.category.as_deref(), Some("outdoor/tents"));
        assert_eq!(item.tags, vec!["new", "summer"], "duplicate tags dropped");
        assert_eq!(item.margin, Some(0.35));
        let again = parse_item(serde_json::to_value(&item).unwrap()).unwrap();
        assert_eq!(again, item);
    }

    #[test]
    fn optional_fields_default() {
        let v = json!({"item_id": "x", "title": "X", "url": "/p/x", "price": 0, "currency": "USD"});
        let item = parse_item(v).unwrap();
        assert!(item.in_stock, "in_stock defaults to true");
        assert!(item.tags.is_empty() && item.category.is_none() && item.margin.is_none());
        assert_eq!(item.published_ms(), i64::MIN);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(err(without("item_id")), "item_id: is required");
        assert_eq!(
            err(with("item_id", json!("a b"))),
            "item_id: must not contain whitespace, control or invisible (bidi, zero-width) characters, '{' or '}'"
        );
        assert_eq!(err(without("title")), "title: is required");
        assert_eq!(
            err(with("title", json!("t".repeat(513)))),
            "title: must be at most 512 bytes"
        );
        assert_eq!(err(without("url")), "url: is required");
        assert!(err(with("url", json!("ftp://x"))).starts_with("url: must be an http(s)://"));
        assert!(err(with("image", json!("cdn/x.jpg"))).starts_with("image: must be"));
        assert!(
            err(with("category", json!("outdoor//tents"))).starts_with("category: must be a path")
        );
        assert!(err(with("category", json!("/outdoor"))).starts_with("category: must be a path"));
        assert!(
            err(with("category", json!("home garden"))).starts_with("category: must not contain")
        );
        assert_eq!(
            err(with("category", json!("a/b/c/d/e/f/g/h/i"))),
            "category: must be at most 8 levels deep"
        );
        assert_eq!(err(without("price")), "price: is required");
        assert_eq!(
            err(with("price", json!(-1))),
            "price: must be a number from 0 to 1e9"
        );
        assert!(err(with("price", json!("12"))).starts_with("price: invalid type"));
        assert_eq!(
            err(with("currency", json!("eur"))),
            "currency: must be an ISO 4217 code of three upper-case letters"
        );
        assert!(err(with("in_stock", json!("yes"))).starts_with("in_stock: invalid type"));
        assert_eq!(
            err(with("tags", json!(["ok", " "]))),
            "tags[1]: must be 1 to 64 bytes, not blank"
        );
        assert_eq!(
            err(with("tags", json!(vec!["t"; 33]))),
            "tags: must hold at most 32 tags"
        );
        assert!(err(with("tags", json!(["a", 1]))).starts_with("tags[1]: invalid type"));
        assert!(err(with("published_at", json!("yesterday")))
            .starts_with("published_at: must be RFC 3339"));
        assert_eq!(
            err(with("margin", json!(1.5))),
            "margin: must be a fraction of the price from -1 to 1"
        );
        assert!(err(with("colour", json!("red")))
            .starts_with("colour: unknown field `colour`, expected one of `item_id`, `title`"));
        assert_eq!(err(json!([1])), "$: must be a JSON object");
    }

    #[test]
    fn a_batch_is_all_or_nothing_and_names_each_bad_element() {
        let ok = parse_batch(vec![tent(), with("item_id", json!("mug"))]).unwrap();
        assert_eq!(ok.len(), 2);
        let bad = parse_batch(vec![tent(), without("price"), tent(), json!("x")]).unwrap_err();
        let summary: Vec<(usize, String)> = bad.iter().map(|(i, e)| (*i, e.to_string())).collect();
        assert_eq!(
            summary,
            [
                (1, "price: is required".to_string()),
                (
                    2,
                    "item_id: tent-2p is given twice (first at index 0)".to_string()
                ),
                (3, "$: must be a JSON object".to_string()),
            ]
        );
    }

    #[test]
    fn jsonl_reports_lines() {
        let text = format!("{}\n\n{{\"item_id\": \"y\"}}\nnot json\n", tent());
        let r = parse_jsonl(&text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].0, 1);
        assert!(r[0].1.is_ok());
        assert_eq!(r[1].0, 3);
        assert_eq!(
            r[1].1.as_ref().unwrap_err().to_string(),
            "title: is required"
        );
        assert_eq!(r[2].0, 4);
        assert!(r[2]
            .1
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("$: not JSON"));
    }

    #[test]
    fn csv_rows_become_items() {
        let text = "Item_ID,title,url,price,currency,category,in_stock,tags,published_at,margin\n\
                    tent-2p,Dome Tent 2P,/p/tent-2p,129.90,EUR,outdoor/tents,no,new|summer ,2026-03-01,0.3\n\
                    mug,\"Mug, enamel\",/p/mug,9,EUR,,yes,repeatable,,\n\
                    bad,Bad,/p/bad,cheap,EUR,,,,,\n\
                    worse,Worse,/p/worse,1,EUR,,maybe,,,\n";
        let r = parse_csv(text).unwrap();
        assert_eq!(r.len(), 4);
        let tent = r[0].1.as_ref().unwrap();
        assert_eq!(r[0].0, 2);
        assert!(!tent.in_stock);
        assert_eq!(tent.tags, vec!["new", "summer"]);
        assert_eq!(tent.price, 129.9);
        assert_eq!(
            tent.published_at.unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        let mug = r[1].1.as_ref().unwrap();
        assert_eq!(mug.title, "Mug, enamel");
        assert!(mug.in_stock && mug.has_tag(REPEATABLE_TAG) && mug.category.is_none());
        assert_eq!(r[2].0, 4);
        assert!(r[2]
            .1
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("price: invalid type"));
        assert!(r[3]
            .1
            .as_ref()
            .unwrap_err()
            .to_string()
            .starts_with("in_stock: invalid type"));
        assert_eq!(
            parse_csv("item_id,colour\n").unwrap_err().to_string(),
            "header column 2: unknown column \"colour\"; known: item_id, title, url, image, category, brand, price, currency, in_stock, tags, published_at, margin"
        );
        assert!(parse_csv("item_id,item_id\n")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let long = parse_csv("item_id,title\nx,X,extra\n").unwrap();
        assert!(long[0]
            .1
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("3 cells"));
    }

    #[test]
    fn categories_match_by_whole_parts() {
        assert!(category_under("outdoor/tents", "outdoor"));
        assert!(category_under("outdoor", "outdoor"));
        assert!(!category_under("outdoors", "outdoor"));
        assert!(!category_under("outdoor", "outdoor/tents"));
    }

    fn item(id: &str, cat: &str, day: u32, in_stock: bool) -> CatalogItem {
        let mut v = tent();
        v["item_id"] = json!(id);
        v["category"] = json!(cat);
        v["in_stock"] = json!(in_stock);
        v["published_at"] = json!(format!("2026-01-{day:02}T00:00:00Z"));
        parse_item(v).unwrap()
    }

    #[test]
    fn the_site_index_finds_items_by_id_and_category() {
        let c = SiteCatalog::new([
            item("a", "outdoor/tents", 1, true),
            item("b", "outdoor/tents", 3, true),
            item("c", "outdoor", 2, true),
            item("d", "outdoors", 9, true),
            item("e", "outdoor-gear", 9, true),
            item("f", "outdoor/tents/2p", 5, false),
        ]);
        assert_eq!(c.len(), 6);
        assert_eq!(c.get("b").unwrap().title, "Dome Tent 2P");
        assert!(c.get("zzz").is_none());
        let ids = |v: Vec<&Arc<CatalogItem>>| -> Vec<String> {
            v.iter().map(|i| i.item_id.to_string()).collect()
        };
        assert_eq!(
            ids(c.in_category("outdoor").collect()),
            vec!["c", "b", "a", "f"],
            "own items then descendants, each newest first; siblings sharing the prefix excluded"
        );
        assert_eq!(
            ids(c.in_category("outdoor/tents").collect()),
            vec!["b", "a", "f"]
        );
        assert_eq!(
            ids(c.newest_in("outdoor", 2)),
            vec!["b", "c"],
            "out of stock skipped"
        );
        assert!(c.in_category("garden").next().is_none());
        assert_eq!(c.categories().count(), 5);
        let changed = c.with_changes(
            vec![item("a", "garden", 1, true), item("g", "outdoor", 7, true)],
            &["b", "zzz"],
        );
        assert_eq!(changed.len(), 6);
        assert!(changed.get("b").is_none());
        assert_eq!(ids(changed.in_category("garden").collect()), vec!["a"]);
        assert_eq!(
            ids(changed.in_category("outdoor/tents").collect()),
            vec!["f"]
        );
        assert_eq!(ids(changed.newest_in("outdoor", 1)), vec!["g"]);
        assert!(
            Arc::ptr_eq(c.get("c").unwrap(), changed.get("c").unwrap()),
            "shared"
        );
        assert_eq!(c.len(), 6, "the original is unchanged");
    }
}
