//! Posting an alert's payload to a webhook: one client for every channel, under the HTTP
//! policy (no redirect followed, capped answers, the URL never printed).

use super::transport::WebhookTransport;
use crate::http::{self, Verdict};
use crate::outcome::Failure;
use crate::webhook::Webhook;
use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;

/// Posts alerts to webhooks. The HTTP client (and its TLS roots) is built on first use, so
/// that start-up, which the host waits on, does not pay for it.
pub struct WebhookClient {
    timeout: Duration,
    http: OnceLock<Result<reqwest::Client, http::PolicyError>>,
}

impl WebhookClient {
    /// A client whose connections time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            http: OnceLock::new(),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, String> {
        let built = self.http.get_or_init(|| http::client(self.timeout));
        built.as_ref().map_err(ToString::to_string)
    }
}

#[async_trait]
impl WebhookTransport for WebhookClient {
    /// A non-2xx answer is a failure carrying the status and the start of the body; the URL
    /// never appears in it. 408, 429 and 5xx may pass later; a 3xx or any other 4xx will not (a
    /// retired, moved or misconfigured webhook, or a login page in front of it), so Event Grid
    /// is not made to retry it for a day. A redirect is never followed: it would carry the
    /// URL's key and the alert to another host, or turn the POST into a GET.
    async fn post(&self, webhook: &Webhook, payload: &Value) -> Result<(), Failure> {
        let response = self
            .http()
            .map_err(Failure::Permanent)?
            .post(webhook.url().expose_secret())
            .json(payload)
            .send()
            .await
            .map_err(|e| Failure::Transient(format!("{}: {}", webhook.host(), e.without_url())))?;
        let status = response.status();
        let verdict = http::verdict(status);
        if verdict == Verdict::Success {
            return Ok(());
        }
        let detail = http::error_detail(response).await;
        let reason = format!("{} answered {status}: {detail}", webhook.host());
        Err(match verdict {
            Verdict::Transient => Failure::Transient(reason),
            Verdict::Success | Verdict::Permanent => Failure::Permanent(reason),
        })
    }
}
