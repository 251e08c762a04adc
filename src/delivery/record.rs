//! Recording an action's result in the ledger, right after the answer, and what the health
//! notice keeps of it.

use super::{Delivered, Failure, Outcome};
use crate::ledger::{ActionKey, ActionKind, Ledger, Recorded, Trouble, TroubleKind};
use chrono::Utc;
use std::sync::Arc;

/// What the daily health notice keeps of a result: a recipient or webhook that refused for
/// good, a webhook failing (until it succeeds again). See [`crate::ledger::keep`].
enum Health {
    /// A webhook answered: its failures are over.
    Clear(String),
    /// A trouble to keep.
    Note(Trouble),
}

fn keep_health_of(key: &ActionKey, result: &Result<Delivered, Failure>) -> Option<Health> {
    let (kind, detail) = match (key.action, result) {
        (ActionKind::Webhook, Ok(_)) => return Some(Health::Clear(key.target.clone())),
        (ActionKind::Email, Err(Failure::Permanent(reason))) => (TroubleKind::MailRefused, reason),
        (ActionKind::Webhook, Err(Failure::Permanent(reason))) => {
            (TroubleKind::WebhookRefused, reason)
        }
        (ActionKind::Webhook, Err(Failure::Transient(reason))) => {
            (TroubleKind::WebhookFailing, reason)
        }
        _ => return None,
    };
    Some(Health::Note(Trouble::seen(
        kind,
        &key.target,
        detail,
        Utc::now(),
    )))
}

impl Health {
    async fn keep(self, ledger: &Arc<dyn Ledger>) {
        match self {
            Self::Clear(webhook) => {
                if let Err(err) = ledger.clear(TroubleKind::WebhookFailing, &webhook).await {
                    tracing::warn!(error = %err, "cannot clear a webhook's failures for the health notice");
                }
            }
            Self::Note(trouble) => crate::ledger::keep(ledger.as_ref(), &trouble).await,
        }
    }
}

/// Records one target's result, right after the answer: done (sent, or refused for good), or
/// given back so that a redelivery tries again. The health notice's bookkeeping comes after:
/// until the outcome is recorded, a crash (or slow storage) would have a redelivery act again.
pub(super) async fn record(
    ledger: &Arc<dyn Ledger>,
    key: &ActionKey,
    result: Result<Delivered, Failure>,
) -> Outcome {
    let health = keep_health_of(key, &result);
    let outcome = record_outcome(ledger, key, result).await;
    if let Some(health) = health {
        health.keep(ledger).await;
    }
    outcome
}

/// Writes the outcome of `result` for `key`.
async fn record_outcome(
    ledger: &Arc<dyn Ledger>,
    key: &ActionKey,
    result: Result<Delivered, Failure>,
) -> Outcome {
    let (recorded, outcome) = match result {
        Ok(delivered) => {
            let outcome = match delivered {
                Delivered::Sent => Outcome::Sent,
                Delivered::Written(path) => Outcome::Written(path),
            };
            (
                ledger.complete(key, Recorded::Sent, Utc::now()).await,
                outcome,
            )
        }
        Err(Failure::Permanent(reason)) => {
            let refused = Recorded::Refused {
                reason: reason.clone(),
            };
            let outcome = Outcome::Failed(Failure::Permanent(reason));
            (ledger.complete(key, refused, Utc::now()).await, outcome)
        }
        Err(failure) => (ledger.release(key).await, Outcome::Failed(failure)),
    };
    match recorded {
        Ok(()) => outcome,
        // A release that failed leaves the claim to its lease; the outcome already asks for a
        // redelivery.
        Err(err) if outcome.needs_retry() => {
            tracing::error!(error = %err, target = %key.target, "ledger release failed");
            outcome
        }
        // Done, but not kept: a redelivery may repeat it. Say so, and fail the invocation rather
        // than answer that all is done.
        Err(err) => {
            tracing::error!(error = %err, target = %key.target, "ledger write failed after acting");
            Outcome::Unrecorded {
                done: Box::new(outcome),
                error: err.to_string(),
            }
        }
    }
}
