//! kv-notify: an Azure Functions custom handler that turns Azure Key Vault events (delivered
//! by Event Grid) into mails to the owners of expiring objects and alerts to security contacts.
//!
//! The host POSTs each invocation to [`server`]; [`envelope`] unwraps it; [`event`] parses the
//! Key Vault event; [`dispatch`] asks the [`rules`] what it calls for and performs it exactly
//! once through the [`ledger`] ([`delivery`]: [`mail`] composes, SMTP or the outbox carries it;
//! [`webhook`] posts); the outcome goes back to the host as a [`report`]. [`config`] validates settings, rules and
//! templates together at start-up; [`cli`] holds the commands beside the server.

pub mod alert;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod dispatch;
pub mod envelope;
pub mod event;
pub mod ledger;
pub mod logging;
pub mod mail;
pub mod report;
pub mod rules;
pub mod server;
pub mod settings;
mod text;
pub mod webhook;
