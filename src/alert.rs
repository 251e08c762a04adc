//! What an alert says about an event, whatever carries it (mail, Teams, Slack, JSON): subject,
//! headline, summary, the facts, what to do next, and a portal link.
//!
//! Every value taken from an event is cleaned of control characters here, once, so no channel
//! can be tricked by a name holding CR/LF. Escaping for a format (HTML, Slack mrkdwn) is the
//! channel's job.

use crate::event::{EventType, KeyVaultEvent};
use crate::text::clean;
use chrono::{DateTime, SecondsFormat, Utc};
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
}

impl AlertKind {
    /// The kind of alert for an event type; a reminder's depends on whether the object has
    /// `expired`.
    pub fn of(event_type: EventType, expired: bool) -> Self {
        match event_type {
            EventType::NearExpiry(_) => Self::NearExpiry,
            EventType::Expired(_) => Self::Expired,
            EventType::Reminder(_) if expired => Self::Expired,
            EventType::Reminder(_) => Self::NearExpiry,
            EventType::NewVersionCreated(_) => Self::NewVersion,
            EventType::VaultAccessPolicyChanged => Self::AccessPolicyChanged,
            EventType::VaultUnreadable => Self::CannotSeeVault,
            EventType::HealthNotice => Self::Health,
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
    /// `near_expiry`, `expired`, `new_version`, `access_policy_changed`,
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
            AlertKind::AccessPolicyChanged => ("Security alert", "#1d4ed8"),
            AlertKind::CannotSeeVault => ("Blind spot", "#6d28d9"),
            AlertKind::Health => ("Health", "#be185d"),
        };
        let days_left = event.expires.map(|expires| (expires - now).num_days());
        let headline = headline(kind, &names, days_left);
        let rfc3339 =
            |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        Self {
            kind,
            subject: subject_line(&headline, kind),
            banner,
            accent,
            summary: summary(kind, &names, event, days_left) + &notes(event, kind),
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
            version: event.version.as_deref().map(clean),
            expires: rfc3339(event.expires),
            not_before: rfc3339(event.not_before),
            event_time: rfc3339(event.event_time),
            days_left,
            step: event.reminder.map(|r| r.step),
            auto_renews: event.reminder.and_then(|r| r.auto_renews),
            origin: origin(event),
        }
    }
}

/// Display names, cleaned of control characters, with placeholders for what is missing.
struct Names {
    object_type: String,
    object: String,
    vault: String,
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
        (EventType::HealthNotice, _) => "Sent by kv-notify's daily timer, at most once a day, \
                                          and only when something needs a person."
            .to_owned(),
        (EventType::Reminder(_), Some(r)) => format!(
            "Sent by kv-notify's expiry sweep: the {} reminder (REMINDER_DAYS).",
            step_name(r.step)
        ),
        (_, Some(r)) => format!(
            "Sent by kv-notify for Key Vault event {} (id {id}): the {} reminder.",
            event.event_type,
            step_name(r.step)
        ),
        _ => format!(
            "Sent by kv-notify for Key Vault event {} (id {id}).",
            event.event_type
        ),
    }
}

/// `7-day`, `expiry-day`, `7-days-late`.
fn step_name(step: i64) -> String {
    match step {
        0 => "expiry-day".to_owned(),
        s if s > 0 => format!("{s}-day"),
        s => format!("{}-days-late", -s),
    }
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
        if let Some(reminder) = event.reminder {
            rows.push(row(
                "Reminder",
                format!("the {} step", step_name(reminder.step)),
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

/// A link to the object's list in the Azure portal, or to the vault list when the event
/// carries no resource id.
fn portal_url(event: &KeyVaultEvent) -> String {
    let blade = match event.event_type.object_kind() {
        Some(kind) => kind.collection(),
        None => "access_policies",
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

fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
pub(crate) mod tests;
mod words;
