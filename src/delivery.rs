//! Exactly-once delivery: each recipient of an event's mail, and each webhook channel, is one
//! ledger entry, claimed before acting and completed right after the answer.
//!
//! One mail goes to every recipient not yet served, all in `To`. If the server refuses it
//! while answering (a 4xx/5xx, possibly for one bad address), the mail is sent again to each
//! recipient alone, so one bad address neither blocks the others nor makes them receive it
//! twice on redelivery.
//!
//! A send is never cancelled. Abandoning an SMTP transaction half-way would leave its
//! connection in the pool with the server's late reply unread, and the next mail on it would
//! read that reply as its own (lettre's pool cannot be told a connection is bad). So each send
//! runs in a task of its own, bounded by the SMTP timeout (after which the mailer closes its
//! connection), and records its real outcome while it still holds its claims. The invocation stops waiting at its deadline and
//! answers that a redelivery will retry; the redelivery then finds the claim held, or done.
//!
//! The one window where a crash can still duplicate a mail is between the server's final 250
//! and the ledger write that follows it: the write is the next thing done, and only for the
//! recipients of that one message.

use crate::ledger::{ActionKey, Claim, Ledger, Outcome};
use crate::mailer::{Delivered, Mailer, SendError};
use crate::report::{ActionReport, ActionStatus};
use crate::webhook::{Webhook, WebhookClient};
use chrono::Utc;
use lettre::address::{Address, Envelope};
use lettre::message::Mailbox;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// How often a delivery waiting on a concurrent one looks again.
const BUSY_POLL: Duration = Duration::from_millis(25);

/// Added to a claim's lease beyond the longest its action can take: a claim left by a crashed
/// process frees itself after this long.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// What one recipient's delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    Sent,
    Written(PathBuf),
    AlreadySent,
    Refused(String),
    Retry(String),
}

/// One mail to deliver, exactly once per recipient.
pub struct MailJob<'a> {
    /// The event id the ledger keys on.
    pub event_id: &'a str,
    /// Everyone the mail is for (shown in `To`).
    pub to: &'a [Mailbox],
    /// The envelope sender.
    pub from: Address,
    /// The formatted message, addressed to everyone in its headers; each send narrows the
    /// envelope to the recipients it is for.
    pub raw: Vec<u8>,
    /// What the mail is about, for an outbox file name (e.g. `prod-kv_db-password_SecretNearExpiry`).
    pub name: String,
    /// When the invocation must answer.
    pub deadline: Instant,
}

/// One webhook post to make, exactly once per event and channel.
pub struct WebhookJob<'a> {
    /// The event id the ledger keys on.
    pub event_id: &'a str,
    /// The channel name (the ledger target and the report's `to`).
    pub channel: &'a str,
    /// Where to post.
    pub webhook: &'a Webhook,
    /// The body.
    pub payload: serde_json::Value,
    /// When the invocation must answer.
    pub deadline: Instant,
}

/// Performs jobs against a ledger, a mailer and a webhook client. Built once at start-up.
pub struct Delivery {
    sender: Sender,
    webhooks: WebhookClient,
    /// Bound on one SMTP send.
    send_timeout: Duration,
    /// Bound on one webhook call.
    webhook_timeout: Duration,
    /// Sends in flight, so that shutdown can let them finish.
    sends: TaskTracker,
}

/// What a send task needs: cheap to clone (the ledger and the SMTP pool are shared).
#[derive(Clone)]
struct Sender {
    ledger: Arc<dyn Ledger>,
    mailer: Mailer,
}

/// A mail a send task owns: the message and the recipients it holds claims for.
struct Claimed {
    event_id: String,
    name: String,
    from: Address,
    raw: Vec<u8>,
    recipients: Vec<Mailbox>,
}

