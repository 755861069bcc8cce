//! `tailor import`: history into a running Tailor, through its collector (`--url`), so imported events
//! take exactly the path of live ones (validation, dead letters, the bus, the processor) and a shop
//! starts with its past customers' value.
//!
//! Every imported event gets a deterministic id (from the site and the order id, or the JSON line), so
//! importing a file twice, or resuming after a failure, counts nothing twice. Before sending anything
//! the import asks the collector for its sites (`GET /admin/sites`): a site it does not know fails at
//! once with one message, and a collector that does not answer within `--wait` seconds gives up with
//! one message. Requests are retried on 429 and 503 as the collector's `Retry-After` says. Rejected
//! events (dead-lettered by the collector like any other) are summed up by reason with a few
//! examples, and make the import exit non-zero.

use crate::cli::Import;
use anyhow::{bail, Context};
use chrono::{NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tailor_collector::sites::Sites;

/// Rejected events shown as examples in the summary.
const EXAMPLES: usize = 5;
/// Attempts at a batch the collector keeps refusing (429, 503) before giving up.
const ATTEMPTS: usize = 30;

/// Runs the import and prints a summary; fails when any event was rejected.
pub async fn run(cmd: Import) -> anyhow::Result<()> {
    let http = cmd.remote.client()?;
    let base = cmd.remote.url.trim_end_matches('/');
    let wait = Duration::from_secs(cmd.wait);
    check_site(&http, base, &cmd.site, wait).await?;
    let text = std::fs::read_to_string(&cmd.file)
        .with_context(|| format!("cannot read {}", cmd.file.display()))?;
    let events = if cmd.format.is_csv(&cmd.file) {
        orders_from_csv(&text, &cmd.site, &cmd.currency)?
    } else {
        events_from_jsonl(&text, &cmd.site)?
    };
    if events.is_empty() {
        bail!("{} holds no events", cmd.file.display());
    }
    let bar = ProgressBar::new(events.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    let url = format!("{base}/v1/events");
    let batch = cmd.batch.max(1);
    let mut summary = Summary::default();
    for (n, chunk) in events.chunks(batch).enumerate() {
        let (_, answer) = send_json(&http, reqwest::Method::POST, &url, chunk, wait).await?;
        summary.accepted += answer["accepted"].as_u64().unwrap_or(0) as usize;
        let rejected = answer["rejected"].as_array().into_iter().flatten();
        let invalid = answer["error"]["details"].as_array().into_iter().flatten();
        for r in rejected.chain(invalid) {
            summary.reject(n * batch, r);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    println!(
        "imported {} into site {}: {} events accepted, {} rejected",
        cmd.file.display(),
        cmd.site,
        summary.accepted,
        summary.rejected()
    );
    if summary.rejected() > 0 {
        print!("{}", summary.report());
        bail!(
            "{} of {} events were rejected (`tailor dead-letters list --site {}` shows every one)",
            summary.rejected(),
            events.len(),
            cmd.site
        );
    }
    Ok(())
}

/// Rejections by reason, with the first few as examples.
#[derive(Debug, Default)]
struct Summary {
    accepted: usize,
    by_reason: BTreeMap<String, usize>,
    examples: Vec<String>,
}

impl Summary {
    /// Counts one entry of an answer's `rejected` (or `error.details`) list; `offset` is the index of
    /// the batch's first event in the file.
    fn reject(&mut self, offset: usize, r: &Value) {
        let kind = r["kind"].as_str().unwrap_or("invalid").to_string();
        *self.by_reason.entry(kind).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            let index = r["index"].as_u64().unwrap_or(0) as usize + offset;
            let field = r["field"].as_str().unwrap_or("$");
            let reason = r["reason"].as_str().unwrap_or("");
            self.examples
                .push(format!("event {index}: {field}: {reason}"));
        }
    }

    fn rejected(&self) -> usize {
        self.by_reason.values().sum()
    }

    fn report(&self) -> String {
        let mut out = String::from("rejected by reason:\n");
        for (reason, n) in &self.by_reason {
            out.push_str(&format!("  {reason}: {n}\n"));
        }
        out.push_str(&format!("first {} rejected:\n", self.examples.len()));
        for e in &self.examples {
            out.push_str(&format!("  {e}\n"));
        }
        out
    }
}

/// The message for a collector that did not answer within `wait`.
fn unreachable(base: &str, wait: Duration, e: &reqwest::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "no Tailor answers at {base} (gave up after {} s: {e}); start one with `tailor run`, or point \
         --url (or TAILOR_URL) at it",
        wait.as_secs()
    )
}

/// Fails unless the collector at `base` serves `site`, waiting at most `wait` for it to answer.
async fn check_site(
    http: &reqwest::Client,
    base: &str,
    site: &str,
    wait: Duration,
) -> anyhow::Result<()> {
    let url = format!("{base}/admin/sites");
    let started = Instant::now();
    let r = loop {
        match http.get(&url).send().await {
            Ok(r) => break r,
            Err(e) if started.elapsed() >= wait => return Err(unreachable(base, wait, &e)),
            Err(e) => {
                tracing::info!(error = %e, "waiting for a Tailor at {base}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    if [401, 403].contains(&r.status().as_u16()) {
        // A collect key may not list sites (that is the admin's): the collector still refuses an
        // event of a site the key does not write to, with 403.
        tracing::debug!(status = %r.status(), "the key cannot list the sites; not checking {site}");
        return Ok(());
    }
    if !r.status().is_success() {
        bail!(
            "{base} is not a Tailor collector: GET /admin/sites answered {}",
            r.status()
        );
    }
    let sites: Sites = r
        .json()
        .await
        .with_context(|| format!("{base}/admin/sites answered something else than a site list"))?;
    if !sites.sites.iter().any(|s| s.id == site) {
        bail!("site {site} is not configured: add [[sites]] id = \"{site}\" to the config");
    }
    Ok(())
}

/// Sends one batch of JSON, retrying while the server asks to (429, 503), and while it cannot be
/// reached for at most `wait`; answers the status (2xx or 400) and the JSON body.
pub(crate) async fn send_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    batch: &[Value],
    wait: Duration,
) -> anyhow::Result<(u16, Value)> {
    let mut pause = Duration::from_millis(500);
    let mut refused = 0;
    let mut unreachable_since: Option<Instant> = None;
    while refused < ATTEMPTS {
        match http.request(method.clone(), url).json(batch).send().await {
            Ok(r) => {
                unreachable_since = None;
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let body: Value = r.json().await.unwrap_or(Value::Null);
                match status {
                    200..=299 | 400 => return Ok((status, body)),
                    429 | 503 => {
                        refused += 1;
                        if let Some(s) = retry_after {
                            pause = Duration::from_secs(s);
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(30));
                    }
                    _ => bail!("{url} answered {status}: {body}"),
                }
            }
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= wait {
                    return Err(unreachable(url, wait, &e));
                }
                tracing::warn!(error = %e, "the collector does not answer; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    bail!("{url} kept refusing the batch ({ATTEMPTS} attempts); try again later")
}

/// FNV-1a, for stable ids of imported lines.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// JSON lines in the event schema; the site and a stable event id are filled in where missing.
pub fn events_from_jsonl(text: &str, site: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut v: Value =
            serde_json::from_str(line).with_context(|| format!("line {}: not JSON", i + 1))?;
        let Some(obj) = v.as_object_mut() else {
            bail!("line {}: not a JSON object", i + 1);
        };
        obj.entry("site_id").or_insert_with(|| json!(site));
        obj.entry("event_id")
            .or_insert_with(|| json!(format!("import-{site}-{:016x}", fnv(line))));
        out.push(v);
    }
    Ok(out)
}

/// An orders CSV (see `tailor import --help`) as purchase events, one per order.
pub fn orders_from_csv(text: &str, site: &str, currency: &str) -> anyhow::Result<Vec<Value>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .context("reading the CSV header")?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let member = col("member_id").context("the CSV needs a member_id column")?;
    let when = col("timestamp")
        .or_else(|| col("date"))
        .context("the CSV needs a timestamp or date column")?;
    let revenue = col("revenue").context("the CSV needs a revenue column")?;
    let (order_col, currency_col, item_col, category_col, quantity_col, price_col) = (
        col("order_id"),
        col("currency"),
        col("item_id"),
        col("category"),
        col("quantity"),
        col("price"),
    );
    // Orders in order of first appearance; rows with the same order id add lines.
    let mut orders: Vec<Map<String, Value>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.with_context(|| format!("CSV line {line}"))?;
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).filter(|v| !v.is_empty());
        let member_id =
            get(Some(member)).with_context(|| format!("CSV line {line}: member_id is empty"))?;
        let timestamp = parse_time(get(Some(when)).unwrap_or(""))
            .with_context(|| format!("CSV line {line}: bad timestamp/date"))?;
        let amount: f64 = get(Some(revenue))
            .unwrap_or("")
            .parse()
            .with_context(|| format!("CSV line {line}: revenue is not a number"))?;
        let order_id = get(order_col)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{member_id}-{timestamp}-{line}"));
        let quantity: u64 = match get(quantity_col) {
            Some(q) => q
                .parse()
                .with_context(|| format!("CSV line {line}: quantity is not a whole number"))?,
            None => 1,
        };
        let price: f64 = match get(price_col) {
            Some(p) => p
                .parse()
                .with_context(|| format!("CSV line {line}: price is not a number"))?,
            None => amount / quantity.max(1) as f64,
        };
        let mut l = Map::new();
        l.insert("item_id".into(), json!(get(item_col).unwrap_or("_order")));
        if let Some(c) = get(category_col) {
            l.insert("category".into(), json!(c));
        }
        l.insert("price".into(), json!(price));
        l.insert("quantity".into(), json!(quantity));
        match index.get(&order_id) {
            Some(&i) => {
                let o = &mut orders[i];
                let total = o["order"]["revenue"].as_f64().unwrap_or(0.0) + amount;
                o["order"]["revenue"] = json!(total);
                o["order"]["lines"]
                    .as_array_mut()
                    .expect("lines")
                    .push(Value::Object(l));
            }
            None => {
                index.insert(order_id.clone(), orders.len());
                let cur = get(currency_col).unwrap_or(currency).to_ascii_uppercase();
                let event = json!({
                    "type": "purchase",
                    "event_id": format!("import-{site}-{order_id}"),
                    "site_id": site,
                    "member_id": member_id,
                    "anonymous_id": member_id,
                    "timestamp": timestamp,
                    "order": {"id": order_id, "currency": cur, "revenue": amount, "lines": [l]},
                });
                orders.push(event.as_object().expect("an object").clone());
            }
        }
    }
    Ok(orders.into_iter().map(Value::Object).collect())
}

/// RFC 3339, or a calendar date (YYYY-MM-DD or YYYYMMDD) taken as midnight UTC.
fn parse_time(v: &str) -> anyhow::Result<String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc).to_rfc3339());
    }
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%Y%m%d"))
        .with_context(|| format!("{v:?} is neither RFC 3339 nor a date"))?;
    Ok(d.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_orders_with_stable_ids() {
        let csv = "member_id,date,revenue,order_id,item_id,quantity\n\
                   m1,19970101,29.33,o1,cd-a,2\n\
                   m1,19970101,10,o1,cd-b,1\n\
                   m2,1997-01-02,5,,,\n";
        let e = orders_from_csv(csv, "demo", "usd").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0]["event_id"], "import-demo-o1");
        assert_eq!(e[0]["timestamp"], "1997-01-01T00:00:00+00:00");
        assert_eq!(e[0]["order"]["lines"].as_array().unwrap().len(), 2);
        assert!((e[0]["order"]["revenue"].as_f64().unwrap() - 39.33).abs() < 1e-9);
        assert_eq!(e[1]["order"]["currency"], "USD");
        assert_eq!(e[1]["order"]["lines"][0]["item_id"], "_order");
        assert_eq!(
            orders_from_csv(csv, "demo", "usd").unwrap(),
            e,
            "deterministic"
        );
        let err = orders_from_csv("member_id,date\nm1,x\n", "demo", "USD").unwrap_err();
        assert!(err.to_string().contains("revenue"), "{err}");
        let err =
            orders_from_csv("member_id,date,revenue\nm1,yesterday,1\n", "demo", "USD").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    }

    #[test]
    fn jsonl_lines_get_the_site_and_stable_ids() {
        let text = "{\"type\":\"page_view\",\"anonymous_id\":\"a\"}\n\n{\"type\":\"page_view\",\"anonymous_id\":\"b\",\"event_id\":\"e\"}\n";
        let e = events_from_jsonl(text, "demo").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0]["site_id"], "demo");
        assert!(e[0]["event_id"]
            .as_str()
            .unwrap()
            .starts_with("import-demo-"));
        assert_eq!(e[1]["event_id"], "e");
        assert!(events_from_jsonl("nope", "demo").is_err());
    }
}
