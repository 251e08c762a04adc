//! What an alert says about an event, whatever carries it (mail, Teams, Slack, JSON): subject,
//! headline, summary, the facts, what to do next, and a portal link.
//!
//! Every value taken from an event is cleaned of control characters here, once, so no channel
//! can be tricked by a name holding CR/LF. Escaping for a format (HTML, Slack mrkdwn) is the
//! channel's job.

use crate::event::{EventType, Facts, Holder, KeyVaultEvent, ObjectKind};
use crate::text::clean;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use words::{days, headline, next_steps, notes, subject_line, summary};

/// Longest name shown in a subject line, in characters.
const SUBJECT_NAME_LIMIT: usize = 80;

/// The kind of alert an event type makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The object expires soon.
    NearExpiry,
    /// The object has expired.
    Expired,
    /// A new version exists (a rotation).
    NewVersion,
    /// The vault's access policy changed.
    AccessPolicyChanged,
    /// kv-notify cannot read a vault: nothing in it is watched.
    CannotSeeVault,
    /// kv-notify's daily health notice: what it met that needs a person.
    Health,
    /// A role assignment reaching a vault, or a setting deciding who can reach it, changed
    /// (Resource Manager's events).
    AccessChanged,
}

impl AlertKind {
    /// The kind of alert for an event type; a reminder's depends on whether the object has
    /// `expired`.
    pub fn of(event_type: EventType, expired: bool) -> Self {
        match event_type {
            EventType::NearExpiry(_) => Self::NearExpiry,
            EventType::Expired(_) => Self::Expired,
            EventType::Reminder(_) | EventType::AppCredentialReminder if expired => Self::Expired,
            EventType::Reminder(_) | EventType::AppCredentialReminder => Self::NearExpiry,
            EventType::NewVersionCreated(_) => Self::NewVersion,
            EventType::VaultAccessPolicyChanged => Self::AccessPolicyChanged,
            EventType::VaultUnreadable | EventType::EntraUnreadable => Self::CannotSeeVault,
            EventType::HealthNotice => Self::Health,
            EventType::VaultRoleAssignmentChanged | EventType::VaultSettingsChanged => {
                Self::AccessChanged
            }
        }
    }
}

/// One fact shown as a labelled row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    /// The label, e.g. `Vault`.
    pub label: &'static str,
    /// The value, cleaned of control characters.
    pub value: String,
    /// Whether to emphasise it.
    pub strong: bool,
}

/// Everything an alert says. Serialised, it is the set of variables mail templates see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// `near_expiry`, `expired`, `new_version`, `access_policy_changed`, `access_changed`,
    /// `cannot_see_vault` or `health`.
    pub kind: AlertKind,
    /// The mail subject: one line, names truncated.
    pub subject: String,
    /// A short upper-case label, e.g. `Expiring soon`.
    pub banner: &'static str,
    /// The accent colour, e.g. `#b45309`.
    pub accent: &'static str,
    /// One line saying what happened.
    pub headline: String,
    /// A paragraph saying what it means.
    pub summary: String,
    /// The facts, in display order.
    pub details: Vec<Detail>,
    /// What to do, in order.
    pub next_steps: Vec<String>,
    /// A link to the object's list (or the vault's access policies) in the Azure portal.
    pub portal_url: String,
    /// The short event type, e.g. `SecretNearExpiry`.
    pub event_type: String,
    /// The event id.
    pub event_id: String,
    /// The vault name.
    pub vault: String,
    /// `Secret`, `Key`, `Certificate` (or `Object` when unknown).
    pub object_type: String,
    /// The object name.
    pub object: String,
    /// The object version, if known.
    pub version: Option<String>,
    /// The expiry, RFC 3339 UTC.
    pub expires: Option<String>,
    /// The not-before date, RFC 3339 UTC.
    pub not_before: Option<String>,
    /// When Key Vault raised the event, RFC 3339 UTC.
    pub event_time: Option<String>,
    /// Whole days until expiry (negative: days since), if the event has an expiry.
    pub days_left: Option<i64>,
    /// The reminder-ladder step (days before the expiry; negative: after), for an expiry
    /// alert that is one.
    pub step: Option<i64>,
    /// For a certificate: whether its policy renews it automatically, when known.
    pub auto_renews: Option<bool>,
    /// Where the alert comes from, for the footer.
    pub origin: String,
    /// The event's facts about its object, as the report and the JSON webhook payload carry
    /// them (the fields above are the same facts, ready for a template).
    #[serde(skip)]
    pub facts: Facts,
    /// Why the recipients got it, and how to change who does (set by the routing; empty
    /// when not known).
    pub why: String,
}

