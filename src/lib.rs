//! kv-notify: an Azure Functions custom handler that turns Azure Key Vault events (delivered
//! by Event Grid) into mails to the owners of expiring objects and alerts to security contacts.
//!
//! The host POSTs each invocation to `server`; `envelope` unwraps it; `event` parses the
//! Key Vault event; `dispatch` asks the `rules` what it calls for and performs it exactly
//! once through the `ledger` (`delivery`: `mail` composes, SMTP or the outbox carries it;
//! `webhook` posts); the outcome goes back to the host as a `report`. `config` validates settings, rules and
//! templates together at start-up; `cli` holds the commands beside the server. The one public
//! item is [`main`], which the binary calls.

mod alert;
mod app;
mod cli;
mod config;
mod delivery;
mod dispatch;
mod envelope;
mod event;
mod http;
mod identity;
mod ladder;
mod ledger;
mod logging;
mod mail;
mod outcome;
mod report;
mod rules;
mod server;
mod settings;
mod sweep;
mod text;
mod timer;
mod vault;
mod webhook;

pub use app::main;
