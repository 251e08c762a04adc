//! One queue of the app's storage account, through the Queue service's REST API: create it, put
//! a message, peek at the first few, count, receive and delete. Messages are written in base64,
//! as Event Grid writes them and as the Functions host reads them by default.

use super::Account;
use crate::http::{self, PolicyError};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// The Queue service version spoken (a message that never expires needs 2017-07-29).
const VERSION: &str = "2021-12-02";

/// Bound on one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Largest answer read: 32 messages of 64 KiB, base64, in XML.
const ANSWER_CAP: usize = 4 * 1024 * 1024;

/// Why a queue request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{queue}: {why}")]
pub struct QueueError {
    /// The queue (`queue NAME`) or container (`container NAME`).
    pub queue: String,
    /// What went wrong.
    pub why: String,
}

/// A message as the queue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub id: String,
    /// Its text, decoded from base64 when it is base64 of UTF-8 text.
    pub text: String,
    /// When it was put.
    pub inserted: Option<DateTime<Utc>>,
    /// How many times it was received.
    pub dequeue_count: u32,
    /// What deleting it takes, for a received message.
    pub pop_receipt: Option<String>,
}

/// One queue.
#[derive(Clone)]
pub struct Queue {
    http: reqwest::Client,
    account: Account,
    name: String,
}

