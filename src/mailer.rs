//! Delivers messages: through a pooled SMTP transport when `SMTP_URL` is set, else as `.eml`
//! files in the outbox directory.
//!
//! Failures are classified for the caller: [`SendError::Retryable`] means a later delivery may
//! succeed (the invocation should fail so Event Grid redelivers), [`SendError::Permanent`] means
//! no retry will help. Error text never contains the connection URL, which may hold a password.

use crate::settings::Settings;
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::time::Duration;

/// How many SMTP connections the pool keeps at most.
const POOL_MAX_SIZE: u32 = 16;

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// A pooled SMTP connection.
    Smtp {
        /// The transport.
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// Bound on one whole send.
        timeout: Duration,
    },
    /// `.eml` files in a directory.
    Outbox(PathBuf),
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The server was unreachable, slow, or answered 4xx: a later attempt may succeed.
    #[error("{0}")]
    Retryable(String),
    /// The server refused the message for good (5xx), or it could not be written.
    #[error("{0}")]
    Permanent(String),
}

impl Mailer {
    /// Builds the mailer the settings ask for. Building does not connect: the first send does.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let Some(url) = &settings.smtp_url else {
            return Ok(Self::Outbox(settings.outbox_dir.clone()));
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("SMTP_URL is not a valid connection URL"))?
            .timeout(Some(settings.smtp_timeout))
            .pool_config(PoolConfig::new().max_size(POOL_MAX_SIZE))
            .build();
        Ok(Self::Smtp {
            transport,
            timeout: settings.smtp_timeout,
        })
    }

    /// A short description for the start-up log, without credentials.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { .. } => "smtp".to_owned(),
            Self::Outbox(dir) => format!("outbox {}", dir.display()),
        }
    }

    /// Delivers one message.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Self::Smtp { transport, timeout } => {
                match tokio::time::timeout(*timeout, transport.send(message)).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(classify(&err)),
                    Err(_) => Err(SendError::Retryable(format!(
                        "smtp send timed out after {:.1} s",
                        timeout.as_secs_f64()
                    ))),
                }
            }
            Self::Outbox(dir) => write_outbox(dir, message).await,
        }
    }
}

async fn write_outbox(dir: &PathBuf, message: Message) -> Result<(), SendError> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| {
        SendError::Retryable(format!("cannot create outbox {}: {e}", dir.display()))
    })?;
    AsyncFileTransport::<Tokio1Executor>::new(dir)
        .send(message)
        .await
        .map(drop)
        .map_err(|e| SendError::Retryable(format!("cannot write to outbox {}: {e}", dir.display())))
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
    if err.is_permanent() {
        SendError::Permanent(text)
    } else {
        SendError::Retryable(text)
    }
}

fn first_line(err: &smtp::Error) -> String {
    let text = err.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(300).collect()
}
