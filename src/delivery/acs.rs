//! Mail through Azure Communication Services Email (`POST {endpoint}/emails:send`), as the
//! app's managed identity or with the resource's access key.
//!
//! ACS takes the subject, the plain text and the HTML as JSON, not a MIME message, and sends
//! from an address of a verified domain linked to the resource. It answers 202 with an
//! operation to follow: the send is followed until it succeeds or fails, within the same bound
//! as the request itself; an operation still running at the bound counts as sent (ACS has taken
//! the mail; sending it again would duplicate it).
//!
//! **Repeats.** Each request carries `repeatability-request-id` and `repeatability-first-sent`
//! (OASIS Repeatable Requests): ACS answers a repeat of a request it has already accepted with
//! the first answer instead of sending again, for five minutes after its first sending. Both
//! values come from the ledger ([`Repeat`]): the id from the recipients' ledger keys and the time
//! their claim was first taken, which the ledger keeps across a crash. So a redelivery after a
//! crash between ACS's 202 and the ledger write repeats the very request, and ACS does not send
//! it twice. Past the window ACS would refuse the old time (412), so a repeat tried later than
//! [`REPEAT_WINDOW`] after the first goes as a new request, with a new id.

mod sign;

use super::TransportError;
use super::transport::{Delivered, Letter, MailTransport, Repeat, SendError};
use crate::identity::ManagedIdentity;
use crate::identity::{Identity, TokenError};
use crate::outcome::Failure;
use crate::text;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::time::Instant;

/// Mail through Azure Communication Services Email.
#[derive(Debug, Clone)]
pub struct AcsSettings {
    /// The resource's endpoint (`ACS_ENDPOINT`, or the connection string's).
    pub endpoint: String,
    /// `ACS_SENDER`: an address of a verified domain linked to the resource.
    pub sender: String,
    /// How requests are authorised.
    pub auth: AcsAuth,
}

/// How ACS Email requests are authorised.
#[derive(Debug, Clone)]
pub enum AcsAuth {
    /// Entra ID tokens for `https://communication.azure.com`.
    Token {
        /// Where tokens come from.
        identity: Identity,
        /// `AZURE_CLIENT_ID`: a user-assigned identity; unset for the system-assigned one.
        client_id: Option<String>,
    },
    /// The resource's access key (base64, from `ACS_CONNECTION_STRING`): HMAC-SHA256 signing.
    Key(SecretString),
}

/// The Email API version: the first GA one.
const API_VERSION: &str = "2023-03-31";

/// What Entra ID tokens for ACS are for.
const RESOURCE: &str = "https://communication.azure.com";

/// How long after the first try a repeat still goes as the same request. ACS tracks requests
/// for five minutes; the minute to spare covers clocks that disagree.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(4 * 60);

/// Wait between two looks at a send's operation, when ACS does not say (`Retry-After`).
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Largest operation status read: a few hundred bytes of JSON.
const OPERATION_CAP: usize = 64 * 1024;

/// Shortest wait between two looks, whatever `Retry-After` says.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Longest excerpt of an error answer kept in a reason.
const ANSWER_EXCERPT: usize = 300;

/// Azure Communication Services Email.
pub struct Acs {
    http: reqwest::Client,
    endpoint: Url,
    sender: String,
    auth: Auth,
    /// Bound on one send: the request and following its operation.
    timeout: Duration,
}

enum Auth {
    Token(ManagedIdentity),
    /// The decoded access key.
    Key(SecretSlice<u8>),
}

impl Acs {
    /// The transport the settings describe; each send bounded by `timeout`.
    pub fn new(settings: &AcsSettings, timeout: Duration) -> Result<Self, TransportError> {
        let refused = |why: String| TransportError(why);
        let http = crate::http::client(timeout).map_err(|e| refused(e.0))?;
        let auth = match &settings.auth {
            AcsAuth::Token {
                identity,
                client_id,
            } => Auth::Token(
                ManagedIdentity::for_resource(identity, client_id, RESOURCE)
                    .map_err(|e| refused(e.0))?,
            ),
            AcsAuth::Key(key) => Auth::Key(SecretSlice::from(
                BASE64
                    .decode(key.expose_secret())
                    .map_err(|_| refused("ACS_CONNECTION_STRING: the key is not base64".into()))?,
            )),
        };
        let endpoint = Url::parse(&format!("{}/", settings.endpoint))
            .map_err(|e| refused(format!("the ACS endpoint: {e}")))?;
        Ok(Self {
            http,
            endpoint,
            sender: settings.sender.clone(),
            auth,
            timeout,
        })
    }

