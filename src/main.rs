//! The `kv-notify` binary: serves the custom-handler protocol (no arguments, as the Functions
//! host runs it) or runs a CLI command.

use anyhow::Context;
use clap::{Parser, Subcommand};
use kv_notify::dispatch::Dispatcher;
use kv_notify::ledger::{Ledger, RedbLedger};
use kv_notify::settings::{self, Settings};
use kv_notify::{replay, server};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight invocations may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often expired ledger entries are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Parser)]
#[command(version, about = "Key Vault event alerts for Azure Functions")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the custom-handler protocol (the default: what the Functions host runs).
    Serve,
    /// Feed saved events (files or directories of .json) through the pipeline and print the
    /// outcome. Reads local.settings.json like `func start`; the environment overrides it.
    Replay {
        /// Event files: an Event Grid array, a CloudEvent, or a whole invocation envelope.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve()),
        Command::Replay { files } => runtime.block_on(replay_files(&files)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kv-notify: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn serve() -> anyhow::Result<ExitCode> {
    init_tracing("info");
    let settings = Settings::from_env()?;
    let port = server::port(|name| std::env::var(name).ok())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let ledger = RedbLedger::open(&settings.ledger_path)?;
    tracing::info!(path = %settings.ledger_path.display(), "ledger open");
    let dispatcher = Arc::new(start(settings, Arc::new(ledger))?);
    tokio::spawn(purge_periodically(dispatcher.clone()));
    tracing::info!(port, "listening");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, dispatcher, async {
        stop_rx.await.ok();
    }));
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight invocations");
    stop_tx.send(()).ok();
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::warn!("in-flight invocations did not finish in time");
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay_files(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    init_tracing("warn");
    let values = settings::local_settings(Path::new("local.settings.json"))?;
    let settings = Settings::load(|name| values.get(name).cloned())?;
    // Each replay starts from an empty ledger, so running it again shows the same outcome.
    let dispatcher = start(settings, Arc::new(RedbLedger::in_memory()))?;
    let ok = replay::replay(&dispatcher, files).await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Logs the start-up warnings and builds the dispatcher.
fn start(settings: Settings, ledger: Arc<dyn Ledger>) -> anyhow::Result<Dispatcher> {
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let dispatcher = Dispatcher::new(settings, ledger)?;
    tracing::info!(mail = %dispatcher.mailer().describe(), "ready");
    Ok(dispatcher)
}

/// Keeps the ledger within its retention period: once at start-up, then hourly.
async fn purge_periodically(dispatcher: Arc<Dispatcher>) {
    let mut every_hour = tokio::time::interval(PURGE_INTERVAL);
    loop {
        every_hour.tick().await;
        dispatcher.purge_ledger().await;
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KV_NOTIFY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}
