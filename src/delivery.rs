//! Exactly-once delivery: each recipient of an event's mail, and each webhook channel, is one
//! ledger entry, claimed before acting and completed right after the answer. Mail and webhooks
//! go through the same exactly-once step.
//!
//! One mail goes to every recipient not yet served, all in `To`. If the server refuses it
//! while answering (a 4xx/5xx, possibly for one bad address), the mail is sent again to each
//! recipient alone, so one bad address neither blocks the others nor makes them receive it
//! twice on redelivery.
//!
//! An attempt is never cancelled. Abandoning an SMTP transaction half-way would leave its
//! connection out of step with the server, and a mail the server accepted after we stopped
//! waiting would be sent again on redelivery. So each attempt runs in a task of its own,
//! bounded by its transport's timeout, and records its real outcome while it still holds its
//! claims. The invocation stops waiting at its deadline and answers that a redelivery will
//! retry; the redelivery then finds the claim held (and waits) or done.
//!
//! The one window where a crash can still duplicate a mail is between the server's final 250
//! (or Graph's 202) and the ledger write that follows it: the write is the next thing done, and
//! only for the recipients of that one message. ACS Email closes it: each send carries a
//! [`Repeat`] identity that the ledger keeps across a crash, and the service answers a repeat
//! from its record.

mod acs;
mod graph;
mod outbox;
mod record;
mod send;
mod smtp;
mod transport;
mod webhook;

#[cfg(test)]
mod tests;

pub use crate::outcome::{Failure, Outcome};
pub use acs::{Acs, AcsAuth, AcsSettings};
pub use graph::Graph;
pub use outbox::Outbox;
pub use smtp::Smtp;
pub use transport::{Delivered, Letter, MailTransport, Repeat, SendError, WebhookTransport};
pub use webhook::WebhookClient;

/// A transport that cannot be set up (an unwritable outbox, an ACS key that is not base64).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Time kept, beyond a send's own timeout, for recording its outcome in the ledger: an action
/// starts only when this much is left before the invocation deadline.
pub const LEDGER_WRITE_ALLOWANCE: Duration = Duration::from_secs(1);

/// Least time an invocation keeps before its sends for what must be read first: the vault's
/// view of an expiry event, Resource Manager's of an access change, a principal's name. The
/// reads end when the sends must start (see [`send_start_by`]).
pub const READ_ALLOWANCE: Duration = Duration::from_secs(2);

/// The last moment a send bounded by `send_timeout` may start before `deadline`, with time
/// left to record its outcome; now when that moment has passed.
pub fn send_start_by(deadline: Instant, send_timeout: Duration) -> Instant {
    deadline
        .checked_sub(send_timeout + LEDGER_WRITE_ALLOWANCE)
        .unwrap_or_else(Instant::now)
}

use crate::event::EventKey;
use crate::ledger::{ActionKey, ActionKind, Claim, Ledger, Recorded};
use crate::mail::Rendered;
use crate::outcome::ActionReport;
use crate::webhook::Webhook;
use chrono::{DateTime, Utc};
use lettre::address::Address;
use lettre::message::Mailbox;
use record::record;
use send::Mail;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// Added to a claim's lease beyond the longest its action can take: a claim left by a crashed
/// process frees itself after this long.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// One mail to deliver, exactly once per recipient.
pub struct MailJob<'a> {
    /// The event, as the ledger knows it.
    pub event: &'a EventKey,
    /// When the event happened, by its own account.
    pub event_time: Option<DateTime<Utc>>,
    /// Everyone the mail is for (shown in `To`).
    pub to: &'a [Mailbox],
    /// The envelope sender.
    pub from: Address,
    /// The formatted message, addressed to everyone in its headers; each send narrows the
    /// envelope to the recipients it is for.
    pub raw: Vec<u8>,
    /// Its subject and parts, for a transport that takes them apart.
    pub parts: Rendered,
    /// What the mail is about, for an outbox file name (`prod-kv_db-password_SecretNearExpiry`).
    pub name: String,
    /// When the invocation must answer.
    pub deadline: Instant,
}

/// One webhook post to make, exactly once per event and channel.
pub struct WebhookJob<'a> {
    /// The event, as the ledger knows it.
    pub event: &'a EventKey,
    /// When the event happened, by its own account.
    pub event_time: Option<DateTime<Utc>>,
    /// The channel name (the ledger target and the report's `to`).
    pub channel: &'a str,
    /// Where to post.
    pub webhook: &'a Webhook,
    /// The body.
    pub payload: serde_json::Value,
    /// When the invocation must answer.
    pub deadline: Instant,
}

