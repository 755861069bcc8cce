//! `tailor catalog import`: a product file into a running Tailor's catalog, through its API
//! (`--url`), so the file is checked by the same validation as `PUT /v1/catalog/items`.
//!
//! The file is parsed and validated here first (`tailor_core::catalog`, the server's own code), so
//! each invalid line or row is reported with its line number and field while the valid items still
//! load. Items go in batches of `--batch`; an upsert, so importing again (or resuming after a
//! failure) changes nothing. Any invalid item makes the command exit non-zero after its summary.

use crate::cli::CatalogImport;
use crate::import::send_json;

/// How long the import waits for a Tailor that does not answer.
const CATALOG_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tailor_core::catalog::{parse_csv, parse_jsonl, Record};

/// Runs the import and prints a summary.
pub async fn import(cmd: CatalogImport) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&cmd.file)
        .with_context(|| format!("cannot read {}", cmd.file.display()))?;
    let records: Vec<Record> = if cmd.format.is_csv(&cmd.file) {
        parse_csv(&text).with_context(|| format!("{} is not a catalog CSV", cmd.file.display()))?
    } else {
        parse_jsonl(&text)
    };
    if records.is_empty() {
        bail!("{} holds no items", cmd.file.display());
    }
    let mut rejected: Vec<String> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    let mut items: Vec<Value> = Vec::new();
    for (line, record) in records {
        match record {
            Ok(item) => {
                lines.push(line);
                items.push(serde_json::to_value(item).expect("an item serialises"));
            }
            Err(e) => rejected.push(format!("line {line}: {e}")),
        }
    }
    let bar = ProgressBar::new(items.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} items {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    let http = cmd.remote.client()?;
    let url = reqwest::Url::parse_with_params(
        &format!("{}/v1/catalog/items", cmd.remote.url.trim_end_matches('/')),
        [("site", &cmd.site)],
    )
    .context("--url is not a URL")?
    .to_string();
    let batch = cmd.batch.max(1);
    let mut loaded = 0usize;
    for (n, chunk) in items.chunks(batch).enumerate() {
        let (status, answer) =
            send_json(&http, reqwest::Method::PUT, &url, chunk, CATALOG_WAIT).await?;
        if status == 400 {
            // The server refused the batch whole (it writes all or nothing): name each element
            // it reported, or the reason when it refused the request itself (an unknown site).
            let details = answer["error"]["details"].as_array().cloned();
            match details {
                Some(details) if !details.is_empty() => {
                    for d in details {
                        let i = d["index"].as_u64().unwrap_or(0) as usize + n * batch;
                        rejected.push(format!(
                            "line {}: {}: {}",
                            lines.get(i).copied().unwrap_or(0),
                            d["field"].as_str().unwrap_or("?"),
                            d["reason"].as_str().unwrap_or("?")
                        ));
                    }
                }
                _ => bail!("the catalog API refused the import: {}", answer["error"]),
            }
        } else {
            loaded += answer["upserted"].as_u64().unwrap_or(0) as usize;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    println!(
        "imported {} into the catalog of site {}: {loaded} items loaded, {} rejected",
        cmd.file.display(),
        cmd.site,
        rejected.len()
    );
    for r in rejected.iter().take(50) {
        println!("  {r}");
    }
    if rejected.len() > 50 {
        println!("  ... and {} more", rejected.len() - 50);
    }
    if !rejected.is_empty() {
        bail!("{} items were rejected", rejected.len());
    }
    Ok(())
}