impl Delivery {
    /// Builds the deliverer. `send_timeout` bounds one SMTP send, `webhook_timeout` one post.
    pub fn new(
        ledger: Arc<dyn Ledger>,
        mailer: Mailer,
        webhooks: WebhookClient,
        send_timeout: Duration,
        webhook_timeout: Duration,
    ) -> Self {
        Self {
            sender: Sender { ledger, mailer },
            webhooks,
            send_timeout,
            webhook_timeout,
            sends: TaskTracker::new(),
        }
    }

    /// The ledger actions are recorded in.
    pub fn ledger(&self) -> &dyn Ledger {
        self.sender.ledger.as_ref()
    }

    /// Waits until `deadline` for sends still in flight (they outlive the invocation that
    /// started them) to record their outcome. `false` when some were still running.
    pub async fn finish_sends(&self, deadline: Instant) -> bool {
        self.sends.close();
        tokio::time::timeout_at(deadline, self.sends.wait())
            .await
            .is_ok()
    }

    /// Delivers the mail and reports the action.
    pub async fn deliver(&self, job: MailJob<'_>) -> ActionReport {
        let mut fates: Vec<(Mailbox, Fate)> = Vec::new();
        let mut claimed = Vec::new();
        let lease = self.mail_lease(job.to.len());
        for mailbox in job.to {
            match self
                .claim(&mail_key(job.event_id, mailbox), lease, job.deadline)
                .await
            {
                Ok(()) => claimed.push(mailbox.clone()),
                Err(fate) => fates.push((mailbox.clone(), fate)),
            }
        }
        if !claimed.is_empty() {
            let mail = Claimed {
                event_id: job.event_id.to_owned(),
                name: job.name,
                from: job.from,
                raw: job.raw,
                recipients: claimed,
            };
            fates.extend(self.send_in_own_task(mail, job.deadline).await);
        }
        summarize(job.to, &fates)
    }

    /// Runs the send in a task of its own and waits for it until `deadline`. A send still
    /// running then goes on and records its outcome when the server answers.
    async fn send_in_own_task(&self, mail: Claimed, deadline: Instant) -> Vec<(Mailbox, Fate)> {
        if Instant::now() >= deadline {
            return self
                .sender
                .release_all(mail, "the invocation deadline passed before sending")
                .await;
        }
        let recipients = mail.recipients.clone();
        let sending = self.sends.spawn(self.sender.clone().send_and_record(mail));
        let reason = match tokio::time::timeout_at(deadline, sending).await {
            Ok(Ok(fates)) => return fates,
            Ok(Err(failed)) => format!("the send stopped unexpectedly: {failed}"),
            Err(_) => {
                tracing::warn!(
                    "the mail server had not answered by the invocation deadline; the send goes on"
                );
                "the mail server had not answered by the invocation deadline (the send goes on and records its outcome)".to_owned()
            }
        };
        recipients
            .into_iter()
            .map(|mailbox| (mailbox, Fate::Retry(reason.clone())))
            .collect()
    }

    /// How long a mail's claims hold: the longest its sends can take (one to the group, then
    /// one to each recipient alone, each bounded by the SMTP timeout), plus a margin.
    fn mail_lease(&self, recipients: usize) -> Duration {
        let sends = u32::try_from(recipients)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        self.send_timeout
            .saturating_mul(sends)
            .saturating_add(LEASE_MARGIN)
    }

    /// Posts to the webhook once, and reports the action.
    pub async fn post(&self, job: WebhookJob<'_>) -> ActionReport {
        let key = ActionKey {
            event_id: job.event_id.to_owned(),
            action: "webhook",
            target: job.channel.to_owned(),
        };
        let lease = self.webhook_timeout * 2 + LEASE_MARGIN;
        let fate = match self.claim(&key, lease, job.deadline).await {
            Err(fate) => fate,
            Ok(()) => {
                let remaining = job.deadline.saturating_duration_since(Instant::now());
                let timeout = remaining.min(self.webhook_timeout);
                let (recorded, fate) =
                    match self.webhooks.post(job.webhook, &job.payload, timeout).await {
                        Ok(()) => (
                            self.ledger()
                                .complete(&key, Outcome::Sent, Utc::now())
                                .await,
                            Fate::Sent,
                        ),
                        Err(reason) => (self.ledger().release(&key).await, Fate::Retry(reason)),
                    };
                if let Err(err) = recorded {
                    tracing::error!(error = %err, channel = job.channel, "ledger write failed after posting");
                }
                fate
            }
        };
        report("webhook", vec![job.channel.to_owned()], &fate)
    }