/// Performs actions exactly once against a ledger and the transports. Built once at start-up.
pub struct Deliverer {
    ledger: Arc<dyn Ledger>,
    mail: Arc<dyn MailTransport>,
    webhooks: Arc<dyn WebhookTransport>,
    /// Bound on one mail send (the SMTP timeout).
    mail_timeout: Duration,
    /// Bound on one webhook post.
    webhook_timeout: Duration,
    /// Attempts in flight, which may outlive their invocation; shutdown waits for them.
    attempts: TaskTracker,
}

/// A target this delivery claimed: its index in the action's target list, its ledger key,
/// and when it was first claimed.
#[derive(Debug, Clone)]
struct Held {
    index: usize,
    key: ActionKey,
    since: DateTime<Utc>,
}

/// The claimed targets of an action.
type Claimed = Vec<Held>;

impl Deliverer {
    /// Builds the deliverer. The timeouts are those the transports enforce; they size the
    /// claims' leases.
    pub fn new(
        ledger: Arc<dyn Ledger>,
        mail: Arc<dyn MailTransport>,
        webhooks: Arc<dyn WebhookTransport>,
        mail_timeout: Duration,
        webhook_timeout: Duration,
    ) -> Self {
        Self {
            ledger,
            mail,
            webhooks,
            mail_timeout,
            webhook_timeout,
            attempts: TaskTracker::new(),
        }
    }

    /// The ledger actions are recorded in.
    pub fn ledger(&self) -> &dyn Ledger {
        self.ledger.as_ref()
    }

    /// Waits until `deadline` for attempts that outlived their invocation to record their
    /// outcome. `false` when some were still running.
    pub async fn finish(&self, deadline: Instant) -> bool {
        self.attempts.close();
        tokio::time::timeout_at(deadline, self.attempts.wait())
            .await
            .is_ok()
    }

