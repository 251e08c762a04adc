//! The pipeline shared by the server and the CLI: ask the routing what each parsed event
//! calls for, do it exactly once, and report. It does no parsing and no I/O of its own: the
//! HTTP layer (or the CLI) parses, the [`Deliverer`] acts.
//!
//! The events of a batch, and the actions of an event, run concurrently within the invocation
//! deadline.

use crate::alert::Alert;
use crate::config::Config;
use crate::delivery::{
    Deliverer, Failure, MailJob, MailTransport, Outcome, WebhookClient, WebhookJob, send_start_by,
};
use crate::entra::EntraClient;
use crate::event::{Event, KeyVaultEvent, ResourceEvent};
use crate::ladder::{self, Ladder, Position};
use crate::ledger::{self, ActionKind, Ledger, Trouble, TroubleKind};
use crate::mail::{self, Rendered};
use crate::outcome::ActionReport;
use crate::report::EventReport;
use crate::rules::{OWNERS, Plan, SECURITY};
use crate::vault::{Judgement, Vaults, Vetting};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use futures_util::{StreamExt, stream};
use std::sync::Arc;
use tokio::time::Instant;

/// Events of one invocation handled at once: enough to keep an SMTP server busy, few enough
/// that a large batch holds only this many rendered mails in memory.
const EVENTS_AT_ONCE: usize = 16;

/// Bound on asking Graph for a principal's name: the alert does not wait longer for it.
const NAME_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything needed to handle events, built once at start-up.
pub struct Dispatcher {
    config: Config,
    deliverer: Deliverer,
    clock: Clock,
    /// The watched vaults, when the sweep is on: asked whether an expiry event is still worth
    /// a mail.
    vaults: Option<Arc<Vaults>>,
    /// Microsoft Graph, when `ENTRA_CREDENTIALS` lets the identity read it: names the
    /// principal of a role assignment.
    directory: Option<Arc<EntraClient>>,
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
    /// `vaults`, when the sweep is on, are asked whether an expiry event is still worth a mail.
    pub fn new(
        config: Config,
        ledger: Arc<dyn Ledger>,
        mail: Arc<dyn MailTransport>,
        vaults: Option<Arc<Vaults>>,
    ) -> Self {
        let settings = &config.settings;
        let deliverer = Deliverer::new(
            ledger,
            mail,
            Arc::new(WebhookClient::new(settings.webhook_timeout)),
            settings.smtp_timeout,
            settings.webhook_timeout,
        );
        Self {
            vaults,
            ..Self::with_deliverer(config, deliverer)
        }
    }

    /// Builds the dispatcher around a deliverer (whose transports a test may have chosen).
    pub fn with_deliverer(config: Config, deliverer: Deliverer) -> Self {
        Self {
            config,
            deliverer,
            clock: Clock::System,
            vaults: None,
            directory: None,
        }
    }

    /// The ledger actions are recorded in.
    pub fn ledger(&self) -> &dyn Ledger {
        self.deliverer.ledger()
    }

    /// The reminder ladder.
    pub fn ladder(&self) -> &Ladder {
        &self.config.settings.ladder
    }

    /// Where an expiry stands on the ladder at `now`: a step lasts, past the last one, as long
    /// as the ledger remembers it.
    pub fn ladder_position(&self, expires: DateTime<Utc>, now: DateTime<Utc>) -> Position {
        self.config.ladder_position(expires, now)
    }

    /// Where the event's owners come from, in words.
    pub fn owner_source(&self, event: &KeyVaultEvent) -> String {
        self.config.routing.owner_source(event)
    }

    /// Who an event's alerts would go to: addresses, then webhook channels by name.
    pub fn recipients(&self, event: &KeyVaultEvent) -> Vec<String> {
        let plan = self.config.routing.plan(event);
        let emails = plan.emails.iter().map(ToString::to_string);
        emails
            .chain(plan.webhooks.into_iter().map(|(name, _)| name))
            .collect()
    }

    /// The same dispatcher, naming a role assignment's principal through `directory`.
    pub fn with_directory(self, directory: Arc<EntraClient>) -> Self {
        Self {
            directory: Some(directory),
            ..self
        }
    }

