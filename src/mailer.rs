//! Delivers messages: through a pooled SMTP transport when `SMTP_URL` is set, else as `.eml`
//! files in the outbox directory.
//!
//! Failures are classified for the caller ([`SendError`]): a transient one means a later
//! delivery may succeed (the invocation should fail so Event Grid redelivers), a permanent one
//! means no retry will help. Error text never contains the connection URL, which may hold a
//! password.

use crate::settings::Settings;
use chrono::Utc;
use lettre::address::Envelope;
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How many idle SMTP connections are kept for reuse at most.
const POOL_MAX_IDLE: usize = 16;

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// SMTP (pooled, or a connection per mail).
    Smtp(Smtp),
    /// `.eml` files in a directory.
    Outbox(PathBuf),
}

/// SMTP connections, each reused by one send at a time.
///
/// A send is bounded by the SMTP timeout: lettre's async transport bounds only the TCP
/// connect, so a server that stops answering mid-transaction would otherwise hold a send
/// forever. Cutting a send short leaves its connection out of step with the server (the late
/// reply is still unread), and lettre's pool cannot be told a connection is bad. So each
/// connection lives in a transport of its own (a lettre pool of one, which still does the
/// reconnecting, the `NOOP` check before reuse and the idle timeout), and a transport whose send
/// timed out is dropped with its connection instead of going back to the idle list.
#[derive(Clone)]
pub struct Smtp {
    inner: Arc<SmtpInner>,
}

struct SmtpInner {
    /// The connection URL (it may hold a password).
    url: SecretString,
    /// Bound on one whole send, and on the TCP connect within it.
    timeout: Duration,
    /// How many idle connections to keep: 0 for a new connection per mail.
    keep_idle: usize,
    /// Transports whose last send finished, ready for the next one. A std mutex: it is held
    /// only to push or pop, never across an await.
    idle: Mutex<Vec<AsyncSmtpTransport<Tokio1Executor>>>,
}

/// Where a delivered message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// The SMTP server accepted it.
    Sent,
    /// It was written to this outbox file.
    Written(PathBuf),
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
        // Parsed once here so that a bad URL stops start-up rather than every send.
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("SMTP_URL is not a valid connection URL"))?;
        let keep_idle = if settings.smtp_pool { POOL_MAX_IDLE } else { 0 };
        Ok(Self::Smtp(Smtp {
            inner: Arc::new(SmtpInner {
                url: url.clone(),
                timeout: settings.smtp_timeout,
                keep_idle,
                idle: Mutex::new(Vec::new()),
            }),
        }))
    }

    /// Where the settings send mail, in words, without credentials (for the start-up log and
    /// `check`).
    pub fn describe_settings(settings: &Settings) -> String {
        match &settings.smtp_url {
            Some(_) if settings.smtp_pool => "SMTP (SMTP_URL), pooled connections".to_owned(),
            Some(_) => "SMTP (SMTP_URL), a connection per mail".to_owned(),
            None => format!(".eml files in {}", settings.outbox_dir.display()),
        }
    }

    /// Delivers a formatted message to the envelope's recipients. An SMTP send that takes
    /// longer than the SMTP timeout fails, and its connection is closed. `name` names the
    /// outbox file (after the time it is written).
    pub async fn send(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        name: &str,
    ) -> Result<Delivered, SendError> {
        match self {
            Self::Smtp(smtp) => smtp.send(envelope, raw).await.map(|()| Delivered::Sent),
            Self::Outbox(dir) => write_outbox(dir, name, raw).await,
        }
    }
}

