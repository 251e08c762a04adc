//! Tokens for Azure services: from the function app's managed identity in Azure (`GET
//! {IDENTITY_ENDPOINT}?resource=…&api-version=2019-08-01` with the `X-IDENTITY-HEADER` secret,
//! and `client_id` for a user-assigned identity), or from the Azure CLI's login on a developer's
//! machine (`az account get-access-token`). Cached until five minutes before they expire.

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;

/// Bound on one token request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The Azure CLI can take a while: it may refresh its own login first.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// A token is renewed this long before it expires.
const RENEW_BEFORE: TimeDelta = TimeDelta::minutes(5);

/// Largest token answer read: a token is a few KiB.
const TOKEN_ANSWER_CAP: usize = 64 * 1024;

/// Why no token came, in words that name the fix (`az login`, enabling the identity).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(pub String);

/// The platform's managed identity (`IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, a secret);
/// `None` on a developer's machine, where tokens come from the Azure CLI's login.
pub type Identity = Option<(String, SecretString)>;

/// Tokens for one resource, from the platform's managed-identity endpoint or the Azure CLI.
pub struct ManagedIdentity {
    source: Source,
    resource: String,
    cached: Mutex<Option<(SecretString, DateTime<Utc>)>>,
}

enum Source {
    /// The platform's endpoint (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`).
    Platform {
        endpoint: String,
        header: SecretString,
        client_id: Option<String>,
        http: reqwest::Client,
    },
    /// `az account get-access-token`, as the developer logged in with `az login`.
    AzureCli,
}

impl std::fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("ManagedIdentity");
        match &self.source {
            Source::Platform {
                endpoint,
                client_id,
                ..
            } => debug
                .field("endpoint", endpoint)
                .field("client_id", client_id),
            Source::AzureCli => debug.field("source", &"azure cli"),
        };
        debug
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// The platform's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// Epoch seconds, as a string.
    expires_on: String,
}

/// The Azure CLI's answer (`--output json`).
#[derive(Deserialize)]
struct CliAnswer {
    #[serde(rename = "accessToken")]
    access_token: String,
    /// Epoch seconds (Azure CLI 2.54 and later).
    expires_on: Option<i64>,
}

impl ManagedIdentity {
    /// The identity the platform gives this app (`endpoint` and `header` are the values of
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`), for tokens to `resource`.
    pub fn new(
        endpoint: String,
        header: SecretString,
        client_id: Option<String>,
        resource: &str,
    ) -> Result<Self, crate::http::PolicyError> {
        let http = crate::http::client(TIMEOUT)?;
        let source = Source::Platform {
            endpoint,
            header,
            client_id,
            http,
        };
        Ok(Self::with_source(source, resource))
    }

    /// Tokens for `resource` from the platform's identity, or from the Azure CLI's login where
    /// the settings found none (a developer's machine).
    pub fn for_resource(
        identity: &Identity,
        client_id: &Option<String>,
        resource: &str,
    ) -> Result<Self, crate::http::PolicyError> {
        Ok(match identity {
            Some((endpoint, header)) => Self::new(
                endpoint.clone(),
                header.clone(),
                client_id.clone(),
                resource,
            )?,
            None => Self::azure_cli(resource),
        })
    }

    /// The developer's own login, through the Azure CLI (`az login`), for tokens to `resource`:
    /// what a local run (`func start`) uses where there is no managed identity.
    pub fn azure_cli(resource: &str) -> Self {
        Self::with_source(Source::AzureCli, resource)
    }

    fn with_source(source: Source, resource: &str) -> Self {
        Self {
            source,
            resource: resource.to_owned(),
            cached: Mutex::new(None),
        }
    }

    /// A token for the resource, from the cache while it has more than five minutes left.
    pub async fn token(&self) -> Result<SecretString, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && *expires - RENEW_BEFORE > Utc::now()
        {
            return Ok(token.clone());
        }
        let (token, expires) = match &self.source {
            Source::Platform {
                endpoint,
                header,
                client_id,
                http,
            } => self
                .ask_platform(http, endpoint, header, client_id.as_deref())
                .await
                .map_err(TokenError)?,
            Source::AzureCli => self.ask_azure_cli().await.map_err(TokenError)?,
        };
        *cached = Some((token.clone(), expires));
        Ok(token)
    }

    async fn ask_platform(
        &self,
        http: &reqwest::Client,
        endpoint: &str,
        header: &SecretString,
        client_id: Option<&str>,
    ) -> Result<(SecretString, DateTime<Utc>), String> {
        let mut query = vec![
            ("resource", self.resource.as_str()),
            ("api-version", "2019-08-01"),
        ];
        if let Some(id) = client_id {
            query.push(("client_id", id));
        }
        let response = http
            .get(endpoint)
            .query(&query)
            .header("X-IDENTITY-HEADER", header.expose_secret())
            .send()
            .await
            .map_err(|e| format!("managed identity: {}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "managed identity: no token for {} ({status}); is the identity enabled{}?",
                self.resource,
                if client_id.is_some() {
                    " and assigned to the app"
                } else {
                    ""
                }
            ));
        }
        let answer: TokenAnswer = crate::http::read_json(response, TOKEN_ANSWER_CAP)
            .await
            .map_err(|e| format!("managed identity: {e}"))?;
        let expires = answer
            .expires_on
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .unwrap_or_else(|| Utc::now() + RENEW_BEFORE * 2);
        Ok((SecretString::from(answer.access_token), expires))
    }

    async fn ask_azure_cli(&self) -> Result<(SecretString, DateTime<Utc>), String> {
        let failed = |why: String| {
            format!(
                "azure cli: no token for {} ({why}); run `az login` (there is no managed \
                 identity here: IDENTITY_ENDPOINT is not set)",
                self.resource
            )
        };
        let run = tokio::process::Command::new("az")
            .args(["account", "get-access-token", "--output", "json"])
            .args(["--resource", &self.resource])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(CLI_TIMEOUT, run)
            .await
            .map_err(|_| failed(format!("no answer within {} s", CLI_TIMEOUT.as_secs())))?
            .map_err(|e| failed(format!("cannot run az: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().next().unwrap_or_default();
            return Err(failed(first.chars().take(200).collect()));
        }
        let answer: CliAnswer = serde_json::from_slice(&output.stdout)
            .map_err(|e| failed(format!("unreadable answer: {e}")))?;
        let expires = answer
            .expires_on
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .unwrap_or_else(|| Utc::now() + RENEW_BEFORE * 2);
        Ok((SecretString::from(answer.access_token), expires))
    }
}
