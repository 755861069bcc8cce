//! The shop's business rules: what may be recommended, and how much the shop wants it.
//!
//! A rule is configured (`[[rules]]`) or added through `PUT /admin/rules/{name}?site=` as a flat
//! [`RuleDef`], checked once by [`check`] into a [`Rule`] (every bad field named, sizes bounded), and
//! applied by the ranker through one pure function, [`apply`].
//!
//! Kinds (`kind`):
//!
//! * `include`: only items the selector matches may be shown;
//! * `exclude`: items the selector matches are never shown;
//! * `boost` / `bury`: the score of matching items is multiplied by `factor` (> 1 / between 0 and 1);
//! * `pin`: the listed items are placed at fixed 1-based positions.
//!
//! A selector is any of `categories` (path prefixes: `outdoor` covers `outdoor/tents`), `brands`,
//! `tags` (both case-insensitive), `items` (ids) and a price range `price_min`..=`price_max`. An item
//! matches when it meets every criterion given, and a criterion when it equals any of its values.
//! Criteria other than `items` read the catalog, so an item absent from the catalog never matches
//! them: an `include` drops it, an `exclude` keeps it.
//!
//! Scope: a rule applies to every site, or to its `site`; to every slot, or to those in `slots`; to
//! everyone, or (with `segment`, a condition in the segment rule language of [`crate::segment`],
//! evaluated against the member's facts exactly as segments are) only to visitors it holds for.
//! A visitor without a profile is in no segment.
//!
//! Two rules are built in and always on, whatever the configuration: an item the catalog lists as
//! out of stock is never shown, and an item the member already bought is not shown again unless the
//! catalog tags it `repeatable` ([`REPEATABLE_TAG`]).

use crate::catalog::{check_category, CatalogItem, REPEATABLE_TAG};
use crate::event::{ErrorKind, FieldError};
use crate::ids::{check_id, ItemId, SiteId, MAX_ID_LEN};
use crate::segment;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Longest rule name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Most values in one rule's selector (categories, brands, tags and items together).
pub const MAX_SELECTOR_VALUES: usize = 100;
/// Longest selector value or slot name, in bytes.
pub const MAX_VALUE_LEN: usize = MAX_ID_LEN;
/// Most slots one rule may be scoped to.
pub const MAX_SLOTS: usize = 16;
/// Most items one pin rule may place.
pub const MAX_PINS: usize = 20;
/// The last position a pin may name (the recommender's largest `limit` by default).
pub const MAX_PIN_POSITION: usize = 100;
/// Longest segment condition or description, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Largest boost factor (and the inverse of the smallest bury factor).
pub const MAX_FACTOR: f64 = 1000.0;
/// Most rules the admin API stores per site.
pub const MAX_RULES_PER_SITE: usize = 200;

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Include,
    Exclude,
    Boost,
    Bury,
    Pin,
}

/// An item placed at a fixed position by a `pin` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinDef {
    pub item: String,
    /// 1-based position in the answer.
    pub position: usize,
}

/// A rule as configured or sent to the admin API: flat, so a bad field is named precisely by
/// [`check`]. Which fields a kind takes is in the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Unique per site; in the admin API it comes from the path.
    #[serde(default)]
    pub name: String,
    pub kind: RuleKind,
    /// Only this site (every site when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Only these offer slots (every slot when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<String>,
    /// Only visitors for whom this segment-language condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// For people; at most [`MAX_TEXT_LEN`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Selector: category path prefixes (`outdoor` covers `outdoor/tents`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Selector: brands, case-insensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brands: Vec<String>,
    /// Selector: tags, case-insensitive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Selector: item ids (the one criterion that works without the catalog).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// Selector: lowest price, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_min: Option<f64>,
    /// Selector: highest price, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_max: Option<f64>,
    /// Score multiplier of `boost` (> 1) and `bury` (between 0 and 1) rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// The items of a `pin` rule and their positions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<PinDef>,
}

/// Which items a rule is about.
#[derive(Debug, Clone, PartialEq, Default)]
struct Selector {
    categories: Vec<String>,
    /// Lower-cased.
    brands: Vec<String>,
    /// Lower-cased.
    tags: Vec<String>,
    items: Vec<String>,
    price_min: Option<f64>,
    price_max: Option<f64>,
}

impl Selector {
    fn reads_catalog(&self) -> bool {
        !(self.categories.is_empty() && self.brands.is_empty() && self.tags.is_empty())
            || self.price_min.is_some()
            || self.price_max.is_some()
    }

