//! Every metric of `docs/metrics.md` registered at zero when a service starts, with each documented
//! label set, so that dashboards and alerts see a series before it first counts (a counter that only
//! appears at its first increment breaks `rate()`, `increase()` and `absent()` alerts).
//!
//! Each metric is still *emitted* in exactly one place, next to what it counts; this module only
//! announces them, by the stages a process runs. Two label sets cannot be known at start and appear
//! with their first sample, as `docs/metrics.md` says: the HTTP metrics' `route` (per route served)
//! and the consumer lag's `partition` (the partitions the group assigns).

use crate::app::Roles;
use tailor_core::config::Config;

/// Wire formats, the `source` label of collector metrics.
const SOURCES: [&str; 3] = ["api", "snowplow", "segment"];
/// Why an event is rejected (`tailor_core::event::ErrorKind`), the `reason` of rejections.
const REJECT_REASONS: [&str; 8] = [
    "missing_field",
    "invalid_type",
    "invalid_value",
    "unknown_type",
    "unknown_site",
    "forbidden",
    "unauthorized",
    "malformed",
];
/// Why a request is answered with an error (`tailor_collector::error::IngestError::reason`).
const REQUEST_REASONS: [&str; 9] = [
    "body_too_large",
    "too_many_events",
    "malformed",
    "bad_body",
    "empty_batch",
    "invalid_event",
    "unauthorized",
    "rate_limited",
    "bus_unavailable",
];
const SPOOLS: [&str; 2] = ["events", "dead-letters"];
/// What became of a consumed event (`tailor_processor::fold::Outcome`, plus `malformed`).
const PROCESSOR_OUTCOMES: [&str; 5] = [
    "applied",
    "duplicate_event",
    "behind_watermark",
    "erased",
    "malformed",
];
/// `tailor_core::change::ChangeKind::name`.
const CHANGE_KINDS: [&str; 8] = [
    "stage_changed",
    "segment_entered",
    "segment_exited",
    "new_interest",
    "visit_frequency_drop",
    "new_channel",
    "purchase_shift",
    "identity_merged",
];

