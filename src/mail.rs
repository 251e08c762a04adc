//! Turns a Key Vault event into a mail: subject, plain text and HTML, built from templates.
//!
//! Every value taken from an event is cleaned of control characters before it is used, so a
//! name holding CR/LF cannot add a header, and the HTML template is auto-escaped by minijinja,
//! so a name holding markup shows as text. Recipients and sender come from settings only.

use crate::event::{EventType, KeyVaultEvent};
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, MultiPart};
use minijinja::Environment;
use serde::Serialize;

/// Longest name shown in a subject line, in characters.
const SUBJECT_NAME_LIMIT: usize = 80;

/// Which mail an event calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// The object expires soon.
    NearExpiry,
    /// The object has expired.
    Expired,
    /// The vault's access policy changed.
    AccessPolicyChanged,
}

impl MailKind {
    /// The mail an event type calls for, if any.
    pub fn for_event(event_type: EventType) -> Option<Self> {
        match event_type {
            EventType::NearExpiry(_) => Some(Self::NearExpiry),
            EventType::Expired(_) => Some(Self::Expired),
            EventType::VaultAccessPolicyChanged => Some(Self::AccessPolicyChanged),
            EventType::NewVersionCreated(_) => None,
        }
    }
}

/// A rendered mail, before addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The subject line: one line, no control characters.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// A template failed to render.
#[derive(Debug, thiserror::Error)]
#[error("mail template failed: {0}")]
pub struct TemplateError(#[from] minijinja::Error);

/// Renders mails from the built-in templates.
pub struct Composer {
    templates: Environment<'static>,
}

impl Default for Composer {
    fn default() -> Self {
        let mut templates = Environment::new();
        templates
            .add_template("mail.html", include_str!("../templates/mail.html"))
            .expect("the built-in HTML template parses");
        templates
            .add_template("mail.txt", include_str!("../templates/mail.txt"))
            .expect("the built-in text template parses");
        Self { templates }
    }
}

impl Composer {
    /// Renders the mail of `kind` for `event`, with days counted from `now`.
    pub fn render(
        &self,
        event: &KeyVaultEvent,
        kind: MailKind,
        now: DateTime<Utc>,
    ) -> Result<Rendered, TemplateError> {
        let context = MailContext::new(event, kind, now);
        let subject = context.subject.clone();
        let context = minijinja::Value::from(minijinja::value::Serde(&context));
        Ok(Rendered {
            subject,
            text: self.templates.get_template("mail.txt")?.render(&context)?,
            html: self.templates.get_template("mail.html")?.render(&context)?,
        })
    }
}

/// Builds the message: one multipart/alternative mail to every recipient in `To`.
pub fn message(
    from: &Mailbox,
    to: &[Mailbox],
    rendered: Rendered,
) -> Result<Message, lettre::error::Error> {
    let to: Mailboxes = to.iter().cloned().collect();
    Message::builder()
        .from(from.clone())
        .mailbox(lettre::message::header::To::from(to))
        .subject(rendered.subject)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
}

/// The variables the templates see.
#[derive(Debug, Serialize)]
struct MailContext {
    subject: String,
    banner: &'static str,
    accent: &'static str,
    headline: String,
    summary: String,
    details: Vec<Detail>,
    next_steps: Vec<String>,
    portal_url: String,
    event_type: String,
    event_id: String,
}

#[derive(Debug, Serialize)]
struct Detail {
    label: &'static str,
    value: String,
    strong: bool,
}

impl MailContext {
    fn new(event: &KeyVaultEvent, kind: MailKind, now: DateTime<Utc>) -> Self {
        let names = Names::of(event);
        let (banner, accent) = match kind {
            MailKind::NearExpiry => ("Expiring soon", "#b45309"),
            MailKind::Expired => ("Expired", "#b91c1c"),
            MailKind::AccessPolicyChanged => ("Security alert", "#1d4ed8"),
        };
        let when = relative_expiry(event.expires, now);
        let headline = headline(kind, &names, &when);
        Self {
            subject: subject_line(&headline, kind),
            banner,
            accent,
            summary: summary(kind, &names, event.expires, &when),
            details: details(event, &names, &when),
            next_steps: next_steps(kind, &names),
            portal_url: portal_url(event),
            event_type: event.event_type.short_name(),
            event_id: clean(&event.id),
            headline,
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
        let object_type = event.object_type.as_deref().unwrap_or("Object");
        Self {
            object_type: clean(object_type),
            object: event
                .object
                .as_deref()
                .map_or_else(|| "(unnamed)".to_owned(), clean),
            vault: event
                .vault
                .as_deref()
                .map_or_else(|| "(unknown vault)".to_owned(), clean),
        }
    }
}

/// How an expiry relates to now, in whole days.
enum Relative {
    Unknown,
    Future(i64),
    Today,
    Past(i64),
}

fn relative_expiry(expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Relative {
    let Some(expires) = expires else {
        return Relative::Unknown;
    };
    let days = (expires - now).num_days();
    match days {
        d if d > 0 => Relative::Future(d),
        0 => Relative::Today,
        d => Relative::Past(-d),
    }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

fn headline(kind: MailKind, names: &Names, when: &Relative) -> String {
    let Names {
        object_type, vault, ..
    } = names;
    let object = truncate(&names.object, SUBJECT_NAME_LIMIT);
    let vault = truncate(vault, SUBJECT_NAME_LIMIT);
    let state = match (kind, when) {
        (MailKind::AccessPolicyChanged, _) => {
            return format!("Access policy changed on vault {vault}");
        }
        (_, Relative::Future(n)) => format!("expires in {}", days(*n)),
        (MailKind::NearExpiry, Relative::Today) => "expires today".to_owned(),
        (MailKind::Expired, Relative::Today) => "expired today".to_owned(),
        (_, Relative::Past(n)) => format!("expired {} ago", days(*n)),
        (MailKind::NearExpiry, Relative::Unknown) => "expires soon".to_owned(),
        (MailKind::Expired, Relative::Unknown) => "has expired".to_owned(),
    };
    format!("{object_type} {object} in {vault} {state}")
}

fn subject_line(headline: &str, kind: MailKind) -> String {
    match kind {
        MailKind::NearExpiry => headline.to_owned(),
        MailKind::Expired => format!("EXPIRED: {headline}"),
        MailKind::AccessPolicyChanged => format!("Security alert: {headline}"),
    }
}

fn summary(
    kind: MailKind,
    names: &Names,
    expires: Option<DateTime<Utc>>,
    when: &Relative,
) -> String {
    let Names {
        object_type,
        object,
        vault,
    } = names;
    let date = expires.map(format_time).unwrap_or_default();
    match (kind, when) {
        (MailKind::AccessPolicyChanged, _) => format!(
            "The access policy of Key Vault {vault} was changed (or the vault moved to or from Azure RBAC). \
             Check that only the expected identities can read or manage its secrets, keys and certificates."
        ),
        (_, Relative::Unknown) => format!(
            "Key Vault reports that the current version of {object_type} {object} in vault {vault} \
             {}. The event carried no expiry date.",
            if kind == MailKind::Expired {
                "has expired"
            } else {
                "expires soon"
            }
        ),
        (_, Relative::Future(_)) | (_, Relative::Today) => format!(
            "The current version of {object_type} {object} in vault {vault} expires on {date}. \
             Anything that uses it will fail after that moment."
        ),
        (_, Relative::Past(_)) => format!(
            "The current version of {object_type} {object} in vault {vault} expired on {date}. \
             Anything still using it is failing or will fail."
        ),
    }
}

fn details(event: &KeyVaultEvent, names: &Names, when: &Relative) -> Vec<Detail> {
    let row = |label, value: String, strong| Detail {
        label,
        value,
        strong,
    };
    let optional =
        |value: &Option<String>| value.as_deref().map_or_else(|| "(none)".to_owned(), clean);
    let mut rows = vec![row("Vault", names.vault.clone(), true)];
    if event.event_type != EventType::VaultAccessPolicyChanged {
        rows.push(row("Type", names.object_type.clone(), false));
        rows.push(row("Name", names.object.clone(), true));
        rows.push(row("Version", optional(&event.version), false));
        let expires = event
            .expires
            .map_or_else(|| "(not set)".to_owned(), format_time);
        rows.push(row("Expires", expires, true));
        let left = match when {
            Relative::Unknown => "unknown".to_owned(),
            Relative::Future(n) => format!("{} left", days(*n)),
            Relative::Today => "expires today".to_owned(),
            Relative::Past(n) => format!("expired {} ago", days(*n)),
        };
        rows.push(row("Days left", left, true));
        let not_before = event
            .not_before
            .map_or_else(|| "(not set)".to_owned(), format_time);
        rows.push(row("Not before", not_before, false));
    }
    let event_time = event
        .event_time
        .map_or_else(|| "(not given)".to_owned(), format_time);
    rows.push(row("Event time", event_time, false));
    rows
}

fn next_steps(kind: MailKind, names: &Names) -> Vec<String> {
    let Names {
        object_type,
        object,
        vault,
    } = names;
    match kind {
        MailKind::NearExpiry => vec![
            format!("Create a new version of {object_type} {object} in {vault} with a later expiry date (or rotate it now)."),
            "Update or restart the applications that pin this version, so they pick up the new one.".to_owned(),
            "If the object is no longer used, disable it so nobody depends on it.".to_owned(),
        ],
        MailKind::Expired => vec![
            format!("Create a new version of {object_type} {object} in {vault} right away."),
            "Check the applications that use it: calls with the expired version are failing.".to_owned(),
            "Set up a rotation policy so the next version renews before it expires.".to_owned(),
        ],
        MailKind::AccessPolicyChanged => vec![
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

/// Replaces control characters (CR, LF, TAB, ...) with spaces and trims.
fn clean(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.trim().to_owned()
}

fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ObjectKind;
    use chrono::TimeDelta;

    fn event(
        event_type: EventType,
        object: &str,
        expires_in_days: Option<i64>,
    ) -> (KeyVaultEvent, DateTime<Utc>) {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
        let event = KeyVaultEvent {
            id: "e1".into(),
            event_type,
            vault: Some("prod-kv".into()),
            object_type: event_type.object_kind().map(|k| k.as_str().to_owned()),
            object: Some(object.into()),
            version: Some("v1".into()),
            object_url: None,
            topic: Some(
                "/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/prod-kv"
                    .into(),
            ),
            not_before: None,
            expires: expires_in_days.map(|d| now + TimeDelta::days(d) + TimeDelta::hours(1)),
            event_time: Some(now),
            warnings: vec![],
        };
        (event, now)
    }

    fn render(event_type: EventType, object: &str, days: Option<i64>) -> Rendered {
        let (event, now) = event(event_type, object, days);
        let kind = MailKind::for_event(event_type).expect("a mail kind");
        Composer::default()
            .render(&event, kind, now)
            .expect("renders")
    }

    #[test]
    fn near_expiry_subject_counts_days_left() {
        let mail = render(
            EventType::NearExpiry(ObjectKind::Secret),
            "db-password",
            Some(29),
        );
        assert_eq!(
            mail.subject,
            "Secret db-password in prod-kv expires in 29 days"
        );
        assert!(mail.text.contains("29 days left"));
    }

    #[test]
    fn expired_subject_is_marked_and_counts_days_since() {
        let mail = render(EventType::Expired(ObjectKind::Key), "signing", Some(-3));
        assert_eq!(
            mail.subject,
            "EXPIRED: Key signing in prod-kv expired 2 days ago"
        );
    }

    #[test]
    fn markup_in_names_is_escaped_in_html_only() {
        let mail = render(
            EventType::NearExpiry(ObjectKind::Secret),
            "<b>x</b>",
            Some(5),
        );
        assert!(!mail.html.contains("<b>x</b>"));
        assert!(mail.html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"));
        assert!(mail.text.contains("<b>x</b>"));
    }

    #[test]
    fn line_breaks_in_names_never_reach_the_subject() {
        let mail = render(
            EventType::NearExpiry(ObjectKind::Secret),
            "a\r\nBcc: evil@x.com",
            Some(5),
        );
        assert!(!mail.subject.contains(['\r', '\n']));
    }

    #[test]
    fn portal_link_points_at_the_object_list_of_the_vault() {
        let mail = render(EventType::NearExpiry(ObjectKind::Certificate), "c", Some(5));
        assert!(mail.text.contains("/vaults/prod-kv/certificates"));
    }
}