    /// Sends one request, authorised, bounded by `deadline`.
    async fn request(
        &self,
        method: Method,
        url: &Url,
        body: Vec<u8>,
        headers: &[(&str, String)],
        deadline: Instant,
    ) -> Result<reqwest::Response, SendError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut request = self.http.request(method.clone(), url.clone()).timeout(left);
        match &self.auth {
            Auth::Token(identity) => {
                // The wait for a token counts against the send's deadline, as the request does.
                let token = tokio::time::timeout_at(deadline, identity.token())
                    .await
                    .unwrap_or_else(|_| Err(TokenError("no token within the send's timeout".to_owned())))
                    .map_err(|e| {
                        tracing::error!(error = %e, resource = RESOURCE, "no token for Azure Communication Services");
                        SendError::Failed(Failure::Transient(e.0))
                    })?;
                request = request.bearer_auth(token.expose_secret());
            }
            Auth::Key(key) => {
                let date = Utc::now().format(sign::HTTP_DATE).to_string();
                for (name, value) in sign::headers(key.expose_secret(), &method, url, &date, &body)
                {
                    request = request.header(name, value);
                }
            }
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if !body.is_empty() {
            request = request.header("Content-Type", "application/json");
        }
        request.body(body).send().await.map_err(|e| {
            let reason = format!("acs: {}", text::with_causes(&e.without_url()));
            SendError::Failed(Failure::Transient(reason))
        })
    }

    /// Follows an accepted send's operation until it ends or `deadline` passes.
    async fn follow(
        &self,
        operation: Url,
        mut wait: Duration,
        deadline: Instant,
    ) -> Result<Delivered, SendError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if wait >= left {
                tracing::warn!(operation = %operation.path(), "ACS accepted the mail and has not finished sending it; it is counted as sent");
                return Ok(Delivered::Sent);
            }
            tokio::time::sleep(wait).await;
            let answer = self
                .request(Method::GET, &operation, Vec::new(), &[], deadline)
                .await;
            let Ok(answer) = answer else { continue };
            wait = retry_after(&answer).unwrap_or(POLL_INTERVAL);
            if !answer.status().is_success() {
                continue;
            }
            let Ok(status) = crate::http::read_json::<Operation>(answer, OPERATION_CAP).await
            else {
                continue;
            };
            match status.status.as_str() {
                "Succeeded" => return Ok(Delivered::Sent),
                "Failed" | "Canceled" => {
                    let error = status.error.unwrap_or_default();
                    return Err(SendError::Failed(Failure::Permanent(format!(
                        "acs: the send {} after it was accepted: {}: {}",
                        status.status.to_lowercase(),
                        error.code,
                        error.message
                    ))));
                }
                _ => {}
            }
        }
    }
}

#[async_trait]
impl MailTransport for Acs {
    async fn send(&self, letter: &Letter<'_>) -> Result<Delivered, SendError> {
        let deadline = Instant::now() + self.timeout;
        let (id, first_sent) = repeatability(letter.repeat, Utc::now());
        let body = serde_json::to_vec(&message(&self.sender, letter))
            .map_err(|e| SendError::Failed(Failure::Permanent(e.to_string())))?;
        let mut url = self
            .endpoint
            .join("./emails:send")
            .expect("a relative path joins");
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        let headers = [
            ("repeatability-request-id", id),
            (
                "repeatability-first-sent",
                first_sent.format(sign::HTTP_DATE).to_string(),
            ),
        ];
        let answer = self
            .request(Method::POST, &url, body, &headers, deadline)
            .await?;
        let status = answer.status();
        let wait = retry_after(&answer);
        if status != StatusCode::ACCEPTED {
            let text = if status.is_redirection() {
                crate::http::redirect_reason(answer.headers())
            } else {
                String::from_utf8_lossy(&crate::http::read_prefix(answer).await).into_owned()
            };
            return Err(classify(status, &self.sender, &text, wait));
        }
        let operation = answer
            .headers()
            .get("operation-location")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Url::parse(v).ok());
        // Only the resource's own origin is followed, with the resource's credentials.
        match operation.filter(|url| url.origin() == self.endpoint.origin()) {
            Some(operation) => {
                self.follow(operation, wait.unwrap_or(POLL_INTERVAL), deadline)
                    .await
            }
            None => Ok(Delivered::Sent),
        }
    }
}

