//! Microsoft Entra ID, the second source beside `vault`: the client secrets and certificates of
//! the tenant's application registrations, read through Microsoft Graph with the app's identity
//! (metadata only: Graph never returns a secret's value after its creation).
//!
//! What breaks production is often not a Key Vault object but an app registration's secret that
//! expires at the issuer (AADSTS7000222), and Entra mails nobody about it.

mod client;

pub use client::EntraClient;

use crate::event::{Diagnosis, EventKey, EventType, KeyVaultEvent, Reminder};
use crate::ladder::Position;
use chrono::{DateTime, Utc};

/// One credential of one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredential {
    /// The application's display name.
    pub app_name: String,
    /// Its application (client) id.
    pub app_id: String,
    /// Its object id.
    pub app_object_id: String,
    /// A client secret or a certificate.
    pub kind: CredentialKind,
    /// The credential's id.
    pub key_id: String,
    /// Its display name, as its creator gave it (may be empty).
    pub name: String,
    /// When it stops working.
    pub ends: Option<DateTime<Utc>>,
}

/// What kind of credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A client secret (`passwordCredentials`).
    Secret,
    /// A certificate (`keyCredentials`).
    Certificate,
}

impl CredentialKind {
    /// `AppSecret` or `AppCertificate`, as listings call it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "AppSecret",
            Self::Certificate => "AppCertificate",
        }
    }
}

impl AppCredential {
    /// Its reminder at `position` on the ladder (`None` when it is on no step), as of `now`:
    /// the application stands where an event's vault does, the credential where its object
    /// does, and the portal link opens the application's "Certificates & secrets". With a
    /// `newer` credential of the same kind on the application (one that ends later), the
    /// reminder says so: the old one is to be removed once nothing uses it.
    pub fn reminder(
        &self,
        position: Position,
        now: DateTime<Utc>,
        newer: Option<&AppCredential>,
    ) -> Option<KeyVaultEvent> {
        let Position::In {
            step,
            kept_from,
            next,
        } = position
        else {
            return None;
        };
        let key = EventKey::app_step(&self.app_object_id, &self.key_id, step);
        let kind = match self.kind {
            CredentialKind::Secret => "App secret",
            CredentialKind::Certificate => "App certificate",
        };
        let name = match self.name.as_str() {
            "" => self.key_id.clone(),
            name => name.to_owned(),
        };
        Some(KeyVaultEvent {
            vault: Some(self.app_name.clone()),
            object_type: Some(kind.to_owned()),
            object: Some(name),
            version: Some(self.key_id.clone()),
            object_url: Some(format!(
                "https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/{}",
                self.app_id
            )),
            expires: self.ends,
            event_time: Some(now),
            reminder: Some(Reminder {
                step,
                kept_from,
                next,
                auto_renews: None,
            }),
            diagnosis: newer.map(|newer| Diagnosis {
                cause: format!(
                    "A newer {} exists on this application{}: remove this one once everything \
                     that signs in with it has moved.",
                    match self.kind {
                        CredentialKind::Secret => "secret",
                        CredentialKind::Certificate => "certificate",
                    },
                    newer
                        .ends
                        .map(|t| format!(" (it ends on {})", t.format("%Y-%m-%d")))
                        .unwrap_or_default()
                ),
                fix: Vec::new(),
            }),
            ..KeyVaultEvent::new(String::new(), key, EventType::AppCredentialReminder)
        })
    }

    /// The credential of the same application and kind among `all` that ends last, if it ends
    /// later than this one.
    pub fn newer<'a>(&self, all: &'a [AppCredential]) -> Option<&'a AppCredential> {
        all.iter()
            .filter(|c| c.app_object_id == self.app_object_id && c.kind == self.kind)
            .filter(|c| c.key_id != self.key_id)
            .filter(|c| matches!((c.ends, self.ends), (Some(theirs), Some(ours)) if theirs > ours))
            .max_by_key(|c| c.ends)
    }
}
