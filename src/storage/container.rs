//! One blob container of the app's storage account, through the Blob service's REST API: list
//! its blobs, read one, delete one. Event Grid writes there what it could not deliver for a day
//! (its dead letters), one blob per event.

use super::Account;
use super::queue::QueueError;
use crate::http::{self, PolicyError};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// The Blob service version spoken.
const VERSION: &str = "2021-12-02";

/// Bound on one request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Largest listing page read (5,000 blobs at most).
const LIST_CAP: usize = 8 * 1024 * 1024;

/// Largest blob read: a dead letter is one event, at most 1 MiB.
const BLOB_CAP: usize = 2 * 1024 * 1024;

/// Most listing pages read.
const MAX_PAGES: usize = 100;

/// A blob as the listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its name (a path within the container).
    pub name: String,
    /// When it was written.
    pub created: Option<DateTime<Utc>>,
}

/// One container.
#[derive(Clone)]
pub struct Container {
    http: reqwest::Client,
    account: Account,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listing {
    #[serde(default)]
    blobs: Blobs,
    #[serde(default)]
    next_marker: Option<String>,
}

#[derive(Deserialize, Default)]
struct Blobs {
    #[serde(rename = "Blob", default)]
    blobs: Vec<RawBlob>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawBlob {
    name: String,
    #[serde(default)]
    properties: Properties,
}

#[derive(Deserialize, Default)]
struct Properties {
    #[serde(rename = "Creation-Time", default)]
    creation_time: Option<String>,
    #[serde(rename = "Last-Modified", default)]
    last_modified: Option<String>,
}

impl Container {
    /// The container `name` of `account`.
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

    /// Every blob (none when the container does not exist), page by page.
    pub async fn list(&self) -> Result<Vec<Blob>, QueueError> {
        let mut blobs = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = format!(
                "{}/{}?restype=container&comp=list",
                self.account.blob_endpoint, self.name
            );
            if let Some(marker) = &marker {
                url.push_str(&format!("&marker={}", super::queue::url_escape(marker)));
            }
            let (status, body) = self.send(Method::GET, &url, LIST_CAP).await?;
            match status {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => return Ok(blobs),
                status => return Err(self.error(format!("{status}: {}", said(&body)))),
            }
            let listing: Listing = quick_xml::de::from_str(&String::from_utf8_lossy(&body))
                .map_err(|e| self.error(format!("unreadable listing: {e}")))?;
            blobs.extend(listing.blobs.blobs.into_iter().map(|raw| {
                Blob {
                    name: raw.name,
                    created: raw
                        .properties
                        .creation_time
                        .or(raw.properties.last_modified)
                        .as_deref()
                        .and_then(|t| DateTime::parse_from_rfc2822(t).ok())
                        .map(|t| t.with_timezone(&Utc)),
                }
            }));
            match listing.next_marker.filter(|m| !m.is_empty()) {
                Some(next) => marker = Some(next),
                None => return Ok(blobs),
            }
        }
        Ok(blobs)
    }

    /// The text of the blob `name`.
    pub async fn read(&self, name: &str) -> Result<String, QueueError> {
        let (status, body) = self.send(Method::GET, &self.url(name), BLOB_CAP).await?;
        match status {
            StatusCode::OK => Ok(String::from_utf8_lossy(&body).into_owned()),
            status => Err(self.error(format!("{name}: {status}: {}", said(&body)))),
        }
    }

    /// Deletes the blob `name` (nothing when it is gone).
    pub async fn delete(&self, name: &str) -> Result<(), QueueError> {
        let (status, body) = self.send(Method::DELETE, &self.url(name), LIST_CAP).await?;
        match status {
            StatusCode::ACCEPTED | StatusCode::NOT_FOUND => Ok(()),
            status => Err(self.error(format!("{name}: {status}: {}", said(&body)))),
        }
    }

    fn url(&self, blob: &str) -> String {
        let path: Vec<String> = blob.split('/').map(super::queue::url_escape).collect();
        format!(
            "{}/{}/{}",
            self.account.blob_endpoint,
            self.name,
            path.join("/")
        )
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        cap: usize,
    ) -> Result<(StatusCode, Vec<u8>), QueueError> {
        let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let headers = [("x-ms-date", date.as_str()), ("x-ms-version", VERSION)];
        let authorization = self
            .account
            .storage_authorization(method.as_str(), url, (0, ""), &headers)
            .await
            .map_err(|e| self.error(e.to_string()))?;
        let response = self
            .http
            .request(method, url)
            .header("x-ms-date", &date)
            .header("x-ms-version", VERSION)
            .header("Authorization", authorization)
            .send()
            .await
            .map_err(|e| self.error(e.without_url().to_string()))?;
        let status = response.status();
        let body = http::read_capped(response, cap)
            .await
            .map_err(|e| self.error(e.to_string()))?;
        Ok((status, body))
    }

    fn error(&self, why: String) -> QueueError {
        QueueError {
            queue: format!("container {}", self.name),
            why,
        }
    }
}

fn said(body: &[u8]) -> String {
    crate::text::truncate(&crate::text::clean(&String::from_utf8_lossy(body)), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_read_with_its_blobs_and_their_times() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="kv-notify-deadletter"><Prefix/><Marker/><MaxResults>5000</MaxResults><Blobs><Blob><Name>PROD-KV/2026/12/3/10/a.json</Name><Properties><Creation-Time>Wed, 03 Dec 2026 22:32:04 GMT</Creation-Time><Last-Modified>Wed, 03 Dec 2026 22:32:04 GMT</Last-Modified><Content-Length>12</Content-Length></Properties></Blob></Blobs><NextMarker/></EnumerationResults>"#;
        let listing: Listing = quick_xml::de::from_str(xml).expect("a listing");
        assert_eq!(listing.blobs.blobs.len(), 1);
        assert_eq!(listing.blobs.blobs[0].name, "PROD-KV/2026/12/3/10/a.json");
        assert!(listing.blobs.blobs[0].properties.creation_time.is_some());
    }
}
