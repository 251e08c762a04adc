//! kv-notify: an Azure Functions custom handler that turns Azure Key Vault events (delivered
//! by Event Grid) and a daily sweep of the vaults into mails to the owners of expiring objects
//! and alerts to security contacts. The one public item is [`main`], which the binary calls.
//!
//! # Crate map
//! Rooms stand on floors; each imports only rooms on lower floors (`scripts/layers` checks it
//! in CI), so a change is placed from the floor names alone:
//!
//! | floor | rooms | what they hold |
//! |---|---|---|
//! | 1 | `text`, `logging` | cleaning names for display; tracing set-up |
//! | 2 | `http` | one HTTP policy for every outgoing call |
//! | 3 | `identity`, `outcome` | tokens; what became of an action (`Failure`, `Outcome`, `ActionReport`) |
//! | 4 | `event`, `storage` | the Key Vault event model and its reader; the app's storage account and its queues |
//! | 5 | `ladder`, `alert`, `ledger` | the reminder ladder; what an alert says; the exactly-once store |
//! | 6 | `mail`, `webhook` | an alert as a mail, and as a Teams / Slack / JSON payload |
//! | 7 | `vault`, `entra`, `delivery` | the Key Vault source (clients, watched vaults, vetting, owner tags); Entra ID's application credentials; the transports and the exactly-once step |
//! | 8 | `settings` | the environment into `Settings`, every problem at once |
//! | 9–10 | `rules`, `config` | routing; everything validated together |
//! | 11 | `report` | what was done for each event |
//! | 12 | `dispatch` | event → plan → vet → act → report; never the sweep |
//! | 13 | `sweep` | the daily run, inventory, reminder and blind-spot events, the health notice |
//! | 14–17 | `envelope`, `timer`, `queued`, `server`, `cli` | the Functions host's side (pushed events, the timer, queued events), and the commands |
//! | 18 | `app` | the one place that builds clients from settings |
//!
//! A new mail transport is a file in `delivery/` and a line in `app.rs`; a second source (Entra
//! ID credentials) is a room beside `vault/`; a new setting is a name in `settings/name.rs` and
//! its reading in `settings/`.

mod alert;
mod app;
mod cli;
mod config;
mod delivery;
mod dispatch;
mod entra;
mod envelope;
mod event;
#[cfg(test)]
mod hostile_input;
mod http;
mod identity;
mod ladder;
mod ledger;
mod logging;
mod mail;
mod outcome;
mod queued;
mod report;
mod rules;
mod server;
mod settings;
mod storage;
mod sweep;
mod text;
mod timer;
mod vault;
mod webhook;

pub use app::main;