    /// Claims one ledger entry, waiting while a concurrent delivery holds it. `Err` carries
    /// the fate when there is nothing to do.
    async fn claim(&self, key: &ActionKey, lease: Duration, deadline: Instant) -> Result<(), Fate> {
        loop {
            match self.ledger().claim(key, Utc::now(), lease).await {
                Ok(Claim::Acquired) => return Ok(()),
                Ok(Claim::Done(Outcome::Sent)) => return Err(Fate::AlreadySent),
                Ok(Claim::Done(Outcome::Refused { reason })) => return Err(Fate::Refused(reason)),
                Ok(Claim::Busy) if Instant::now() + BUSY_POLL < deadline => {
                    tokio::time::sleep(BUSY_POLL).await;
                }
                Ok(Claim::Busy) => {
                    return Err(Fate::Retry(
                        "another delivery of this event is still running".into(),
                    ));
                }
                Err(err) => {
                    tracing::error!(error = %err, "ledger claim failed");
                    return Err(Fate::Retry(err.to_string()));
                }
            }
        }
    }
}

impl Sender {
    /// Sends one mail to all claimed recipients; if the server refuses it while answering,
    /// one per recipient. Each outcome is recorded as soon as the server has answered it.
    async fn send_and_record(self, mail: Claimed) -> Vec<(Mailbox, Fate)> {
        let mut fates = Vec::with_capacity(mail.recipients.len());
        match self.send(&mail, &mail.recipients).await {
            Err(err) if err.answered && mail.recipients.len() > 1 => {
                tracing::warn!(reason = %err, "mail refused; sending to each recipient alone");
                for mailbox in &mail.recipients {
                    let result = self.send(&mail, std::slice::from_ref(mailbox)).await;
                    let fate = self.record(&mail.event_id, mailbox, result).await;
                    fates.push((mailbox.clone(), fate));
                }
            }
            result => {
                for mailbox in &mail.recipients {
                    let fate = self.record(&mail.event_id, mailbox, result.clone()).await;
                    fates.push((mailbox.clone(), fate));
                }
            }
        }
        fates
    }

    async fn send(&self, mail: &Claimed, recipients: &[Mailbox]) -> Result<Delivered, SendError> {
        let to = recipients.iter().map(|m| m.email.clone()).collect();
        let envelope = Envelope::new(Some(mail.from.clone()), to)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        self.mailer.send(&envelope, &mail.raw, &mail.name).await
    }

    /// Gives back the claims of a mail that will not be sent now.
    async fn release_all(&self, mail: Claimed, reason: &str) -> Vec<(Mailbox, Fate)> {
        let mut fates = Vec::with_capacity(mail.recipients.len());
        for mailbox in mail.recipients {
            let result = Err(SendError::transient(reason));
            let fate = self.record(&mail.event_id, &mailbox, result).await;
            fates.push((mailbox, fate));
        }
        fates
    }

    /// Records one recipient's result in the ledger, right after the server's answer.
    async fn record(
        &self,
        event_id: &str,
        mailbox: &Mailbox,
        result: Result<Delivered, SendError>,
    ) -> Fate {
        let key = mail_key(event_id, mailbox);
        let (recorded, fate) = match result {
            Ok(delivered) => (
                self.ledger.complete(&key, Outcome::Sent, Utc::now()).await,
                match delivered {
                    Delivered::Sent => Fate::Sent,
                    Delivered::Written(path) => Fate::Written(path),
                },
            ),
            Err(err) if err.permanent => {
                let outcome = Outcome::Refused {
                    reason: err.reason.clone(),
                };
                (
                    self.ledger.complete(&key, outcome, Utc::now()).await,
                    Fate::Refused(err.reason),
                )
            }
            Err(err) => (self.ledger.release(&key).await, Fate::Retry(err.reason)),
        };
        if let Err(err) = recorded {
            // The mail's fate is known, but the ledger could not keep it: a redelivery may
            // repeat the action. Say so loudly; the result still tells the truth.
            tracing::error!(error = %err, to = %mailbox, "ledger write failed after sending");
        }
        fate
    }
}