    fn matches(&self, item_id: &str, item: Option<&CatalogItem>) -> bool {
        if !self.items.is_empty() && !self.items.iter().any(|i| i == item_id) {
            return false;
        }
        if !self.reads_catalog() {
            return true;
        }
        let Some(item) = item else { return false };
        let any_ci =
            |wanted: &[String], have: &str| wanted.iter().any(|w| w == &have.to_lowercase());
        (self.categories.is_empty() || self.categories.iter().any(|c| item.in_category(c)))
            && (self.brands.is_empty()
                || item
                    .brand
                    .as_deref()
                    .is_some_and(|b| any_ci(&self.brands, b)))
            && (self.tags.is_empty() || item.tags.iter().any(|t| any_ci(&self.tags, t)))
            && self.price_min.is_none_or(|m| item.price >= m)
            && self.price_max.is_none_or(|m| item.price <= m)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Include(Selector),
    Exclude(Selector),
    /// Boosts and buries.
    Scale(Selector, f64),
    /// (1-based position, item).
    Pin(Vec<(usize, String)>),
}

/// A checked rule, ready for [`apply`].
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    site: Option<SiteId>,
    slots: Vec<String>,
    segment: Option<segment::Rule>,
    action: Action,
}

impl Rule {
    /// Whether the rule holds only for a segment (the ranker then needs the visitor's profile).
    pub fn needs_profile(&self) -> bool {
        self.segment.is_some()
    }

    /// Whether the rule only keeps or drops items, one at a time: it neither re-scores (boosts,
    /// buries) nor places (pins). Under such rules the answer is the first items of the ranking
    /// that pass, so a ranker may hand [`apply`] only the head of a long ranking.
    pub fn only_filters(&self) -> bool {
        matches!(self.action, Action::Include(_) | Action::Exclude(_))
    }