impl Alert {
    /// Describes `event`, counting days from `now`.
    pub fn new(event: &KeyVaultEvent, now: DateTime<Utc>) -> Self {
        let expired = event.expires.is_some_and(|t| t <= now);
        let kind = AlertKind::of(event.event_type, expired);
        let names = Names::of(event);
        let (banner, accent) = match kind {
            AlertKind::NearExpiry => ("Expiring soon", "#b45309"),
            AlertKind::Expired => ("Expired", "#b91c1c"),
            AlertKind::NewVersion => ("New version", "#047857"),
            AlertKind::AccessPolicyChanged | AlertKind::AccessChanged => {
                ("Security alert", "#1d4ed8")
            }
            AlertKind::CannotSeeVault => ("Blind spot", "#6d28d9"),
            AlertKind::Health => ("Health", "#be185d"),
        };
        let days_left = event.expires.map(|expires| (expires - now).num_days());
        let facts = event.facts();
        let headline = match event.event_type {
            EventType::EntraUnreadable => {
                "kv-notify cannot read Entra ID's applications".to_owned()
            }
            _ if kind == AlertKind::AccessChanged => access::headline(event, &names.vault),
            _ => headline(kind, &names, days_left),
        };
        Self {
            kind,
            subject: subject_line(&headline, kind),
            banner,
            accent,
            summary: summary(kind, &names, event, days_left)
                + &notes(event, kind)
                + &related(event),
            details: details(event, &names, days_left),
            next_steps: next_steps(kind, &names, event),
            portal_url: portal_url(event),
            event_type: event.event_type.short_name().to_owned(),
            event_id: match clean(&event.id) {
                id if id.is_empty() => "none".to_owned(),
                id => id,
            },
            headline,
            vault: names.vault,
            object_type: names.object_type,
            object: names.object,
            version: facts.version.clone(),
            expires: facts.expires.clone(),
            not_before: facts.not_before.clone(),
            event_time: facts.event_time.clone(),
            days_left,
            step: event.reminder.map(|r| r.step),
            auto_renews: event.reminder.and_then(|r| r.auto_renews),
            origin: origin(event),
            why: String::new(),
            facts,
        }
    }
}

/// Display names, cleaned of control characters, with placeholders for what is missing.
struct Names {
    object_type: String,
    object: String,
    vault: String,
    /// How the object relates to its container in a headline: `in` a vault, `of` an
    /// application.
    within: &'static str,
    /// How many objects the alert is about: an application's notice may list several
    /// credentials.
    count: usize,
}

impl Names {
    fn of(event: &KeyVaultEvent) -> Self {
        let or = |value: &Option<String>, missing: &str| {
            value.as_deref().map_or_else(|| missing.to_owned(), clean)
        };
        Self {
            object_type: or(&event.object_type, "Object"),
            object: or(&event.object, "(unnamed)"),
            vault: or(&event.vault, "(unknown vault)"),
            within: match event.event_type {
                EventType::AppCredentialReminder => "of",
                _ => "in",
            },
            count: event
                .application
                .as_ref()
                .map_or(1, |a| a.credentials.len()),
        }
    }
}

