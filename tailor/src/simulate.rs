//! `tailor run --simulate [N]`: N synthetic shoppers ([`crate::traffic`]) browse the demo shop
//! through the real collection API, so the demo shop's recommendations, `/insights` and the
//! operators' pages have data a minute after start.
//!
//! The shoppers are browser-like: each request carries a browser's `User-Agent` and the shop's
//! `Origin`, as the tag's requests do, so the collector judges them as browser traffic (and they are
//! no bots), and each page's events go out as one request, as the tag batches them. Shoppers run a
//! few at a time with a pause between pages; a 429 from the collector's per-IP rate limit (all
//! shoppers share one address) is waited out as its `Retry-After` says. Nothing is special-cased:
//! the events take the path of real ones.

use crate::traffic::{Catalogue, Rng, Shopper};
use anyhow::bail;
use futures::StreamExt;
use std::time::Duration;
use tailor_infra::Shutdown;

/// Longest pause of a shopper between pages: 200 shoppers, 8 at a time, take about a minute.
pub const PACE: Duration = Duration::from_millis(250);
/// Visits (sessions) per shopper.
pub const VISITS: u32 = 3;
/// Shoppers browsing at the same time.
const CONCURRENCY: usize = 8;
/// The browsers shoppers use, in turn.
const USER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
];

/// What a simulation sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub shoppers: usize,
    pub requests: usize,
    pub events: usize,
}

/// Runs `shoppers` shoppers against the collector at `base` for `site`, pausing up to `pace` between
/// pages; stops early on shutdown.
pub async fn run(
    base: &str,
    site: &str,
    shoppers: usize,
    pace: Duration,
    shutdown: Shutdown,
) -> anyhow::Result<Report> {
    let catalogue = Catalogue::demo();
    let url = format!("{}/v1/events", base.trim_end_matches('/'));
    let seed = chrono::Utc::now().timestamp_millis() as u64;
    let runs = futures::stream::iter(0..shoppers)
        .map(|n| {
            let (catalogue, url, shutdown) = (&catalogue, &url, shutdown.clone());
            async move { shop(catalogue, url, site, seed, n, pace, shutdown).await }
        })
        .buffer_unordered(CONCURRENCY);
    let reports: Vec<anyhow::Result<Report>> = runs.collect().await;
    let mut total = Report::default();
    for r in reports {
        let r = r?;
        total.shoppers += r.shoppers;
        total.requests += r.requests;
        total.events += r.events;
    }
    Ok(total)
}

/// One shopper's visits.
async fn shop(
    catalogue: &Catalogue,
    url: &str,
    site: &str,
    seed: u64,
    n: usize,
    pace: Duration,
    shutdown: Shutdown,
) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .user_agent(USER_AGENTS[n % USER_AGENTS.len()])
        .build()?;
    let mut shopper = Shopper::new(catalogue, seed, n as u64);
    let mut rng = Rng::new(seed ^ n as u64);
    let mut report = Report {
        shoppers: 1,
        ..Report::default()
    };
    for visit in 0..VISITS {
        for page in shopper.visit(catalogue, site, visit) {
            if shutdown.is_cancelled() {
                return Ok(report);
            }
            send(&http, url, &page).await?;
            report.requests += 1;
            report.events += page.len();
            if !pace.is_zero() {
                let pause = pace.mul_f64(rng.below(1000) as f64 / 1000.0);
                tokio::time::sleep(pause.max(pace / 4)).await;
            }
        }
    }
    Ok(report)
}

/// Posts one page's events as the tag would, waiting out rate limiting.
async fn send(
    http: &reqwest::Client,
    url: &str,
    events: &[serde_json::Value],
) -> anyhow::Result<()> {
    for _ in 0..20 {
        let r = http
            .post(url)
            .header("origin", "https://shop.example")
            .json(events)
            .send()
            .await?;
        match r.status().as_u16() {
            200..=299 => return Ok(()),
            429 | 503 => {
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            status => bail!(
                "the collector refused simulated events ({status}): {}",
                r.text().await?
            ),
        }
    }
    bail!("the collector kept refusing simulated events")
}
