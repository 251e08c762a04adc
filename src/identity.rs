//! Tokens for Azure services from the function app's managed identity: `GET
//! {IDENTITY_ENDPOINT}?resource=…&api-version=2019-08-01` with the `X-IDENTITY-HEADER` secret
//! (and `client_id` for a user-assigned identity), cached until five minutes before they expire.

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;

/// Bound on one token request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A token is renewed this long before it expires.
const RENEW_BEFORE: TimeDelta = TimeDelta::minutes(5);

/// The platform's managed-identity endpoint, for one resource.
pub struct ManagedIdentity {
    endpoint: String,
    header: SecretString,
    client_id: Option<String>,
    resource: String,
    http: reqwest::Client,
    cached: Mutex<Option<(SecretString, DateTime<Utc>)>>,
}

impl std::fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentity")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// Epoch seconds, as a string.
    expires_on: String,
}

impl ManagedIdentity {
    /// The identity the platform gives this app (`endpoint` and `header` are the values of
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`), for tokens to `resource`.
    pub fn new(
        endpoint: String,
        header: SecretString,
        client_id: Option<String>,
        resource: &str,
    ) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            endpoint,
            header,
            client_id,
            resource: resource.to_owned(),
            http,
            cached: Mutex::new(None),
        })
    }

    /// A token for the resource, from the cache while it has more than five minutes left.
    pub async fn token(&self) -> Result<SecretString, String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && *expires - RENEW_BEFORE > Utc::now()
        {
            return Ok(token.clone());
        }
        let mut query = vec![
            ("resource", self.resource.as_str()),
            ("api-version", "2019-08-01"),
        ];
        if let Some(id) = &self.client_id {
            query.push(("client_id", id));
        }
        let response = self
            .http
            .get(&self.endpoint)
            .query(&query)
            .header("X-IDENTITY-HEADER", self.header.expose_secret())
            .send()
            .await
            .map_err(|e| format!("managed identity: {}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "managed identity: no token for {} ({status}); is the identity enabled{}?",
                self.resource,
                if self.client_id.is_some() {
                    " and assigned to the app"
                } else {
                    ""
                }
            ));
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| format!("managed identity: unreadable answer: {e}"))?;
        let expires = answer
            .expires_on
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .unwrap_or_else(|| Utc::now() + RENEW_BEFORE * 2);
        let token = SecretString::from(answer.access_token);
        *cached = Some((token.clone(), expires));
        Ok(token)
    }
}