/// The footer line: which event, or which reminder of the daily sweep.
fn origin(event: &KeyVaultEvent) -> String {
    let id = match clean(&event.id) {
        id if id.is_empty() => "none".to_owned(),
        id => id,
    };
    match (event.event_type, event.reminder) {
        (EventType::VaultUnreadable, _) => {
            "Sent by kv-notify's expiry sweep, at most once in 15 days per vault.".to_owned()
        }
        (EventType::EntraUnreadable, _) => {
            "Sent by kv-notify's expiry sweep (ENTRA_CREDENTIALS), at most once in 15 days."
                .to_owned()
        }
        (EventType::AppCredentialReminder, _) => "Sent by kv-notify's daily expiry sweep of Entra \
                                                   ID (ENTRA_CREDENTIALS), on the reminder days \
                                                   of REMINDER_DAYS, once per application and step."
            .to_owned(),
        (EventType::VaultRoleAssignmentChanged | EventType::VaultSettingsChanged, _) => format!(
            "Sent by kv-notify for Resource Manager event {} (id {id}).",
            event
                .access
                .as_ref()
                .map_or_else(|| "(no operation)".to_owned(), |a| clean(&a.operation))
        ),
        (EventType::HealthNotice, _) => "Sent by kv-notify's daily timer, at most once a day, \
                                          and only when something needs a person."
            .to_owned(),
        (EventType::Reminder(_), Some(_)) => {
            "Sent by kv-notify's daily expiry sweep, on the reminder days of REMINDER_DAYS."
                .to_owned()
        }
        (_, Some(_)) => format!(
            "Sent by kv-notify for Key Vault event {} (id {id}).",
            event.event_type
        ),
        _ => format!(
            "Sent by kv-notify for Key Vault event {} (id {id}).",
            event.event_type
        ),
    }
}

/// What else ties the object to something that expires (a vault secret holding an Entra ID
/// credential), as sentences after the summary.
fn related(event: &KeyVaultEvent) -> String {
    event
        .related
        .iter()
        .map(|said| format!(" {}", clean(said)))
        .collect()
}

/// When the next reminder about an object expiring at `expires` comes, in words: the day its
/// days left fall to the `next` step.
fn next_reminder(next: Option<i64>, expires: DateTime<Utc>) -> String {
    let Some(next) = next else {
        return "none: this is the last one".to_owned();
    };
    let when = match next {
        0 => "the day it expires".to_owned(),
        n if n > 0 => format!("{} before it expires", days(n)),
        n => format!("{} after it expires", days(-n)),
    };
    let on = expires
        .checked_sub_signed(TimeDelta::days(next))
        .map_or_else(String::new, |t| format!("on {}, ", t.format("%Y-%m-%d")));
    format!("{on}{when}")
}

