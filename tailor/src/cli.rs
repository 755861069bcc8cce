//! Command line: `tailor run | collector | processor | recommender | config`.
//!
//! Options override the config file, which overrides the defaults in `tailor_core::config`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use tailor_core::config::{Config, ConfigError};

/// Tailor: a real-time e-commerce CRM engine. It collects shop events, mines them into live member
/// profiles, and answers each page view with recommendations tailored to the member.
#[derive(Debug, Parser)]
#[command(name = "tailor", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// TOML configuration file (every key optional; see docs/configuration.md).
    #[arg(long, global = true, env = "TAILOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers (host:port[,host:port]). Without it, the in-process bus is used.
    #[arg(long, global = true, env = "TAILOR_KAFKA", value_name = "BROKERS")]
    pub kafka: Option<String>,
    /// Redis URL (redis://host:port[/db]). Without it, the in-process store is used.
    #[arg(long, global = true, env = "TAILOR_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// Log format: `text` for people, `json` for log pipelines. Filter with RUST_LOG.
    #[arg(long, global = true, env = "TAILOR_LOG_FORMAT", value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run all three stages in one process, with the demo shop at `/`. With no --kafka and --redis,
    /// everything is in-process (embedded mode): nothing to install, nothing durable.
    Run(RunArgs),
    /// Run the collection API (POST /v1/events). Needs --kafka.
    Collector(Listen<8081>),
    /// Run the processor (Kafka consumer group → Redis profiles); serves /metrics and /healthz.
    /// Needs --kafka and --redis.
    Processor(Listen<8082>),
    /// Run the recommendation and profile API. Needs --redis.
    Recommender(Listen<8083>),
    /// Run the warehouse sink: the enriched event stream as Parquet files partitioned by site and day
    /// (export.dir), exactly once. Needs --kafka and --redis.
    Export(Listen<8084>),
    /// Print the effective configuration (defaults, file and options merged) as TOML, after validating it.
    Config,
    /// Inspect and re-drive rejected events (the dead-letter topic) of a running Tailor.
    #[command(subcommand)]
    DeadLetters(DeadLetters),
    /// Load historical events or orders into a running Tailor, through the collector and the bus like
    /// live traffic, keeping their original timestamps. Re-importing a file counts nothing twice.
    Import(Import),
    /// The product catalog of a running Tailor.
    #[command(subcommand)]
    Catalog(Catalog),
    /// Customer lifetime value models of a running Tailor.
    #[command(subcommand)]
    Clv(Clv),
    /// Rebuild every profile and site model from the Kafka topic (stop the processors first): deletes
    /// the derived keys of the namespace, replays the topic with a progress bar, prints a summary.
    /// Needs --kafka and --redis.
    Replay(Replay),
    /// Measure recommendation quality offline on event files (session-based next-item protocol:
    /// HR and MRR at the cutoff, coverage, popularity bias) for the single generators and the blend,
    /// with the models built by the real processor code on the embedded store.
    Evaluate(crate::evaluate::Evaluate),
    /// The learned re-ranking stage: fit its model on a shop's event file (offline, like evaluate).
    #[command(subcommand)]
    Ranker(Ranker),
    /// Forget a member (or anonymous visitor) everywhere Tailor keeps them: profile, devices, merged
    /// identities, indexes and segments, with a tombstone so no replay rebuilds them.
    Erase(Erase),
    /// A site's API keys (`[[sites.keys]]` of the --config file): create one (its secret is printed
    /// once), list them, revoke one. Restart Tailor for a change to take effect.
    #[command(subcommand)]
    Keys(Keys),
}

#[derive(Debug, Subcommand)]
pub enum Keys {
    /// Make a key: prints the secret (first line, shown once) and, with --config, adds its hash to
    /// the site in that file; without, prints the `[[sites.keys]]` stanza to paste.
    Create {
        #[arg(long)]
        site: String,
        /// `collect`, `serve`, `catalog` or `admin`.
        #[arg(long)]
        scope: String,
        /// A name to list and revoke it by (default: the scope and the hash's first digits).
        #[arg(long)]
        name: Option<String>,
    },
    /// The site's keys in the --config file: names, scopes and hash prefixes (never secrets).
    List {
        #[arg(long)]
        site: String,
    },
    /// Remove a key from the site in the --config file.
    Revoke {
        #[arg(long)]
        site: String,
        #[arg(long)]
        name: String,
    },
}

