//! Mail as `.eml` files in a folder, when no SMTP server is configured: what `replay` and a
//! first local run produce.

use super::TransportError;
use super::transport::{Delivered, Letter, MailTransport, SendError};
use crate::outcome::Failure;
use async_trait::async_trait;
use chrono::Utc;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Longest part of a file name taken from the event.
const NAME_LIMIT: usize = 100;

/// A folder of `.eml` files.
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// Writes into `dir` (created if missing), after making sure (at start-up) that it can be created and written:
    /// a read-only folder would otherwise fail every alert, one redelivery at a time.
    pub fn writable(dir: PathBuf) -> Result<Self, TransportError> {
        let probe = dir.join(format!(".kv-notify-write-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&probe, b""))
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| {
                TransportError(format!(
                    "OUTBOX_DIR: cannot write mail files to {}: {e} (set OUTBOX_DIR to a writable \
                     folder, or SMTP_URL to send mail)",
                    dir.display()
                ))
            })?;
        Ok(Self { dir })
    }
}

#[async_trait]
impl MailTransport for Outbox {
    async fn send(&self, letter: &Letter<'_>) -> Result<Delivered, SendError> {
        let (raw, name) = (letter.raw, letter.name);
        write(&self.dir, name, raw)
            .await
            .map(Delivered::Written)
            .map_err(|e| {
                let reason = format!("cannot write to outbox {}: {e}", self.dir.display());
                SendError::Failed(Failure::Transient(reason))
            })
    }
}

/// Writes the message as `<time>_<name>.eml`, through a temporary file linked into place, so
/// that a full disk leaves no half-written mail behind and two mails never share a name.
async fn write(dir: &Path, name: &str, raw: &[u8]) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let time = Utc::now().format("%Y-%m-%dT%H-%M-%S%.3fZ");
    let stem = format!("{time}_{}", file_name_part(name));
    let temporary = dir.join(format!(".{stem}.tmp"));
    if let Err(err) = tokio::fs::write(&temporary, raw).await {
        let _ = tokio::fs::remove_file(&temporary).await;
        return Err(err);
    }
    let linked = link_under_free_name(dir, &stem, &temporary).await;
    let _ = tokio::fs::remove_file(&temporary).await;
    linked
}

/// A hard link fails when the name is taken (where a rename would replace the file).
async fn link_under_free_name(dir: &Path, stem: &str, file: &Path) -> std::io::Result<PathBuf> {
    let mut n = 1u32;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let path = dir.join(format!("{stem}{suffix}.eml"));
        match tokio::fs::hard_link(file, &path).await {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && n < u32::MAX => n += 1,
            Err(e) => return Err(e),
        }
    }
}

/// `name` made safe for a file name on any system: letters, digits, `.`, `_` and `-` kept,
/// anything else (path separators, spaces, controls) turned into `-`, no leading dot.
fn file_name_part(name: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let part: String = name
        .chars()
        .take(NAME_LIMIT)
        .map(|c| if safe(c) { c } else { '-' })
        .collect();
    part.trim_start_matches('.').to_owned()
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
        assert_eq!(file_name_part(&"x".repeat(500)).len(), NAME_LIMIT);
    }

    #[tokio::test]
    async fn an_outbox_mail_is_named_by_time_then_subject_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");

        let first = write(dir.path(), "kv_db_SecretNearExpiry", b"one").await;
        let second = write(dir.path(), "kv_db_SecretNearExpiry", b"two").await;

        let (first, second) = (first.expect("written"), second.expect("written"));
        assert_ne!(first, second, "two mails in one millisecond do not collide");
        let name = first.file_name().expect("a name").to_string_lossy();
        assert!(name.starts_with("20"), "time first: {name}");
        assert!(name.ends_with("_kv_db_SecretNearExpiry.eml"), "{name}");
        let files = std::fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(files, 2, "no temporary file left");
    }
}
