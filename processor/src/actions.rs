//! The actions stage: reaches members outside the site when mining finds a change a campaign's
//! trigger waits for (`docs/marketing.md`, "Outbound actions").
//!
//! It reads the change events (`kafka.changes_topic`) in its own consumer group (`<group>.actions`),
//! so neither the processor's batches nor the background sweep wait for a webhook. For each change,
//! each campaign of the site whose trigger it fires decides with the member's document and facts as
//! stored ([`tailor_core::campaign::Campaign::action`]); each action is written to the actions topic
//! (`kafka.actions_topic`) and, when the campaign names a webhook, POSTed to it with an
//! `Idempotency-Key` (the action's id) and retries; one that keeps failing goes to the site's
//! dead-action list (`NS:{site}:actions:dead`, `GET /admin/actions/dead`). Only then is the action
//! marked sent (`NS:{site:subj}:act:<id>`, 30 days), and the offsets committed after the batch.
//!
//! Invariant: one action per trigger. A change delivered again (a processor killed mid-batch
//! re-emits its changes with the same ids; this stage itself restarts from its last commit) makes the
//! same action with the same id, and its mark stops a second send. For the crash between writing an
//! action and marking it sent, the mark has two steps: before the write it says "pending" with the
//! actions topic's end offsets (read once per batch, before its first write); an action found pending is looked for in the topic
//! from those offsets on, and written only if it is not there. So the topic holds each action once,
//! even when the process dies right after writing it (`tailor/tests/campaigns.rs` kills it there
//! with a failpoint). A webhook may see an action twice only across such a crash, with the same
//! `Idempotency-Key`, which is what the key is for.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tailor_core::campaign::{self, Action, CampaignDef, Member};
use tailor_core::change::Change;
use tailor_core::config::ProcessorConfig;
use tailor_core::keys::KeySpace;
use tailor_core::models::{Facts, SiteModels};
use tailor_core::ops::{Update, WriteOp};
use tailor_core::state::{SubjectState, DAY_MS};
use tailor_core::{SiteId, Subject};
use tailor_infra::bus::{Consumer, Message, Offsets, Producer, TopicReader};
use tailor_infra::store::{Read, Store};
use tailor_infra::Shutdown;

/// How long a sent action is remembered (a change older than this is never delivered again).
const SENT_TTL_SECS: u64 = 30 * 24 * 3600;
/// Dead actions kept per site.
const DEAD_KEPT: u32 = 1000;
/// Attempts per webhook delivery, and the pause before the first retry (doubling).
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Changes read per batch.
const BATCH: usize = 200;
/// The sent mark's value once the action is on the topic and at its webhook.
const SENT: &str = "1";
/// The sent mark's value before the action is written: this prefix, then the actions topic's end
/// offsets (partition to offset, JSON) from which to look for it should the process die.
const PENDING: &str = "pending:";
/// Bytes of the actions topic read per page when looking for a pending action.
const SCAN_PAGE_BYTES: usize = 4 << 20;

/// See the module docs.
#[derive(Clone)]
pub struct ActionStage {
    pub store: Arc<dyn Store>,
    pub keys: KeySpace,
    /// The configured campaigns (`[[campaigns]]`); those added through the admin API are read from
    /// the store per batch.
    pub campaigns: Vec<CampaignDef>,
    pub config: ProcessorConfig,
    /// The actions topic.
    pub actions: Arc<dyn Producer>,
    /// The actions topic again, read to find out whether a pending action was written.
    pub log: Arc<dyn TopicReader>,
    pub http: reqwest::Client,
}

