//! Delivers messages: through a pooled SMTP transport when `SMTP_URL` is set, else as `.eml`
//! files in the outbox directory.
//!
//! Failures are classified for the caller ([`SendError`]): a transient one means a later
//! delivery may succeed (the invocation should fail so Event Grid redelivers), a permanent one
//! means no retry will help. Error text never contains the connection URL, which may hold a
//! password.

use crate::settings::Settings;
use lettre::address::Envelope;
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use std::time::Duration;

/// How many SMTP connections the pool keeps at most.
const POOL_MAX_SIZE: u32 = 16;

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// SMTP, through a pool of connections reused across sends.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// SMTP with a new connection per send (`SMTP_POOL=false`), for servers that mistreat
    /// reused connections.
    SmtpUnpooled {
        /// The connection URL (it may hold a password).
        url: SecretString,
        /// Bound on each SMTP step.
        timeout: Duration,
    },
    /// `.eml` files in a directory.
    Outbox(PathBuf),
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SendError {
    /// What happened, for results and logs (no credentials).
    pub reason: String,
    /// The server refused for good (5xx): no retry will help.
    pub permanent: bool,
    /// The server answered with a status code (as opposed to a connection failure or a
    /// timeout): the refusal may concern one recipient only.
    pub answered: bool,
}

impl SendError {
    /// A failure a later attempt may fix.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
            answered: false,
        }
    }

    /// A failure no retry will fix.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
            answered: false,
        }
    }
}

impl Mailer {
    /// Builds the mailer the settings ask for. Building does not connect: the first send does.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let Some(url) = &settings.smtp_url else {
            return Ok(Self::Outbox(settings.outbox_dir.clone()));
        };
        if !settings.smtp_pool {
            return Ok(Self::SmtpUnpooled {
                url: url.clone(),
                timeout: settings.smtp_timeout,
            });
        }
        Ok(Self::Smtp(smtp_transport(
            url,
            settings.smtp_timeout,
            POOL_MAX_SIZE,
        )?))
    }

    /// A short description for the start-up log, without credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "smtp (pooled)".to_owned(),
            Self::SmtpUnpooled { .. } => "smtp (a connection per mail)".to_owned(),
            Self::Outbox(dir) => format!("outbox {}", dir.display()),
        }
    }

    /// Delivers a formatted message to the envelope's recipients, giving up after `timeout`.
    pub async fn send(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        timeout: Duration,
    ) -> Result<(), SendError> {
        let sending = async {
            match self {
                Self::Smtp(transport) => transport
                    .send_raw(envelope, raw)
                    .await
                    .map(drop)
                    .map_err(|e| classify(&e)),
                Self::SmtpUnpooled { url, timeout } => {
                    // A pool of one, dropped after this send: a fresh connection every time.
                    let transport = smtp_transport(url, *timeout, 1)
                        .map_err(|e| SendError::permanent(e.to_string()))?;
                    transport
                        .send_raw(envelope, raw)
                        .await
                        .map(drop)
                        .map_err(|e| classify(&e))
                }
                Self::Outbox(dir) => write_outbox(dir, envelope, raw).await,
            }
        };
        tokio::time::timeout(timeout, sending)
            .await
            .unwrap_or_else(|_| {
                Err(SendError::transient(format!(
                    "smtp send timed out after {:.1} s",
                    timeout.as_secs_f64()
                )))
            })
    }
}

fn smtp_transport(
    url: &SecretString,
    timeout: Duration,
    pool: u32,
) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    Ok(
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("SMTP_URL is not a valid connection URL"))?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(pool))
            .build(),
    )
}

async fn write_outbox(dir: &PathBuf, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        SendError::transient(format!("cannot create outbox {}: {e}", dir.display()))
    })?;
    AsyncFileTransport::<Tokio1Executor>::new(dir)
        .send_raw(envelope, raw)
        .await
        .map(drop)
        .map_err(|e| SendError::transient(format!("cannot write to outbox {}: {e}", dir.display())))
}

/// Sorts an SMTP error into retry or give up. Only a 5xx reply is final: everything else
/// (timeouts, refused connections, TLS trouble, 4xx) may pass on a later attempt.
fn classify(err: &smtp::Error) -> SendError {
    let code = err.status().map(|c| c.to_string());
    let text = match (&code, err.is_timeout()) {
        (_, true) => "smtp timed out".to_owned(),
        (Some(code), _) => format!("smtp server answered {code}: {}", first_line(err)),
        (None, _) => format!("smtp: {}", first_line(err)),
    };
    SendError {
        reason: text,
        permanent: err.is_permanent(),
        answered: code.is_some(),
    }
}

fn first_line(err: &smtp::Error) -> String {
    let text = err.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(300).collect()
}