    /// The same dispatcher, counting days left from `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    /// Waits until `deadline` for attempts that outlived their invocation; `false` when some
    /// were still waiting for an answer.
    pub async fn finish(&self, deadline: Instant) -> bool {
        self.deliverer.finish(deadline).await
    }

    /// Keeps a trouble for the health notice (see [`ledger::keep`]).
    pub async fn note(&self, trouble: Trouble) {
        ledger::keep(self.deliverer.ledger(), &trouble).await;
    }

    /// Deletes ledger entries older than the retention period, when it is this instance's
    /// turn (on a shared ledger, one instance's each hour).
    pub async fn purge_ledger(&self) {
        let ledger = self.deliverer.ledger();
        let now = Utc::now();
        match ledger.purge_turn(now).await {
            Ok(true) => {}
            Ok(false) => return tracing::debug!("ledger purge: another instance's turn"),
            Err(err) => return tracing::error!(error = %err, "ledger purge failed"),
        }
        match ledger.purge(now - self.config.settings.retention).await {
            Ok(removed) => tracing::info!(removed, "ledger purged"),
            Err(err) => tracing::error!(error = %err, "ledger purge failed"),
        }
    }

    /// Handles parsed events, [`EVENTS_AT_ONCE`] at a time, within the invocation deadline:
    /// an event reached too late to act fails at once, for a redelivery.
    pub async fn handle_all(&self, events: Vec<Event>) -> Vec<EventReport> {
        let deadline = Instant::now() + self.config.settings.deadline;
        self.handle_until(events, deadline).await
    }

    /// Handles events, [`EVENTS_AT_ONCE`] at a time, until `deadline`.
    pub async fn handle_until(
        &self,
        events: impl IntoIterator<Item = impl Into<Event>>,
        deadline: Instant,
    ) -> Vec<EventReport> {
        stream::iter(events)
            .map(|event| self.handle(event.into(), deadline))
            .buffered(EVENTS_AT_ONCE)
            .collect()
            .await
    }

    /// Handles one parsed event.
    async fn handle(&self, event: Event, deadline: Instant) -> EventReport {
        // The event stays boxed: the future of every event of the batch would otherwise carry it.
        let mut event = match event {
            Event::KeyVault(event) => event,
            Event::Resource(resource) => {
                match self.judged(&resource, self.reads_by(deadline)).await {
                    Ok(event) => event,
                    Err(report) => return report,
                }
            }
            Event::Other { id, event_type } => {
                // The host logs the invocation and its `Logs`; stderr stays for what needs
                // attention.
                tracing::debug!(?id, ?event_type, "acknowledged event with no action");
                return EventReport::other(id, event_type);
            }
        };
        for warning in &event.warnings {
            tracing::warn!(id = %event.id, "{warning}");
            // Kept by the problem (which date field), not by event: a stream of bad events is
            // one line of the notice and one entry in the store, naming the latest.
            let field = warning
                .strip_prefix("ignored ")
                .and_then(|rest| rest.split_once(':'))
                .map_or(warning.as_str(), |(field, _)| field);
            let detail = format!(
                "{warning}; latest in event {} for {}",
                event.id,
                event.display_name()
            );
            self.note(Trouble::seen(
                TroubleKind::UnusableDates,
                field,
                &detail,
                Utc::now(),
            ))
            .await;
        }
        let now = self.clock.now_for(&event);
        ladder::place_event(&mut event, |expires| self.ladder_position(expires, now));
        let mut plan = self.config.routing.plan(&event);
        let acts = !plan.email_channels.is_empty() || !plan.webhooks.is_empty();
        match self.vetted(&event, acts, self.reads_by(deadline)).await {
            Vetting::Skip(why) => {
                tracing::info!(id = %event.id, %why, "expiry event not mailed");
                let skipped =
                    ActionReport::new(ActionKind::Email, Vec::new(), Outcome::Skipped(why));
                return EventReport::key_vault(*event, vec![skipped]);
            }
            Vetting::Mail(Some(owners)) => {
                event.tag_owners = Some(owners);
                plan = self.config.routing.plan(&event);
            }
            Vetting::Retry(why) => {
                let failed = Outcome::Failed(Failure::Transient(why));
                let retry = ActionReport::new(ActionKind::Email, Vec::new(), failed);
                return EventReport::key_vault(*event, vec![retry]);
            }
            Vetting::Mail(None) | Vetting::Unknown => {}
        }
        if !acts {
            tracing::debug!(id = %event.id, event_type = %event.event_type, "recorded event");
            return EventReport::key_vault(*event, Vec::new());
        }
        // Boxed: acting is rare next to recording, and its future is large (it would more than
        // double the size of every invocation's future, which is moved as it is polled).
        let actions = Box::pin(self.act(&event, &plan, deadline)).await;
        for action in &actions {
            log_action(&event.id, action);
        }
        EventReport::key_vault(*event, actions)
    }

