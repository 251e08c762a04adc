//! Microsoft Entra ID, the second source beside `vault`: the client secrets and certificates of
//! the tenant's application registrations and of their enterprise applications (SAML signing
//! certificates among them), read through Microsoft Graph with the app's identity (metadata
//! only: Graph never returns a secret's value after its creation).
//!
//! What breaks production is often not a Key Vault object but an app registration's secret that
//! expires at the issuer (AADSTS7000222), and Entra mails nobody about it.

mod client;

pub use client::{EntraClient, EntraError};

use crate::event::Reminder;
use crate::event::{Application, DueCredential, EventKey, EventType, Holder, KeyVaultEvent};
use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;

/// One credential of one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredential {
    /// The application's display name (shared by its credentials, as are the two ids).
    pub app_name: Arc<str>,
    /// Its application (client) id.
    pub app_id: Arc<str>,
    /// The object id of what holds the credential (the app registration or its enterprise
    /// application).
    pub holder_id: Arc<str>,
    /// Which of the two holds it.
    pub holder: Holder,
    /// A client secret, a certificate, or a SAML signing certificate.
    pub kind: CredentialKind,
    /// The credential's id.
    pub key_id: String,
    /// Its display name, as its creator gave it (may be empty).
    pub name: String,
    /// When it stops working.
    pub ends: Option<DateTime<Utc>>,
}

/// What kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A client secret (`passwordCredentials`).
    Secret,
    /// A certificate (`keyCredentials`).
    Certificate,
    /// An enterprise application's SAML token-signing certificate (`keyCredentials` with usage
    /// `Sign`).
    SigningCertificate,
}

impl CredentialKind {
    /// `AppSecret`, `AppCertificate` or `SamlSigningCertificate`, as listings call it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "AppSecret",
            Self::Certificate => "AppCertificate",
            Self::SigningCertificate => "SamlSigningCertificate",
        }
    }

    /// In words, at the start of a sentence.
    pub fn title(self) -> &'static str {
        match self {
            Self::Secret => "Client secret",
            Self::Certificate => "Certificate",
            Self::SigningCertificate => "SAML signing certificate",
        }
    }

    /// In words, as a mail says it.
    pub fn words(self) -> &'static str {
        match self {
            Self::Secret => "client secret",
            Self::Certificate => "certificate",
            Self::SigningCertificate => "SAML signing certificate",
        }
    }
}

impl AppCredential {
    /// The ledger's name for this credential at `step`: it changes with the end date, so a
    /// credential whose end date moves climbs the ladder again.
    pub fn step_key(&self, step: i64) -> EventKey {
        EventKey::app_step(&self.holder_id, &self.key_id, &self.end_text(), step)
    }

    /// The credential of the same holder and kind among `all` that ends last, if it ends later
    /// than this one.
    pub fn newer<'a>(&self, all: &'a [AppCredential]) -> Option<&'a AppCredential> {
        all.iter()
            .filter(|c| c.holder_id == self.holder_id && c.kind == self.kind)
            .filter(|c| c.key_id != self.key_id)
            .filter(|c| matches!((c.ends, self.ends), (Some(theirs), Some(ours)) if theirs > ours))
            .max_by_key(|c| c.ends)
    }

    /// Its name for people: its display name, else its key id.
    pub fn label(&self) -> &str {
        match self.name.as_str() {
            "" => &self.key_id,
            name => name,
        }
    }

    /// One line about it, for a vault secret that holds it: "application X's client secret
    /// "prod" (key id …), which expires on …".
    pub fn described(&self) -> String {
        let ends = match self.ends {
            Some(t) if t <= Utc::now() => format!("which expired on {}", t.format("%Y-%m-%d")),
            Some(t) => format!("which expires on {}", t.format("%Y-%m-%d")),
            None => "which never expires".to_owned(),
        };
        format!(
            "Entra ID application {}'s {} \"{}\" (key id {}), {ends}",
            self.app_name,
            self.kind.words(),
            self.label(),
            self.key_id
        )
    }

    fn end_text(&self) -> String {
        self.ends
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    }
}

/// The notice of one holder's credentials `due` at one step of the ladder (`reminder`), as
/// of `now`: the application stands where an event's vault does, its soonest credential where
/// an object does, and every due credential is listed, each with what else to know (`notes`,
/// e.g. a newer one exists). Known to the ledger by the holder, the step and the credentials
/// (with their end dates), so each recipient gets it once.
pub fn notice(
    due: &[(&AppCredential, Vec<String>)],
    reminder: Reminder,
    now: DateTime<Utc>,
) -> Option<KeyVaultEvent> {
    let mut due: Vec<_> = due.iter().collect();
    due.sort_by(|(a, _), (b, _)| (a.ends, &a.key_id).cmp(&(b.ends, &b.key_id)));
    let (first, _) = due.first()?;
    let members: Vec<String> = due
        .iter()
        .map(|(c, _)| format!("{}@{}", c.key_id.to_lowercase(), c.end_text()))
        .collect();
    let key = EventKey::app_notice(&first.holder_id, reminder.step, &members);
    let portal = match first.holder {
        Holder::Application => format!(
            "https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/{}",
            first.app_id
        ),
        Holder::ServicePrincipal => format!(
            "https://portal.azure.com/#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/SignOn/objectId/{}/appId/{}",
            first.holder_id, first.app_id
        ),
    };
    let object = match due.len() {
        1 => first.label().to_owned(),
        n => format!("{} and {} more", first.label(), n - 1),
    };
    Some(KeyVaultEvent {
        vault: Some(first.app_name.to_string()),
        object_type: Some(first.kind.title().to_owned()),
        object: Some(object),
        version: Some(first.key_id.clone()),
        object_url: Some(portal),
        expires: first.ends,
        event_time: Some(now),
        reminder: Some(reminder),
        application: Some(Application {
            app_id: first.app_id.to_string(),
            object_id: first.holder_id.to_string(),
            holder: first.holder,
            credentials: due
                .iter()
                .map(|(c, notes)| DueCredential {
                    kind: c.kind.words(),
                    name: c.name.clone(),
                    key_id: c.key_id.clone(),
                    ends: c.ends,
                    notes: notes.clone(),
                })
                .collect(),
        }),
        ..KeyVaultEvent::new(String::new(), key, EventType::AppCredentialReminder)
    })
}

/// What a credential's notice says of a `newer` one of its kind on the same holder.
pub fn newer_note(credential: &AppCredential, newer: &AppCredential) -> String {
    let ends = newer
        .ends
        .map(|t| format!(" (it ends on {})", t.format("%Y-%m-%d")))
        .unwrap_or_default();
    format!(
        "A newer {} exists{ends}: remove this one once everything that signs in with it has \
         moved.",
        credential.kind.words()
    )
}

#[cfg(test)]
mod tests;