/// `tailor run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub listen: Listen<8080>,
    /// Also run N synthetic shoppers (200 when N is left out) through the collection API, browser-like
    /// (sessions, carts, purchases, returning members), so the demo shop, /insights and the ops pages
    /// have data a minute after start. The site models then refresh every 10 s, unless
    /// processor.models_refresh_secs is configured.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "200")]
    pub simulate: Option<usize>,
}

/// `tailor replay`.
#[derive(Debug, Args)]
pub struct Replay {
    /// Confirm: the namespace's profiles are deleted before they are rebuilt.
    #[arg(long)]
    pub yes: bool,
    /// Rebuild from the warehouse's Parquet files in DIR instead of the Kafka topic (for events past
    /// the topic's retention). Needs only --redis.
    #[arg(long, value_name = "DIR")]
    pub from_parquet: Option<PathBuf>,
    /// Seconds to wait for a Redis that does not answer before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub wait: u64,
}

/// `tailor erase`.
#[derive(Debug, Args)]
pub struct Erase {
    #[command(flatten)]
    pub remote: Remote,
    #[arg(long)]
    pub site: String,
    /// The member id to erase (with every device and identity merged into it).
    #[arg(
        long,
        conflicts_with = "anonymous",
        required_unless_present = "anonymous"
    )]
    pub member: Option<String>,
    /// An anonymous id to erase instead.
    #[arg(long)]
    pub anonymous: Option<String>,
    /// Also remove their events from the warehouse files in this directory (export.dir).
    #[arg(long, value_name = "DIR")]
    pub warehouse: Option<PathBuf>,
}

/// `tailor import`.
#[derive(Debug, Args)]
pub struct Import {
    #[command(flatten)]
    pub remote: Remote,
    /// The site the history belongs to.
    #[arg(long)]
    pub site: String,
    /// JSON lines in the event schema (docs/events.md), or an orders CSV with a header row: `member_id`,
    /// `timestamp` (RFC 3339) or `date` (YYYY-MM-DD or YYYYMMDD), `revenue`, and optionally `order_id`,
    /// `currency`, `item_id`, `category`, `quantity`, `price` (rows sharing an `order_id` are one order).
    pub file: PathBuf,
    /// The file's format; `auto` decides by extension (`.csv`, else JSON lines).
    #[arg(long, value_enum, default_value_t = ImportFormat::Auto)]
    pub format: ImportFormat,
    /// Currency of CSV orders without a `currency` column.
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Events per request.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Seconds to wait for a Tailor at --url that does not answer before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub wait: u64,
}

#[derive(Debug, Subcommand)]
pub enum Ranker {
    /// Fit the re-ranking model for MRR@20 on the sessions ending in the last --days of the file
    /// (the shared models built from the sessions before, by the real processor code), and write
    /// it as JSON; load it with `PUT /admin/ranker?site=S`.
    Fit(crate::learn::Fit),
}

#[derive(Debug, Subcommand)]
pub enum Catalog {
    /// Load products into a site's catalog through `PUT /v1/catalog/items` (upsert: importing a
    /// file again changes nothing). Every line or row is validated first; invalid ones are listed
    /// with their line and field, the valid ones are still loaded, and the command then exits
    /// non-zero.
    Import(CatalogImport),
}

/// `tailor catalog import`.
#[derive(Debug, Args)]
pub struct CatalogImport {
    #[command(flatten)]
    pub remote: Remote,
    /// The site the catalog belongs to.
    #[arg(long)]
    pub site: String,
    /// JSON lines, one item per line (docs/catalog.md), or a CSV with a header row naming the same
    /// fields (`tags` separated by `|`).
    pub file: PathBuf,
    /// The file's format; `auto` decides by extension (`.csv`, else JSON lines).
    #[arg(long, value_enum, default_value_t = ImportFormat::Auto)]
    pub format: ImportFormat,
    /// Items per request (at most the server's catalog.max_items_per_request).
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
}

