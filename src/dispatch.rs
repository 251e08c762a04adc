//! The pipeline shared by the server and the CLI: parse events, ask the routing what each one
//! calls for, do it exactly once, and report.
//!
//! Every event of a request is parsed before any action runs, so a request that cannot be
//! understood sends nothing. The events of a batch, and the actions of an event, then run
//! concurrently within the invocation deadline.

use crate::alert::Alert;
use crate::config::Config;
use crate::delivery::{Delivery, MailJob, WebhookJob};
use crate::envelope::RequestError;
use crate::event::{Event, KeyVaultEvent, RawEvent};
use crate::ledger::Ledger;
use crate::mail;
use crate::mailer::Mailer;
use crate::report::{ActionReport, ActionStatus, EventReport};
use crate::rules::{OWNERS, Plan};
use crate::webhook::WebhookClient;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use std::sync::Arc;
use tokio::time::Instant;

/// Everything needed to handle events, built once at start-up.
pub struct Dispatcher {
    config: Config,
    delivery: Delivery,
    clock: Clock,
}

/// The "now" an alert counts days left from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system clock: what the server uses.
    System,
    /// Each event's own `eventTime` (the system clock for an event without one), so that a
    /// saved event reads as it did when it was sent, whatever the date: what `replay` and
    /// `preview` use.
    EventTime,
    /// A fixed time (`replay --now`).
    At(DateTime<Utc>),
}

impl Clock {
    /// The time to count from for `event`.
    pub fn now_for(self, event: &KeyVaultEvent) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::EventTime => event.event_time.unwrap_or_else(Utc::now),
            Self::At(time) => time,
        }
    }
}

impl Dispatcher {
    /// Builds the dispatcher from validated configuration and the ledger to record actions in.
    pub fn new(config: Config, ledger: Arc<dyn Ledger>) -> anyhow::Result<Self> {
        let settings = &config.settings;
        let delivery = Delivery::new(
            ledger,
            Mailer::from_settings(settings)?,
            WebhookClient::new(settings.webhook_timeout),
            settings.smtp_timeout,
            settings.webhook_timeout,
        );
        Ok(Self {
            config,
            delivery,
            clock: Clock::System,
        })
    }