    /// When the reads before an event's sends must end: a send starts only while its timeout
    /// and a ledger write fit before `deadline` (the settings keep at least
    /// [`READ_ALLOWANCE`](crate::delivery::READ_ALLOWANCE) for the reads).
    fn reads_by(&self, deadline: Instant) -> Instant {
        let settings = &self.config.settings;
        send_start_by(
            deadline,
            settings.smtp_timeout.max(settings.webhook_timeout),
        )
    }

    /// The alert a Resource Manager event makes, when it changes a watched vault's access;
    /// else its report (acknowledged, or failed for a redelivery). Its reads end by `reads_by`.
    async fn judged(
        &self,
        event: &ResourceEvent,
        reads_by: Instant,
    ) -> Result<Box<KeyVaultEvent>, EventReport> {
        let id = (!event.id.is_empty()).then(|| event.id.clone());
        let report = || EventReport::other(id.clone(), Some(event.action.type_name().to_owned()));
        let Some(vaults) = &self.vaults else {
            tracing::debug!(id = %event.id, "resource event acknowledged: no vault is watched");
            return Err(report());
        };
        match vaults.access().judge(event, reads_by).await {
            Judgement::Alert(mut alert) => {
                self.name_principal(&mut alert, reads_by).await;
                Ok(alert)
            }
            Judgement::Ignore(why) => {
                tracing::debug!(id = %event.id, operation = %event.operation, %why, "resource event acknowledged");
                Err(report())
            }
            Judgement::Retry(why) => {
                tracing::warn!(id = %event.id, %why, "resource event not judged; a redelivery will retry");
                let failed = Outcome::Failed(Failure::Transient(why));
                let retry = ActionReport::new(ActionKind::Email, Vec::new(), failed);
                Err(EventReport {
                    actions: vec![retry],
                    ..report()
                })
            }
        }
    }

    /// Adds the display name of a role assignment's principal, when Graph gives it within
    /// [`NAME_TIMEOUT`] and by `reads_by`; the alert names it by id otherwise.
    async fn name_principal(&self, alert: &mut KeyVaultEvent, reads_by: Instant) {
        let Some(directory) = &self.directory else {
            return;
        };
        let Some(assignment) = alert.access.as_mut().and_then(|a| a.assignment.as_mut()) else {
            return;
        };
        let Some(id) = assignment.principal_id.as_deref() else {
            return;
        };
        let by = reads_by.min(Instant::now() + NAME_TIMEOUT);
        match tokio::time::timeout_at(by, directory.display_name(id)).await {
            Ok(Ok(name)) => assignment.principal_name = name,
            Ok(Err(error)) => tracing::debug!(%error, "principal not named"),
            Err(_) => tracing::debug!("principal not named: Graph did not answer in time"),
        }
    }

    /// What the vault says of an expiry event that would act (see [`Vaults::vet`]).
    async fn vetted(&self, event: &KeyVaultEvent, acts: bool, deadline: Instant) -> Vetting {
        match (&self.vaults, acts) {
            // Boxed, as acting is: reading the vault takes a large future every event would carry.
            (Some(vaults), true) => Box::pin(vaults.vet(event, deadline)).await,
            _ => Vetting::Unknown,
        }
    }