    /// Whether the rule is in force for this request (site, slot, segment).
    fn applies(&self, ctx: &RuleContext<'_>) -> bool {
        self.site.as_ref().is_none_or(|s| s == ctx.site)
            && (self.slots.is_empty()
                || ctx.slot.is_some_and(|s| self.slots.iter().any(|x| x == s)))
            && self
                .segment
                .as_ref()
                .is_none_or(|seg| ctx.profile.is_some_and(|p| seg.matches(p)))
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError::invalid(field, reason)
}

fn text(v: &Option<String>, field: &str) -> Result<(), FieldError> {
    match v {
        Some(t) if t.len() > MAX_TEXT_LEN => Err(invalid(
            field,
            format!("must be at most {MAX_TEXT_LEN} bytes"),
        )),
        _ => Ok(()),
    }
}

fn values(list: &[String], field: &str) -> Result<(), FieldError> {
    for (i, v) in list.iter().enumerate() {
        if v.trim().is_empty() || v.len() > MAX_VALUE_LEN {
            return Err(invalid(
                format!("{field}[{i}]"),
                format!("must be 1 to {MAX_VALUE_LEN} bytes, not blank"),
            ));
        }
    }
    Ok(())
}

fn price(v: Option<f64>, field: &str) -> Result<(), FieldError> {
    match v {
        Some(p) if !(p.is_finite() && p >= 0.0) => {
            Err(invalid(field, "must be a finite, non-negative number"))
        }
        _ => Ok(()),
    }
}

fn selector(d: &RuleDef) -> Result<Selector, FieldError> {
    let lists = [
        ("categories", &d.categories),
        ("brands", &d.brands),
        ("tags", &d.tags),
        ("items", &d.items),
    ];
    for (field, list) in lists {
        values(list, field)?;
    }
    let count: usize = lists.iter().map(|(_, l)| l.len()).sum();
    if count > MAX_SELECTOR_VALUES {
        return Err(invalid(
            "categories",
            format!(
                "categories, brands, tags and items hold {count} values together; at most {MAX_SELECTOR_VALUES}"
            ),
        ));
    }
    for (i, c) in d.categories.iter().enumerate() {
        check_category(c, &format!("categories[{i}]"))?;
    }
    for (i, item) in d.items.iter().enumerate() {
        ItemId::parse(item.clone()).map_err(|e| invalid(format!("items[{i}]"), e.to_string()))?;
    }
    price(d.price_min, "price_min")?;
    price(d.price_max, "price_max")?;
    if let (Some(lo), Some(hi)) = (d.price_min, d.price_max) {
        if lo > hi {
            return Err(invalid("price_max", "must not be below price_min"));
        }
    }
    let s = Selector {
        categories: d.categories.clone(),
        brands: d.brands.iter().map(|b| b.to_lowercase()).collect(),
        tags: d.tags.iter().map(|t| t.to_lowercase()).collect(),
        items: d.items.clone(),
        price_min: d.price_min,
        price_max: d.price_max,
    };
    if s.items.is_empty() && !s.reads_catalog() {
        return Err(invalid(
            "categories",
            "a rule of this kind needs a selector: categories, brands, tags, items, price_min or price_max",
        ));
    }
    Ok(s)
}

fn pins(d: &RuleDef) -> Result<Vec<(usize, String)>, FieldError> {
    if d.pins.is_empty() || d.pins.len() > MAX_PINS {
        return Err(invalid(
            "pins",
            format!("a pin rule needs 1 to {MAX_PINS} pins"),
        ));
    }
    let mut out: Vec<(usize, String)> = Vec::with_capacity(d.pins.len());
    for (i, p) in d.pins.iter().enumerate() {
        ItemId::parse(p.item.clone())
            .map_err(|e| invalid(format!("pins[{i}].item"), e.to_string()))?;
        if !(1..=MAX_PIN_POSITION).contains(&p.position) {
            return Err(invalid(
                format!("pins[{i}].position"),
                format!("must be from 1 to {MAX_PIN_POSITION}"),
            ));
        }
        if out.iter().any(|(_, item)| *item == p.item) {
            return Err(invalid(
                format!("pins[{i}].item"),
                format!("{:?} is pinned twice", p.item),
            ));
        }
        if out.iter().any(|(pos, _)| *pos == p.position) {
            return Err(invalid(
                format!("pins[{i}].position"),
                format!("position {} is taken twice", p.position),
            ));
        }
        out.push((p.position, p.item.clone()));
    }
    Ok(out)
}

/// Checks a definition and compiles it, naming the first bad field.
pub fn check(d: &RuleDef) -> Result<Rule, FieldError> {
    if d.name.is_empty() {
        return Err(FieldError::new(
            ErrorKind::MissingField,
            "name",
            "is required",
        ));
    }
    check_id(&d.name).map_err(|e| invalid("name", e.to_string()))?;
    if d.name.len() > MAX_NAME_LEN {
        return Err(invalid(
            "name",
            format!("must be at most {MAX_NAME_LEN} bytes"),
        ));
    }
    let site = d
        .site
        .as_ref()
        .map(|s| SiteId::parse(s.clone()).map_err(|e| invalid("site", e.to_string())))
        .transpose()?;
    if d.slots.len() > MAX_SLOTS {
        return Err(invalid(
            "slots",
            format!("must name at most {MAX_SLOTS} slots"),
        ));
    }
    values(&d.slots, "slots")?;
    text(&d.description, "description")?;
    text(&d.segment, "segment")?;
    let seg = d
        .segment
        .as_deref()
        .map(|s| segment::Rule::parse(s).map_err(|e| invalid("segment", e.to_string())))
        .transpose()?;
    let takes_factor = matches!(d.kind, RuleKind::Boost | RuleKind::Bury);
    if !takes_factor && d.factor.is_some() {
        return Err(invalid("factor", "only boost and bury rules take a factor"));
    }
    let action = match d.kind {
        RuleKind::Pin => {
            let selectors = !(d.categories.is_empty()
                && d.brands.is_empty()
                && d.tags.is_empty()
                && d.items.is_empty())
                || d.price_min.is_some()
                || d.price_max.is_some();
            if selectors {
                return Err(invalid(
                    "pins",
                    "a pin rule takes pins only, no categories, brands, tags, items or prices",
                ));
            }
            Action::Pin(pins(d)?)
        }
        _ if !d.pins.is_empty() => {
            return Err(invalid("pins", "only pin rules take pins"));
        }
        RuleKind::Include => Action::Include(selector(d)?),
        RuleKind::Exclude => Action::Exclude(selector(d)?),
        RuleKind::Boost | RuleKind::Bury => {
            let sel = selector(d)?;
            let f = d
                .factor
                .ok_or_else(|| FieldError::new(ErrorKind::MissingField, "factor", "is required"))?;
            let ok = if d.kind == RuleKind::Boost {
                f > 1.0 && f <= MAX_FACTOR
            } else {
                (1.0 / MAX_FACTOR..1.0).contains(&f)
            };
            if !ok {
                return Err(invalid(
                    "factor",
                    if d.kind == RuleKind::Boost {
                        format!("a boost multiplies by more than 1 and at most {MAX_FACTOR}")
                    } else {
                        format!("a bury multiplies by less than 1 and at least 1/{MAX_FACTOR}")
                    },
                ));
            }
            Action::Scale(sel, f)
        }
    };
    Ok(Rule {
        name: d.name.clone(),
        site,
        slots: d.slots.clone(),
        segment: seg,
        action,
    })
}

/// The rules in force on a site: the configured ones for it (or for every site) and those stored
/// through the admin API (`stored`: name → JSON), sorted by name. A stored rule named like a
/// configured one is ignored (the API refuses to create one). Returns the unusable stored rules'
/// problems too, for the caller to log.
pub fn site_rules(
    configured: &[RuleDef],
    stored: &HashMap<String, String>,
    site: &SiteId,
) -> (Vec<Rule>, Vec<String>) {
    let mut problems = Vec::new();
    let mut rules: Vec<Rule> = configured
        .iter()
        .filter(|d| d.site.as_deref().is_none_or(|s| s == site.as_str()))
        .filter_map(|d| match check(d) {
            Ok(r) => Some(r),
            Err(e) => {
                problems.push(format!("configured rule {:?}: {e}", d.name));
                None
            }
        })
        .collect();
    for (name, raw) in stored {
        if rules.iter().any(|r| &r.name == name) {
            problems.push(format!(
                "stored rule {name:?} is shadowed by the configuration"
            ));
            continue;
        }
        match serde_json::from_str::<RuleDef>(raw)
            .map_err(|e| e.to_string())
            .and_then(|d| check(&d).map_err(|e| e.to_string()))
        {
            Ok(r) => rules.push(r),
            Err(e) => problems.push(format!("stored rule {name:?}: {e}")),
        }
    }
    rules.sort_by(|a, b| a.name.cmp(&b.name));
    (rules, problems)
}

/// One candidate of the ranker. `meta` is the ranker's own data (source, reason), passed through
/// untouched; `pinned` is set by [`apply`] on items a pin rule placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<T> {
    pub item_id: String,
    pub score: f64,
    pub pinned: bool,
    pub meta: T,
}

