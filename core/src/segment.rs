//! Declarative segments: a rule in a small expression language over a subject's [`Facts`], checked
//! when the definition is accepted (unknown names, wrong arity, comparisons of mismatched types are
//! rejected with the column of the mistake) and evaluated by the processor on every profile update.
//!
//! ```text
//! rule       := or
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | comparison
//! comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)?
//! operand    := number | "string" | true | false | name ("." name)* | name "(" args ")" | "(" rule ")"
//! ```
//!
//! Examples: `rfm.segment == "champions"`, `value_percentile >= 0.8`, `churn_risk > 0.7`,
//! `category_views("shoes", 7) >= 3 and orders_within(7) == 0`, `lifecycle == "lapsing" and member`.
//! A fact that is not known yet (no fitted model, no purchase) is `null`: every comparison with it is
//! false, so a subject is never put in a segment on missing evidence.
//!
//! Rules come from an admin API and are stored, so they are bounded like any outside input: at most
//! [`MAX_RULE_BYTES`] bytes, [`MAX_RULE_TERMS`] operands and [`MAX_RULE_DEPTH`] levels of nesting
//! (parentheses and `not`), each refused with its column. The parser and the evaluator recurse only
//! on nesting (a chain of `and`/`or` is one flat list), so both stay within a small, fixed stack
//! whatever a rule holds; a stored rule that no longer passes these checks is set aside by its
//! reader, never evaluated.

use crate::models::{category_views, orders_within, Facts};
use crate::state::SubjectState;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest rule, in bytes.
pub const MAX_RULE_BYTES: usize = 4096;
/// Most operands (facts, function calls, literals) in one rule.
pub const MAX_RULE_TERMS: usize = 256;
/// Deepest nesting of parentheses and `not`.
pub const MAX_RULE_DEPTH: usize = 32;

/// A named segment and its rule, as configured or posted to the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentDef {
    pub name: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Restricts the segment to one site (all sites when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// Why a rule was refused: what and where (1-based column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct RuleError {
    pub column: usize,
    pub message: String,
}

/// The static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Num,
    Str,
    Bool,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Num => "a number",
            Type::Str => "a string",
            Type::Bool => "a boolean",
        })
    }
}

/// The facts a rule may name, with their types.
pub const FIELDS: &[(&str, &str)] = &[
    ("member", "bool"),
    ("orders", "number"),
    ("units", "number"),
    ("monetary", "number"),
    ("average_order_value", "number"),
    ("days_since_last_purchase", "number"),
    ("days_since_first_purchase", "number"),
    ("days_since_last_seen", "number"),
    ("sessions", "number"),
    ("pages", "number"),
    ("dwell_seconds", "number"),
    ("rfm.r", "number"),
    ("rfm.f", "number"),
    ("rfm.m", "number"),
    ("rfm.score", "number"),
    ("rfm.segment", "string"),
    ("value_percentile", "number"),
    ("p_alive", "number"),
    ("churn_risk", "number"),
    ("expected_purchases", "number"),
    ("clv", "number"),
    ("lifecycle", "string"),
    ("top_category", "string"),
    ("top_brand", "string"),
    ("channel", "string"),
];

/// Functions a rule may call: name, argument types, what it means.
pub const FUNCTIONS: &[(&str, &str)] = &[
    (
        "category_views",
        "category_views(\"category\", days): views of the category in the last `days` days",
    ),
    (
        "orders_within",
        "orders_within(days): days with an order in the last `days` days",
    ),
    (
        "interest",
        "interest(\"category\"): the decayed interest score of a category",
    ),
    (
        "trait",
        "trait(\"name\"): an identify trait as a string (null when absent)",
    ),
];