    /// The same dispatcher, counting days left from `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// Waits until `deadline` for sends that outlived their invocation; `false` when some
    /// were still waiting for the mail server.
    pub async fn finish_sends(&self, deadline: Instant) -> bool {
        self.delivery.finish_sends(deadline).await
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Deletes ledger entries older than the retention period.
    pub async fn purge_ledger(&self) {
        let cutoff = Utc::now() - self.config.settings.retention;
        match self.delivery.ledger().purge(cutoff).await {
            Ok(removed) => tracing::info!(removed, "ledger purged"),
            Err(err) => tracing::error!(error = %err, "ledger purge failed"),
        }
    }

    /// Handles raw events: all are parsed first, then handled concurrently, within the
    /// invocation deadline.
    pub async fn handle_all(
        &self,
        mut raw: Vec<RawEvent>,
    ) -> Result<Vec<EventReport>, RequestError> {
        let deadline = Instant::now() + self.config.settings.deadline;
        if raw.len() == 1
            && let Some(event) = raw.pop()
        {
            // One event per invocation is the usual case: no list of events, no join_all.
            let event = event.into_event()?;
            return Ok(vec![self.handle(event, deadline).await]);
        }
        let events = raw
            .into_iter()
            .map(RawEvent::into_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(join_all(events.into_iter().map(|event| self.handle(event, deadline))).await)
    }

    /// Handles one parsed event.
    async fn handle(&self, event: Event, deadline: Instant) -> EventReport {
        let event = match event {
            Event::KeyVault(event) => event,
            Event::Other { id, event_type } => {
                // The host logs the invocation and its `Logs`; stderr stays for what needs
                // attention.
                tracing::debug!(?id, ?event_type, "acknowledged event with no action");
                return EventReport::other(id, event_type);
            }
        };
        for warning in &event.warnings {
            tracing::warn!(id = %event.id, "{warning}");
        }
        let plan = self.config.routing.plan(&event, &self.config.settings);
        if plan.email_channels.is_empty() && plan.webhooks.is_empty() {
            tracing::debug!(id = %event.id, event_type = %event.event_type, "recorded event");
            return EventReport::key_vault(event, Vec::new());
        }
        // Boxed: acting is rare next to recording, and its future is large (it would more than
        // double the size of every invocation's future, which is moved as it is polled).
        let actions = Box::pin(self.act(&event, &plan, deadline)).await;
        for action in &actions {
            log_action(&event.id, action);
        }
        EventReport::key_vault(event, actions)
    }

    /// Runs the mail and every webhook of a plan concurrently.
    async fn act(
        &self,
        event: &KeyVaultEvent,
        plan: &Plan,
        deadline: Instant,
    ) -> Vec<ActionReport> {
        let alert = Alert::new(event, self.clock.now_for(event));
        let delivery = &self.delivery;
        let mail = async {
            if plan.email_channels.is_empty() {
                return None;
            }
            Some(self.email(event, &alert, plan, deadline).await)
        };
        let posts = join_all(plan.webhooks.iter().map(|(channel, webhook)| {
            delivery.post(WebhookJob {
                event_id: &event.id,
                channel,
                webhook,
                payload: webhook.format.payload(&alert),
                deadline,
            })
        }));
        let (mail, posts) = tokio::join!(mail, posts);
        mail.into_iter().chain(posts).collect()
    }

    async fn email(
        &self,
        event: &KeyVaultEvent,
        alert: &Alert,
        plan: &Plan,
        deadline: Instant,
    ) -> ActionReport {
        let report = |status, reason: String| ActionReport {
            action: "email",
            to: plan.emails.iter().map(ToString::to_string).collect(),
            status,
            reason: Some(reason),
            retryable: false,
        };
        if plan.emails.is_empty() {
            return report(ActionStatus::Skipped, no_recipients(&plan.email_channels));
        }
        let raw = match self.compose(alert, plan) {
            Ok(raw) => raw,
            Err(reason) => return report(ActionStatus::Failed, reason),
        };
        let job = MailJob {
            event_id: &event.id,
            to: &plan.emails,
            from: self.config.settings.mail_from.email.clone(),
            raw,
            name: mail_name(event),
            deadline,
        };
        self.delivery.deliver(job).await
    }

    /// Renders and formats the mail. A failure here is a bug or a broken template: no
    /// redelivery would fix it.
    fn compose(&self, alert: &Alert, plan: &Plan) -> Result<Vec<u8>, String> {
        let rendered = self
            .config
            .composer
            .render(alert)
            .map_err(|e| e.to_string())?;
        let message = mail::message(&self.config.settings.mail_from, &plan.emails, rendered)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        Ok(message.formatted())
    }
}

/// What a mail is about, for its outbox file: vault, object (when there is one) and type.
fn mail_name(event: &KeyVaultEvent) -> String {
    let vault = event.vault.as_deref().unwrap_or("vault");
    let kind = event.event_type.short_name();
    match event
        .object
        .as_deref()
        .filter(|o| Some(*o) != event.vault.as_deref())
    {
        Some(object) => format!("{vault}_{object}_{kind}"),
        None => format!("{vault}_{kind}"),
    }
}

/// Why a mail had nobody to go to, naming the setting to fix.
fn no_recipients(channels: &[String]) -> String {
    let fixes: Vec<String> = channels
        .iter()
        .map(|name| match name.as_str() {
            OWNERS => "OWNER_EMAILS or an [[owners]] entry".to_owned(),
            crate::rules::SECURITY => "SECURITY_EMAILS".to_owned(),
            other => format!("the `email` of channel {other}"),
        })
        .collect();
    format!("no recipients: set {}", fixes.join(" or "))
}

fn log_action(event_id: &str, report: &ActionReport) {
    let to = report.to.join(", ");
    let reason = report.reason.as_deref().unwrap_or_default();
    let action = report.action;
    match (report.status, report.retryable) {
        (ActionStatus::Failed, true) => {
            tracing::warn!(id = %event_id, action, %to, %reason, "action failed; a redelivery will retry")
        }
        (ActionStatus::Failed, false) => {
            tracing::error!(id = %event_id, action, %to, %reason, "action failed for good")
        }
        (status, _) => {
            tracing::info!(id = %event_id, action, %to, status = status.as_str(), "action done")
        }
    }
}