impl ImportFormat {
    /// Whether `file` is read as CSV.
    pub fn is_csv(self, file: &std::path::Path) -> bool {
        match self {
            ImportFormat::Csv => true,
            ImportFormat::Jsonl => false,
            ImportFormat::Auto => file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    Auto,
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Clv {
    /// Fit BG/NBD (purchase counts) and Gamma-Gamma (spend) on the site's customers; prints JSON with
    /// `r`, `alpha`, `a`, `b`, `p`, `q`, `gamma` and the customer counts.
    Fit {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        site: String,
        /// End of the calibration period (YYYY-MM-DD, inclusive); default today.
        #[arg(long)]
        calibration_end: Option<String>,
    },
}

/// Where a running Tailor's API is, and the key to call it with.
#[derive(Debug, Args)]
pub struct Remote {
    /// Base URL of a running Tailor (`tailor run` or `tailor collector`).
    #[arg(long, env = "TAILOR_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The secret of a key of the site (`tailor keys create`), sent as `Authorization: Bearer`:
    /// scope `admin` for dead-letters, clv and erase, `collect` for import, `catalog` for catalog
    /// import. Not needed for the built-in demo site of a `tailor run` without a config file.
    #[arg(
        long,
        env = "TAILOR_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub key: Option<String>,
}

impl Remote {
    /// An HTTP client that sends the key, if one is given, with every request.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = &self.key {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| anyhow::anyhow!("--key holds characters a header cannot carry"))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        Ok(reqwest::Client::builder()
            .default_headers(headers)
            .build()?)
    }
}

/// Which dead letters to select; every criterion given must match.
#[derive(Debug, Args)]
pub struct DeadLetterFilter {
    /// Only this reason (`missing_field`, `invalid_value`, `unknown_site`, `forbidden`, `malformed`, ...).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only this site.
    #[arg(long)]
    pub site: Option<String>,
    /// Only this source (`api`, `snowplow`, `segment`).
    #[arg(long)]
    pub source: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeadLetters {
    /// List the newest dead letters, with counts by reason.
    List {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        filter: DeadLetterFilter,
        /// How many records to show (the newest).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print the raw JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters through validation again (after fixing their cause); events that pass are
    /// written to the event topic, each counted once however often it is re-driven.
    Redrive {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        filter: DeadLetterFilter,
        /// Record ids to re-drive.
        #[arg(long = "id", value_name = "ID")]
        ids: Vec<String>,
        /// Re-drive every record matching the filter (required when no --id is given).
        #[arg(long)]
        all: bool,
    },
}

/// The HTTP listen address, with a per-command default port.
#[derive(Debug, Args)]
pub struct Listen<const PORT: u16> {
    /// Address to serve HTTP on (APIs, /metrics, /healthz, /readyz).
    #[arg(long, env = "TAILOR_LISTEN", default_value_t = SocketAddr::from(([127, 0, 0, 1], PORT)))]
    pub listen: SocketAddr,
}

impl Global {
    /// The effective configuration: defaults, then the file, then command-line/environment options.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        if let Some(k) = &self.kafka {
            config.kafka.brokers = Some(k.clone());
        }
        if let Some(r) = &self.redis {
            config.redis.url = Some(r.clone());
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_override_defaults_and_are_validated() {
        let cli = Cli::try_parse_from([
            "tailor",
            "run",
            "--kafka",
            "k:9092",
            "--listen",
            "0.0.0.0:9000",
        ])
        .unwrap();
        let c = cli.global.config().unwrap();
        assert_eq!(c.kafka.brokers.as_deref(), Some("k:9092"));
        let Command::Run(r) = cli.command else {
            panic!("run")
        };
        assert_eq!(r.listen.listen.port(), 9000);
        assert_eq!(r.simulate, None);
        let sim = |args: &[&str]| match Cli::try_parse_from(args).unwrap().command {
            Command::Run(r) => r.simulate,
            _ => panic!("run"),
        };
        assert_eq!(sim(&["tailor", "run", "--simulate"]), Some(200));
        assert_eq!(sim(&["tailor", "run", "--simulate", "30"]), Some(30));
        let bad = Cli::try_parse_from(["tailor", "run", "--redis", "localhost"]).unwrap();
        assert_eq!(bad.global.config().unwrap_err().key, "redis.url");
    }
}
