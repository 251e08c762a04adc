//! The action ledger: what makes Event Grid's at-least-once delivery into exactly one mail per
//! event and recipient, with no lost action.
//!
//! Each action target (an event id, an action, a target such as one recipient) goes through a
//! small state machine: it is **claimed** before acting (a lease, so a crashed holder does not
//! block it forever), then **completed** with its outcome, or **released** when it failed in a
//! way a redelivery can fix. A later delivery that finds it completed does nothing.
//!
//! [`Ledger`] is the seam for scale-out: the embedded [`RedbLedger`] serves one instance; a
//! shared store (e.g. Azure Table Storage) implements the same four calls for many.

mod redb_store;
mod table;

pub use crate::outcome::ActionKind;
pub use redb_store::RedbLedger;
pub use table::TableLedger;

use crate::event::EventKey;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Identifies one action on one target for one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionKey {
    /// The event.
    pub event: EventKey,
    /// The kind of action.
    pub action: ActionKind,
    /// The target, e.g. one recipient address.
    pub target: String,
    /// When the event happened, by its own account: the shared ledger files the entry by it,
    /// so that every redelivery, on whichever instance, looks in the same place. Not part of
    /// the key's identity (an event's redeliveries all carry the same time). For a reminder
    /// step: when its ladder's last step begins, possibly ahead (see [`ActionKey::kept_from`]).
    pub event_time: Option<DateTime<Utc>>,
}

impl ActionKey {
    /// When the entry's retention starts, for a write at `now`: now, except for a reminder
    /// step, whose record is kept from the start of its ladder's last step, so that it outlives
    /// the ladder (the ladder bounds how far ahead that is).
    pub fn kept_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match (&self.event, self.event_time) {
            (EventKey::Step(_), Some(time)) if time > now => time,
            _ => now,
        }
    }
}

impl fmt::Display for ActionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A JSON array keeps the three parts apart whatever characters an event id holds.
        let parts = (&self.event, self.action.as_str(), &self.target);
        f.write_str(&serde_json::to_string(&parts).map_err(|_| fmt::Error)?)
    }
}

/// What an earlier delivery did with an action, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Recorded {
    /// Delivered.
    Sent,
    /// Refused for good (e.g. a 5xx for this recipient): retrying would not help.
    Refused {
        /// Why.
        reason: String,
    },
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller now holds the action and must complete or release it.
    Acquired {
        /// When the action was first claimed: kept when a claim whose holder vanished (a
        /// crash) is taken over, so that a repeat of the action can say when it was first
        /// tried (see [`crate::delivery`]'s repeatable sends).
        since: DateTime<Utc>,
    },
    /// An earlier delivery finished it.
    Done(Recorded),
    /// Another delivery holds it right now.
    Busy,
}

/// What kind of trouble the daily health notice reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TroubleKind {
    /// A recipient refused a mail for good.
    MailRefused,
    /// A webhook refused a post for good (a retired URL, a rejected payload).
    WebhookRefused,
    /// A webhook post failed in a way a retry may fix; a success ends it.
    WebhookFailing,
    /// An owner tag named addresses outside the domains kv-notify mails.
    TagIgnored,
    /// An event carried dates kv-notify could not use.
    UnusableDates,
}

impl TroubleKind {
    /// The name kept in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MailRefused => "mailRefused",
            Self::WebhookRefused => "webhookRefused",
            Self::WebhookFailing => "webhookFailing",
            Self::TagIgnored => "tagIgnored",
            Self::UnusableDates => "unusableDates",
        }
    }
}

/// Something the daily health notice may report, as the ledger keeps it: one per kind and
/// subject, its first and last sighting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trouble {
    /// What kind.
    pub kind: TroubleKind,
    /// What it is about: a recipient, a webhook channel, an object.
    pub subject: String,
    /// What happened, the last time.
    pub detail: String,
    /// When it was first seen (since it was last cleared).
    pub since: DateTime<Utc>,
    /// When it was last seen.
    pub last: DateTime<Utc>,
}

impl Trouble {
    /// A trouble seen at `now`.
    pub fn seen(kind: TroubleKind, subject: &str, detail: &str, now: DateTime<Utc>) -> Self {
        Self {
            kind,
            subject: subject.to_owned(),
            detail: detail.to_owned(),
            since: now,
            last: now,
        }
    }

