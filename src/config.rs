//! Everything the handler needs to know, validated together at start-up: settings, routing
//! rules and mail templates. `kv-notify check` and the server share this one path, so the
//! handler refuses to start on exactly what `check` rejects.

use crate::alert::Alert;
use crate::event::{EventType, KeyVaultEvent, ObjectKind};
use crate::ladder::Position;
use crate::mail::Composer;
use crate::rules::Routing;
use crate::settings::{MailRoute, Settings, Values};
use chrono::{DateTime, TimeDelta, Utc};
use std::fmt;

/// Validated configuration.
pub struct Config {
    /// App settings.
    pub settings: Settings,
    /// Who hears about what.
    pub routing: Routing,
    /// The mail templates.
    pub composer: Composer,
    /// Setting names that look misspelt (see [`Values::misspelt`]).
    pub misspelt: Vec<String>,
}

/// Every problem found, in settings, rules and templates, and the setting names that look
/// misspelt (a misspelling often is the problem).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// What must be fixed.
    pub problems: Vec<String>,
    /// Names that look misspelt.
    pub misspelt: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problems = &self.problems;
        writeln!(f, "invalid configuration ({} problem(s)):", problems.len())?;
        for problem in problems {
            writeln!(f, "  - {problem}")?;
        }
        for misspelt in &self.misspelt {
            writeln!(f, "  note: {misspelt}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Loads and validates everything the settings `values` hold, reporting every problem at
    /// once, and notes the setting names that look misspelt.
    pub fn from_values(values: &Values) -> Result<Self, ConfigError> {
        let get = |name: &str| values.get(name);
        // Invalid settings fall back to defaults here, so that the rules and templates are
        // still checked and one run lists every problem.
        let (settings, mut problems) = Settings::parse(get);
        let routing = match &settings.rules_file {
            Some(path) if path.is_file() => Routing::load(path, &settings)
                .map_err(|e| problems.extend(e))
                .ok(),
            Some(_) => None,
            None => Some(Routing::defaults(&settings)),
        };
        if let Some(routing) = &routing {
            problems.extend(mail_in_azure(&settings, routing));
        }
        let composer = composer(&settings, &mut problems);
        match (routing, composer) {
            (Some(routing), Some(composer)) if problems.is_empty() => Ok(Self {
                settings,
                routing,
                composer,
                misspelt: values.misspelt(),
            }),
            _ => Err(ConfigError {
                problems,
                misspelt: values.misspelt(),
            }),
        }
    }

    /// Where an expiry stands on the reminder ladder at `now`: a step lasts, past the last
    /// one, as long as the ledger remembers it.
    pub fn ladder_position(&self, expires: DateTime<Utc>, now: DateTime<Utc>) -> Position {
        let memory = TimeDelta::from_std(self.settings.retention).unwrap_or(TimeDelta::MAX);
        self.settings.ladder.position(expires, now, memory)
    }

    /// Start-up warnings: settings that work, but probably not as intended.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.misspelt.clone();
        warnings.extend(self.settings.warnings());
        // OWNER_EMAILS is the fallback of the [[owners]] entries: empty, it matters only when
        // some object can fall through them.
        if self.settings.owners.is_empty() && self.routing.catch_all_owner().is_none() {
            warnings.push(if self.routing.has_owner_entries() {
                "OWNER_EMAILS is empty: mails for objects that no [[owners]] entry matches will be skipped".to_owned()
            } else {
                "OWNER_EMAILS is empty: expiry mails will be skipped".to_owned()
            });
        }
        warnings.extend(self.unrouted());
        for (channel, webhook) in self.routing.webhooks() {
            if webhook.is_office_connector() {
                warnings.push(format!(
                    "channel {channel:?} posts to an Office 365 connector (*.webhook.office.com), \
                     which Microsoft is retiring: create a Teams Workflows webhook (\"Post to a \
                     channel when a webhook request is received\") and use its URL"
                ));
            }
        }
        warnings
    }

    /// A warning naming the events that can happen and that no rule sends anywhere: a rules
    /// file replaces every default, so leaving a kind out loses its alerts without a word.
    fn unrouted(&self) -> Option<String> {
        let mut can_happen: Vec<EventType> = ObjectKind::ALL
            .into_iter()
            .flat_map(|kind| [EventType::NearExpiry(kind), EventType::Expired(kind)])
            .collect();
        can_happen.push(EventType::VaultAccessPolicyChanged);
        if self.settings.sweep.is_some() {
            can_happen.extend(ObjectKind::ALL.map(EventType::Reminder));
            can_happen.push(EventType::VaultUnreadable);
            // Resource Manager's events concern the watched vaults.
            can_happen.push(EventType::VaultRoleAssignmentChanged);
            can_happen.push(EventType::VaultSettingsChanged);
        }
        if self
            .settings
            .sweep
            .as_ref()
            .is_some_and(|s| s.entra.is_some())
        {
            can_happen.push(EventType::AppCredentialReminder);
            can_happen.push(EventType::EntraUnreadable);
        }
        can_happen.push(EventType::HealthNotice);
        let lost: Vec<String> = can_happen
            .into_iter()
            .filter(|event_type| !self.routing.routes(*event_type))
            .map(|event_type| event_type.to_string())
            .collect();
        (!lost.is_empty()).then(|| {
            format!(
                "no rule sends these alerts anywhere, so they reach nobody: {} (a rules file \
                 replaces every default rule: add rules for them)",
                lost.join(", ")
            )
        })
    }
}

/// In Azure, mail with no transport set would be written to the worker's disk, where nobody
/// reads it, and answered as sent: a problem, unless `MAIL_TRANSPORT=outbox` asks for exactly
/// that or no rule sends mail.
fn mail_in_azure(settings: &Settings, routing: &Routing) -> Option<String> {
    let unread = settings.in_azure
        && matches!(settings.mail, MailRoute::Outbox)
        && !settings.outbox_chosen
        && routing.sends_mail();
    unread.then(|| {
        "no mail transport is set, and in Azure mail would be written to the worker's disk \
         where nobody reads it: set SMTP_URL, GRAPH_SENDER or ACS_ENDPOINT (or \
         MAIL_TRANSPORT=outbox to write .eml files there on purpose)"
            .to_owned()
    })
}

/// Loads the templates and renders every kind of alert once, so that a template error (such
/// as a misspelt variable) stops start-up instead of an alert.
fn composer(settings: &Settings, problems: &mut Vec<String>) -> Option<Composer> {
    let dir = settings.templates_dir.as_deref().filter(|d| d.is_dir());
    let composer = Composer::load(dir).map_err(|e| problems.extend(e)).ok()?;
    let now = Utc::now();
    // One event type per kind of alert: the templates see the same variables for the rest.
    let kinds = [
        EventType::NearExpiry(ObjectKind::Secret),
        EventType::Expired(ObjectKind::Key),
        EventType::NewVersionCreated(ObjectKind::Certificate),
        EventType::VaultAccessPolicyChanged,
        EventType::VaultRoleAssignmentChanged,
        EventType::VaultSettingsChanged,
    ];
    for event_type in kinds {
        let alert = Alert::new(&KeyVaultEvent::example(event_type, now), now);
        if let Err(err) = composer.render(&alert) {
            problems.push(format!(
                "TEMPLATES_DIR: rendering a {event_type} mail fails: {err}"
            ));
            return None;
        }
    }
    Some(composer)
}