    /// Delivers the mail, exactly once per recipient, and reports the action.
    pub async fn email(&self, job: MailJob<'_>) -> ActionReport {
        let keys: Vec<ActionKey> = job
            .to
            .iter()
            .map(|m| {
                key(
                    job.event,
                    job.event_time,
                    ActionKind::Email,
                    m.email.to_string().to_lowercase(),
                )
            })
            .collect();
        // One send to all, then possibly one to each alone, each bounded by the SMTP timeout.
        let sends = u32::try_from(job.to.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let lease = self.mail_timeout.saturating_mul(sends) + LEASE_MARGIN;
        let mail = Mail {
            transport: self.mail.clone(),
            from: job.from,
            raw: job.raw,
            parts: job.parts,
            name: job.name,
            to: job.to.to_vec(),
        };
        let outcomes = self
            .exactly_once(
                &keys,
                lease,
                self.mail_timeout,
                job.deadline,
                |claimed, ledger| mail.send_and_record(claimed, ledger),
            )
            .await;
        let to = job.to.iter().map(ToString::to_string).collect();
        let names: Vec<String> = job.to.iter().map(|m| m.email.to_string()).collect();
        ActionReport::folded(ActionKind::Email, to, &names, &outcomes)
    }

    /// Posts to the webhook once, and reports the action.
    pub async fn webhook(&self, job: WebhookJob<'_>) -> ActionReport {
        let keys = [key(
            job.event,
            job.event_time,
            ActionKind::Webhook,
            job.channel.to_owned(),
        )];
        let lease = self.webhook_timeout * 2 + LEASE_MARGIN;
        let transport = self.webhooks.clone();
        let (webhook, payload) = (job.webhook.clone(), job.payload);
        let mut outcomes = self
            .exactly_once(
                &keys,
                lease,
                self.webhook_timeout,
                job.deadline,
                |claimed, ledger| async move {
                    // One key: claimed at most once.
                    let mut outcomes = Vec::with_capacity(1);
                    if let Some(held) = claimed.into_iter().next() {
                        let result = transport.post(&webhook, &payload).await;
                        let outcome =
                            record(&ledger, &held.key, result.map(|()| Delivered::Sent)).await;
                        outcomes.push((held.index, outcome));
                    }
                    outcomes
                },
            )
            .await;
        let outcome = outcomes.pop().expect("one outcome per key");
        ActionReport::new(ActionKind::Webhook, vec![job.channel.to_owned()], outcome)
    }

    /// The exactly-once step: claims each key (waiting while a concurrent delivery holds one),
    /// then runs `act` on the claimed ones in a task of its own and waits for it until
    /// `deadline`. `act` records each target's outcome in the ledger as soon as it is known
    /// and returns them by index. Returns one outcome per key.
    ///
    /// `act` starts only while the time left covers `send_timeout` (one send) plus a ledger
    /// write: an action started later could not report its outcome in this invocation, and a
    /// redelivery meanwhile would find it held.
    async fn exactly_once<F, Fut>(
        &self,
        keys: &[ActionKey],
        lease: Duration,
        send_timeout: Duration,
        deadline: Instant,
        act: F,
    ) -> Vec<Outcome>
    where
        F: FnOnce(Claimed, Arc<dyn Ledger>) -> Fut,
        Fut: Future<Output = Vec<(usize, Outcome)>> + Send + 'static,
    {
        // The last moment an action may start.
        let start_by = send_start_by(deadline, send_timeout);
        let mut outcomes = vec![Outcome::Duplicate; keys.len()];
        let mut claimed = Claimed::new();
        for (index, key) in keys.iter().enumerate() {
            match self.claim(key, lease, start_by, deadline).await {
                Ok(since) => claimed.push(Held {
                    index,
                    key: key.clone(),
                    since,
                }),
                Err(outcome) => outcomes[index] = outcome,
            }
        }
        if !claimed.is_empty() {
            for (index, outcome) in self.attempt(claimed, start_by, deadline, act).await {
                outcomes[index] = outcome;
            }
        }
        outcomes
    }

    /// Runs `act` in a task of its own if it can still start (`start_by`), waiting for it
    /// until `deadline`.
    async fn attempt<F, Fut>(
        &self,
        claimed: Claimed,
        start_by: Instant,
        deadline: Instant,
        act: F,
    ) -> Vec<(usize, Outcome)>
    where
        F: FnOnce(Claimed, Arc<dyn Ledger>) -> Fut,
        Fut: Future<Output = Vec<(usize, Outcome)>> + Send + 'static,
    {
        if Instant::now() >= start_by {
            let failure = Failure::Transient(
                "too little time was left before the invocation deadline to act and record it"
                    .into(),
            );
            let mut outcomes = Vec::with_capacity(claimed.len());
            for held in claimed {
                // Giving the claim back is a courtesy to the redelivery: on slow storage it is
                // left to its lease rather than keep the invocation past its deadline.
                let released = record(&self.ledger, &held.key, Err(failure.clone()));
                let outcome = tokio::time::timeout_at(deadline, released)
                    .await
                    .unwrap_or(Outcome::Failed(failure.clone()));
                outcomes.push((held.index, outcome));
            }
            return outcomes;
        }
        let indices: Vec<usize> = claimed.iter().map(|held| held.index).collect();
        let attempt = self.attempts.spawn(act(claimed, self.ledger.clone()));
        let unfinished = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(outcomes)) => return outcomes,
            Ok(Err(stopped)) => Outcome::Failed(Failure::Transient(format!(
                "the attempt stopped unexpectedly: {stopped}"
            ))),
            Err(_) => {
                tracing::warn!("no answer by the invocation deadline; the attempt goes on");
                Outcome::Pending
            }
        };
        indices
            .into_iter()
            .map(|index| (index, unfinished.clone()))
            .collect()
    }

    /// Claims one ledger entry, waiting (until `start_by`) while a concurrent delivery holds
    /// it; returns when it was first claimed. `Err` carries the outcome when there is nothing
    /// to do. A ledger that has not answered by `deadline` is a transient failure: the
    /// invocation answers by its deadline whatever the storage does (a claim that landed
    /// meanwhile is held until its lease ends, and a redelivery then acts).
    async fn claim(
        &self,
        key: &ActionKey,
        lease: Duration,
        start_by: Instant,
        deadline: Instant,
    ) -> Result<DateTime<Utc>, Outcome> {
        loop {
            let claim = self.ledger.claim(key, Utc::now(), lease);
            let Ok(claimed) = tokio::time::timeout_at(deadline, claim).await else {
                tracing::error!("the ledger did not answer a claim before the deadline");
                let reason = "the ledger did not answer a claim before the invocation deadline";
                return Err(Outcome::Failed(Failure::Transient(reason.to_owned())));
            };
            match claimed {
                Ok(Claim::Acquired { since }) => return Ok(since),
                Ok(Claim::Done(Recorded::Sent)) => return Err(Outcome::Duplicate),
                Ok(Claim::Done(Recorded::Refused { reason })) => {
                    return Err(Outcome::Failed(Failure::Permanent(reason)));
                }
                Ok(Claim::Busy) if Instant::now() + self.ledger.busy_poll() < start_by => {
                    tokio::time::sleep(self.ledger.busy_poll()).await;
                }
                Ok(Claim::Busy) => {
                    let reason = "another delivery of this event is still running";
                    return Err(Outcome::Failed(Failure::Transient(reason.to_owned())));
                }
                Err(err) => {
                    tracing::error!(error = %err, "ledger claim failed");
                    return Err(Outcome::Failed(Failure::Transient(err.to_string())));
                }
            }
        }
    }
}

fn key(
    event: &EventKey,
    event_time: Option<DateTime<Utc>>,
    action: ActionKind,
    target: String,
) -> ActionKey {
    ActionKey {
        event: event.clone(),
        action,
        target,
        event_time,
    }
}