fn field_type(name: &str) -> Option<Type> {
    FIELDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| match *t {
            "bool" => Type::Bool,
            "string" => Type::Str,
            _ => Type::Num,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Num(f64),
    Str(String),
    Bool(bool),
    Field(String),
    CategoryViews(String, i64),
    OrdersWithin(i64),
    Interest(String),
    Trait(String),
    Not(Box<Expr>),
    /// Every condition holds (a flat list, so a long chain does not nest).
    And(Vec<Expr>),
    /// Some condition holds.
    Or(Vec<Expr>),
    Compare(Cmp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Name(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    End,
}

fn err(column: usize, message: impl Into<String>) -> RuleError {
    RuleError {
        column,
        message: message.into(),
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, RuleError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' || c == ',' {
            out.push((
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Comma,
                },
                col,
            ));
            i += 1;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(err(col, "unterminated string")),
                    Some('"') => break,
                    Some('\\') if chars.get(i + 1).is_some() => {
                        s.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            i += 1;
            out.push((Tok::Str(s), col));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse::<f64>()
                .map_err(|_| err(col, format!("{text:?} is not a number")))?;
            out.push((Tok::Num(n), col));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), col));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = ["==", "!=", "<=", ">="]
                .into_iter()
                .find(|o| *o == two)
                .or_else(|| ["<", ">"].into_iter().find(|o| o.starts_with(c)));
            match op {
                Some(o) => {
                    i += o.len();
                    out.push((Tok::Op(o), col));
                }
                None if c == '=' => {
                    return Err(err(col, "use == to compare"));
                }
                None => return Err(err(col, format!("unexpected character {c:?}"))),
            }
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    /// Current nesting of parentheses and `not`.
    depth: usize,
    /// Operands read so far.
    terms: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn col(&self) -> usize {
        self.toks[self.pos].1
    }

    fn next(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == k)
    }

    /// Enters one level of nesting, refusing a rule nested deeper than [`MAX_RULE_DEPTH`].
    fn enter(&mut self, col: usize) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_RULE_DEPTH {
            return Err(err(
                col,
                format!("the rule nests deeper than {MAX_RULE_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<(Expr, Type, usize), RuleError> {
        let (first, t, col) = self.and()?;
        if !self.keyword("or") {
            return Ok((first, t, col));
        }
        want_bool(t, col, "or")?;
        let mut all = vec![first];
        while self.keyword("or") {
            self.next();
            let (r, rt, rc) = self.and()?;
            want_bool(rt, rc, "or")?;
            all.push(r);
        }
        Ok((Expr::Or(all), Type::Bool, col))
    }

    fn and(&mut self) -> Result<(Expr, Type, usize), RuleError> {
        let (first, t, col) = self.unary()?;
        if !self.keyword("and") {
            return Ok((first, t, col));
        }
        want_bool(t, col, "and")?;
        let mut all = vec![first];
        while self.keyword("and") {
            self.next();
            let (r, rt, rc) = self.unary()?;
            want_bool(rt, rc, "and")?;
            all.push(r);
        }
        Ok((Expr::And(all), Type::Bool, col))
    }

    fn unary(&mut self) -> Result<(Expr, Type, usize), RuleError> {
        if self.keyword("not") {
            let col = self.next().1;
            self.enter(col)?;
            let (e, t, c) = self.unary()?;
            self.depth -= 1;
            want_bool(t, c, "not")?;
            return Ok((Expr::Not(Box::new(e)), Type::Bool, col));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<(Expr, Type, usize), RuleError> {
        let (l, lt, col) = self.operand()?;
        let op = match self.peek() {
            Tok::Op(o) => *o,
            _ => return Ok((l, lt, col)),
        };
        let op_col = self.next().1;
        let (r, rt, _) = self.operand()?;
        let cmp = match op {
            "==" => Cmp::Eq,
            "!=" => Cmp::Ne,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            ">" => Cmp::Gt,
            _ => Cmp::Ge,
        };
        if lt != rt {
            return Err(err(op_col, format!("cannot compare {lt} with {rt}")));
        }
        if !matches!(cmp, Cmp::Eq | Cmp::Ne) && lt != Type::Num {
            return Err(err(op_col, format!("{op} needs numbers, not {lt}")));
        }
        Ok((
            Expr::Compare(cmp, Box::new(l), Box::new(r)),
            Type::Bool,
            col,
        ))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), RuleError> {
        let (t, col) = self.next();
        if t == want {
            Ok(())
        } else {
            Err(err(col, format!("expected {what}")))
        }
    }

    fn string_arg(&mut self, f: &str) -> Result<String, RuleError> {
        match self.next() {
            (Tok::Str(s), _) => Ok(s),
            (_, col) => Err(err(col, format!("{f} expects a string here"))),
        }
    }

    fn days_arg(&mut self, f: &str) -> Result<i64, RuleError> {
        match self.next() {
            (Tok::Num(n), col) => {
                if n.fract() != 0.0 || !(1.0..=365.0).contains(&n) {
                    return Err(err(col, format!("{f} takes whole days from 1 to 365")));
                }
                Ok(n as i64)
            }
            (_, col) => Err(err(col, format!("{f} expects a number of days here"))),
        }
    }

    fn operand(&mut self) -> Result<(Expr, Type, usize), RuleError> {
        let (tok, col) = self.next();
        if tok != Tok::LParen {
            self.terms += 1;
            if self.terms > MAX_RULE_TERMS {
                return Err(err(
                    col,
                    format!("the rule has more than {MAX_RULE_TERMS} terms"),
                ));
            }
        }
        match tok {
            Tok::Num(n) => Ok((Expr::Num(n), Type::Num, col)),
            Tok::Str(s) => Ok((Expr::Str(s), Type::Str, col)),
            Tok::LParen => {
                self.enter(col)?;
                let (e, t, _) = self.or()?;
                self.expect(Tok::RParen, "')'")?;
                self.depth -= 1;
                Ok((e, t, col))
            }
            Tok::Name(n) if n == "true" || n == "false" => {
                Ok((Expr::Bool(n == "true"), Type::Bool, col))
            }
            Tok::Name(n) if *self.peek() == Tok::LParen => {
                self.next();
                let (e, t) = match n.as_str() {
                    "category_views" => {
                        let c = self.string_arg(&n)?;
                        self.expect(Tok::Comma, "',' and a number of days")?;
                        (Expr::CategoryViews(c, self.days_arg(&n)?), Type::Num)
                    }
                    "orders_within" => (Expr::OrdersWithin(self.days_arg(&n)?), Type::Num),
                    "interest" => (Expr::Interest(self.string_arg(&n)?), Type::Num),
                    "trait" => (Expr::Trait(self.string_arg(&n)?), Type::Str),
                    _ => {
                        let known: Vec<&str> = FUNCTIONS.iter().map(|(f, _)| *f).collect();
                        return Err(err(
                            col,
                            format!("unknown function {n}; known: {}", known.join(", ")),
                        ));
                    }
                };
                self.expect(Tok::RParen, "')'")?;
                Ok((e, t, col))
            }
            Tok::Name(n) => match field_type(&n) {
                Some(t) => Ok((Expr::Field(n), t, col)),
                None => {
                    let known: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
                    Err(err(
                        col,
                        format!("unknown fact {n:?}; known: {}", known.join(", ")),
                    ))
                }
            },
            Tok::End => Err(err(col, "the rule ends too early")),
            other => Err(err(col, format!("unexpected {other:?}"))),
        }
    }
}

fn want_bool(t: Type, col: usize, op: &str) -> Result<(), RuleError> {
    if t == Type::Bool {
        Ok(())
    } else {
        Err(err(col, format!("{op} needs conditions, not {t}")))
    }
}

/// A checked rule, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    expr: Expr,
}

/// A runtime value; `Null` is a fact not known yet.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

/// What a rule is evaluated against.
pub struct Subject<'a> {
    pub facts: &'a Facts,
    pub state: &'a SubjectState,
    pub now_ms: i64,
    pub half_life_ms: i64,
}

impl Rule {
    pub fn parse(src: &str) -> Result<Rule, RuleError> {
        if src.trim().is_empty() {
            return Err(err(1, "the rule is empty"));
        }
        if src.len() > MAX_RULE_BYTES {
            return Err(err(
                MAX_RULE_BYTES + 1,
                format!("the rule is longer than {MAX_RULE_BYTES} bytes"),
            ));
        }
        let mut p = Parser {
            toks: lex(src)?,
            pos: 0,
            depth: 0,
            terms: 0,
        };
        let (expr, t, col) = p.or()?;
        if *p.peek() != Tok::End {
            return Err(err(p.col(), "expected and, or, or the end of the rule"));
        }
        if t != Type::Bool {
            return Err(err(col, format!("a rule must be a condition, not {t}")));
        }
        Ok(Rule { expr })
    }

    pub fn matches(&self, s: &Subject<'_>) -> bool {
        eval(&self.expr, s) == Val::Bool(true)
    }
}

fn opt_num(v: Option<f64>) -> Val {
    v.map_or(Val::Null, Val::Num)
}

fn field(name: &str, f: &Facts) -> Val {
    let rfm = |g: fn(&crate::models::Rfm) -> f64| opt_num(f.rfm.as_ref().map(g));
    match name {
        "member" => Val::Bool(f.member),
        "orders" => Val::Num(f.orders as f64),
        "units" => Val::Num(f.units as f64),
        "monetary" => Val::Num(f.monetary),
        "average_order_value" => Val::Num(f.average_order_value),
        "days_since_last_purchase" => opt_num(f.days_since_last_purchase),
        "days_since_first_purchase" => opt_num(f.days_since_first_purchase),
        "days_since_last_seen" => opt_num(f.days_since_last_seen),
        "sessions" => Val::Num(f.sessions as f64),
        "pages" => Val::Num(f.pages as f64),
        "dwell_seconds" => Val::Num(f.dwell_seconds),
        "rfm.r" => rfm(|r| f64::from(r.r)),
        "rfm.f" => rfm(|r| f64::from(r.f)),
        "rfm.m" => rfm(|r| f64::from(r.m)),
        "rfm.score" => rfm(|r| f64::from(r.score)),
        "rfm.segment" => f
            .rfm
            .as_ref()
            .map_or(Val::Null, |r| Val::Str(r.segment.into())),
        "value_percentile" => opt_num(f.value_percentile),
        "p_alive" => opt_num(f.value.map(|c| c.p_alive)),
        "churn_risk" => opt_num(f.value.map(|c| 1.0 - c.p_alive)),
        "expected_purchases" => opt_num(f.value.map(|c| c.expected_purchases)),
        "clv" => opt_num(f.value.map(|c| c.value)),
        "lifecycle" => Val::Str(f.lifecycle.into()),
        "top_category" => f.top_category.clone().map_or(Val::Null, Val::Str),
        "top_brand" => f.top_brand.clone().map_or(Val::Null, Val::Str),
        "channel" => f.channel.clone().map_or(Val::Null, Val::Str),
        _ => Val::Null,
    }
}

fn eval(e: &Expr, s: &Subject<'_>) -> Val {
    match e {
        Expr::Num(n) => Val::Num(*n),
        Expr::Str(v) => Val::Str(v.clone()),
        Expr::Bool(b) => Val::Bool(*b),
        Expr::Field(n) => field(n, s.facts),
        Expr::CategoryViews(c, d) => Val::Num(category_views(s.state, c, *d, s.now_ms) as f64),
        Expr::OrdersWithin(d) => Val::Num(orders_within(s.state, *d, s.now_ms) as f64),
        Expr::Interest(c) => Val::Num(s.state.interests.categories.score(
            c,
            s.now_ms,
            s.half_life_ms,
        )),
        Expr::Trait(t) => match s.state.traits.get(t) {
            Some(serde_json::Value::String(v)) => Val::Str(v.clone()),
            Some(serde_json::Value::Null) | None => Val::Null,
            Some(other) => Val::Str(other.to_string()),
        },
        Expr::Not(e) => match eval(e, s) {
            Val::Bool(b) => Val::Bool(!b),
            _ => Val::Bool(false),
        },
        Expr::And(all) => Val::Bool(all.iter().all(|e| eval(e, s) == Val::Bool(true))),
        Expr::Or(all) => Val::Bool(all.iter().any(|e| eval(e, s) == Val::Bool(true))),
        Expr::Compare(op, a, b) => {
            let (a, b) = (eval(a, s), eval(b, s));
            let ord = match (&a, &b) {
                (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
                (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
                (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
                _ => None,
            };
            let Some(ord) = ord else {
                return Val::Bool(false);
            };
            use std::cmp::Ordering::*;
            Val::Bool(match op {
                Cmp::Eq => ord == Equal,
                Cmp::Ne => ord != Equal,
                Cmp::Lt => ord == Less,
                Cmp::Le => ord != Greater,
                Cmp::Gt => ord == Greater,
                Cmp::Ge => ord != Less,
            })
        }
    }
}

/// Checks a definition: a usable name and a rule that parses.
pub fn check(def: &SegmentDef) -> Result<Rule, String> {
    crate::ids::SessionId::parse(def.name.clone())
        .map_err(|e| format!("segment name {:?} {e}", def.name))?;
    if def.name.len() > 64 {
        return Err(format!(
            "segment name {:?} is longer than 64 bytes",
            def.name
        ));
    }
    Rule::parse(&def.rule).map_err(|e| format!("segment {:?}: {e}", def.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{LifecycleRules, SiteModels};
    use crate::state::DAY_MS;

    fn facts_of(s: &SubjectState, now: i64) -> Facts {
        Facts::of(s, &SiteModels::default(), &LifecycleRules::default(), now)
    }

    fn matches(rule: &str, s: &SubjectState, now: i64) -> bool {
        let facts = facts_of(s, now);
        Rule::parse(rule).unwrap().matches(&Subject {
            facts: &facts,
            state: s,
            now_ms: now,
            half_life_ms: 30 * DAY_MS,
        })
    }

    #[test]
    fn rules_evaluate_over_facts_and_history() {
        let now = 100 * DAY_MS;
        let mut s = SubjectState {
            member_id: Some("m".into()),
            ..Default::default()
        };
        let shoes = s.category_days.entry("shoes".into()).or_default();
        shoes.insert(99, 2);
        shoes.insert(95, 1);
        shoes.insert(80, 5);
        let rule = r#"category_views("shoes", 7) >= 3 and orders_within(7) == 0"#;
        assert!(matches(rule, &s, now));
        s.purchases.days.insert(98, 10.0);
        assert!(!matches(rule, &s, now));
        assert!(matches("member and not (orders > 0)", &s, now));
        assert!(matches(r#"lifecycle == "prospect" or pages > 1"#, &s, now));
        // Unknown facts are null: comparisons with them are false either way.
        assert!(!matches("churn_risk > 0.7", &s, now));
        assert!(!matches("churn_risk <= 0.7", &s, now));
        s.traits.insert("plan".into(), serde_json::json!("gold"));
        assert!(matches(r#"trait("plan") == "gold""#, &s, now));
    }

    #[test]
    fn bad_rules_are_refused_with_the_column() {
        let e = |r: &str| Rule::parse(r).unwrap_err().to_string();
        assert_eq!(
            e("orders > 2 and churn > 0.5").split(';').next().unwrap(),
            "column 16: unknown fact \"churn\""
        );
        assert_eq!(
            e("orders > \"many\""),
            "column 8: cannot compare a number with a string"
        );
        assert_eq!(
            e("lifecycle > \"a\""),
            "column 11: > needs numbers, not a string"
        );
        assert_eq!(e("orders = 2"), "column 8: use == to compare");
        assert_eq!(
            e("orders"),
            "column 1: a rule must be a condition, not a number"
        );
        assert_eq!(
            e("orders_within(0) > 1"),
            "column 15: orders_within takes whole days from 1 to 365"
        );
        assert_eq!(e("(orders > 1"), "column 12: expected ')'");
        assert_eq!(
            e("orders > 1 orders"),
            "column 12: expected and, or, or the end of the rule"
        );
        assert!(e("foo(1) > 2").starts_with("column 1: unknown function foo"));
        assert_eq!(e(""), "column 1: the rule is empty");
        let def = SegmentDef {
            name: "bad name".into(),
            rule: "orders > 1".into(),
            description: None,
            site: None,
        };
        assert!(check(&def)
            .unwrap_err()
            .starts_with("segment name \"bad name\""));
    }

    #[test]
    fn rules_are_bounded_so_none_can_take_the_service_down() {
        // ~2,000 parentheses (a 20 KB body) overflowed the stack while parsing.
        let deep = format!("{}orders > 1{}", "(".repeat(2000), ")".repeat(2000));
        let e = Rule::parse(&deep).unwrap_err();
        assert!(e.message.contains("deeper than"), "{e}");
        let huge = format!("{}orders > 1{}", "(".repeat(10_000), ")".repeat(10_000));
        let e = Rule::parse(&huge).unwrap_err();
        assert!(e.message.contains("longer than 4096 bytes"), "{e}");
        let deep = format!("{}orders > 1{}", "(".repeat(40), ")".repeat(40));
        let e = Rule::parse(&deep).unwrap_err();
        assert_eq!(
            (e.column, e.message.as_str()),
            (33, "the rule nests deeper than 32 levels")
        );
        let e = Rule::parse(&format!("{}member", "not ".repeat(40))).unwrap_err();
        assert!(e.message.contains("deeper than 32"), "{e}");
        // ~21,000 `or` terms was accepted, then overflowed the stack of the next evaluation.
        let flat = vec!["member"; 21_000].join(" or ");
        assert!(Rule::parse(&flat).is_err());
        let many = vec!["member"; MAX_RULE_TERMS + 1].join(" or ");
        assert!(many.len() <= MAX_RULE_BYTES);
        let e = Rule::parse(&many).unwrap_err();
        assert!(e.message.contains("more than 256 terms"), "{e}");

        // At the bounds a rule parses and evaluates; a long chain is one flat list.
        let now = 10 * DAY_MS;
        let s = SubjectState::default();
        let chain = vec!["orders > 1"; MAX_RULE_TERMS / 2].join(" or ");
        assert!(!matches(&chain, &s, now));
        let nested = format!(
            "{}orders == 0{}",
            "(".repeat(MAX_RULE_DEPTH),
            ")".repeat(MAX_RULE_DEPTH)
        );
        assert!(matches(&nested, &s, now));
        let nots = format!("{}orders == 0", "not not ".repeat(MAX_RULE_DEPTH / 2));
        assert!(matches(&nots, &s, now));
    }
}
