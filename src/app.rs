//! The program: serve the custom-handler protocol (no arguments, as the Functions host runs
//! it) or run a command beside it.

use crate::cli::{self, inspect, replay};
use crate::config::Config;
use crate::delivery::{Acs, Graph, MailTransport, Outbox, Smtp};
use crate::dispatch::{Clock, Dispatcher};
use crate::entra::EntraClient;
use crate::identity::ManagedIdentity;
use crate::ledger::{Ledger, RedbLedger, TableLedger};
use crate::server::Functions;
use crate::settings;
use crate::settings::{MailRoute, Settings, SweepSettings};
use crate::storage::{Container, Queue};
use crate::sweep::Sweeper;
use crate::sweep::health::SetAside;
use crate::vault::{Discovery, OwnerTag, Target, VaultClient, Vaults, Watched};
use crate::{logging, queued, server};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The settings file `func start` reads, in the app folder.
const LOCAL_SETTINGS: &str = "local.settings.json";

/// How long in-flight invocations may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often expired ledger entries are deleted.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(Parser)]
#[command(
    version,
    about = "Key Vault expiry and access alerts, as an Azure Functions custom handler",
    after_help = "Examples:\n  \
        kv-notify replay examples/events/          what the sample events would send\n  \
        kv-notify check --strict                   validate settings, rules and templates\n  \
        kv-notify test                             one test alert through every channel\n  \
        kv-notify inventory --days 30              what expires in the next 30 days\n  \
        kv-notify sweep --dry-run                  the daily sweep, sending nothing\n\n\
        Settings come from local.settings.json (Values) and the environment, as with func start."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the custom-handler protocol (the default: what the Functions host runs). Started
    /// by hand (no FUNCTIONS_CUSTOMHANDLER_PORT), it reads local.settings.json like the other
    /// commands.
    Serve {
        /// The port to listen on when the host does not give one.
        #[arg(long, default_value_t = server::DEFAULT_PORT)]
        port: u16,
    },
    /// Feed saved events (files or directories of .json) through the pipeline and print the
    /// outcome. Reads local.settings.json like `func start`; the environment overrides it.
    Replay {
        /// Event files: an Event Grid array, a CloudEvent, or a whole invocation envelope.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Count days left from this time (RFC 3339, or a date) instead of each event's own
        /// eventTime.
        #[arg(long, value_parser = cli::parse_time)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Validate settings, rules and templates, and print the effective routing.
    ///
    /// Example: `kv-notify check --strict` in a pipeline, before publishing.
    Check {
        /// Exit non-zero on a warning too (a misspelt setting, alerts that reach nobody).
        #[arg(long)]
        strict: bool,
    },
    /// Print which rules match the events in the files and who would be notified; sends
    /// nothing.
    ///
    /// Example: `kv-notify explain examples/events/ --now 2027-01-31`.
    Explain {
        /// Event files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Count days left from this time (RFC 3339, or a date) instead of each event's own
        /// eventTime, as `replay --now` does.
        #[arg(long, value_parser = cli::parse_time)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Delete what the ledger keeps beyond LEDGER_RETENTION_DAYS now, as the server does each
    /// hour, and print how much went.
    Purge,
    /// Put the queued events that were set aside (in kv-notify-events-poison after failing
    /// every try, in kv-notify-events-rejected when unusable) back on kv-notify-events, once
    /// the cause is fixed. Each is mailed once: the ledger knows what was sent.
    Requeue,
    /// Write the HTML mail of each event in the files, for a look in a browser. Days left
    /// count from each event's eventTime.
    Preview {
        /// Event files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the .html files.
        #[arg(long, short, default_value = "target/preview")]
        out: PathBuf,
    },
    /// List the objects of the vaults in VAULTS that expire within --days (or never), with
    /// their owners and reminder step; sends nothing.
    Inventory {
        /// The window, in days from now.
        #[arg(long, default_value_t = 90)]
        days: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send one clearly labelled test alert through every configured channel (mail to each
    /// channel's addresses, a post to each webhook) and say what each answered. Nothing is
    /// recorded in the ledger.
    ///
    /// Example: with the app's settings in local.settings.json (`func azure functionapp
    /// fetch-app-settings <app>` writes them there), `kv-notify test`.
    Test,
    /// Run the expiry sweep once now, as the daily timer does.
    Sweep {
        /// Say what would be sent, and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Parses the command line and runs what it asks for.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread drives all I/O: invocations are I/O-bound (SMTP, webhooks), the ledger's disk
    // work runs on the blocking pool, and a function app instance often has a single vCPU that
    // the host shares. Measured: more invocations per second and a lower p99 than the
    // multi-thread scheduler on two cores, and less memory (see the README's Performance).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let env = |name: &str| std::env::var(name).ok();
    let under_host = matches!(server::port_from_host(env), Ok(Some(_)) | Err(_));
    let command = match cli.command {
        Some(command) => command,
        // What the Functions host runs: it always gives the port.
        None if under_host => Command::Serve {
            port: server::DEFAULT_PORT,
        },
        // Typed in a terminal: say what kv-notify is and how to use it, rather than start a
        // server and create folders.
        None => {
            let mut help = <Cli as clap::CommandFactory>::command();
            let _ = help.print_help();
            println!(
                "\nWith no command, kv-notify serves the Functions host (which gives it \
                 FUNCTIONS_CUSTOMHANDLER_PORT). To serve by hand: kv-notify serve --port 3000"
            );
            return ExitCode::SUCCESS;
        }
    };
    let result = match command {
        Command::Serve { port } => runtime.block_on(serve(port)),
        command => runtime.block_on(run_cli(command)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kv-notify: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn serve(default_port: u16) -> anyhow::Result<ExitCode> {
    logging::init("info");
    let env = |name: &str| std::env::var(name).ok();
    let under_host = server::port_from_host(env)?;
    // Under the host, the app settings are the environment; started by hand, the settings file
    // `func start` would read, so that `check` and the server agree.
    let (values, source) = match under_host {
        Some(_) => (settings::Values::environment(), "the environment"),
        None => (
            settings::Values::local(Path::new(LOCAL_SETTINGS))?,
            "local.settings.json and the environment",
        ),
    };
    tracing::info!("settings from {source}");
    let config = Config::from_values(&values)?;
    let port = under_host.unwrap_or(default_port);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let ledger = open_ledger(&config.settings).await?;
    let functions = Arc::new(start(config, ledger)?);
    tokio::spawn(purge_periodically(functions.clone()));
    tracing::info!(port, "listening");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, functions.clone(), async {
        stop_rx.await.ok();
    }));
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight invocations");
    stop_tx.send(()).ok();
    let grace_ends = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    if tokio::time::timeout_at(grace_ends, server).await.is_err() {
        tracing::warn!("in-flight invocations did not finish in time");
    }
    if !functions.dispatcher.finish(grace_ends).await {
        // Their claims stay held until the lease runs out, then a redelivery tries again.
        tracing::warn!("some mails or posts were still waiting for an answer at exit");
    }
    Ok(ExitCode::SUCCESS)
}

/// The ledger the settings choose: the storage-account table (`LEDGER=table`), checked at
/// start-up, or the file.
async fn open_ledger(settings: &settings::Settings) -> anyhow::Result<Arc<dyn Ledger>> {
    if let Some((account, table)) = &settings.table_ledger {
        let ledger = TableLedger::connect(account.clone(), table, settings.retention).await?;
        tracing::info!(account = %account.name, %table, "ledger: storage-account tables");
        return Ok(Arc::new(ledger));
    }
    let mut ledger = RedbLedger::open(&settings.ledger_path)?;
    // ACS Email recognises a repeated send by the time it was first tried, which the claim
    // keeps: it must survive kill -9.
    if matches!(settings.mail, settings::MailRoute::Acs(_)) {
        ledger = ledger.with_durable_claims();
    }
    tracing::info!(path = %settings.ledger_path.display(), "ledger open");
    Ok(Arc::new(ledger))
}

async fn run_cli(command: Command) -> anyhow::Result<ExitCode> {
    logging::init("warn");
    let config = match cli::load_config()? {
        Ok(config) => config,
        Err(err) => {
            print!("{err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let ok = match command {
        Command::Serve { .. } => unreachable!("serve is not a CLI command"),
        Command::Replay { files, now } => {
            // Each replay starts from an empty ledger, so running it again shows the same outcome.
            let clock = now.map_or(Clock::EventTime, Clock::At);
            let functions = start(config, Arc::new(RedbLedger::in_memory()))?;
            let dispatcher = functions.dispatcher.with_clock(clock);
            replay::replay(&dispatcher, &files).await?
        }
        Command::Check { strict } => {
            inspect::check(&config);
            let warnings = config.warnings().len();
            if strict && warnings > 0 {
                cli::emit(format_args!(
                    "check --strict: {warnings} warning(s), see above"
                ));
            }
            !strict || warnings == 0
        }
        Command::Explain { files, now } => {
            let clock = now.map_or(Clock::EventTime, Clock::At);
            inspect::explain(&config, &files, clock)?
        }
        Command::Purge => {
            let ledger = open_ledger(&config.settings).await?;
            let cutoff = chrono::Utc::now() - config.settings.retention;
            let removed = ledger.purge(cutoff).await?;
            let summary = purge_summary(&config.settings, removed);
            cli::emit(format_args!("ledger purged: {summary}"));
            true
        }
        Command::Requeue => {
            let settings = &config.settings;
            let problem = settings.storage_problem.as_deref();
            cli::requeue::requeue(settings.storage.as_ref(), problem, &settings.dead_letters)
                .await?
        }
        Command::Preview { files, out } => {
            inspect::preview(&config, &files, &out, Clock::EventTime)?
        }
        Command::Inventory { days, json } => {
            let functions = start(config, Arc::new(RedbLedger::in_memory()))?;
            let sweeper = functions.sweeper.as_ref();
            cli::sweep::inventory(&functions.dispatcher, sweeper, days, json).await?
        }
        Command::Test => {
            let transport = mail_transport(&config.settings)?;
            cli::test_alert::test_alert(&config, transport.as_ref()).await?
        }
        Command::Sweep { dry_run } => {
            let ledger = open_ledger(&config.settings).await?;
            let functions = start(config, ledger)?;
            let (dispatcher, sweeper) = (&functions.dispatcher, functions.sweeper.as_ref());
            let ok = cli::sweep::sweep(dispatcher, sweeper, dry_run).await?;
            dispatcher
                .finish(tokio::time::Instant::now() + SHUTDOWN_GRACE)
                .await;
            ok
        }
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a purge removed and kept, in words.
fn purge_summary(settings: &settings::Settings, removed: usize) -> String {
    let days = settings.retention.as_secs_f64() / 86_400.0;
    match &settings.table_ledger {
        Some(_) => format!(
            "{removed} monthly tables dropped; kept: the months of events from the last {days} days"
        ),
        None => format!("{removed} entries removed; kept: entries written in the last {days} days"),
    }
}

/// The mail transport the settings ask for.
fn mail_transport(settings: &Settings) -> anyhow::Result<Arc<dyn MailTransport>> {
    let timeout = settings.smtp_timeout;
    Ok(match &settings.mail {
        MailRoute::Outbox => Arc::new(Outbox::writable(settings.outbox_dir.clone())?),
        MailRoute::Smtp { url, oauth } => {
            let mut smtp =
                Smtp::new(url, timeout, settings.smtp_pool).map_err(anyhow::Error::msg)?;
            if let Some(oauth) = oauth {
                let identity = ManagedIdentity::for_resource(
                    &oauth.identity,
                    &oauth.client_id,
                    &oauth.resource,
                )?;
                smtp = smtp.with_xoauth2(oauth.user.clone(), identity);
            }
            Arc::new(smtp)
        }
        MailRoute::Graph(graph) => {
            let identity =
                ManagedIdentity::for_resource(&graph.identity, &graph.client_id, &graph.endpoint)?;
            let transport = Graph::new(&graph.endpoint, &graph.sender, identity, timeout);
            Arc::new(transport.map_err(anyhow::Error::msg)?)
        }
        MailRoute::Acs(acs) => Arc::new(Acs::new(acs, timeout)?),
    })
}

/// Logs the start-up warnings and builds what the functions run on: the event pipeline and,
/// with `VAULTS` or `SUBSCRIPTIONS`, the sweep, both reading the same vaults.
fn start(config: Config, ledger: Arc<dyn Ledger>) -> anyhow::Result<Functions> {
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let mail = config.settings.describe_mail();
    let transport = mail_transport(&config.settings)?;
    let vaults = match &config.settings.sweep {
        Some(sweep) => Some(Arc::new(vaults(&config, sweep, ledger.clone())?)),
        None => None,
    };
    // One Entra client (one token, one connection pool) for the sweep, which reads the
    // applications' credentials, and for the dispatcher, which names the principals of role
    // assignments.
    let entra = match config
        .settings
        .sweep
        .as_ref()
        .and_then(|s| s.entra.as_ref().map(|e| (s, e)))
    {
        Some((sweep, endpoint)) => Some(Arc::new(entra(sweep, endpoint)?)),
        None => None,
    };
    let sweeper = config.settings.sweep.clone().zip(vaults.clone());
    let target = Target {
        site: config.settings.site.clone(),
        account: config.settings.storage.as_ref().map(|a| a.name.clone()),
        function: server::FUNCTION_NAME.to_owned(),
        queue: queued::QUEUE.to_owned(),
    };
    let sweeper =
        sweeper.map(|(settings, vaults)| Sweeper::new(settings, vaults, entra.clone(), target));
    let (rejected, set_aside) = match &config.settings.storage {
        Some(account) if !account.queue_endpoint.is_empty() => {
            let rejected = Queue::new(account.clone(), queued::REJECTED)?;
            let poison = Queue::new(account.clone(), queued::POISON)?;
            let dead_letters = match account.blob_endpoint.as_str() {
                "" => None,
                _ => Some(Container::new(
                    account.clone(),
                    &config.settings.dead_letters,
                )?),
            };
            let set_aside = SetAside {
                queues: vec![poison, rejected.clone()],
                dead_letters,
            };
            (Some(rejected), set_aside)
        }
        _ => (None, SetAside::default()),
    };
    let dispatcher = Dispatcher::new(config, ledger, transport, vaults);
    let dispatcher = match entra {
        Some(directory) => dispatcher.with_directory(directory),
        None => dispatcher,
    };
    tracing::info!("ready: mail goes to {mail}");
    Ok(Functions {
        dispatcher,
        sweeper,
        rejected,
        set_aside,
    })
}

/// The client of Entra ID's applications, at Graph's `endpoint`, with tokens for it.
fn entra(sweep: &SweepSettings, endpoint: &reqwest::Url) -> anyhow::Result<EntraClient> {
    let resource = endpoint.origin().ascii_serialization();
    let identity = ManagedIdentity::for_resource(&sweep.identity, &sweep.client_id, &resource)?;
    Ok(EntraClient::new(identity, endpoint.clone())?)
}

/// The vaults the sweep settings name, and what reads them. Owner tags may name addresses in
/// the domains the configuration mails.
fn vaults(
    config: &Config,
    sweep: &SweepSettings,
    ledger: Arc<dyn Ledger>,
) -> anyhow::Result<Vaults> {
    let identity =
        ManagedIdentity::for_resource(&sweep.identity, &sweep.client_id, &sweep.resource)?;
    let client = VaultClient::new(identity).map_err(anyhow::Error::msg)?;
    let settings = &config.settings;
    let known = std::iter::once(&settings.mail_from)
        .chain(&settings.owners)
        .chain(&settings.security)
        .chain(config.routing.mailboxes());
    let owner_tag = OwnerTag::new(&sweep.owner_tag, known, &sweep.owner_tag_domains);
    // One Resource Manager client (one token, one connection pool): for the subscriptions'
    // lists, and for what an access change's alert reads (an assignment's role, a vault's
    // settings), with or without SUBSCRIPTIONS.
    let resource = Discovery::resource(&sweep.arm_endpoint);
    let identity = ManagedIdentity::for_resource(&sweep.identity, &sweep.client_id, &resource)?;
    let resource_manager = Discovery::new(
        identity,
        sweep.arm_endpoint.clone(),
        sweep.subscriptions.clone(),
        sweep.vault_domain.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    let resource_manager = Arc::new(resource_manager);
    let discovery = (!sweep.subscriptions.is_empty()).then(|| resource_manager.clone());
    let watched = Watched::new(sweep.vaults.clone(), discovery);
    Ok(Vaults::new(
        client,
        watched,
        resource_manager,
        owner_tag,
        ledger,
    ))
}

/// Keeps the ledger within its retention period: a minute after start-up (out of the way of
/// the first invocations), then hourly.
async fn purge_periodically(functions: Arc<Functions>) {
    let first = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut every_hour = tokio::time::interval_at(first, PURGE_INTERVAL);
    loop {
        every_hour.tick().await;
        functions.dispatcher.purge_ledger().await;
    }
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
