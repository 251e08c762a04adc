//! Mail through Microsoft Graph (`POST {endpoint}/v1.0/users/{sender}/sendMail`), as the app's
//! managed identity: no password anywhere.
//!
//! The message goes in MIME form (base64, `Content-Type: text/plain`), so that the very mail
//! built for SMTP, both parts and its headers, is what arrives. Graph takes the recipients from
//! the MIME headers, not from an envelope; so the `To` header is rewritten to the recipients of
//! this send (a retry to one recipient alone, or a redelivery to those not yet mailed, must not
//! reach the others again). Graph keeps a MIME send in the mailbox's Sent Items: it has no
//! switch for that in MIME form.

use super::transport::{Delivered, Letter, MailTransport, SendError};
use crate::http::{self, PolicyError, Verdict};
use crate::identity::{ManagedIdentity, TokenError};
use crate::outcome::Failure;
use crate::text;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use lettre::address::Envelope;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use std::time::Duration;

/// Microsoft Graph's `sendMail` for one mailbox.
pub struct Graph {
    http: reqwest::Client,
    /// `{endpoint}/v1.0/users/{sender}/sendMail`.
    url: String,
    sender: String,
    identity: ManagedIdentity,
    /// Bound on one send, waiting for its token included.
    timeout: Duration,
}

impl Graph {
    /// Sends as `sender` (a mailbox's address or user principal name) through `endpoint`
    /// (`https://graph.microsoft.com`, or a national cloud's), each request bounded by
    /// `timeout`, with tokens from `identity` (whose resource is the endpoint).
    pub fn new(
        endpoint: &str,
        sender: &str,
        identity: ManagedIdentity,
        timeout: Duration,
    ) -> Result<Self, PolicyError> {
        let http = http::client(timeout)?;
        Ok(Self {
            http,
            url: send_mail_url(endpoint, sender)?,
            sender: sender.to_owned(),
            identity,
            timeout,
        })
    }
}

#[async_trait]
impl MailTransport for Graph {
    async fn send(&self, letter: &Letter<'_>) -> Result<Delivered, SendError> {
        // The wait for a token counts against the send's bound: an attempt that waited out a
        // hung identity endpoint past its claim's lease would send after a redelivery did.
        let token = tokio::time::timeout(self.timeout, self.identity.token())
            .await
            .unwrap_or_else(|_| Err(TokenError("no token within the send's timeout".to_owned())))
            .map_err(|e| {
                tracing::error!(error = %e, "no token for Microsoft Graph");
                SendError::Failed(Failure::Transient(e.0))
            })?;
        let body = BASE64.encode(addressed_to(letter.raw, letter.envelope));
        let answer = self
            .http
            .post(&self.url)
            .bearer_auth(token.expose_secret())
            .header("Content-Type", "text/plain")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let reason = format!("graph: {}", text::with_causes(&e.without_url()));
                SendError::Failed(Failure::Transient(reason))
            })?;
        let status = answer.status();
        if status == StatusCode::ACCEPTED {
            return Ok(Delivered::Sent);
        }
        let retry_after = http::retry_after(answer.headers());
        let excerpt = http::error_detail(answer).await;
        Err(classify(status, &self.sender, &excerpt, retry_after))
    }
}

/// Sorts Graph's answer into retry or give up, as for SMTP: throttling (429) and server errors
/// pass on a later attempt; a missing permission or a bad request will not.
fn classify(
    status: StatusCode,
    sender: &str,
    excerpt: &str,
    retry_after: Option<Duration>,
) -> SendError {
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let after = retry_after.map_or(String::new(), |d| {
                format!(", retry after {} s", d.as_secs())
            });
            SendError::Failed(Failure::Transient(format!(
                "graph throttled the send (429{after})"
            )))
        }
        status if http::verdict(status) == Verdict::Transient => SendError::Failed(
            Failure::Transient(format!("graph answered {status}: {excerpt}")),
        ),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SendError::Failed(Failure::Permanent(format!(
                "graph refused to send as {sender} ({status}): grant the app's identity the \
                 Mail.Send application permission, and allow it this mailbox; {excerpt}"
            )))
        }
        // A bad address may concern one recipient: worth sending to each alone.
        status => SendError::Refused(Failure::Permanent(format!(
            "graph answered {status}: {excerpt}"
        ))),
    }
}

