//! The policy of every outgoing HTTP call (webhooks, Key Vault, Resource Manager, Microsoft
//! Graph, ACS Email, the identity endpoint and Table Storage), kept in one place so that no
//! client differs from the others:
//! - one client set-up ([`client`]): connect and total timeouts, rustls with ring, kv-notify's
//!   user agent, and **no redirects** and no `Referer`. A 3xx is an answer like any other: a
//!   followed redirect would carry a webhook's key (in its URL) or a token to whatever host it
//!   names, and a 302 would turn an alert's POST into a GET that looks delivered;
//! - bodies read with a cap ([`read_capped`], [`excerpt`]), so that no server can fill memory or
//!   hold a task with an endless answer;
//! - one rule for waiting before another attempt ([`Backoff`]): every attempt counts against the
//!   list, and a `Retry-After` ([`retry_after`]) is honoured between a floor and a ceiling;
//! - one sorting of statuses into success, worth retrying, or not ([`verdict`]);
//! - endpoints that receive a token or a key are reached over https, loopback excepted
//!   ([`require_https`]).

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::net::IpAddr;
use std::time::Duration;

/// What kv-notify calls itself in every request.
const USER_AGENT: &str = concat!("kv-notify/", env!("CARGO_PKG_VERSION"));

/// Most of an error answer ever read: enough for any service's error JSON.
pub const ERROR_BODY_CAP: usize = 4 * 1024;

/// Longest excerpt of an error answer kept for a log line or a reason, in characters.
const EXCERPT_CHARS: usize = 200;

/// Longest `Retry-After` honoured: a longer one is taken as this.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// A client or an endpoint the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A client with the policy above, each request bounded by `timeout` (connecting included).
pub fn client(timeout: Duration) -> Result<reqwest::Client, PolicyError> {
    client_with(timeout, |builder| builder)
}

/// The same, with more set-up from `more` (a DNS resolver, a pool size). The policy is applied
/// after it, so nothing there turns redirects back on.
pub fn client_with(
    timeout: Duration,
    more: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<reqwest::Client, PolicyError> {
    // reqwest is built without a bundled crypto provider; use ring, as lettre does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    more(reqwest::Client::builder())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()
        .map_err(|e| PolicyError(format!("cannot build the HTTP client: {e}")))
}

/// The pages of one paged list read so far (Key Vault's `nextLink`, Graph's
/// `@odata.nextLink`): a list whose next link leads back to a page already read, or that goes on
/// past its cap, stops there rather than run until its budget ends.
#[derive(Debug)]
pub struct Pages {
    read: std::collections::HashSet<String>,
    max: usize,
}

/// Why a next page is not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageRefused {
    /// The link leads back to a page already read.
    #[error("the list's nextLink leads back to a page already read: read up to there")]
    Loop,
    /// The list goes on past its cap.
    #[error("the list goes on past {0} pages: read up to there")]
    TooMany(usize),
}

impl Pages {
    /// A list whose first page is `first`, read for at most `max` pages.
    pub fn new(first: &Url, max: usize) -> Self {
        Self {
            read: std::collections::HashSet::from([first.to_string()]),
            max,
        }
    }

    /// Admits `next` as the next page to read.
    pub fn admit(&mut self, next: &Url) -> Result<(), PageRefused> {
        if !self.read.insert(next.to_string()) {
            return Err(PageRefused::Loop);
        }
        if self.read.len() > self.max {
            return Err(PageRefused::TooMany(self.max));
        }
        Ok(())
    }
}

/// What an answer's status calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: done.
    Success,
    /// 408, 429 and 5xx: the same request may pass later.
    Transient,
    /// Anything else, redirects included: asking again will get the same answer.
    Permanent,
}

/// Sorts a status into [`Verdict`]s, the same way for every service.
pub fn verdict(status: StatusCode) -> Verdict {
    if status.is_success() {
        Verdict::Success
    } else if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Verdict::Transient
    } else {
        Verdict::Permanent
    }
}

/// What an error answer says, for a reason: for a 3xx where it pointed, else the start of its
/// body ([`excerpt`]).
pub async fn error_detail(response: reqwest::Response) -> String {
    if response.status().is_redirection() {
        redirect_reason(response.headers())
    } else {
        excerpt(response).await
    }
}

/// Says what a 3xx was, for a reason: where it pointed (the host only: a `Location` may hold a
/// key too), and that it was not followed.
pub fn redirect_reason(headers: &HeaderMap) -> String {
    let target = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| Url::parse(location).ok())
        .and_then(|url| url.host_str().map(str::to_owned))
        .map_or_else(String::new, |host| format!(" to {host}"));
    format!("a redirect{target}, not followed")
}

/// `Retry-After` as a number of seconds (what Azure sends), at most [`MAX_WAIT`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_WAIT))
}

/// Waits between attempts: each attempt takes the next step of a list, whether or not the
/// server said how long to wait, so the list's length bounds the attempts. A server's
/// `Retry-After` replaces the step's length, never below `floor`.
#[derive(Debug)]
pub struct Backoff {
    steps: std::slice::Iter<'static, Duration>,
    floor: Duration,
}

impl Backoff {
    /// Waits of `steps`, in order, none shorter than `floor`.
    pub fn new(steps: &'static [Duration], floor: Duration) -> Self {
        Self {
            steps: steps.iter(),
            floor,
        }
    }

    /// How long to wait before the next attempt, or `None` when the list is used up (give up).
    pub fn next_wait(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        let step = *self.steps.next()?;
        Some(retry_after.unwrap_or(step).clamp(self.floor, MAX_WAIT))
    }
}

/// Why a body was not read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The answer was longer than what the caller reads.
    #[error("an answer longer than {0} bytes: not read")]
    TooLarge(usize),
    /// The connection failed or timed out mid-body.
    #[error("the answer broke off: {0}")]
    Broken(String),
}

/// Reads a body of at most `cap` bytes; a longer one is an error, and is read no further.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge(cap));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Broken(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads a JSON body of at most `cap` bytes.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    cap: usize,
) -> Result<T, String> {
    let body = read_capped(response, cap)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("unreadable answer: {e}"))
}

/// The first [`ERROR_BODY_CAP`] bytes of a body (all of a shorter one); the rest is never
/// read, and the connection is dropped with it.
pub async fn read_prefix(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_CAP {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(ERROR_BODY_CAP);
    body
}

/// The start of an error answer, fit for a log line or a reason: from [`read_prefix`], with
/// control characters blanked and at most 200 characters kept.
pub async fn excerpt(response: reqwest::Response) -> String {
    let body = read_prefix(response).await;
    crate::text::truncate(
        &crate::text::clean(&String::from_utf8_lossy(&body)),
        EXCERPT_CHARS,
    )
}

/// Refuses an endpoint that would receive a token or a key in clear: it must be https, or http
/// to this machine (`localhost`, `*.localhost`, a loopback address), where local emulators and
/// tests run.
pub fn require_https(url: &Url) -> Result<(), PolicyError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(PolicyError(
            "http:// would send its secret in clear: use https:// (http is accepted for this \
             machine only)"
                .to_owned(),
        )),
        other => Err(PolicyError(format!(
            "the URL must be https:// (got {other}://)"
        ))),
    }
}

/// Whether `url`'s host is this machine.
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

#[cfg(test)]
mod tests;
