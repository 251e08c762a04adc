//! What an alert says about an event, whatever carries it (mail, Teams, Slack, JSON): subject,
//! headline, summary, the facts, what to do next, and a portal link.
//!
//! Every value taken from an event is cleaned of control characters here, once, so no channel
//! can be tricked by a name holding CR/LF. Escaping for a format (HTML, Slack mrkdwn) is the
//! channel's job.

use crate::event::{EventType, KeyVaultEvent, ObjectKind};
use crate::text::{clean, truncate};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

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
    /// `near_expiry`, `expired`, `new_version` or `access_policy_changed`.
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
            summary: summary(kind, &names, event.expires, days_left) + &notes(event, kind),
            details: details(event, &names, days_left),
            next_steps: next_steps(kind, &names),
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

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

fn headline(kind: AlertKind, names: &Names, days_left: Option<i64>) -> String {
    let object_type = &names.object_type;
    let object = truncate(&names.object, SUBJECT_NAME_LIMIT);
    let vault = truncate(&names.vault, SUBJECT_NAME_LIMIT);
    let state = match (kind, days_left) {
        (AlertKind::AccessPolicyChanged, _) => {
            return format!("Access policy changed on vault {vault}");
        }
        (AlertKind::NewVersion, _) => "has a new version".to_owned(),
        (_, Some(n)) if n > 0 => format!("expires in {}", days(n)),
        (AlertKind::NearExpiry, Some(0)) => "expires today".to_owned(),
        (AlertKind::Expired, Some(0)) => "expired today".to_owned(),
        (_, Some(n)) => format!("expired {} ago", days(-n)),
        (AlertKind::NearExpiry, None) => "expires soon".to_owned(),
        (AlertKind::Expired, None) => "has expired".to_owned(),
    };
    format!("{object_type} {object} in {vault} {state}")
}

fn subject_line(headline: &str, kind: AlertKind) -> String {
    match kind {
        AlertKind::NearExpiry | AlertKind::NewVersion => headline.to_owned(),
        AlertKind::Expired => format!("EXPIRED: {headline}"),
        AlertKind::AccessPolicyChanged => format!("Security alert: {headline}"),
    }
}

fn summary(
    kind: AlertKind,
    names: &Names,
    expires: Option<DateTime<Utc>>,
    days_left: Option<i64>,
) -> String {
    let Names {
        object_type,
        object,
        vault,
    } = names;
    let date = expires.map(format_time).unwrap_or_default();
    match (kind, days_left) {
        (AlertKind::AccessPolicyChanged, _) => format!(
            "The access policy of Key Vault {vault} was changed (or the vault moved to or from Azure RBAC). \
             Check that only the expected identities can read or manage its secrets, keys and certificates."
        ),
        (AlertKind::NewVersion, _) => format!(
            "A new version of {object_type} {object} was created in vault {vault}: a rotation happened."
        ),
        (_, None) => format!(
            "Key Vault reports that the current version of {object_type} {object} in vault {vault} \
             {}. The event carried no expiry date.",
            if kind == AlertKind::Expired {
                "has expired"
            } else {
                "expires soon"
            }
        ),
        (_, Some(n)) if n >= 0 => format!(
            "The current version of {object_type} {object} in vault {vault} expires on {date}. \
             Anything that uses it will fail after that moment."
        ),
        (_, Some(_)) => format!(
            "The current version of {object_type} {object} in vault {vault} expired on {date}. \
             Anything still using it is failing or will fail."
        ),
    }
}

/// What a certificate's expiry alert adds: its own key and secret expire with it, and whether
/// its policy should have renewed it.
fn notes(event: &KeyVaultEvent, kind: AlertKind) -> String {
    let expiry = matches!(kind, AlertKind::NearExpiry | AlertKind::Expired);
    if !expiry || event.event_type.object_kind() != Some(ObjectKind::Certificate) {
        return String::new();
    }
    let mut notes =
        " Its key and secret (the certificate's own, of the same name) expire with it: renewing          the certificate renews them."
            .to_owned();
    if event.reminder.and_then(|r| r.auto_renews) == Some(true) {
        notes.push_str(
            " Its policy renews it automatically before it expires, so this notice means the              renewal has not happened yet: check the issuer and the certificate's operation in              the portal.",
        );
    }
    notes
}

/// The footer line: which event, or which reminder of the daily sweep.
fn origin(event: &KeyVaultEvent) -> String {
    let id = match clean(&event.id) {
        id if id.is_empty() => "none".to_owned(),
        id => id,
    };
    match (event.event_type, event.reminder) {
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
    let mut rows = vec![row("Vault", names.vault.clone(), true)];
    if event.event_type != EventType::VaultAccessPolicyChanged {
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
        EventType::Reminder(_) => "Checked",
        _ => "Event time",
    };
    rows.push(row(when, time(event.event_time, "(not given)"), false));
    rows
}

fn next_steps(kind: AlertKind, names: &Names) -> Vec<String> {
    let Names {
        object_type,
        object,
        vault,
    } = names;
    match kind {
        AlertKind::NearExpiry => vec![
            format!("Create a new version of {object_type} {object} in {vault} with a later expiry date (or rotate it now)."),
            "Update or restart the applications that pin this version, so they pick up the new one.".to_owned(),
            "If the object is no longer used, disable it so nobody depends on it.".to_owned(),
        ],
        AlertKind::Expired => vec![
            format!("Create a new version of {object_type} {object} in {vault} right away."),
            "Check the applications that use it: calls with the expired version are failing.".to_owned(),
            "Set up a rotation policy so the next version renews before it expires.".to_owned(),
        ],
        AlertKind::NewVersion => vec![
            "Check that the rotation was expected.".to_owned(),
            "Make sure the applications that pin a version move to the new one.".to_owned(),
        ],
        AlertKind::AccessPolicyChanged => vec![
            format!("Review the access policies (or role assignments) of vault {vault} in the portal."),
            "Check the vault's activity log to see who made the change and when.".to_owned(),
            "If the change was not expected, revert it and treat it as a security incident.".to_owned(),
        ],
    }
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
