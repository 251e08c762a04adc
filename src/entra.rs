//! Microsoft Entra ID, the second source beside `vault`: the client secrets and certificates of
//! the tenant's application registrations, read through Microsoft Graph with the app's identity
//! (metadata only: Graph never returns a secret's value after its creation).
//!
//! What breaks production is often not a Key Vault object but an app registration's secret that
//! expires at the issuer (AADSTS7000222), and Entra mails nobody about it.

mod client;

pub use client::EntraClient;

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