#[derive(Deserialize)]
struct MessagesList {
    #[serde(rename = "QueueMessage", default)]
    messages: Vec<RawMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawMessage {
    message_id: String,
    #[serde(default)]
    insertion_time: Option<String>,
    #[serde(default)]
    dequeue_count: u32,
    #[serde(default)]
    pop_receipt: Option<String>,
    #[serde(default)]
    message_text: String,
}

impl Queue {
    /// The queue `name` of `account`.
    pub fn new(account: Account, name: &str) -> Result<Self, PolicyError> {
        Ok(Self {
            http: http::client(TIMEOUT)?,
            account,
            name: name.to_owned(),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Puts `text` at the back of the queue, never to expire (the queue is made first if it
    /// does not exist yet).
    pub async fn put(&self, text: &str) -> Result<(), QueueError> {
        let body = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            BASE64.encode(text)
        );
        let path = "messages?messagettl=-1";
        let (status, answer) = self.send(Method::POST, path, Some(&body)).await?;
        match status {
            StatusCode::CREATED => Ok(()),
            StatusCode::NOT_FOUND => {
                self.create().await?;
                let (status, answer) = self.send(Method::POST, path, Some(&body)).await?;
                self.expect(status, StatusCode::CREATED, &answer)
            }
            _ => self.expect(status, StatusCode::CREATED, &answer),
        }
    }

    /// Makes the queue (nothing when it exists).
    pub async fn create(&self) -> Result<(), QueueError> {
        let (status, answer) = self.send(Method::PUT, "", None).await?;
        match status {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::CONFLICT => Ok(()),
            _ => self.expect(status, StatusCode::CREATED, &answer),
        }
    }

    /// How many messages the queue holds, about (none when it does not exist).
    pub async fn count(&self) -> Result<u64, QueueError> {
        let url = format!("{}?comp=metadata", self.url(""));
        let response = self.request(Method::GET, &url, None).await?;
        match response.status() {
            StatusCode::OK => Ok(response
                .headers()
                .get("x-ms-approximate-messages-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)),
            StatusCode::NOT_FOUND => Ok(0),
            status => Err(self.error(format!("{status}: {}", http::excerpt(response).await))),
        }
    }

    /// The first `n` messages (at most 32), left where they are.
    pub async fn peek(&self, n: u8) -> Result<Vec<Message>, QueueError> {
        let path = format!("messages?peekonly=true&numofmessages={}", n.clamp(1, 32));
        self.messages(&path).await
    }

    /// Up to `n` messages (at most 32), hidden from others for `hidden`.
    pub async fn receive(&self, n: u8, hidden: Duration) -> Result<Vec<Message>, QueueError> {
        let path = format!(
            "messages?numofmessages={}&visibilitytimeout={}",
            n.clamp(1, 32),
            hidden.as_secs().max(1)
        );
        self.messages(&path).await
    }

    /// Deletes a received message.
    pub async fn delete(&self, message: &Message) -> Result<(), QueueError> {
        let Some(receipt) = &message.pop_receipt else {
            return Err(self.error(format!("message {} was not received", message.id)));
        };
        let path = format!("messages/{}?popreceipt={}", message.id, url_escape(receipt));
        let (status, answer) = self.send(Method::DELETE, &path, None).await?;
        match status {
            // Gone already: what deleting it was for.
            StatusCode::NOT_FOUND => Ok(()),
            _ => self.expect(status, StatusCode::NO_CONTENT, &answer),
        }
    }

    async fn messages(&self, path: &str) -> Result<Vec<Message>, QueueError> {
        let (status, answer) = self.send(Method::GET, path, None).await?;
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(Vec::new()),
            _ => {
                return self
                    .expect(status, StatusCode::OK, &answer)
                    .map(|()| Vec::new());
            }
        }
        let list: MessagesList = quick_xml::de::from_str(&answer)
            .map_err(|e| self.error(format!("unreadable answer: {e}")))?;
        Ok(list.messages.into_iter().map(Message::from).collect())
    }

    /// Sends `method` to the queue's `path` (relative: `messages…`, or empty for the queue).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<(StatusCode, String), QueueError> {
        let response = self.request(method, &self.url(path), body).await?;
        let status = response.status();
        let answer = http::read_capped(response, ANSWER_CAP)
            .await
            .map_err(|e| self.error(e.to_string()))?;
        Ok((status, String::from_utf8_lossy(&answer).into_owned()))
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<&str>,
    ) -> Result<reqwest::Response, QueueError> {
        let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let content_type = if body.is_some() {
            "application/xml"
        } else {
            ""
        };
        let headers = [("x-ms-date", date.as_str()), ("x-ms-version", VERSION)];
        let length = body.map_or(0, str::len);
        let authorization = self
            .account
            .storage_authorization(method.as_str(), url, (length, content_type), &headers)
            .await
            .map_err(|e| self.error(e.to_string()))?;
        let mut request = self
            .http
            .request(method, url)
            .header("x-ms-date", &date)
            .header("x-ms-version", VERSION)
            .header("Authorization", authorization);
        if let Some(body) = body {
            request = request
                .header("Content-Type", content_type)
                .body(body.to_owned());
        }
        request
            .send()
            .await
            .map_err(|e| self.error(e.without_url().to_string()))
    }

    fn url(&self, path: &str) -> String {
        match path {
            "" => format!("{}/{}", self.account.queue_endpoint, self.name),
            path => format!("{}/{}/{path}", self.account.queue_endpoint, self.name),
        }
    }

    fn expect(
        &self,
        status: StatusCode,
        wanted: StatusCode,
        answer: &str,
    ) -> Result<(), QueueError> {
        if status == wanted {
            return Ok(());
        }
        let said = crate::text::truncate(&crate::text::clean(answer), 200);
        Err(self.error(format!("{status}: {said}")))
    }

    fn error(&self, why: String) -> QueueError {
        QueueError {
            queue: format!("queue {}", self.name),
            why,
        }
    }
}

impl From<RawMessage> for Message {
    fn from(raw: RawMessage) -> Self {
        let text = BASE64
            .decode(raw.message_text.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or(raw.message_text);
        Self {
            id: raw.message_id,
            text,
            inserted: raw
                .insertion_time
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            dequeue_count: raw.dequeue_count,
            pop_receipt: raw.pop_receipt,
        }
    }
}

/// Percent-encodes everything but unreserved characters (a pop receipt holds `+`, `/`, `=`).
pub(super) fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
