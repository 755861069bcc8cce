//! `tailor`: the one binary. Parses the command line, sets up logging, starts the requested stages
//! and shuts them down gracefully on Ctrl-C or SIGTERM (finish the batch in hand, commit, flush).

use anyhow::Context;
use clap::Parser;
use tailor::app::{self, Roles};
use tailor::cli::{Cli, Command, LogFormatArg};
use tailor_infra::telemetry::{self, LogFormat};
use tailor_infra::Shutdown;

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
        Command::Clv(cmd) => return tailor::admin::clv(cmd).await,
        Command::Erase(cmd) => return tailor::admin::erase(cmd).await,
        _ => {}
    }
    let config = cli.global.config().context("invalid configuration")?;
    let command = match cli.command {
        Command::Replay(args) => return tailor::replay::run(config, args).await,
        Command::Evaluate(args) => return tailor::evaluate::run(config, args).await,
        other => other,
    };
    let (roles, listen) = match command {
        Command::Run(l) => (Roles::ALL, l.listen),
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
        | Command::Clv(_)
        | Command::Erase(_)
        | Command::Replay(_)
        | Command::Evaluate(_) => {
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