    /// Runs the mail and every webhook of a plan concurrently.
    async fn act(
        &self,
        event: &KeyVaultEvent,
        plan: &Plan,
        deadline: Instant,
    ) -> Vec<ActionReport> {
        let mut alert = Alert::new(event, self.clock.now_for(event));
        alert.why = self.config.routing.why(event, plan);
        let mail = async {
            if plan.email_channels.is_empty() {
                return None;
            }
            Some(self.email(event, &alert, plan, deadline).await)
        };
        let posts = join_all(plan.webhooks.iter().map(|(channel, webhook)| {
            self.deliverer.webhook(WebhookJob {
                event: &event.key,
                event_time: filing_time(event),
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
        let to = || plan.emails.iter().map(ToString::to_string).collect();
        if plan.emails.is_empty() {
            let skipped = Outcome::Skipped(no_recipients(&plan.email_channels));
            return ActionReport::new(ActionKind::Email, to(), skipped);
        }
        let (parts, raw) = match self.compose(event, alert, plan) {
            Ok(composed) => composed,
            Err(failure) => {
                return ActionReport::new(ActionKind::Email, to(), Outcome::Failed(failure));
            }
        };
        let job = MailJob {
            event: &event.key,
            event_time: filing_time(event),
            to: &plan.emails,
            from: self.config.settings.mail_from.email.clone(),
            raw,
            parts,
            name: mail_name(event),
            deadline,
        };
        self.deliverer.email(job).await
    }

    /// Renders the mail and formats it (MIME). A failure here is a bug or a broken template:
    /// no redelivery would fix it.
    fn compose(
        &self,
        event: &KeyVaultEvent,
        alert: &Alert,
        plan: &Plan,
    ) -> Result<(Rendered, Vec<u8>), Failure> {
        let rendered = self
            .config
            .composer
            .render(alert)
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        let from = &self.config.settings.mail_from;
        let key = serde_json::to_string(&event.key).unwrap_or_default();
        let kind = event.event_type.object_kind().map(|k| k.collection());
        let object = match (&event.vault, kind, &event.object) {
            (Some(vault), Some(kind), Some(name)) => Some((vault.as_str(), kind, name.as_str())),
            _ => None,
        };
        let ids = mail::MessageIds::new(&key, object, from);
        let message = mail::message(from, &plan.emails, rendered.clone(), &ids)
            .map_err(|e| Failure::Permanent(format!("cannot build the message: {e}")))?;
        Ok((rendered, message.formatted()))
    }
}

/// The time the ledger files an event's actions by: for a reminder step, the start of its
/// ladder's last step (so that the sweep's reminder and the event of one step meet in one
/// place, and the record outlives the ladder), else the event's own time.
fn filing_time(event: &KeyVaultEvent) -> Option<DateTime<Utc>> {
    match &event.reminder {
        Some(reminder) => Some(reminder.kept_from),
        None => event.event_time,
    }
}

/// What a mail is about, for its outbox file: vault, object (when there is one) and type.
fn mail_name(event: &KeyVaultEvent) -> String {
    let kind = event.event_type.short_name();
    format!("{}_{kind}", event.display_name().replace('/', "_"))
}

/// Why a mail had nobody to go to, naming the setting to fix.
fn no_recipients(channels: &[String]) -> String {
    let fixes: Vec<String> = channels
        .iter()
        .map(|name| match name.as_str() {
            OWNERS => "OWNER_EMAILS or an [[owners]] entry".to_owned(),
            SECURITY => "SECURITY_EMAILS".to_owned(),
            other => format!("the `email` of channel {other}"),
        })
        .collect();
    format!("no recipients: set {}", fixes.join(" or "))
}

fn log_action(event_id: &str, report: &ActionReport) {
    let to = report.to.join(", ");
    let reason = report.reason.as_deref().unwrap_or_default();
    let action = report.action.as_str();
    match &report.outcome {
        Outcome::Failed(failure) if failure.is_transient() => {
            tracing::warn!(id = %event_id, action, %to, %reason, "action failed; a redelivery will retry")
        }
        Outcome::Failed(_) if report.action == ActionKind::Webhook => {
            // A stable code, so that a retired or misconfigured webhook can be found.
            tracing::error!(id = %event_id, code = "webhook_refused", %to, %reason, "webhook refused the alert for good")
        }
        Outcome::Failed(_) => {
            tracing::error!(id = %event_id, action, %to, %reason, "action failed for good")
        }
        outcome => {
            tracing::info!(id = %event_id, action, %to, status = outcome.status(), "action done")
        }
    }
}

#[cfg(test)]
mod tests;
