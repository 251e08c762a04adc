//! The pipeline shared by the server and the CLI: parse events, decide what each one calls
//! for, do it, and report.
//!
//! Every event of a request is parsed before any action runs, so a request that cannot be
//! understood sends nothing. The events of a batch are then handled concurrently.

use crate::envelope::RequestError;
use crate::event::{self, Event, KeyVaultEvent};
use crate::mail::{self, Composer, MailKind};
use crate::mailer::{Mailer, SendError};
use crate::report::{ActionReport, ActionStatus, EventReport};
use crate::settings::Settings;
use chrono::Utc;
use futures_util::future::join_all;
use lettre::message::Mailbox;
use serde_json::Value;

/// Everything needed to handle events, built once at start-up.
pub struct Dispatcher {
    settings: Settings,
    mailer: Mailer,
    composer: Composer,
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
    /// Builds the dispatcher from validated settings.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let mailer = Mailer::from_settings(&settings)?;
        Ok(Self {
            settings,
            mailer,
            composer: Composer::default(),
        })
    }

    /// Where mail goes, for the start-up log.
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// Handles raw events: all are parsed first, then handled concurrently.
    pub async fn handle_all(&self, raw: &[Value]) -> Result<Vec<EventReport>, RequestError> {
        let events = raw
            .iter()
            .map(event::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(join_all(events.iter().map(|event| self.handle(event))).await)
    }

    /// Handles one parsed event.
    pub async fn handle(&self, event: &Event) -> EventReport {
        let mut report = EventReport::new(event);
        let Event::KeyVault(event) = event else {
            tracing::info!(id = ?report.id, event_type = ?report.event_type, "acknowledged event with no action");
            return report;
        };
        for warning in &event.warnings {
            tracing::warn!(id = %event.id, "{warning}");
        }
        match self.plan(event) {
            Some(action) => report.actions.push(self.email(event, action).await),
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

    async fn email(&self, event: &KeyVaultEvent, action: EmailAction) -> ActionReport {
        let to: Vec<String> = action.to.iter().map(ToString::to_string).collect();
        let report = |status, reason: Option<String>, retryable| ActionReport {
            action: "email",
            to: to.clone(),
            status,
            reason,
            retryable,
        };
        if action.to.is_empty() {
            let setting = match action.audience {
                Audience::Owners => "OWNER_EMAILS",
                Audience::Security => "SECURITY_EMAILS",
            };
            return report(
                ActionStatus::Skipped,
                Some(format!("no recipients: set {setting}")),
                false,
            );
        }
        match self.send(event, &action).await {
            Ok(()) => {
                tracing::info!(id = %event.id, to = %to.join(", "), "mail sent");
                report(ActionStatus::Sent, None, false)
            }
            Err(SendError::Retryable(reason)) => {
                tracing::warn!(id = %event.id, %reason, "mail failed; a redelivery will retry");
                report(ActionStatus::Failed, Some(reason), true)
            }
            Err(SendError::Permanent(reason)) => {
                tracing::error!(id = %event.id, %reason, "mail refused for good");
                report(ActionStatus::Failed, Some(reason), false)
            }
        }
    }

    async fn send(&self, event: &KeyVaultEvent, action: &EmailAction) -> Result<(), SendError> {
        let rendered = self
            .composer
            .render(event, action.kind, Utc::now())
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let message = mail::message(&self.settings.mail_from, &action.to, rendered)
            .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        self.mailer.send(message).await
    }
}
