//! Operator commands that talk to a running Tailor over its admin API (`--url`), so they work the same
//! against `tailor run` on embedded defaults and against a production collector.

use crate::cli::{Clv, DeadLetterFilter, DeadLetters, Erase};
use anyhow::{bail, Context};
use tailor_collector::deadletters::{Filter, Listing, RedriveReport, RedriveRequest, MAX_PAGE};

fn filter(f: DeadLetterFilter, ids: Vec<String>) -> Filter {
    Filter {
        ids,
        reason: f.reason,
        site: f.site,
        source: f.source,
    }
}

async fn answer<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> anyhow::Result<T> {
    let status = r.status();
    let text = r.text().await.context("reading the answer")?;
    if !status.is_success() {
        bail!("Tailor answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("unexpected answer: {text}"))
}

/// Runs `tailor dead-letters ...`, printing to stdout.
pub async fn dead_letters(cmd: DeadLetters) -> anyhow::Result<()> {
    match cmd {
        DeadLetters::List {
            remote,
            filter: f,
            limit,
            json,
        } => {
            let http = remote.client()?;
            let f = filter(f, vec![]);
            let mut q = vec![("limit", MAX_PAGE.to_string())];
            q.extend(f.reason.map(|v| ("reason", v)));
            q.extend(f.site.map(|v| ("site", v)));
            q.extend(f.source.map(|v| ("source", v)));
            let url = format!("{}/admin/dead-letters", remote.url.trim_end_matches('/'));
            // The server answers one bounded page at a time; walk them all, counting every match
            // and keeping the newest `limit`.
            let mut listing: Option<Listing> = None;
            let mut cursor: Option<String> = None;
            loop {
                let mut page_q = q.clone();
                page_q.extend(cursor.take().map(|c| ("cursor", c)));
                let r = http
                    .get(&url)
                    .query(&page_q)
                    .send()
                    .await
                    .with_context(|| format!("cannot reach {url} (--url)"))?;
                let page: Listing = answer(r).await?;
                cursor = page.next_cursor.clone();
                listing = Some(match listing {
                    None => page,
                    Some(mut all) => {
                        all.scanned += page.scanned;
                        all.matching += page.matching;
                        for (reason, n) in page.by_reason {
                            *all.by_reason.entry(reason).or_insert(0) += n;
                        }
                        all.records.extend(page.records);
                        let extra = all.records.len().saturating_sub(limit);
                        all.records.drain(..extra);
                        all
                    }
                });
                if cursor.is_none() {
                    break;
                }
            }
            let mut listing = listing.expect("at least one page");
            let extra = listing.records.len().saturating_sub(limit);
            listing.records.drain(..extra);
            listing.next_cursor = None;
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
                return Ok(());
            }
            println!(
                "{} dead letter(s) in the topic, {} matching",
                listing.total, listing.matching
            );
            for (reason, n) in &listing.by_reason {
                println!("  {reason:<16} {n}");
            }
            if !listing.records.is_empty() {
                println!();
                println!(
                    "{:<36}  {:<20}  {:<8}  {:<8}  {:<14}  error",
                    "id", "received", "source", "site", "reason"
                );
            }
            for l in &listing.records {
                let error = l.errors.first().map(|e| e.to_string()).unwrap_or_default();
                println!(
                    "{:<36}  {:<20}  {:<8}  {:<8}  {:<14}  {}",
                    l.id,
                    l.received_at.format("%Y-%m-%d %H:%M:%S"),
                    l.source.as_str(),
                    l.site_id.as_deref().unwrap_or("-"),
                    l.reason,
                    error
                );
            }
            Ok(())
        }
        DeadLetters::Redrive {
            remote,
            filter: f,
            ids,
            all,
        } => {
            if ids.is_empty() && !all {
                bail!("give --id ID (repeatable) or --all (with --reason/--site/--source to narrow it)");
            }
            let body = RedriveRequest {
                filter: filter(f, ids),
                all,
            };
            let http = remote.client()?;
            let url = format!(
                "{}/admin/dead-letters/redrive",
                remote.url.trim_end_matches('/')
            );
            let r = http
                .post(&url)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("cannot reach {url} (--url)"))?;
            let report: RedriveReport = answer(r).await?;
            for res in &report.results {
                if res.accepted.is_empty() {
                    println!("{}  still rejected: {}", res.id, res.errors.join("; "));
                } else {
                    println!("{}  accepted {} event(s)", res.id, res.accepted.len());
                }
            }
            println!(
                "re-drove {}: {} accepted, {} still rejected",
                report.selected, report.accepted, report.still_rejected
            );
            Ok(())
        }
    }
}

/// Runs `tailor clv ...`, printing JSON to stdout.
pub async fn clv(cmd: Clv) -> anyhow::Result<()> {
    let Clv::Fit {
        remote,
        site,
        calibration_end,
    } = cmd;
    let url = format!("{}/admin/clv/fit", remote.url.trim_end_matches('/'));
    let mut q = vec![("site", site)];
    q.extend(calibration_end.map(|c| ("calibration_end", c)));
    let r = remote
        .client()?
        .get(&url)
        .query(&q)
        .send()
        .await
        .with_context(|| format!("cannot reach {url} (--url)"))?;
    let fit: serde_json::Value = answer(r).await?;
    println!("{}", serde_json::to_string_pretty(&fit)?);
    for note in fit["notes"].as_array().into_iter().flatten() {
        eprintln!("note: {}", note.as_str().unwrap_or_default());
    }
    Ok(())
}

/// Runs `tailor erase`, printing what was erased as JSON.
pub async fn erase(cmd: Erase) -> anyhow::Result<()> {
    let url = format!("{}/admin/erase", cmd.remote.url.trim_end_matches('/'));
    let mut q = vec![("site", cmd.site)];
    q.extend(cmd.member.map(|m| ("member", m)));
    q.extend(cmd.anonymous.map(|a| ("anonymous", a)));
    let r = cmd
        .remote
        .client()?
        .post(&url)
        .query(&q)
        .json(&serde_json::json!({})) // the admin API takes changes as JSON only
        .send()
        .await
        .with_context(|| format!("cannot reach {url} (--url)"))?;
    let mut report: serde_json::Value = answer(r).await?;
    if let Some(dir) = cmd.warehouse {
        let subjects: Vec<String> = report["subjects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let until = report["erased_at_ms"].as_i64().unwrap_or(i64::MAX);
        let (files, rows) = tokio::task::spawn_blocking(move || {
            tailor_processor::export::erase(&dir, &subjects, until)
        })
        .await??;
        report["warehouse"] = serde_json::json!({"files_rewritten": files, "rows_removed": rows});
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
