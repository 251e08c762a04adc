//! The seams to the outside world that deliver what the pipeline decided: a mail transport
//! (SMTP, Microsoft Graph, ACS Email or the outbox) and a webhook transport. Traits, so that the deliverer's unit tests can
//! put fakes in their place.

use crate::ledger::ActionKey;
use crate::mail::Rendered;
use crate::outcome::Failure;
use crate::webhook::Webhook;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::address::Envelope;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

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

/// One send of a mail: everything a transport may need.
pub struct Letter<'a> {
    /// The sender, and the recipients of this send.
    pub envelope: &'a Envelope,
    /// The formatted message (MIME), addressed to everyone in its headers.
    pub raw: &'a [u8],
    /// Its subject and parts, for a transport that takes them apart (ACS Email).
    pub parts: &'a Rendered,
    /// What the mail is about, for an outbox file name.
    pub name: &'a str,
    /// What makes a repeat of this send recognisable.
    pub repeat: &'a Repeat,
}

/// The same on every repeat of one send, on whichever instance: a digest of its recipients'
/// ledger keys, and when the first of them was first claimed (kept by the ledger across a
/// crash). A transport whose service recognises repeated requests (ACS Email) derives its
/// request identity from these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    /// Hex SHA-256 of the ledger keys, one per line.
    pub digest: String,
    /// When this send was first tried.
    pub first_tried: DateTime<Utc>,
}

impl Repeat {
    /// The repeat identity of a send to the targets of `keys`, each first claimed at its time.
    pub fn of<'k>(keys: impl IntoIterator<Item = (&'k ActionKey, DateTime<Utc>)>) -> Self {
        let mut hasher = Sha256::new();
        let mut first_tried = None::<DateTime<Utc>>;
        for (key, since) in keys {
            hasher.update(key.to_string().as_bytes());
            hasher.update(b"\n");
            first_tried = Some(first_tried.map_or(since, |first| first.min(since)));
        }
        Self {
            digest: format!("{:x}", hasher.finalize()),
            first_tried: first_tried.unwrap_or_else(Utc::now),
        }
    }
}

/// Hands a formatted mail to whatever delivers it.
#[async_trait]
pub trait MailTransport: Send + Sync {
    /// Delivers the letter to its envelope's recipients. Implementations bound their own time;
    /// callers never cancel a send (see [`crate::delivery`]).
    async fn send(&self, letter: &Letter<'_>) -> Result<Delivered, SendError>;
}

/// Posts a payload to a webhook.
#[async_trait]
pub trait WebhookTransport: Send + Sync {
    /// Posts `payload`. A refusal that no retry can fix (a 4xx other than 408 and 429) is
    /// [`Failure::Permanent`].
    async fn post(&self, webhook: &Webhook, payload: &Value) -> Result<(), Failure>;
}
