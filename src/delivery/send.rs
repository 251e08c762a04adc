//! One mail's send task: a send to all claimed recipients, then, if the server refuses it
//! while answering, one to each, every outcome recorded as soon as it is known.

use super::{
    Claimed, Delivered, Failure, Held, Letter, MailTransport, Outcome, Repeat, SendError, record,
};
use crate::ledger::Ledger;
use crate::mail::Rendered;
use lettre::address::{Address, Envelope};
use lettre::message::Mailbox;
use std::sync::Arc;

/// A mail on its way: what a send task owns.
pub(super) struct Mail {
    pub(super) transport: Arc<dyn MailTransport>,
    pub(super) from: Address,
    pub(super) raw: Vec<u8>,
    pub(super) parts: Rendered,
    pub(super) name: String,
    /// Every recipient, in key order.
    pub(super) to: Vec<Mailbox>,
}

impl Mail {
    /// Sends one mail to all claimed recipients; if the server refuses it while answering,
    /// one to each. Each outcome is recorded as soon as the server has answered it.
    pub(super) async fn send_and_record(
        self,
        claimed: Claimed,
        ledger: Arc<dyn Ledger>,
    ) -> Vec<(usize, Outcome)> {
        let mut outcomes = Vec::with_capacity(claimed.len());
        match self.send(&claimed).await {
            Err(SendError::Refused(failure)) if claimed.len() > 1 => {
                tracing::warn!(reason = %failure, "mail refused; sending to each recipient alone");
                for held in claimed {
                    let result = self.send(std::slice::from_ref(&held)).await;
                    let result = result.map_err(|e| e.failure().clone());
                    outcomes.push((held.index, record(&ledger, &held.key, result).await));
                }
            }
            result => {
                let result = result.map_err(|e| e.failure().clone());
                for held in claimed {
                    let outcome = record(&ledger, &held.key, result.clone()).await;
                    outcomes.push((held.index, outcome));
                }
            }
        }
        outcomes
    }

    /// One send to the `recipients`, identified for repeats by their ledger keys.
    async fn send(&self, recipients: &[Held]) -> Result<Delivered, SendError> {
        let to = recipients
            .iter()
            .map(|held| self.to[held.index].email.clone())
            .collect();
        let envelope = Envelope::new(Some(self.from.clone()), to)
            .map_err(|e| SendError::Failed(Failure::Permanent(e.to_string())))?;
        let repeat = Repeat::of(recipients.iter().map(|held| (&held.key, held.since)));
        let letter = Letter {
            envelope: &envelope,
            raw: &self.raw,
            parts: &self.parts,
            name: &self.name,
            repeat: &repeat,
        };
        self.transport.send(&letter).await
    }
}
