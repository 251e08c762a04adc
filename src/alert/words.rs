//! The words of an alert: its headline, subject, summary and next steps, by kind.

use super::{AlertKind, Names, SUBJECT_NAME_LIMIT, format_time};
use crate::event::{EventType, Holder, KeyVaultEvent, ObjectKind};
use crate::text::{clean, truncate};

pub(super) fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

pub(super) fn headline(kind: AlertKind, names: &Names, days_left: Option<i64>) -> String {
    let object_type = &names.object_type;
    let object = truncate(&names.object, SUBJECT_NAME_LIMIT);
    let vault = truncate(&names.vault, SUBJECT_NAME_LIMIT);
    let state = match (kind, days_left) {
        (AlertKind::AccessPolicyChanged, _) => {
            return format!("Access policy changed on vault {vault}");
        }
        (AlertKind::CannotSeeVault, _) => return format!("kv-notify cannot see vault {vault}"),
        (AlertKind::Health, _) => return "kv-notify needs attention".to_owned(),
        (AlertKind::AccessChanged, _) => return format!("Access changed on vault {vault}"),
        (AlertKind::NewVersion, _) => "has a new version".to_owned(),
        (_, Some(n)) if n > 0 => format!("expires in {}", days(n)),
        (AlertKind::NearExpiry, Some(0)) => "expires today".to_owned(),
        (AlertKind::Expired, Some(0)) => "expired today".to_owned(),
        (_, Some(n)) => format!("expired {} ago", days(-n)),
        (AlertKind::NearExpiry, None) => "expires soon".to_owned(),
        (AlertKind::Expired, None) => "has expired".to_owned(),
    };
    if names.count > 1 {
        return format!("{} credentials of {vault}: the first {state}", names.count);
    }
    format!("{object_type} {object} {} {vault} {state}", names.within)
}

/// A credential kind in the middle of a sentence: `client secret`, `SAML signing certificate`.
fn mid_sentence(kind: &str) -> String {
    match kind.split_once(' ') {
        Some((first, rest)) if first.chars().all(|c| c.is_ascii_uppercase()) => {
            format!("{first} {rest}")
        }
        _ => kind.to_lowercase(),
    }
}

pub(super) fn subject_line(headline: &str, kind: AlertKind) -> String {
    match kind {
        AlertKind::NearExpiry | AlertKind::NewVersion => headline.to_owned(),
        AlertKind::Expired => format!("EXPIRED: {headline}"),
        AlertKind::AccessPolicyChanged | AlertKind::CannotSeeVault | AlertKind::AccessChanged => {
            format!("Security alert: {headline}")
        }
        AlertKind::Health => format!("Health notice: {headline}"),
    }
}

