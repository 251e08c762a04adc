//! Mail over SMTP (lettre, rustls), with connections reused one send at a time.
//!
//! A send is bounded by `SMTP_TIMEOUT_SECS`: lettre's async transport bounds only the TCP
//! connect, so a server that stops answering mid-transaction would otherwise hold a send
//! forever. Cutting a send short leaves its connection out of step with the server (the late
//! reply is still unread), and lettre's pool cannot be told a connection is bad. So each
//! connection lives in a transport of its own (a lettre pool of one, which still does the
//! reconnecting, the `NOOP` check before reuse and the idle timeout), and a transport whose send
//! timed out is dropped with its connection instead of going back to the idle list.
//!
//! With XOAUTH2 (Exchange Online without passwords), each new connection logs in with a token
//! from the app's identity; an idle connection is reused only while its token is surely still
//! valid (tokens are renewed five minutes before they expire, so for four minutes).
//!
//! Error text never contains the connection URL, which may hold a password.

use super::transport::{Delivered, Letter, MailTransport, SendError};
use crate::identity::ManagedIdentity;
use crate::outcome::Failure;
use async_trait::async_trait;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How many idle connections are kept for reuse at most.
const POOL_MAX_IDLE: usize = 16;

/// Longest server reply kept in a reason.
const REPLY_EXCERPT: usize = 300;

/// How long a connection that logged in with a token is reused.
const TOKEN_REUSE: Duration = Duration::from_secs(4 * 60);

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// `SMTP_URL` is not a connection URL (the value is never repeated: it may hold a password).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SMTP_URL is not a valid connection URL")]
pub struct InvalidSmtpUrl;

/// SMTP connections, each reused by one send at a time.
pub struct Smtp {
    /// Builds a transport of one connection. It holds the credentials: no `Debug` here.
    builder: AsyncSmtpTransportBuilder,
    /// Bound on one whole send, the TCP connect included.
    timeout: Duration,
    /// How many idle connections to keep: 0 for a new connection per mail.
    keep_idle: usize,
    /// Transports whose last send finished, ready for the next one, with when each was made.
    /// A std mutex: it is held only to push or pop, never across an await.
    idle: Mutex<Vec<(Transport, Instant)>>,
    /// XOAUTH2: the mailbox that logs in, and where its tokens come from.
    oauth: Option<(String, ManagedIdentity)>,
}

impl Smtp {
    /// Checks the URL (without connecting: the first send does). `pooled` keeps connections
    /// for reuse.
    pub fn new(
        url: &SecretString,
        timeout: Duration,
        pooled: bool,
    ) -> Result<Self, InvalidSmtpUrl> {
        let builder = Transport::from_url(url.expose_secret())
            .map_err(|_| InvalidSmtpUrl)?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(1));
        Ok(Self {
            builder,
            timeout,
            keep_idle: if pooled { POOL_MAX_IDLE } else { 0 },
            idle: Mutex::new(Vec::new()),
            oauth: None,
        })
    }

    /// Logs in with XOAUTH2 as `user`, with tokens from `identity`, instead of a password.
    pub fn with_xoauth2(self, user: String, identity: ManagedIdentity) -> Self {
        Self {
            oauth: Some((user, identity)),
            ..self
        }
    }

    /// An idle transport, or a new one (which connects on its first send).
    async fn take(&self) -> Result<(Transport, Instant), SendError> {
        let fresh = |made: &Instant| self.oauth.is_none() || made.elapsed() < TOKEN_REUSE;
        let idle = {
            let mut idle = self.lock_idle();
            idle.retain(|(_, made)| fresh(made));
            idle.pop()
        };
        if let Some(idle) = idle {
            return Ok(idle);
        }
        let builder = match &self.oauth {
            None => self.builder.clone(),
            Some((user, identity)) => {
                let token = identity.token().await.map_err(|e| {
                    tracing::error!(error = %e, "no token for the SMTP login");
                    SendError::Failed(Failure::Transient(e.0))
                })?;
                let credentials = Credentials::new(user.clone(), token.expose_secret().to_owned());
                self.builder
                    .clone()
                    .credentials(credentials)
                    .authentication(vec![Mechanism::Xoauth2])
            }
        };
        Ok((builder.build(), Instant::now()))
    }

    fn put_back(&self, transport: (Transport, Instant)) {
        let mut idle = self.lock_idle();
        if idle.len() < self.keep_idle {
            idle.push(transport);
        }
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<(Transport, Instant)>> {
        // The list holds no invariant a panic could break half-way.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl MailTransport for Smtp {
    async fn send(&self, letter: &Letter<'_>) -> Result<Delivered, SendError> {
        let (envelope, raw) = (letter.envelope, letter.raw);
        // The whole send, a token for a new connection included, is bounded.
        let attempt = async {
            let transport = self.take().await?;
            let answered = transport.0.send_raw(envelope, raw).await;
            Ok((transport, answered))
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok((transport, answered))) => {
                // lettre itself drops a connection whose transaction failed.
                self.put_back(transport);
                answered.map(|_| Delivered::Sent).map_err(|e| classify(&e))
            }
            Ok(Err(no_token)) => Err(no_token),
            // The transport, and the connection it holds mid-transaction, are dropped here.
            Err(_) => Err(SendError::Failed(Failure::Transient(format!(
                "smtp server did not finish the send within {:.1} s (connection closed)",
                self.timeout.as_secs_f64()
            )))),
        }
    }
}

/// Sorts an SMTP error into retry or give up. Only a 5xx reply is final: everything else
/// (timeouts, refused connections, TLS trouble, 4xx) may pass on a later attempt.
fn classify(err: &smtp::Error) -> SendError {
    let reason = match err.status() {
        _ if err.is_timeout() => "smtp timed out".to_owned(),
        Some(code) => format!("smtp server answered {code}: {}", first_line(err)),
        None => format!("smtp: {}", first_line(err)),
    };
    let failure = if err.is_permanent() {
        Failure::Permanent(reason)
    } else {
        Failure::Transient(reason)
    };
    match err.status() {
        Some(_) => SendError::Refused(failure),
        None => SendError::Failed(failure),
    }
}

fn first_line(err: &smtp::Error) -> String {
    let text = err.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(REPLY_EXCERPT).collect()
}
