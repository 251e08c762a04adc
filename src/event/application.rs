//! What a notice about an Entra ID application carries beyond a vault object's fields: the
//! application's ids and every credential of it due at the notice's step.

use crate::text::clean;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The application (or enterprise application) a notice is about, and its credentials due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// Its application (client) id.
    pub app_id: String,
    /// The object id of what holds the credentials: the app registration, or the service
    /// principal (enterprise application).
    pub object_id: String,
    /// Whether that is the app registration or the enterprise application.
    pub holder: Holder,
    /// The credentials due at the notice's step, soonest end first.
    pub credentials: Vec<DueCredential>,
}

/// Where a credential sits in Entra ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holder {
    /// On the app registration (`/applications`).
    Application,
    /// On the enterprise application, the tenant's service principal of it
    /// (`/servicePrincipals`): SAML signing certificates, and credentials added there.
    ServicePrincipal,
}

impl Holder {
    /// `application` or `servicePrincipal`, as webhooks carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::ServicePrincipal => "servicePrincipal",
        }
    }
}

/// One credential in a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCredential {
    /// `client secret`, `certificate` or `SAML signing certificate`.
    pub kind: &'static str,
    /// Its display name, as its creator gave it (may be empty).
    pub name: String,
    /// Its key id.
    pub key_id: String,
    /// When it stops working.
    pub ends: Option<DateTime<Utc>>,
    /// What else to know: a newer one of its kind exists, a vault secret holds it.
    pub notes: Vec<String>,
}

/// The application's part of an event's facts (the report, the alert, the JSON webhook).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationFacts {
    /// Its application (client) id.
    pub app_id: String,
    /// The object id of the app registration or the enterprise application.
    pub object_id: String,
    /// `application` or `servicePrincipal`.
    pub holder: &'static str,
    /// The credentials due.
    pub credentials: Vec<CredentialFacts>,
}

/// One credential's facts, cleaned for display.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialFacts {
    /// `client secret`, `certificate` or `SAML signing certificate`.
    pub kind: &'static str,
    /// Its display name (may be empty).
    pub name: String,
    /// Its key id.
    pub key_id: String,
    /// When it ends, RFC 3339 UTC.
    pub ends: Option<String>,
    /// What else to know.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Application {
    /// Its facts, cleaned of control characters.
    pub fn facts(&self) -> ApplicationFacts {
        ApplicationFacts {
            app_id: clean(&self.app_id),
            object_id: clean(&self.object_id),
            holder: self.holder.as_str(),
            credentials: self
                .credentials
                .iter()
                .map(|c| CredentialFacts {
                    kind: c.kind,
                    name: clean(&c.name),
                    key_id: clean(&c.key_id),
                    ends: c.ends.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    notes: c.notes.iter().map(|n| clean(n)).collect(),
                })
                .collect(),
        }
    }
}
