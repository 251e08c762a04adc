//! kv-notify: an Azure Functions custom handler that turns Azure Key Vault events (delivered
//! by Event Grid) into mails to the owners of expiring objects and alerts to security contacts.
//!
//! The host POSTs each invocation to [`server`]; [`envelope`] unwraps it; [`event`] parses the
//! Key Vault event; [`dispatch`] decides and performs the actions ([`mail`], [`mailer`]); the
//! outcome goes back to the host as a [`report`].

pub mod delivery;
pub mod dispatch;
pub mod envelope;
pub mod event;
pub mod ledger;
pub mod mail;
pub mod mailer;
pub mod replay;
pub mod report;
pub mod server;
pub mod settings;