fn mail_key(event_id: &str, mailbox: &Mailbox) -> ActionKey {
    ActionKey {
        event_id: event_id.to_owned(),
        action: "email",
        target: mailbox.email.to_string().to_lowercase(),
    }
}

impl Fate {
    fn retry_reason(&self) -> Option<&String> {
        match self {
            Self::Retry(reason) => Some(reason),
            _ => None,
        }
    }

    fn refusal(&self) -> Option<&String> {
        match self {
            Self::Refused(reason) => Some(reason),
            _ => None,
        }
    }
}

/// The report of an action with a single target.
fn report(action: &'static str, to: Vec<String>, fate: &Fate) -> ActionReport {
    let (status, reason, retryable) = match fate {
        Fate::Sent | Fate::Written(_) => (ActionStatus::Sent, None, false),
        Fate::AlreadySent => (
            ActionStatus::Duplicate,
            Some("already done by an earlier delivery".to_owned()),
            false,
        ),
        Fate::Refused(reason) => (ActionStatus::Failed, Some(reason.clone()), false),
        Fate::Retry(reason) => (
            ActionStatus::Failed,
            Some(format!("{reason} (a redelivery will retry)")),
            true,
        ),
    };
    ActionReport {
        action,
        to,
        status,
        reason,
        retryable,
    }
}

/// Folds the recipients' fates into one action report.
fn summarize(to: &[Mailbox], fates: &[(Mailbox, Fate)]) -> ActionReport {
    let named = |pick: fn(&Fate) -> bool| -> Vec<String> {
        fates
            .iter()
            .filter(|(_, f)| pick(f))
            .map(|(m, _)| m.email.to_string())
            .collect()
    };
    let first_reason =
        |pick: fn(&Fate) -> Option<&String>| fates.iter().find_map(|(_, f)| pick(f)).cloned();
    let retry = named(|f| matches!(f, Fate::Retry(_)));
    let refused = named(|f| matches!(f, Fate::Refused(_)));
    let sent = named(|f| matches!(f, Fate::Sent));
    let earlier = named(|f| matches!(f, Fate::AlreadySent));
    let written = fates.iter().find_map(|(_, f)| match f {
        Fate::Written(path) => Some(path),
        _ => None,
    });
    let (status, reason, retryable) = if !retry.is_empty() {
        let why = first_reason(Fate::retry_reason);
        let reason = format!(
            "{} (for {}; a redelivery will retry)",
            why.unwrap_or_default(),
            retry.join(", ")
        );
        (ActionStatus::Failed, Some(reason), true)
    } else if !refused.is_empty() {
        let why = first_reason(Fate::refusal);
        let reason = format!(
            "refused for good for {}: {}",
            refused.join(", "),
            why.unwrap_or_default()
        );
        (ActionStatus::Failed, Some(reason), false)
    } else if let Some(path) = written {
        let mut reason = format!("to {}", path.display());
        if !earlier.is_empty() {
            reason.push_str(&format!("; already sent earlier to {}", earlier.join(", ")));
        }
        (ActionStatus::Written, Some(reason), false)
    } else if !sent.is_empty() {
        let reason = (!earlier.is_empty())
            .then(|| format!("already sent earlier to {}", earlier.join(", ")));
        (ActionStatus::Sent, reason, false)
    } else {
        (
            ActionStatus::Duplicate,
            Some("already sent by an earlier delivery".to_owned()),
            false,
        )
    };
    ActionReport {
        action: "email",
        to: to.iter().map(ToString::to_string).collect(),
        status,
        reason,
        retryable,
    }
}
