//! The pipeline shared by the server and the CLI: parse events, decide what each one calls
//! for, do it, and report.
//!
//! Every event of a request is parsed before any action runs, so a request that cannot be
//! understood sends nothing. The events of a batch are then handled concurrently.

use crate::delivery::{Delivery, MailJob};
use crate::envelope::RequestError;
use crate::event::{self, Event, KeyVaultEvent};
use crate::ledger::Ledger;
use crate::mail::{self, Composer, MailKind};
use crate::mailer::Mailer;
use crate::report::{ActionReport, ActionStatus, EventReport};
use crate::settings::Settings;
use chrono::Utc;
use futures_util::future::join_all;
use lettre::message::Mailbox;
use serde_json::Value;
use std::sync::Arc;
use tokio::time::Instant;

/// Everything needed to handle events, built once at start-up.
pub struct Dispatcher {
    settings: Settings,
    mailer: Mailer,
    composer: Composer,
    ledger: Arc<dyn Ledger>,
}

/// One action an event calls for.
#[derive(Debug, Clone, PartialEq)]
struct EmailAction {
    kind: MailKind,
    to: Vec<Mailbox>,
    /// Who the recipients are, for the reason when there are none.
    audience: Audience,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    Owners,
    Security,
}

impl Dispatcher {
    /// Builds the dispatcher from validated settings and the ledger to record actions in.
    pub fn new(settings: Settings, ledger: Arc<dyn Ledger>) -> anyhow::Result<Self> {
        let mailer = Mailer::from_settings(&settings)?;
        Ok(Self {
            settings,
            mailer,
            composer: Composer::default(),
            ledger,
        })
    }

    /// Where mail goes, for the start-up log.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Deletes ledger entries older than the retention period.
    pub async fn purge_ledger(&self) {
        let cutoff = Utc::now() - self.settings.retention;
        match self.ledger.purge(cutoff).await {
            Ok(removed) => tracing::info!(removed, "ledger purged"),
            Err(err) => tracing::error!(error = %err, "ledger purge failed"),
        }
    }

    /// Handles raw events: all are parsed first, then handled concurrently, within the
    /// invocation deadline.
    pub async fn handle_all(&self, raw: &[Value]) -> Result<Vec<EventReport>, RequestError> {
        let events = raw
            .iter()
            .map(event::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let deadline = Instant::now() + self.settings.deadline;
        Ok(join_all(events.iter().map(|event| self.handle(event, deadline))).await)
    }

    /// Handles one parsed event.
    async fn handle(&self, event: &Event, deadline: Instant) -> EventReport {
        let mut report = EventReport::new(event);
        let Event::KeyVault(event) = event else {
            tracing::info!(id = ?report.id, event_type = ?report.event_type, "acknowledged event with no action");
            return report;
        };
        for warning in &event.warnings {
            tracing::warn!(id = %event.id, "{warning}");
        }
        match self.plan(event) {
            Some(action) => report
                .actions
                .push(self.email(event, action, deadline).await),
            None => {
                tracing::info!(id = %event.id, event_type = %event.event_type, "recorded event")
            }
        }
        report
    }

    /// The default actions: expiry mail to the owners, access alerts to security; rotations
    /// are only recorded.
    fn plan(&self, event: &KeyVaultEvent) -> Option<EmailAction> {
        let kind = MailKind::for_event(event.event_type)?;
        let audience = match kind {
            MailKind::NearExpiry | MailKind::Expired => Audience::Owners,
            MailKind::AccessPolicyChanged => Audience::Security,
        };
        let to = match audience {
            Audience::Owners => self.settings.owners.clone(),
            Audience::Security => self.settings.security.clone(),
        };
        Some(EmailAction { kind, to, audience })
    }

    async fn email(
        &self,
        event: &KeyVaultEvent,
        action: EmailAction,
        deadline: Instant,
    ) -> ActionReport {
        let report = |status, reason: String| ActionReport {
            action: "email",
            to: action.to.iter().map(ToString::to_string).collect(),
            status,
            reason: Some(reason),
            retryable: false,
        };
        if action.to.is_empty() {
            let setting = match action.audience {
                Audience::Owners => "OWNER_EMAILS",
                Audience::Security => "SECURITY_EMAILS",
            };
            return report(
                ActionStatus::Skipped,
                format!("no recipients: set {setting}"),
            );
        }
        let raw = match self.compose(event, &action) {
            Ok(raw) => raw,
            Err(reason) => {
                tracing::error!(id = %event.id, %reason, "mail not composed");
                return report(ActionStatus::Failed, reason);
            }
        };
        let delivery = Delivery {
            ledger: self.ledger.as_ref(),
            mailer: &self.mailer,
            send_timeout: self.settings.smtp_timeout,
        };
        let job = MailJob {
            event_id: &event.id,
            to: &action.to,
            from: self.settings.mail_from.email.clone(),
            raw,
            deadline,
        };
        let result = delivery.deliver(job).await;
        log_action(&event.id, &result);
        result
    }

    /// Renders and formats the mail. A failure here is a bug or a broken template: no
    /// redelivery would fix it.
    fn compose(&self, event: &KeyVaultEvent, action: &EmailAction) -> Result<Vec<u8>, String> {
        let rendered = self
            .composer
            .render(event, action.kind, Utc::now())
            .map_err(|e| e.to_string())?;
        let message = mail::message(&self.settings.mail_from, &action.to, rendered)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        Ok(message.formatted())
    }
}

fn log_action(event_id: &str, report: &ActionReport) {
    let to = report.to.join(", ");
    let reason = report.reason.as_deref().unwrap_or_default();
    match (report.status, report.retryable) {
        (ActionStatus::Failed, true) => {
            tracing::warn!(id = %event_id, %to, %reason, "mail failed; a redelivery will retry")
        }
        (ActionStatus::Failed, false) => {
            tracing::error!(id = %event_id, %to, %reason, "mail refused for good")
        }
        (status, _) => tracing::info!(id = %event_id, %to, status = status.as_str(), "mail done"),
    }
}