fn details(event: &KeyVaultEvent, names: &Names, days_left: Option<i64>) -> Vec<Detail> {
    let row = |label, value: String, strong| Detail {
        label,
        value,
        strong,
    };
    let time =
        |t: Option<DateTime<Utc>>, missing: &str| t.map_or_else(|| missing.to_owned(), format_time);
    if event.event_type == EventType::HealthNotice {
        return vec![row("Checked", time(event.event_time, "(not given)"), false)];
    }
    if event.access.is_some() {
        return access::details(event, &names.vault);
    }
    if event.event_type == EventType::AppCredentialReminder {
        let holder = match event.application.as_ref().map(|a| a.holder) {
            Some(Holder::ServicePrincipal) => "Enterprise application",
            _ => "Application",
        };
        let mut rows = vec![row(holder, names.vault.clone(), true)];
        if let Some(application) = &event.application {
            rows.push(row("Application id", clean(&application.app_id), false));
            for credential in &application.credentials {
                let ends = time(credential.ends, "(never)");
                let mut said = format!(
                    "{} \"{}\" (key id {}), ends {ends}",
                    credential.kind,
                    words::label(&credential.name, &credential.key_id),
                    clean(&credential.key_id)
                );
                for note in &credential.notes {
                    said.push_str(". ");
                    said.push_str(&clean(note));
                }
                rows.push(row("Credential", said, true));
            }
        }
        if let (Some(reminder), Some(expires)) = (event.reminder, event.expires) {
            rows.push(row(
                "Next reminder",
                next_reminder(reminder.next, expires),
                false,
            ));
        }
        rows.push(row("Checked", time(event.event_time, "(not given)"), false));
        return rows;
    }
    let mut rows = vec![row("Vault", names.vault.clone(), true)];
    if event.event_type.object_kind().is_some() {
        rows.push(row("Type", names.object_type.clone(), false));
        rows.push(row("Name", names.object.clone(), true));
        let missing = match event.event_type {
            EventType::Reminder(_) => "(the current one)",
            _ => "(none)",
        };
        let version = event
            .version
            .as_deref()
            .map_or_else(|| missing.to_owned(), clean);
        rows.push(row("Version", version, false));
        rows.push(row("Expires", time(event.expires, "(not set)"), true));
        let left = match days_left {
            None => "unknown".to_owned(),
            Some(n) if n > 0 => days(n),
            Some(0) => "expires today".to_owned(),
            Some(n) => format!("expired {} ago", days(-n)),
        };
        rows.push(row("Time left", left, true));
        if let (Some(reminder), Some(expires)) = (event.reminder, event.expires) {
            rows.push(row(
                "Next reminder",
                next_reminder(reminder.next, expires),
                false,
            ));
        }
        rows.push(row(
            "Not before",
            time(event.not_before, "(not set)"),
            false,
        ));
    }
    let when = match event.event_type {
        EventType::Reminder(_) | EventType::VaultUnreadable => "Checked",
        _ => "Event time",
    };
    rows.push(row(when, time(event.event_time, "(not given)"), false));
    rows
}

/// A link to the object itself in the Azure portal; for a vault's alert, to the vault's
/// activity log (who changed what); else to the object's list, or the vault list when the event
/// carries no resource id.
fn portal_url(event: &KeyVaultEvent) -> String {
    if let Some(object) = object_link(event) {
        return object;
    }
    // An application's "Certificates & secrets" blade, made by the sweep from its app id.
    if event.event_type == EventType::AppCredentialReminder
        && let Some(url) = event.object_url.as_deref().map(clean)
        && url.starts_with("https://portal.azure.com/")
    {
        return url;
    }
    let blade = match (event.event_type.object_kind(), event.event_type) {
        (Some(kind), _) => kind.collection(),
        (None, EventType::VaultRoleAssignmentChanged) => "users",
        (None, EventType::VaultSettingsChanged) => "networking",
        (None, _) => "activitylog",
    };
    match event.topic.as_deref().map(clean) {
        Some(topic)
            if topic.starts_with("/subscriptions/") && !topic.contains(char::is_whitespace) =>
        {
            format!("https://portal.azure.com/#@/resource{topic}/{blade}")
        }
        _ => "https://portal.azure.com/#browse/Microsoft.KeyVault%2Fvaults".to_owned(),
    }
}

/// The portal's page of the object the event names: `#@/asset/Microsoft_Azure_KeyVault/Secret/`
/// and the object's URL without its version (so the page lists every version).
fn object_link(event: &KeyVaultEvent) -> Option<String> {
    let asset = match event.event_type.object_kind()? {
        ObjectKind::Secret => "Secret",
        ObjectKind::Key => "Key",
        ObjectKind::Certificate => "Certificate",
    };
    let url = reqwest::Url::parse(event.object_url.as_deref()?).ok()?;
    let mut segments = url.path_segments()?;
    let (collection, name) = (segments.next()?, segments.next()?);
    let safe = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let host = url.host_str()?;
    let vault_host = host.contains(".vault")
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    (url.scheme() == "https" && vault_host && safe(collection) && safe(name)).then(|| {
        format!("https://portal.azure.com/#@/asset/Microsoft_Azure_KeyVault/{asset}/https://{host}/{collection}/{name}")
    })
}

fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

mod access;
#[cfg(test)]
pub(crate) mod tests;
mod words;