pub(super) fn summary(
    kind: AlertKind,
    names: &Names,
    event: &KeyVaultEvent,
    days_left: Option<i64>,
) -> String {
    let expires = event.expires;
    let Names {
        object_type,
        object,
        vault,
        ..
    } = names;
    let date = expires.map(format_time).unwrap_or_default();
    if event.event_type == EventType::AppCredentialReminder {
        let verb = if days_left.is_some_and(|n| n < 0) {
            "expired on"
        } else {
            "expires on"
        };
        let count = event
            .application
            .as_ref()
            .map_or(1, |a| a.credentials.len());
        let holder = match event.application.as_ref().map(|a| a.holder) {
            Some(Holder::ServicePrincipal) => "enterprise application",
            _ => "application",
        };
        let first = match count {
            1 => format!("The {object_type} {object} of Entra ID {holder} {vault} {verb} {date}."),
            n => format!(
                "{n} credentials of Entra ID {holder} {vault} reach this reminder; the first, \
                 {object_type} {}, {verb} {date}.",
                event
                    .application
                    .as_ref()
                    .and_then(|a| a.credentials.first())
                    .map_or_else(|| object.clone(), |c| label(&c.name, &c.key_id))
            ),
        };
        let signing = object_type.starts_with("SAML");
        let consequence = if signing {
            "After that moment the service provider rejects the sign-in tokens it signs."
        } else {
            "Whatever signs in with it gets AADSTS7000222 after that moment."
        };
        return format!("{first} {consequence}");
    }
    if event.event_type == EventType::EntraUnreadable {
        return format!(
            "kv-notify's daily sweep could not read Entra ID's applications: {}. Until it can, \
             no application secret or certificate gets a reminder.",
            event
                .diagnosis
                .as_ref()
                .map_or("no reason given", |b| b.cause.as_str())
        );
    }
    match (kind, days_left) {
        (AlertKind::AccessPolicyChanged, _) => format!(
            "The access policy of Key Vault {vault} was changed (or the vault moved to or from Azure RBAC). \
             Check that only the expected identities can read or manage its secrets, keys and certificates."
        ),
        (AlertKind::AccessChanged, _) => super::access::summary(event, vault),
        (AlertKind::CannotSeeVault, _) => format!(
            "kv-notify's daily sweep could not read vault {vault}: {}. Until it can, nothing in \
             this vault gets a reminder, and its expiry events cannot be checked against it.",
            event
                .diagnosis
                .as_ref()
                .map_or("no reason given", |b| b.cause.as_str())
        ),
        (AlertKind::Health, _) => event
            .diagnosis
            .as_ref()
            .map_or_else(String::new, |d| d.cause.clone()),
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
pub(super) fn notes(event: &KeyVaultEvent, kind: AlertKind) -> String {
    let expiry = matches!(kind, AlertKind::NearExpiry | AlertKind::Expired);
    if !expiry || event.event_type.object_kind() != Some(ObjectKind::Certificate) {
        return String::new();
    }
    let mut notes =
        " Its key and secret (the certificate's own, of the same name) expire with it: renewing \
         the certificate renews them."
            .to_owned();
    if event.reminder.and_then(|r| r.auto_renews) == Some(true) {
        notes.push_str(
            " Its policy renews it automatically before it expires, so this notice means the \
             renewal has not happened yet: check the issuer and the certificate's operation in \
             the portal.",
        );
    }
    notes
}

pub(super) fn next_steps(kind: AlertKind, names: &Names, event: &KeyVaultEvent) -> Vec<String> {
    let Names {
        object_type,
        object,
        vault,
        ..
    } = names;
    if event.event_type == EventType::AppCredentialReminder {
        let object_type = mid_sentence(object_type);
        if object_type.starts_with("SAML") {
            return vec![
                format!(
                    "In enterprise application {vault}, Single sign-on: add a new SAML signing certificate."
                ),
                "Give its metadata to the service provider, then make the new certificate active."
                    .to_owned(),
                "Delete the old certificate once sign-ins work with the new one.".to_owned(),
            ];
        }
        let mut steps = vec![
            format!("Add a new {object_type} to application {vault} (Certificates & secrets)."),
            "Move everything that signs in with the old one to the new one.".to_owned(),
            format!(
                "Remove {object} once nothing uses it: an old credential left in place is how these outages happen."
            ),
        ];
        let held = event
            .application
            .iter()
            .flat_map(|a| &a.credentials)
            .any(|c| c.notes.iter().any(|n| n.contains("Key Vault secret")));
        if held {
            steps.insert(
                1,
                "Put the new one in the Key Vault secret that holds the old one (see the credential's note).".to_owned(),
            );
        }
        return steps;
    }
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
        AlertKind::CannotSeeVault | AlertKind::Health => event
            .diagnosis
            .as_ref()
            .map(|b| b.fix.clone())
            .unwrap_or_default(),
        AlertKind::AccessChanged => super::access::next_steps(event, vault),
        AlertKind::AccessPolicyChanged => vec![
            format!("Review the access policies (or role assignments) of vault {vault} in the portal."),
            "Check the vault's activity log to see who made the change and when.".to_owned(),
            "If the change was not expected, revert it and treat it as a security incident.".to_owned(),
        ],
    }
}

/// A credential's name for people: its display name, else its key id (cleaned).
pub(super) fn label(name: &str, key_id: &str) -> String {
    match clean(name) {
        name if name.is_empty() => clean(key_id),
        name => name,
    }
}
