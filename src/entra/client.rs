//! Reading the applications' credentials from Microsoft Graph v1.0: `GET /applications`, page by
//! page. `@odata.nextLink`s are followed on Graph's own origin alone (the token goes nowhere
//! else), never twice to one page, and for at most [`MAX_PAGES`] pages; a throttled page is asked
//! again after Graph's `Retry-After`.

use super::{AppCredential, CredentialKind};
use crate::http::{self, Backoff, PolicyError, Verdict};
use crate::identity::ManagedIdentity;
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde::Deserialize;
use std::time::Duration;

/// Bound on one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Largest page read: 999 applications with their credentials.
const PAGE_CAP: usize = 16 * 1024 * 1024;

/// Most pages read: 999 applications a page, so about two million.
const MAX_PAGES: usize = 2_000;

/// Waits after a throttled request when Graph does not say how long; one step per attempt.
const BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Why the applications could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    /// Graph refused the identity: it lacks the `Application.Read.All` permission.
    #[error(
        "Microsoft Graph refused to list the applications ({0}): grant the app's identity the \
         Application.Read.All application permission"
    )]
    Denied(String),
    /// No answer kv-notify can use (no token, unreachable, throttled throughout, a bad page).
    #[error("cannot read the applications from Microsoft Graph: {0}")]
    Failed(String),
}

/// Reads the applications' credentials as the app's identity.
pub struct EntraClient {
    http: reqwest::Client,
    identity: ManagedIdentity,
    endpoint: Url,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Application>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Application {
    #[serde(default)]
    id: String,
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    password_credentials: Vec<Credential>,
    #[serde(default)]
    key_credentials: Vec<Credential>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credential {
    #[serde(default)]
    key_id: String,
    #[serde(default)]
    display_name: Option<String>,
    end_date_time: Option<String>,
}

impl EntraClient {
    /// A client for Graph at `endpoint` (its origin: `https://graph.microsoft.com`), with tokens
    /// from `identity` (for that resource).
    pub fn new(identity: ManagedIdentity, endpoint: Url) -> Result<Self, PolicyError> {
        Ok(Self {
            http: http::client(TIMEOUT)?,
            identity,
            endpoint,
        })
    }

    /// Every credential of every application.
    pub async fn credentials(&self) -> Result<Vec<AppCredential>, EntraError> {
        let mut url = self.endpoint.clone();
        url.set_path("/v1.0/applications");
        url.set_query(Some(
            "$select=id,appId,displayName,passwordCredentials,keyCredentials&$top=999",
        ));
        let mut read = http::Pages::new(&url, MAX_PAGES);
        let mut found = Vec::new();
        loop {
            let page = self.page(url).await?;
            for app in page.value {
                found.extend(credentials_of(app));
            }
            let Some(next) = page.next_link.filter(|l| !l.is_empty()) else {
                return Ok(found);
            };
            url = Url::parse(&next)
                .ok()
                .filter(|next| next.origin() == self.endpoint.origin())
                .ok_or_else(|| EntraError::Failed("a nextLink off Graph: not followed".into()))?;
            read.admit(&url)
                .map_err(|refused| EntraError::Failed(refused.to_string()))?;
        }
    }

    async fn page(&self, url: Url) -> Result<Page, EntraError> {
        let failed = |why: String| EntraError::Failed(why);
        let mut backoff = Backoff::new(&BACKOFF, Duration::from_secs(1));
        loop {
            let token = self.identity.token().await.map_err(|e| failed(e.0))?;
            let response = self
                .http
                .get(url.clone())
                .bearer_auth(token.expose_secret())
                .send()
                .await
                .map_err(|e| failed(e.without_url().to_string()))?;
            let status = response.status();
            if status.is_success() {
                return http::read_json(response, PAGE_CAP)
                    .await
                    .map_err(|e| failed(format!("unreadable page: {e}")));
            }
            let retry_after = http::retry_after(response.headers());
            let detail = http::error_detail(response).await;
            match (status, http::verdict(status)) {
                (StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED, _) => {
                    return Err(EntraError::Denied(format!("{status}: {detail}")));
                }
                (_, Verdict::Transient) => match backoff.next_wait(retry_after) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(failed(format!("{status} throughout: {detail}"))),
                },
                _ => return Err(failed(format!("{status}: {detail}"))),
            }
        }
    }
}

/// An application's credentials, with their end dates checked like any date kv-notify reads.
fn credentials_of(app: Application) -> Vec<AppCredential> {
    let name = app.display_name.unwrap_or_else(|| app.app_id.clone());
    let kinds = [
        (CredentialKind::Secret, app.password_credentials),
        (CredentialKind::Certificate, app.key_credentials),
    ];
    kinds
        .into_iter()
        .flat_map(|(kind, credentials)| credentials.into_iter().map(move |c| (kind, c)))
        .map(|(kind, credential)| AppCredential {
            app_name: name.clone(),
            app_id: app.app_id.clone(),
            app_object_id: app.id.clone(),
            kind,
            key_id: credential.key_id,
            name: credential.display_name.unwrap_or_default(),
            ends: credential
                .end_date_time
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .and_then(|t| crate::event::sane_date(t.timestamp())),
        })
        .collect()
}
