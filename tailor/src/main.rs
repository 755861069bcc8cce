//! `tailor`: the one binary. Parses the command line, sets up logging, starts the requested stages
//! and shuts them down gracefully on Ctrl-C or SIGTERM (finish the batch in hand, commit, flush).

use anyhow::Context;
use clap::Parser;
use tailor::app::{self, Roles};
use tailor::cli::{self, Cli, Command, LogFormatArg};
use tailor_infra::telemetry::{self, LogFormat};
use tailor_infra::Shutdown;

/// mimalloc: the services allocate per event and per request from many threads, where glibc's
/// allocator spent a quarter of the processor's CPU (docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Site-model refresh interval while simulating (unless `processor.models_refresh_secs` is set).
const SIMULATION_REFRESH_SECS: u64 = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init_logging(match cli.global.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    });
    match cli.command {
        Command::DeadLetters(cmd) => return tailor::admin::dead_letters(cmd).await,
        Command::Import(cmd) => return tailor::import::run(cmd).await,
        Command::Catalog(cli::Catalog::Import(cmd)) => return tailor::catalog::import(cmd).await,
        Command::Clv(cmd) => return tailor::admin::clv(cmd).await,
        Command::Erase(cmd) => return tailor::admin::erase(cmd).await,
        Command::Keys(cmd) => return tailor::keys::run(cmd, cli.global.config.as_deref()),
        _ => {}
    }
    let mut config = cli.global.config().context("invalid configuration")?;
    let command = match cli.command {
        Command::Replay(args) => return tailor::replay::run(config, args).await,
        Command::Evaluate(args) => return tailor::evaluate::run(config, args).await,
        Command::Ranker(cli::Ranker::Fit(args)) => return tailor::learn::run(config, args).await,
        other => other,
    };
    let simulate = match &command {
        Command::Run(r) => r.simulate,
        _ => None,
    };
    let default_refresh = tailor_core::config::ProcessorConfig::default().models_refresh_secs;
    if simulate.is_some() && config.processor.models_refresh_secs == default_refresh {
        // The RFM grid, lifetime values and stages are drawn from the site models: refresh them
        // often enough that the simulation shows in them within its minute.
        config.processor.models_refresh_secs = SIMULATION_REFRESH_SECS;
    }
    if !matches!(command, Command::Run(_)) {
        // Only `tailor run` keeps the file-less demo site open (the README's first command); a
        // service run on its own is a deployment, and serves no site without keys.
        for s in &mut config.sites {
            s.open = false;
        }
    }
    let (roles, listen) = match command {
        Command::Run(r) => (Roles::ALL, r.listen.listen),
        Command::Collector(l) => (Roles::COLLECTOR, l.listen),
        Command::Processor(l) => (Roles::PROCESSOR, l.listen),
        Command::Recommender(l) => (Roles::RECOMMENDER, l.listen),
        Command::Export(l) => (Roles::EXPORT, l.listen),
        Command::Config => {
            print!("{}", toml::to_string_pretty(&config)?);
            return Ok(());
        }
        Command::DeadLetters(_)
        | Command::Import(_)
        | Command::Catalog(_)
        | Command::Clv(_)
        | Command::Erase(_)
        | Command::Keys(_)
        | Command::Replay(_)
        | Command::Evaluate(_)
        | Command::Ranker(_) => {
            unreachable!("handled above")
        }
    };
    let shutdown = Shutdown::new();
    let running = app::start(config, roles, listen, shutdown.clone()).await?;
    if roles.demo {
        eprintln!(
            "Tailor is running: demo shop at http://{}/ , metrics at /metrics",
            running.addr
        );
    }
    if let Some(shoppers) = simulate {
        let mut addr = running.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tracing::info!(shoppers, "simulating shoppers on the demo site");
            let base = format!("http://{addr}");
            match tailor::simulate::run(&base, "demo", shoppers, tailor::simulate::PACE, shutdown)
                .await
            {
                Ok(r) => tracing::info!(
                    shoppers = r.shoppers,
                    requests = r.requests,
                    events = r.events,
                    "simulation done"
                ),
                Err(e) => tracing::error!(error = %e, "simulation stopped"),
            }
        });
    }
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight work");
        shutdown.cancel();
    });
    running.wait().await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