impl<T> Scored<T> {
    pub fn new(item_id: impl Into<String>, score: f64, meta: T) -> Self {
        Scored {
            item_id: item_id.into(),
            score,
            pinned: false,
            meta,
        }
    }
}

/// The request a ranking is for.
pub struct RuleContext<'a> {
    pub site: &'a SiteId,
    /// The offer slot asking (`home`, `product`, ...), if the request named one.
    pub slot: Option<&'a str>,
    /// Items the member bought (their profile's purchase history).
    pub bought: &'a HashSet<String>,
    /// The visitor's facts and document for segment conditions; `None` for a visitor without a
    /// profile, who is in no segment.
    pub profile: Option<&'a segment::Subject<'a>>,
}

/// Applies the built-in exclusions and `rules` to the ranker's candidates.
///
/// Contract:
/// * Rules not in force for `ctx` (another site or slot, a segment the visitor is not in) are
///   ignored; the slice's order does not matter.
/// * A candidate is dropped when the catalog lists it out of stock, when the member bought it and
///   the catalog does not tag it `repeatable`, when an `include` rule in force does not match it, or
///   when an `exclude` rule matches it. Items unknown to `catalog` survive unless an `include` needs
///   catalog data or they were bought.
/// * Every `boost`/`bury` rule that matches a survivor multiplies its score (scores are expected
///   non-negative). Duplicate candidates keep their first occurrence.
/// * The survivors come back sorted by score, highest first (ties keep their input order), with
///   each pinned item moved (or, when it was no candidate, added with score 0 and `T::default()`)
///   to its position, marked `pinned`. A pinned item passes the same exclusions and filters first.
///   When two pins want one position, the lower position, then the rule name, decides; the other
///   takes the next free one. A pin past the end of the list lands at its end.
/// * Nothing is truncated: the caller cuts the answer to its limit afterwards, and a caller that
///   reorders the result (diversity) should keep `pinned` items where they are.
pub fn apply<'c, T: Default>(
    rules: &[Rule],
    ctx: &RuleContext<'_>,
    catalog: impl Fn(&str) -> Option<&'c CatalogItem>,
    candidates: Vec<Scored<T>>,
) -> Vec<Scored<T>> {
    let active: Vec<&Rule> = rules.iter().filter(|r| r.applies(ctx)).collect();
    let allowed = |id: &str, item: Option<&CatalogItem>| -> bool {
        if item.is_some_and(|i| !i.in_stock) {
            return false;
        }
        if ctx.bought.contains(id) && !item.is_some_and(|i| i.has_tag(REPEATABLE_TAG)) {
            return false;
        }
        active.iter().all(|r| match &r.action {
            Action::Include(s) => s.matches(id, item),
            Action::Exclude(s) => !s.matches(id, item),
            _ => true,
        })
    };
    let first: Vec<bool> = {
        let mut seen = crate::hash::set_with_capacity(candidates.len());
        candidates
            .iter()
            .map(|c| seen.insert(c.item_id.as_str()))
            .collect()
    };
    let mut kept: Vec<Scored<T>> = Vec::with_capacity(candidates.len());
    for (mut c, first) in candidates.into_iter().zip(first) {
        if !first {
            continue;
        }
        let item = catalog(&c.item_id);
        if !allowed(&c.item_id, item) {
            continue;
        }
        for r in &active {
            if let Action::Scale(s, f) = &r.action {
                if s.matches(&c.item_id, item) {
                    c.score *= f;
                }
            }
        }
        c.pinned = false;
        kept.push(c);
    }
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));

    let mut wanted: Vec<(usize, &str, &str)> = active
        .iter()
        .flat_map(|r| match &r.action {
            Action::Pin(p) => p
                .iter()
                .map(|(pos, item)| (*pos, r.name.as_str(), item.as_str()))
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    if wanted.is_empty() {
        return kept;
    }
    wanted.sort();
    // Each pinned item once, at the first free index at or after the one it asks for.
    let mut placed: Vec<(usize, Scored<T>)> = Vec::new();
    for (pos, _, id) in wanted {
        if placed.iter().any(|(_, s)| s.item_id == id) || !allowed(id, catalog(id)) {
            continue;
        }
        let mut at = pos - 1;
        while placed.iter().any(|(i, _)| *i == at) {
            at += 1;
        }
        let mut s = match kept.iter().position(|c| c.item_id == id) {
            Some(i) => kept.remove(i),
            None => Scored::new(id, 0.0, T::default()),
        };
        s.pinned = true;
        placed.push((at, s));
    }
    placed.sort_by_key(|(at, _)| *at);
    let mut pins = placed.into_iter().peekable();
    let mut rest = kept.into_iter();
    let mut out = Vec::new();
    loop {
        if pins.peek().is_some_and(|(at, _)| *at <= out.len()) {
            out.push(pins.next().expect("peeked").1);
        } else if let Some(c) = rest.next() {
            out.push(c);
        } else {
            out.extend(pins.map(|(_, s)| s));
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{parse_item, SiteCatalog};
    use crate::models::{Facts, LifecycleRules, SiteModels};
    use crate::state::{SubjectState, DAY_MS};
    use serde_json::json;

    fn catalog() -> SiteCatalog {
        let item = |id: &str, cat: &str, brand: &str, price: f64, in_stock: bool, tags: &[&str]| {
            parse_item(
                json!({"item_id": id, "title": id, "url": format!("/p/{id}"),
                "category": cat, "brand": brand, "price": price, "currency": "EUR",
                "in_stock": in_stock, "tags": tags}),
            )
            .unwrap()
        };
        SiteCatalog::new([
            item("tent", "outdoor/tents", "Acme", 120.0, true, &["summer"]),
            item("stove", "outdoor/cooking", "Fuego", 45.0, true, &[]),
            item("boots", "shoes/hiking", "Acme", 90.0, true, &["Summer"]),
            item("coffee", "food/coffee", "Bean", 9.0, true, &["repeatable"]),
            item("gone", "outdoor/tents", "Acme", 80.0, false, &[]),
        ])
    }

    fn def(value: serde_json::Value) -> RuleDef {
        serde_json::from_value(value).unwrap()
    }

    fn rule(value: serde_json::Value) -> Rule {
        check(&def(value)).unwrap()
    }

    fn site() -> SiteId {
        SiteId::parse("demo").unwrap()
    }

    /// Candidates with descending scores 10, 9, 8, ... in the given order.
    fn candidates(ids: &[&str]) -> Vec<Scored<()>> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Scored::new(*id, 10.0 - i as f64, ()))
            .collect()
    }

    const ALL: &[&str] = &["tent", "stove", "boots", "coffee", "gone", "unknown"];

    /// Applies `rules` for an anonymous request and returns the whole answer.
    fn scored(
        rules: &[Rule],
        slot: Option<&str>,
        bought: &[&str],
        ids: &[&str],
    ) -> Vec<Scored<()>> {
        let c = catalog();
        let bought: HashSet<String> = bought.iter().map(|s| s.to_string()).collect();
        let s = site();
        let ctx = RuleContext {
            site: &s,
            slot,
            bought: &bought,
            profile: None,
        };
        apply(
            rules,
            &ctx,
            |id| c.get(id).map(|a| a.as_ref()),
            candidates(ids),
        )
    }

    fn run_with(rules: &[Rule], slot: Option<&str>, bought: &[&str], ids: &[&str]) -> Vec<String> {
        scored(rules, slot, bought, ids)
            .into_iter()
            .map(|s| s.item_id)
            .collect()
    }

    fn run(rules: &[Rule]) -> Vec<String> {
        run_with(rules, None, &[], ALL)
    }

    #[test]
    fn out_of_stock_items_are_always_excluded() {
        assert_eq!(run(&[]), ["tent", "stove", "boots", "coffee", "unknown"]);
    }

    #[test]
    fn bought_items_are_excluded_unless_repeatable() {
        let got = run_with(&[], None, &["tent", "coffee", "unknown"], ALL);
        assert_eq!(got, ["stove", "boots", "coffee"]);
    }

    #[test]
    fn include_filters_by_category_prefix_brand_tag_and_price() {
        let r = rule(json!({"name": "outdoor", "kind": "include", "categories": ["outdoor"]}));
        assert_eq!(
            run(&[r]),
            ["tent", "stove"],
            "unknown items have no category"
        );
        let r = rule(json!({"name": "acme", "kind": "include", "brands": ["ACME"]}));
        assert_eq!(run(&[r]), ["tent", "boots"]);
        let r = rule(json!({"name": "summer", "kind": "include", "tags": ["summer"]}));
        assert_eq!(
            run(&[r]),
            ["tent", "boots"],
            "tags compare case-insensitively"
        );
        let r = rule(json!({"name": "cheap", "kind": "include", "price_min": 9, "price_max": 90}));
        assert_eq!(
            run(&[r]),
            ["stove", "boots", "coffee"],
            "bounds are inclusive"
        );
        let r =
            rule(json!({"name": "both", "kind": "include", "brands": ["acme"], "price_max": 100}));
        assert_eq!(run(&[r]), ["boots"], "criteria combine with and");
        let r = rule(json!({"name": "two", "kind": "include", "categories": ["food", "shoes"]}));
        assert_eq!(
            run(&[r]),
            ["boots", "coffee"],
            "values of one criterion combine with or"
        );
    }

    #[test]
    fn exclude_filters_by_the_same_selectors_and_by_id() {
        let r = rule(json!({"name": "no-outdoor", "kind": "exclude", "categories": ["outdoor"]}));
        assert_eq!(run(&[r]), ["boots", "coffee", "unknown"]);
        let r = rule(json!({"name": "no-acme", "kind": "exclude", "brands": ["acme"]}));
        assert_eq!(run(&[r]), ["stove", "coffee", "unknown"]);
        let r = rule(json!({"name": "no-x", "kind": "exclude", "items": ["unknown", "stove"]}));
        assert_eq!(
            run(&[r]),
            ["tent", "boots", "coffee"],
            "ids work without the catalog"
        );
        let r = rule(json!({"name": "no-pricey", "kind": "exclude", "price_min": 100}));
        assert_eq!(run(&[r]), ["stove", "boots", "coffee", "unknown"]);
    }

    #[test]
    fn boosts_and_buries_multiply_scores() {
        let boost = rule(json!({"name": "b", "kind": "boost", "tags": ["summer"], "factor": 2}));
        let bury = rule(
            json!({"name": "c", "kind": "bury", "categories": ["outdoor/tents"], "factor": 0.5}),
        );
        let out = scored(&[boost, bury], None, &[], ALL);
        let scores: Vec<(&str, f64)> = out.iter().map(|s| (s.item_id.as_str(), s.score)).collect();
        assert_eq!(
            scores,
            [
                ("boots", 16.0),
                ("tent", 10.0),
                ("stove", 9.0),
                ("coffee", 7.0),
                ("unknown", 5.0)
            ],
            "boots 8x2; tent 10x2x0.5"
        );
    }

    #[test]
    fn pins_take_fixed_positions() {
        let pin = rule(json!({"name": "p", "kind": "pin",
            "pins": [{"item": "coffee", "position": 1}, {"item": "new-thing", "position": 3},
                     {"item": "gone", "position": 2}, {"item": "far", "position": 50}]}));
        let out = scored(std::slice::from_ref(&pin), None, &[], ALL);
        let ids: Vec<&str> = out.iter().map(|s| s.item_id.as_str()).collect();
        assert_eq!(
            ids,
            ["coffee", "tent", "new-thing", "stove", "boots", "unknown", "far"],
            "a candidate moves, a non-candidate is added, out of stock is never pinned, far ones go last"
        );
        assert!(out[0].pinned && out[0].score == 7.0, "keeps its score");
        assert!(out[2].pinned && out[2].score == 0.0);
        assert!(!out[1].pinned);
        let other =
            rule(json!({"name": "a", "kind": "pin", "pins": [{"item": "boots", "position": 1}]}));
        let clash =
            rule(json!({"name": "b", "kind": "pin", "pins": [{"item": "stove", "position": 1}]}));
        assert_eq!(
            run(&[clash, other]),
            ["boots", "stove", "tent", "coffee", "unknown"],
            "same position: rule a first, b takes the next"
        );
        let no = rule(json!({"name": "no", "kind": "exclude", "items": ["coffee"]}));
        let pin =
            rule(json!({"name": "p", "kind": "pin", "pins": [{"item": "coffee", "position": 1}]}));
        assert_eq!(
            run(&[pin, no]),
            ["tent", "stove", "boots", "unknown"],
            "filters win over pins"
        );
    }

    #[test]
    fn rules_are_scoped_by_site_and_slot() {
        let r = rule(json!({"name": "x", "kind": "exclude", "items": ["tent"], "slots": ["home"]}));
        let both = &["tent", "stove"];
        assert_eq!(
            run_with(std::slice::from_ref(&r), Some("home"), &[], both),
            ["stove"]
        );
        assert_eq!(
            run_with(std::slice::from_ref(&r), Some("cart"), &[], both),
            ["tent", "stove"]
        );
        assert_eq!(run_with(&[r], None, &[], both), ["tent", "stove"]);
        let r = rule(json!({"name": "x", "kind": "exclude", "items": ["tent"], "site": "other"}));
        assert_eq!(run_with(&[r], None, &[], both), ["tent", "stove"]);
    }

    #[test]
    fn segment_rules_apply_only_to_visitors_the_condition_holds_for() {
        let r = rule(json!({"name": "x", "kind": "exclude", "items": ["tent"],
            "segment": "orders >= 1"}));
        let c = catalog();
        let s = site();
        let bought = HashSet::new();
        let ids = |state: &SubjectState, with_profile: bool| -> Vec<String> {
            let now = 100 * DAY_MS;
            let facts = Facts::of(
                state,
                &SiteModels::default(),
                &LifecycleRules::default(),
                now,
            );
            let subject = segment::Subject {
                facts: &facts,
                state,
                now_ms: now,
                half_life_ms: 30 * DAY_MS,
            };
            let ctx = RuleContext {
                site: &s,
                slot: None,
                bought: &bought,
                profile: with_profile.then_some(&subject),
            };
            let found = |id: &str| c.get(id).map(|a| a.as_ref());
            apply(
                std::slice::from_ref(&r),
                &ctx,
                found,
                candidates(&["tent", "stove"]),
            )
            .into_iter()
            .map(|s| s.item_id)
            .collect()
        };
        let mut buyer = SubjectState::default();
        buyer.purchases.orders = 2;
        assert_eq!(ids(&buyer, true), ["stove"]);
        assert_eq!(ids(&SubjectState::default(), true), ["tent", "stove"]);
        assert_eq!(
            ids(&buyer, false),
            ["tent", "stove"],
            "no profile: in no segment"
        );
    }

    #[test]
    fn duplicates_keep_their_first_occurrence() {
        assert_eq!(
            run_with(&[], None, &[], &["tent", "stove", "tent"]),
            ["tent", "stove"]
        );
    }

    #[test]
    fn bad_rules_name_the_field() {
        let e = |v: serde_json::Value| check(&def(v)).unwrap_err().to_string();
        assert_eq!(
            e(json!({"kind": "exclude", "items": ["a"]})),
            "name: is required"
        );
        assert!(e(json!({"name": "a b", "kind": "exclude", "items": ["a"]}))
            .starts_with("name: must not contain"));
        assert_eq!(
            e(json!({"name": "n".repeat(65), "kind": "exclude", "items": ["a"]})),
            "name: must be at most 64 bytes"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "exclude"})),
            "categories: a rule of this kind needs a selector: categories, brands, tags, items, price_min or price_max"
        );
        assert!(
            e(json!({"name": "x", "kind": "exclude", "categories": ["a//b"]}))
                .starts_with("categories[0]: must be a path")
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "exclude", "brands": ["ok", ""]})),
            "brands[1]: must be 1 to 128 bytes, not blank"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "exclude", "tags": ["t".repeat(129)]})),
            "tags[0]: must be 1 to 128 bytes, not blank"
        );
        assert!(e(json!({"name": "x", "kind": "exclude", "items": ["a b"]}))
            .starts_with("items[0]: must not contain"));
        let many: Vec<String> = (0..101).map(|i| format!("b{i}")).collect();
        assert_eq!(
            e(json!({"name": "x", "kind": "exclude", "brands": many})),
            "categories: categories, brands, tags and items hold 101 values together; at most 100"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "include", "price_min": 10, "price_max": 5})),
            "price_max: must not be below price_min"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "include", "price_min": -1})),
            "price_min: must be a finite, non-negative number"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "boost", "tags": ["a"]})),
            "factor: is required"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "boost", "tags": ["a"], "factor": 0.5})),
            "factor: a boost multiplies by more than 1 and at most 1000"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "bury", "tags": ["a"], "factor": 2})),
            "factor: a bury multiplies by less than 1 and at least 1/1000"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "exclude", "tags": ["a"], "factor": 2})),
            "factor: only boost and bury rules take a factor"
        );
        assert_eq!(
            e(
                json!({"name": "x", "kind": "exclude", "tags": ["a"], "pins": [{"item": "a", "position": 1}]})
            ),
            "pins: only pin rules take pins"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "pin"})),
            "pins: a pin rule needs 1 to 20 pins"
        );
        assert_eq!(
            e(
                json!({"name": "x", "kind": "pin", "tags": ["a"], "pins": [{"item": "a", "position": 1}]})
            ),
            "pins: a pin rule takes pins only, no categories, brands, tags, items or prices"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "pin", "pins": [{"item": "a", "position": 0}]})),
            "pins[0].position: must be from 1 to 100"
        );
        assert_eq!(
            e(
                json!({"name": "x", "kind": "pin", "pins": [{"item": "a", "position": 1}, {"item": "a", "position": 2}]})
            ),
            "pins[1].item: \"a\" is pinned twice"
        );
        assert_eq!(
            e(
                json!({"name": "x", "kind": "pin", "pins": [{"item": "a", "position": 1}, {"item": "b", "position": 1}]})
            ),
            "pins[1].position: position 1 is taken twice"
        );
        assert_eq!(
            e(json!({"name": "x", "kind": "exclude", "tags": ["a"], "segment": "orders >"})),
            "segment: column 9: the rule ends too early"
        );
        let slots: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
        assert_eq!(
            e(json!({"name": "x", "kind": "exclude", "tags": ["a"], "slots": slots})),
            "slots: must name at most 16 slots"
        );
        assert_eq!(
            e(
                json!({"name": "x", "kind": "exclude", "tags": ["a"], "description": "d".repeat(1025)})
            ),
            "description: must be at most 1024 bytes"
        );
        assert!(serde_json::from_value::<RuleDef>(json!({"name": "x", "kind": "shove"})).is_err());
    }

    #[test]
    fn site_rules_merge_configured_and_stored() {
        let configured = vec![
            def(json!({"name": "b", "kind": "exclude", "items": ["x"]})),
            def(json!({"name": "other", "kind": "exclude", "items": ["x"], "site": "elsewhere"})),
        ];
        let a = def(json!({"name": "a", "kind": "exclude", "items": ["y"]}));
        let mut stored = HashMap::new();
        stored.insert("a".to_string(), serde_json::to_string(&a).unwrap());
        stored.insert("b".to_string(), stored["a"].clone());
        stored.insert("c".to_string(), "{not json".to_string());
        let (rules, problems) = site_rules(&configured, &stored, &site());
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