/// A send's operation, as ACS reports it.
#[derive(Deserialize)]
struct Operation {
    status: String,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The request's JSON: the subject and both parts, to this send's recipients. The subject is
/// guarded as for SMTP (ACS writes it into a MIME header); ACS's own click and open tracking is
/// off: the mail's links stay as written.
fn message(sender: &str, letter: &Letter<'_>) -> serde_json::Value {
    let to: Vec<_> = letter
        .envelope
        .to()
        .iter()
        .map(|address| json!({ "address": address.to_string() }))
        .collect();
    json!({
        "senderAddress": sender,
        "recipients": { "to": to },
        "content": {
            "subject": crate::mail::literal_subject(&letter.parts.subject),
            "plainText": letter.parts.text,
            "html": letter.parts.html,
        },
        "headers": { "Auto-Submitted": "auto-generated" },
        "userEngagementTrackingDisabled": true,
    })
}

/// The request id and first-sent time of a send: the same on every repeat within
/// [`REPEAT_WINDOW`] of its first try, a new pair after it.
fn repeatability(repeat: &Repeat, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let window = chrono::TimeDelta::from_std(REPEAT_WINDOW).unwrap_or(chrono::TimeDelta::MAX);
    let first = if now - repeat.first_tried > window {
        now
    } else {
        repeat.first_tried
    };
    // The id from the time in milliseconds (as both ledgers keep it), so that a claim given
    // back and taken again, even within the same second, is a new request; the header in whole
    // seconds, as HTTP dates are.
    let digest = Sha256::new()
        .chain_update(repeat.digest.as_bytes())
        .chain_update(first.timestamp_millis().to_be_bytes())
        .finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    let id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    let header = DateTime::from_timestamp(first.timestamp(), 0).unwrap_or(first);
    (id.to_string(), header)
}

/// `Retry-After`, bounded below: ACS may say `0`.
fn retry_after(answer: &reqwest::Response) -> Option<Duration> {
    crate::http::retry_after(answer.headers()).map(|wait| wait.max(MIN_POLL_INTERVAL))
}

/// Sorts a refused send into retry or give up, as for SMTP and Graph.
fn classify(status: StatusCode, sender: &str, text: &str, wait: Option<Duration>) -> SendError {
    let error = serde_json::from_str::<ErrorAnswer>(text)
        .map(|answer| answer.error)
        .unwrap_or_default();
    let excerpt = if error.code.is_empty() {
        text::truncate(text, ANSWER_EXCERPT)
    } else {
        text::truncate(
            &format!("{}: {}", error.code, error.message),
            ANSWER_EXCERPT,
        )
    };
    let transient = |reason: String| SendError::Failed(Failure::Transient(reason));
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let after = wait.map_or(String::new(), |w| {
                format!(", retry after {} s", w.as_secs_f64().ceil())
            });
            transient(format!("acs throttled the send (429{after})"))
        }
        StatusCode::CONFLICT => transient(
            "acs: an earlier attempt of this send is still being processed (409)".to_owned(),
        ),
        StatusCode::PRECONDITION_FAILED => transient(format!(
            "acs refused the repeat's first-sent time (412; is this machine's clock right?): \
             {excerpt}"
        )),
        status if crate::http::verdict(status) == crate::http::Verdict::Transient => {
            transient(format!("acs answered {status}: {excerpt}"))
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SendError::Failed(Failure::Permanent(format!(
                "acs refused the request ({status}): give the app's identity a role on the \
                 Communication Services resource (Contributor, or one with \
                 Microsoft.Communication/CommunicationServices/Read and Write and \
                 Microsoft.Communication/EmailServices/write), or check the access key; {excerpt}"
            )))
        }
        _ if ["sender", "domain"]
            .iter()
            .any(|w| error.code.to_ascii_lowercase().contains(w)) =>
        {
            SendError::Failed(Failure::Permanent(format!(
                "acs will not send from {sender} ({status}): use an address of a verified \
                 domain linked to the resource (ACS_SENDER); {excerpt}"
            )))
        }
        // A bad address may concern one recipient: worth sending to each alone.
        status => SendError::Refused(Failure::Permanent(format!(
            "acs answered {status}: {excerpt}"
        ))),
    }
}

#[cfg(test)]
mod tests;