/// `raw` with its `To` header replaced by the envelope's recipients: Graph sends to whoever the
/// headers name.
fn addressed_to(raw: &[u8], envelope: &Envelope) -> Vec<u8> {
    let to = envelope
        .to()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |at| at + 2);
    let (headers, body) = raw.split_at(end);
    let mut out = Vec::with_capacity(raw.len() + to.len());
    let mut in_to = false;
    for line in headers.split_inclusive(|&b| b == b'\n') {
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !folded {
            in_to = line.len() >= 3 && line[..3].eq_ignore_ascii_case(b"to:");
            if in_to {
                out.extend_from_slice(format!("To: {to}\r\n").as_bytes());
            }
        }
        if !in_to {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// `{endpoint}/v1.0/users/{sender}/sendMail`, the sender escaped as one path segment.
fn send_mail_url(endpoint: &str, sender: &str) -> Result<String, PolicyError> {
    let said = |why: String| PolicyError(format!("GRAPH_ENDPOINT: {why}"));
    let mut url = reqwest::Url::parse(endpoint).map_err(|e| said(e.to_string()))?;
    http::require_https(&url).map_err(|why| said(why.0))?;
    url.path_segments_mut()
        .map_err(|()| said("not an http(s) URL".to_owned()))?
        .pop_if_empty()
        .extend(["v1.0", "users", sender, "sendMail"]);
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(to: &[&str]) -> Envelope {
        let to = to.iter().map(|a| a.parse().expect("an address")).collect();
        Envelope::new(Some("kv@contoso.com".parse().expect("an address")), to).expect("valid")
    }

    #[test]
    fn the_to_header_names_only_this_sends_recipients() {
        let raw = b"From: kv@contoso.com\r\nTo: a@contoso.com,\r\n b@contoso.com\r\nSubject: x\r\n\r\nTo: body\r\n";
        let sent = addressed_to(raw, &envelope(&["b@contoso.com"]));
        assert_eq!(
            String::from_utf8(sent).expect("utf-8"),
            "From: kv@contoso.com\r\nTo: b@contoso.com\r\nSubject: x\r\n\r\nTo: body\r\n"
        );
    }

    #[test]
    fn throttling_and_server_errors_are_retried_and_missing_permissions_are_not() {
        let retry = |status| classify(status, "kv@contoso.com", "", Some(Duration::from_secs(7)));
        assert!(matches!(
            retry(StatusCode::TOO_MANY_REQUESTS),
            SendError::Failed(Failure::Transient(r)) if r.contains("retry after 7 s")
        ));
        assert!(matches!(
            retry(StatusCode::SERVICE_UNAVAILABLE),
            SendError::Failed(Failure::Transient(_))
        ));
        assert!(matches!(
            retry(StatusCode::FORBIDDEN),
            SendError::Failed(Failure::Permanent(r)) if r.contains("Mail.Send")
        ));
        assert!(matches!(
            retry(StatusCode::BAD_REQUEST),
            SendError::Refused(Failure::Permanent(_))
        ));
    }

    #[test]
    fn a_sender_is_one_path_segment() {
        let url = |sender| send_mail_url("https://graph.microsoft.com", sender).expect("a URL");
        assert_eq!(
            url("alerts@contoso.com"),
            "https://graph.microsoft.com/v1.0/users/alerts@contoso.com/sendMail"
        );
        assert_eq!(
            url("a/b?c#"),
            "https://graph.microsoft.com/v1.0/users/a%2Fb%3Fc%23/sendMail"
        );
    }
}
