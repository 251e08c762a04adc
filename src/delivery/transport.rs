//! The seams to the outside world that deliver what the pipeline decided: a mail transport
//! (SMTP or the outbox) and a webhook transport. Traits, so that the deliverer's unit tests can
//! put fakes in their place.

use super::graph::Graph;
use super::outcome::Failure;
use super::{Outbox, Smtp};
use crate::identity::ManagedIdentity;
use crate::settings::Settings;
use crate::webhook::Webhook;
use async_trait::async_trait;
use lettre::address::Envelope;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a delivered message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The server accepted it.
    Sent,
    /// It was written to this outbox file.
    Written(PathBuf),
}

/// Why a mail was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The server answered with a refusal (4xx: transient, 5xx: permanent). It may concern one
    /// recipient only, so the mail is worth sending to each recipient alone.
    Refused(Failure),
    /// No usable answer (no connection, TLS trouble, a timeout), or the message could not be
    /// handed over at all.
    Failed(Failure),
}

impl SendError {
    /// The failure, whatever its source.
    pub fn failure(&self) -> &Failure {
        match self {
            Self::Refused(failure) | Self::Failed(failure) => failure,
        }
    }
}

/// Hands a formatted mail to whatever delivers it.
#[async_trait]
pub trait MailTransport: Send + Sync {
    /// Delivers `raw` to the envelope's recipients. `name` says what the mail is about (for an
    /// outbox file name). Implementations bound their own time; callers never cancel a send
    /// (see [`crate::delivery`]).
    async fn send(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        name: &str,
    ) -> Result<Delivered, SendError>;
}

/// Posts a payload to a webhook.
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    /// Posts `payload`. A refusal that no retry can fix (a 4xx other than 408 and 429) is
    /// [`Failure::Permanent`].
    async fn post(&self, webhook: &Webhook, payload: &Value) -> Result<(), Failure>;
}

/// The mail transport the settings ask for: SMTP, Microsoft Graph, else the outbox.
pub fn mail_transport(settings: &Settings) -> anyhow::Result<Arc<dyn MailTransport>> {
    if let Some(graph) = &settings.graph {
        let identity =
            ManagedIdentity::for_resource(&graph.identity, &graph.client_id, &graph.endpoint)?;
        let transport = Graph::new(
            &graph.endpoint,
            &graph.sender,
            identity,
            settings.smtp_timeout,
        );
        return Ok(Arc::new(transport.map_err(anyhow::Error::msg)?));
    }
    let Some(url) = &settings.smtp_url else {
        return Ok(Arc::new(Outbox::writable(settings.outbox_dir.clone())?));
    };
    let mut smtp =
        Smtp::new(url, settings.smtp_timeout, settings.smtp_pool).map_err(anyhow::Error::msg)?;
    if let Some(oauth) = &settings.smtp_oauth {
        let identity =
            ManagedIdentity::for_resource(&oauth.identity, &oauth.client_id, &oauth.resource)?;
        smtp = smtp.with_xoauth2(oauth.user.clone(), identity);
    }
    Ok(Arc::new(smtp))
}

/// Where the settings send mail, in words, without credentials (start-up log and `check`).
pub fn describe_mail(settings: &Settings) -> String {
    if let Some(graph) = &settings.graph {
        let identity = match graph.identity {
            Some(_) => "the app's managed identity",
            None => "the Azure CLI's login",
        };
        return format!("Microsoft Graph, as {} ({identity})", graph.sender);
    }
    if settings.smtp_oauth.is_some() {
        return "SMTP (SMTP_URL), XOAUTH2 with the app's identity".to_owned();
    }
    match &settings.smtp_url {
        Some(_) if settings.smtp_pool => "SMTP (SMTP_URL), pooled connections".to_owned(),
        Some(_) => "SMTP (SMTP_URL), a connection per mail".to_owned(),
        None => format!(".eml files in {}", settings.outbox_dir.display()),
    }
}