    /// Its key in the store: kind and subject.
    fn key(kind: TroubleKind, subject: &str) -> String {
        format!("{}\n{subject}", kind.as_str())
    }
}

/// The store failed; the action's fate is unknown, so the invocation must be retried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("ledger: {0}")]
pub struct LedgerError(pub String);

/// A store of action outcomes. Implementations must make `claim` atomic: of two concurrent
/// claims of one key, at most one is `Acquired`.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Claims `key` for `lease` from `now`, unless it is done or held under a live lease.
    async fn claim(
        &self,
        key: &ActionKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, LedgerError>;

    /// Records the outcome of a claimed action.
    async fn complete(
        &self,
        key: &ActionKey,
        outcome: Recorded,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// Gives a claimed action back, so that a redelivery performs it.
    async fn release(&self, key: &ActionKey) -> Result<(), LedgerError>;

    /// Deletes entries recorded before `cutoff`, and troubles last seen before it; returns how
    /// many entries (or, on the shared ledger, whole tables of them) went.
    async fn purge(&self, cutoff: DateTime<Utc>) -> Result<usize, LedgerError>;

    /// Records a trouble for the health notice: a new one as it is, a known one (same kind and
    /// subject) keeping its first sighting.
    async fn note(&self, trouble: &Trouble) -> Result<(), LedgerError>;

    /// Forgets a trouble (it has ended); nothing when it is not known.
    async fn clear(&self, kind: TroubleKind, subject: &str) -> Result<(), LedgerError>;

    /// Every trouble kept.
    async fn troubles(&self) -> Result<Vec<Trouble>, LedgerError>;

    /// Keeps `value` under `key`, replacing what was there: what kv-notify must know of a
    /// resource after it changes (a vault's last settings, a role assignment's role), shared
    /// by every instance that shares the ledger.
    async fn remember(&self, key: &str, value: &str) -> Result<(), LedgerError>;

    /// What [`Ledger::remember`] kept under `key`.
    async fn recall(&self, key: &str) -> Result<Option<String>, LedgerError>;

    /// Whether this instance is the one to purge at `now`: every time on a file of its own; on
    /// a shared store, one instance each hour, never all of them at once.
    async fn purge_turn(&self, _now: DateTime<Utc>) -> Result<bool, LedgerError> {
        Ok(true)
    }

    /// How often a delivery waiting on a claim held elsewhere asks again: cheap on a local
    /// file, a request (and a cost) on a shared store.
    fn busy_poll(&self) -> Duration {
        Duration::from_millis(25)
    }
}

/// Keeps a trouble for the health notice in `ledger`: one that cannot be kept costs a line of
/// the notice, never an action, so the failure is logged and passed over.
pub async fn keep(ledger: &dyn Ledger, trouble: &Trouble) {
    if let Err(err) = ledger.note(trouble).await {
        tracing::warn!(error = %err, kind = trouble.kind.as_str(), "cannot keep a trouble for the health notice");
    }
}

/// When a claim taken at `now` for `lease` runs out.
fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::MAX)
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// When the entry was last written; retention counts from here.
    at: DateTime<Utc>,
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
enum State {
    /// Claimed, until the lease runs out; first claimed at `since` (absent in entries written
    /// before it was kept).
    Claimed {
        until: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<DateTime<Utc>>,
    },
    /// Finished.
    Done { outcome: Recorded },
}

impl Entry {
    /// What a claim at `now` finds in this entry.
    fn claim_at(&self, now: DateTime<Utc>) -> Option<Claim> {
        match &self.state {
            State::Done { outcome } => Some(Claim::Done(outcome.clone())),
            State::Claimed { until, .. } if *until > now => Some(Claim::Busy),
            State::Claimed { .. } => None,
        }
    }

    /// When a claim at `now` that takes this entry over counts as first made: the lapsed
    /// claim's own first time, so that a repeat after a crash says when it was first tried.
    fn first_claimed(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match &self.state {
            State::Claimed {
                since: Some(since), ..
            } => *since,
            _ => now,
        }
    }
}