/// Reads changes until shutdown; see the module docs.
pub async fn run(
    stage: ActionStage,
    mut consumer: Box<dyn Consumer>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(200);
    let mut group = crate::health::GroupWatch::default();
    let mut last_lag = std::time::Instant::now();
    while !shutdown.is_cancelled() {
        // A group left without an assignment re-joins, as the processor's does (`crate::health`).
        if last_lag.elapsed() >= crate::health::LAG_EVERY {
            last_lag = std::time::Instant::now();
            if let Ok(lags) = consumer.lag().await {
                group.observe(&lags);
            }
            if group.stuck(crate::health::REJOIN_AFTER) {
                crate::health::rejoin(consumer.as_mut(), "actions").await;
            }
        }
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            b = consumer.poll(BATCH, Duration::from_millis(500)) => b,
        };
        let outcome = match batch {
            Ok(messages) if messages.is_empty() => continue,
            Ok(messages) => match stage.handle(&messages).await {
                Ok(()) => consumer
                    .commit(&Offsets::after(&messages))
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "actions: batch not done; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    if let Err(e) = consumer.flush().await {
        tracing::warn!(error = %e, "actions: final offset commit failed; the next start reads those changes again (and finds their actions sent)");
    }
    Ok(())
}

impl ActionStage {
    /// One batch of change messages: every action they make, sent once (see the module docs). An
    /// error leaves the batch to be read again.
    pub async fn handle(&self, messages: &[Message]) -> Result<(), String> {
        let changes: Vec<Change> = messages
            .iter()
            .filter_map(|m| match serde_json::from_slice::<Change>(&m.payload) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "actions: a change that does not parse is skipped");
                    None
                }
            })
            .collect();
        let mut sites: HashMap<String, (Vec<campaign::Campaign>, SiteModels)> = HashMap::new();
        // The actions topic's end offsets, read once per batch when an action is first about to be
        // written: a lower bound for every action the batch writes after it.
        let mut ends = None;
        for change in &changes {
            let Ok(site) = SiteId::parse(change.site_id.clone()) else {
                continue;
            };
            if !sites.contains_key(site.as_str()) {
                let loaded = self.site(&site).await?;
                sites.insert(site.to_string(), loaded);
            }
            let (campaigns, models) = &sites[site.as_str()];
            let fired: Vec<&campaign::Campaign> = campaigns
                .iter()
                .filter(|c| c.triggered_by(change))
                .collect();
            if fired.is_empty() {
                continue;
            }
            let Ok(subject) = Subject::parse(&change.subject) else {
                continue;
            };
            let state = self.state(&site, &subject).await?;
            let now = change.at.timestamp_millis();
            let facts = state
                .as_ref()
                .map(|s| Facts::of(s, models, &self.config.lifecycle, now));
            let member = Member {
                subject: &change.subject,
                state: state.as_ref(),
                facts: facts.as_ref(),
                now_ms: now,
                half_life_ms: (self.config.interest_half_life_days * DAY_MS as f64) as i64,
            };
            for c in fired {
                match c.action(change, &member) {
                    Ok(action) => self.send(&site, &subject, action, &mut ends).await?,
                    Err(why) => {
                        metrics::counter!("tailor_actions_skipped_total", "reason" => why.as_str())
                            .increment(1);
                    }
                }
            }
        }
        Ok(())
    }

    /// The site's campaigns with triggers (configured and stored) and its models.
    async fn site(&self, site: &SiteId) -> Result<(Vec<campaign::Campaign>, SiteModels), String> {
        let mut v = self
            .store
            .read(&[
                Read::Hash(self.keys.campaigns(site)),
                Read::Hash(self.keys.models(site)),
            ])
            .await
            .map_err(|e| e.to_string())?
            .into_iter();
        let stored = v.next().map(|v| v.into_hash()).unwrap_or_default();
        let models = SiteModels::from_hash(&v.next().map(|v| v.into_hash()).unwrap_or_default());
        let (campaigns, problems) = campaign::site_campaigns(&self.campaigns, &stored, site);
        for p in problems {
            tracing::warn!(%site, problem = %p, "actions: a campaign is skipped");
        }
        let with_triggers = campaigns
            .into_iter()
            .filter(|c| c.def.trigger.is_some())
            .collect();
        Ok((with_triggers, models))
    }

    /// The subject's document, if it has one that parses.
    async fn state(&self, site: &SiteId, s: &Subject) -> Result<Option<SubjectState>, String> {
        let raw = self
            .store
            .read(&[Read::Field(self.keys.state(site, s), "doc".into())])
            .await
            .map_err(|e| e.to_string())?
            .pop()
            .and_then(|v| v.into_text());
        Ok(raw.and_then(|r| SubjectState::from_stored(&r).ok()))
    }

    /// Sends one action unless it was sent before: the pending mark, the topic, the webhook (or the
    /// dead list), then the sent mark (see the module docs). `ends`: the batch's pending mark, read
    /// from the topic when first needed.
    async fn send(
        &self,
        site: &SiteId,
        subject: &Subject,
        action: Action,
        ends: &mut Option<String>,
    ) -> Result<(), String> {
        let mark = self.keys.action_sent(site, subject, &action.id);
        let before = self
            .store
            .read(&[Read::Get(mark.clone())])
            .await
            .map_err(|e| e.to_string())?
            .pop()
            .and_then(|v| v.into_text());
        let written = match before.as_deref() {
            Some(SENT) => {
                metrics::counter!("tailor_actions_duplicates_total").increment(1);
                return Ok(());
            }
            // A crash came between writing it (perhaps) and marking it sent.
            Some(pending) => {
                let from = pending
                    .strip_prefix(PENDING)
                    .and_then(|f| serde_json::from_str(f).ok())
                    .unwrap_or_default();
                self.written_since(&from, &action.id).await?
            }
            None => {
                let pending = match ends {
                    Some(p) => p.clone(),
                    None => {
                        let high: BTreeMap<i32, i64> = self
                            .log
                            .watermarks()
                            .await
                            .map_err(|e| format!("reading the actions topic's offsets: {e}"))?
                            .into_iter()
                            .map(|w| (w.partition, w.high))
                            .collect();
                        ends.insert(format!("{PENDING}{}", serde_json::json!(high)))
                            .clone()
                    }
                };
                self.store
                    .apply(&[self.mark(mark.clone(), pending)])
                    .await
                    .map_err(|e| e.to_string())?;
                false
            }
        };
        let payload = serde_json::to_vec(&action).expect("an action serialises");
        if written {
            metrics::counter!("tailor_actions_recovered_total").increment(1);
        } else {
            self.actions
                .send(&format!("{site}/{subject}"), payload.clone())
                .await
                .map_err(|e| format!("action not written to the actions topic: {e}"))?;
            if tailor_infra::failpoint("actions-after-send") {
                tracing::warn!("failpoint actions-after-send: aborting");
                std::process::abort();
            }
        }
        let mut ops = Vec::new();
        let outcome = match &action.webhook {
            None => "topic",
            Some(url) => match self.post(url, &action.id, payload).await {
                Ok(()) => "delivered",
                Err(error) => {
                    tracing::warn!(%site, action = %action.id, %error, "actions: webhook failed; dead-lettered");
                    let dead = serde_json::json!({
                        "action": action,
                        "error": error,
                        "at": chrono::Utc::now(),
                    });
                    ops.push(WriteOp::ListPushDistinct {
                        key: self.keys.actions_dead(site),
                        value: dead.to_string(),
                        cap: DEAD_KEPT,
                    });
                    "dead"
                }
            },
        };
        let mut updates = vec![self.mark(mark, SENT.into())];
        if !ops.is_empty() {
            updates.push(Update {
                ops,
                ..Default::default()
            });
        }
        self.store
            .apply(&updates)
            .await
            .map_err(|e| e.to_string())?;
        metrics::counter!("tailor_actions_total", "outcome" => outcome).increment(1);
        Ok(())
    }

    fn mark(&self, key: String, value: String) -> Update {
        Update {
            ops: vec![WriteOp::Put {
                key,
                value,
                ttl_secs: Some(SENT_TTL_SECS),
            }],
            ..Default::default()
        }
    }

    /// Whether the action `id` is on the actions topic at or after the offsets `from` (partitions
    /// missing from `from`, added since, are read from their start).
    async fn written_since(&self, from: &BTreeMap<i32, i64>, id: &str) -> Result<bool, String> {
        let ends = self
            .log
            .watermarks()
            .await
            .map_err(|e| format!("reading the actions topic's offsets: {e}"))?;
        for w in ends {
            let mut next = from.get(&w.partition).copied().unwrap_or(w.low).max(w.low);
            while next < w.high {
                let page = self
                    .log
                    .read_range(w.partition, next, w.high, SCAN_PAGE_BYTES)
                    .await
                    .map_err(|e| format!("reading the actions topic: {e}"))?;
                let Some(last) = page.last() else { break };
                next = last.offset + 1;
                let found = page.iter().any(|m| {
                    serde_json::from_slice::<serde_json::Value>(&m.payload)
                        .is_ok_and(|a| a["id"] == id)
                });
                if found {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// POSTs an action, retrying timeouts, 5xx, 408 and 429 with a doubling pause.
    async fn post(&self, url: &str, id: &str, body: Vec<u8>) -> Result<(), String> {
        let mut pause = FIRST_RETRY;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let sent = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("idempotency-key", id)
                .timeout(Duration::from_secs(5))
                .body(body.clone())
                .send()
                .await;
            let retry = match sent {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    last = format!("{url} answered {}", r.status());
                    r.status().is_server_error() || matches!(r.status().as_u16(), 408 | 429)
                }
                Err(e) => {
                    last = format!("{url}: {e}");
                    true
                }
            };
            metrics::counter!("tailor_actions_webhook_failures_total").increment(1);
            if !retry || attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        Err(last)
    }
}