/// Registers the metrics of the stages in `roles` at zero (per-site series for the configured sites).
pub fn register(roles: Roles, config: &Config) {
    use metrics::{counter, gauge, histogram};
    // Registering before the recorder is installed would register with no one.
    tailor_infra::telemetry::metrics();
    // Every service runs the one HTTP server (`tailor_infra::server`).
    for outcome in ["accepted", "refused"] {
        counter!("tailor_http_connections_total", "outcome" => outcome).increment(0);
    }
    counter!("tailor_http_connections_closed_total", "reason" => "idle").increment(0);
    for reason in tailor_infra::auth::REFUSALS {
        counter!("tailor_http_auth_refused_total", "reason" => reason).increment(0);
    }
    if roles.collector {
        for source in SOURCES {
            counter!("tailor_collector_events_total", "outcome" => "accepted", "source" => source)
                .increment(0);
            counter!("tailor_collector_events_total", "outcome" => "unavailable",
                "reason" => "bus_unavailable", "source" => source)
            .increment(0);
            for reason in REJECT_REASONS {
                counter!("tailor_collector_events_total", "outcome" => "rejected",
                    "reason" => reason, "source" => source)
                .increment(0);
            }
        }
        for reason in REQUEST_REASONS {
            counter!("tailor_collector_requests_rejected_total", "reason" => reason).increment(0);
        }
        for reason in REJECT_REASONS {
            for outcome in ["written", "lost"] {
                counter!("tailor_collector_dead_letters_total", "outcome" => outcome, "reason" => reason)
                    .increment(0);
            }
        }
        for outcome in ["accepted", "rejected"] {
            counter!("tailor_collector_dead_letters_redriven_total", "outcome" => outcome)
                .increment(0);
        }
        for spool in SPOOLS {
            gauge!("tailor_spool_bytes", "spool" => spool).increment(0.0);
            gauge!("tailor_spool_unconfirmed_seconds", "spool" => spool).increment(0.0);
            for outcome in ["spooled", "drained", "full"] {
                counter!("tailor_spool_records_total", "spool" => spool, "outcome" => outcome)
                    .increment(0);
            }
        }
        let _ = histogram!("tailor_collector_delivery_duration_seconds");
    }
    if roles.processor {
        for outcome in PROCESSOR_OUTCOMES {
            counter!("tailor_processor_events_total", "outcome" => outcome).increment(0);
        }
        for kind in CHANGE_KINDS {
            counter!("tailor_processor_changes_total", "kind" => kind).increment(0);
        }
        for name in [
            "tailor_processor_conflicts_total",
            "tailor_processor_site_sums_refused_total",
            "tailor_processor_corrupt_documents_total",
            "tailor_processor_store_retries_total",
            "tailor_processor_commit_errors_total",
            "tailor_processor_poll_errors_total",
            "tailor_processor_offer_tokens_rejected_total",
            "tailor_processor_shared_capped_total",
        ] {
            counter!(name).increment(0);
        }
        if config.processor.actions {
            // `tailor_processor::actions`.
            for outcome in ["topic", "delivered", "dead"] {
                counter!("tailor_actions_total", "outcome" => outcome).increment(0);
            }
            for reason in ["schedule", "audience", "holdout"] {
                counter!("tailor_actions_skipped_total", "reason" => reason).increment(0);
            }
            counter!("tailor_actions_duplicates_total").increment(0);
            counter!("tailor_actions_recovered_total").increment(0);
            counter!("tailor_actions_webhook_failures_total").increment(0);
        }
        counter!("tailor_processor_sweep_skipped_total", "reason" => "unparsable").increment(0);
        // `tailor_processor::health`: no partition and no backlog until the loop has looked.
        gauge!("tailor_processor_assigned_partitions").increment(0.0);
        gauge!("tailor_processor_backlog").increment(0.0);
        counter!("tailor_processor_rejoins_total").increment(0);
        gauge!("tailor_live", "check" => "processor").set(1.0);
        counter!("tailor_processor_sweep_repaired_total").increment(0);
        for site in &config.sites {
            gauge!("tailor_processor_segments_set_aside", "site" => site.id.clone()).increment(0.0);
        }
        for name in [
            "tailor_processor_models_refresh_seconds",
            "tailor_processor_batch_duration_seconds",
            "tailor_processor_end_to_end_duration_seconds",
        ] {
            let _ = histogram!(name);
        }
    }
    if roles.recommender {
        // `tailor_recommender::engine::Ranked::strategy`.
        for strategy in ["blend", "learned", "fallback"] {
            counter!("tailor_recommender_responses_total", "strategy" => strategy).increment(0);
        }
        counter!("tailor_recommender_fallbacks_total", "reason" => "timeout").increment(0);
        counter!("tailor_recommender_blend_heads_short_total").increment(0);
        // `tailor_recommender::engine`, neighbour sessions' item lists.
        for from in ["memory", "store"] {
            counter!("tailor_recommender_session_reads_total", "from" => from).increment(0);
        }
        // `tailor_recommender::sessions` and `::lists`.
        for cache in ["sessions", "session_index", "shared_lists"] {
            gauge!("tailor_recommender_cache_entries", "cache" => cache).increment(0.0);
        }
        for cache in ["session_index", "shared_lists"] {
            for from in ["memory", "store"] {
                counter!("tailor_recommender_list_reads_total", "cache" => cache, "from" => from)
                    .increment(0);
            }
        }
        let _ = histogram!("tailor_recommender_duration_seconds");
        // Set per site by the recommender's first refresh; registered here so they are there from the
        // start, not from whenever that refresh lands (`increment(0.0)` keeps a value already set).
        for site in &config.sites {
            for name in [
                "tailor_recommender_catalog_items",
                "tailor_recommender_rules",
                "tailor_recommender_campaigns",
            ] {
                gauge!(name, "site" => site.id.clone()).increment(0.0);
            }
        }
        for outcome in ["upserted", "rejected", "deleted"] {
            counter!("tailor_catalog_items_total", "outcome" => outcome).increment(0);
        }
        counter!("tailor_erasures_total").increment(0);
        counter!("tailor_recommender_offers_total").increment(0);
        // `tailor_core::campaign::Ineligible`.
        for reason in [
            "schedule", "audience", "trigger", "cap", "budget", "holdout",
        ] {
            counter!("tailor_recommender_offers_ineligible_total", "reason" => reason).increment(0);
        }
        for reason in ["error", "timeout"] {
            counter!("tailor_recommender_offers_skipped_total", "reason" => reason).increment(0);
        }
    }
    if roles.processor || roles.recommender || roles.export {
        for op in ["apply", "read"] {
            let _ = histogram!("tailor_store_duration_seconds", "op" => op);
        }
    }
    if roles.export {
        for name in [
            "tailor_export_rows_total",
            "tailor_export_flushes_total",
            "tailor_export_erased_total",
            "tailor_export_malformed_total",
        ] {
            counter!(name).increment(0);
        }
    }
}
