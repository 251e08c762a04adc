//! One mail's send task: a send to all claimed recipients, then, if the server refuses it
//! while answering, one to each, every outcome recorded as soon as it is known.

use super::{Claimed, Delivered, Failure, MailTransport, Outcome, SendError, record};
use crate::ledger::Ledger;
use lettre::address::{Address, Envelope};
use lettre::message::Mailbox;
use std::sync::Arc;

/// A mail on its way: what a send task owns.
pub(super) struct Mail {
    pub(super) transport: Arc<dyn MailTransport>,
    pub(super) from: Address,
    pub(super) raw: Vec<u8>,
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
        let all: Vec<usize> = claimed.iter().map(|(index, _)| *index).collect();
        let mut outcomes = Vec::with_capacity(claimed.len());
        match self.send(&all).await {
            Err(SendError::Refused(failure)) if claimed.len() > 1 => {
                tracing::warn!(reason = %failure, "mail refused; sending to each recipient alone");
                for (index, key) in claimed {
                    let result = self.send(&[index]).await.map_err(|e| e.failure().clone());
                    outcomes.push((index, record(&ledger, &key, result).await));
                }
            }
            result => {
                let result = result.map_err(|e| e.failure().clone());
                for (index, key) in claimed {
                    outcomes.push((index, record(&ledger, &key, result.clone()).await));
                }
            }
        }
        outcomes
    }

    async fn send(&self, recipients: &[usize]) -> Result<Delivered, SendError> {
        let to = recipients
            .iter()
            .map(|&i| self.to[i].email.clone())
            .collect();
        let envelope = Envelope::new(Some(self.from.clone()), to)
            .map_err(|e| SendError::Failed(Failure::Permanent(e.to_string())))?;
        self.transport.send(&envelope, &self.raw, &self.name).await
    }
}