impl Smtp {
    async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        let inner = &self.inner;
        let transport = self.take()?;
        match tokio::time::timeout(inner.timeout, transport.send_raw(envelope, raw)).await {
            Ok(answered) => {
                // lettre itself drops a connection whose transaction failed.
                self.put_back(transport);
                answered.map(drop).map_err(|e| classify(&e))
            }
            // The transport, and the connection it holds mid-transaction, are dropped here.
            Err(_) => Err(SendError::transient(format!(
                "smtp server did not finish the send within {:.1} s (connection closed)",
                inner.timeout.as_secs_f64()
            ))),
        }
    }

    /// An idle transport, or a new one (which connects on its first send).
    fn take(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let idle = self.lock_idle().pop();
        match idle {
            Some(transport) => Ok(transport),
            None => AsyncSmtpTransport::<Tokio1Executor>::from_url(self.inner.url.expose_secret())
                .map(|builder| {
                    builder
                        .timeout(Some(self.inner.timeout))
                        .pool_config(PoolConfig::new().max_size(1))
                        .build()
                })
                .map_err(|_| SendError::permanent("SMTP_URL is not a valid connection URL")),
        }
    }

    fn put_back(&self, transport: AsyncSmtpTransport<Tokio1Executor>) {
        let mut idle = self.lock_idle();
        if idle.len() < self.inner.keep_idle {
            idle.push(transport);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<AsyncSmtpTransport<Tokio1Executor>>> {
        // The list holds no invariant a panic could break half-way.
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes the message as `<time>_<name>.eml`, through a temporary file renamed into place, so
/// that a full disk leaves no half-written mail behind.
async fn write_outbox(dir: &Path, name: &str, raw: &[u8]) -> Result<Delivered, SendError> {
    let failed = |e: std::io::Error| {
        SendError::transient(format!("cannot write to outbox {}: {e}", dir.display()))
    };
    tokio::fs::create_dir_all(dir).await.map_err(failed)?;
    let stem = format!(
        "{}_{}",
        Utc::now().format("%Y-%m-%dT%H-%M-%S%.3fZ"),
        file_name_part(name)
    );
    let temporary = dir.join(format!(".{stem}.tmp"));
    tokio::fs::write(&temporary, raw).await.map_err(|e| {
        // Best effort: the write failed, the partial file must not stay.
        let _ = std::fs::remove_file(&temporary);
        failed(e)
    })?;
    // A hard link fails when the name is taken (where rename would replace the file), so two
    // mails written in the same millisecond both stay.
    for n in 1u32.. {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let path = dir.join(format!("{stem}{suffix}.eml"));
        match tokio::fs::hard_link(&temporary, &path).await {
            Ok(()) => {
                tokio::fs::remove_file(&temporary).await.map_err(failed)?;
                return Ok(Delivered::Written(path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                let _ = tokio::fs::remove_file(&temporary).await;
                return Err(failed(e));
            }
        }
    }
    unreachable!("a free name is found before u32 runs out")
}

/// `name` made safe for a file name on any system: letters, digits, `.`, `_` and `-` kept,
/// anything else (path separators, spaces, controls) turned into `-`, at most 100 characters.
fn file_name_part(name: &str) -> String {
    name.chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_names_keep_only_safe_characters() {
        assert_eq!(
            file_name_part("prod-kv_../../etc/passwd\r\n<b>_SecretNearExpiry"),
            "prod-kv_..-..-etc-passwd---b-_SecretNearExpiry"
        );
        assert_eq!(file_name_part("..hidden"), "hidden");
        assert_eq!(file_name_part(&"x".repeat(500)).len(), 100);
    }

    #[tokio::test]
    async fn an_outbox_mail_is_named_by_time_then_subject_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");

        let first = write_outbox(dir.path(), "kv_db_SecretNearExpiry", b"one").await;
        let second = write_outbox(dir.path(), "kv_db_SecretNearExpiry", b"two").await;

        let (Ok(Delivered::Written(first)), Ok(Delivered::Written(second))) = (first, second)
        else {
            panic!("both written");
        };
        assert_ne!(first, second, "two mails in one millisecond do not collide");
        let name = first
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("20"), "time first: {name}");
        assert!(name.ends_with("_kv_db_SecretNearExpiry.eml"), "{name}");
        let files = std::fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(files, 2, "no temporary file left");
    }
}
