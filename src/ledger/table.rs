//! The shared ledger: a table in the function app's own storage account (Azure Table Storage,
//! or Azurite locally), so that every instance of a scaled-out app, and every restart on a new
//! disk, sees the same claims and completions.
//!
//! Each entry is one entity. Its keys are digests (Table keys forbid `/ \ # ?` and control
//! characters, which event ids and addresses may hold): the partition is the event, so all of an
//! event's entries sit together, and the row is the action and target; the originals are kept as
//! a property. The state machine is the file ledger's, made of conditional writes:
//! - a claim is an insert, which fails with 409 when the entry exists; an entry whose lease has
//!   run out (plus a margin for clock skew between instances) is taken over with an update
//!   conditional on its ETag, and a 412 means another instance won;
//! - a completion replaces the entry conditional on the ETag of this instance's claim; a 412
//!   means the lease was lost to another instance meanwhile, which is logged and not
//!   overwritten;
//! - a release deletes the entry, conditional on the same ETag.
//!
//! Any other answer (the service unreachable, throttling, a refused key) is a `LedgerError`: the
//! action is not performed and the invocation fails for a redelivery. No mail goes out on a
//! ledger that did not answer.

mod connection;
mod requests;

pub use connection::Account;

use super::{ActionKey, Claim, Ledger, LedgerError, Recorded};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The Table service version spoken (Entra ID tokens need at least this one).
const API_VERSION: &str = "2019-02-02";

/// Bound on one storage request, connect included.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Added to a lease before another instance may take it over: the instances' clocks differ.
const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(5);

/// A ledger in a storage-account table.
pub struct TableLedger {
    http: reqwest::Client,
    account: Account,
    table: String,
    /// The ETag of each entry this instance holds a claim on, by entity URL.
    held: Mutex<HashMap<String, String>>,
}

/// One entity as stored.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entity {
    /// When the entry was last written (RFC 3339, so that it compares as text).
    at: String,
    /// `claimed` or `done`.
    state: String,
    /// While claimed: until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    /// When done: the recorded outcome, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    /// The ledger key in full: event, action and target.
    key: String,
}

impl TableLedger {
    /// Connects to the account, and creates the table if it is missing: a wrong key or a
    /// missing permission fails here, at start-up, rather than at every invocation.
    pub async fn connect(account: Account, table: &str) -> Result<Self, LedgerError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("kv-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LedgerError(format!("cannot build the HTTP client: {e}")))?;
        let ledger = Self {
            http,
            account,
            table: table.to_owned(),
            held: Mutex::new(HashMap::new()),
        };
        ledger.create_table().await?;
        Ok(ledger)
    }

    fn entity_url(&self, key: &ActionKey) -> String {
        let event = serde_json::to_string(&key.event).expect("a key serialises");
        let partition = hex_digest(&event);
        let row = hex_digest(&format!("{}\n{}", key.action, key.target));
        format!(
            "{}/{}(PartitionKey='{partition}',RowKey='{row}')",
            self.account.table_endpoint, self.table
        )
    }
}

#[async_trait]
impl Ledger for TableLedger {
    async fn claim(
        &self,
        key: &ActionKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, LedgerError> {
        let url = self.entity_url(key);
        let until = super::lease_end(now, lease);
        let claimed = Entity {
            at: rfc3339(now),
            state: "claimed".to_owned(),
            until: Some(rfc3339(until)),
            outcome: None,
            key: key.to_string(),
        };
        let body = entity_json(&url, &claimed);
        let insert_url = format!("{}/{}", self.account.table_endpoint, self.table);
        // Each turn: insert, or read what is there and take it over if its lease ran out.
        for _ in 0..3 {
            let inserted = self
                .send(Method::POST, &insert_url, None, Some(&body))
                .await?;
            match inserted.status() {
                StatusCode::CREATED | StatusCode::NO_CONTENT => {
                    self.hold(&url, &inserted);
                    return Ok(Claim::Acquired);
                }
                StatusCode::CONFLICT => {}
                // The table was deleted since start-up: make it again and insert again.
                StatusCode::NOT_FOUND => {
                    self.create_table().await?;
                    continue;
                }
                status => return Err(self.unexpected("a claim", status)),
            }
            let found = self.send(Method::GET, &url, None, None).await?;
            match found.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => continue,
                status => return Err(self.unexpected("a read", status)),
            }
            let etag = found
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_default();
            let entity: Entity = found
                .json()
                .await
                .map_err(|e| LedgerError(format!("table {}: unreadable entry: {e}", self.table)))?;
            if let Some(outcome) = entity.outcome.as_deref() {
                let recorded = serde_json::from_str(outcome).map_err(|e| {
                    LedgerError(format!("table {}: unreadable outcome: {e}", self.table))
                })?;
                return Ok(Claim::Done(recorded));
            }
            let held_until = entity.until.as_deref().and_then(parse_time);
            if held_until.is_some_and(|until| until + CLOCK_SKEW > now) {
                return Ok(Claim::Busy);
            }
            let taken = self
                .send(Method::PUT, &url, Some(&etag), Some(&body))
                .await?;
            match taken.status() {
                StatusCode::NO_CONTENT | StatusCode::OK => {
                    self.hold(&url, &taken);
                    return Ok(Claim::Acquired);
                }
                StatusCode::PRECONDITION_FAILED | StatusCode::NOT_FOUND => continue,
                status => return Err(self.unexpected("a lease takeover", status)),
            }
        }
        Ok(Claim::Busy)
    }

    async fn complete(
        &self,
        key: &ActionKey,
        outcome: Recorded,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let url = self.entity_url(key);
        let done = Entity {
            at: rfc3339(now),
            state: "done".to_owned(),
            until: None,
            outcome: Some(serde_json::to_string(&outcome).expect("an outcome serialises")),
            key: key.to_string(),
        };
        let etag = self.held_entries().remove(&url);
        let body = entity_json(&url, &done);
        let response = self
            .send(
                Method::PUT,
                &url,
                Some(etag.as_deref().unwrap_or("*")),
                Some(&body),
            )
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(()),
            StatusCode::PRECONDITION_FAILED => {
                tracing::warn!(target = %key.target, "the lease was lost to another instance before the outcome was recorded; its entry is left as it is");
                Ok(())
            }
            status => Err(self.unexpected("a completion", status)),
        }
    }

    async fn release(&self, key: &ActionKey) -> Result<(), LedgerError> {
        let url = self.entity_url(key);
        let etag = self.held_entries().remove(&url);
        let response = self
            .send(
                Method::DELETE,
                &url,
                Some(etag.as_deref().unwrap_or("*")),
                None,
            )
            .await?;
        match response.status() {
            // Gone, or taken over by another instance: either way not ours to give back.
            StatusCode::NO_CONTENT
            | StatusCode::OK
            | StatusCode::NOT_FOUND
            | StatusCode::PRECONDITION_FAILED => Ok(()),
            status => Err(self.unexpected("a release", status)),
        }
    }

    fn busy_poll(&self) -> Duration {
        Duration::from_millis(250)
    }

    async fn purge(&self, cutoff: DateTime<Utc>) -> Result<usize, LedgerError> {
        // One instance purges each hour: the first to insert the hour's marker entry (itself
        // purged later, like any entry).
        let now = Utc::now();
        let marker = serde_json::json!({
            "PartitionKey": "purge",
            "RowKey": now.format("%Y%m%d%H").to_string(),
            "At": rfc3339(now),
            "State": "done",
            "Key": "purge",
        });
        let insert_url = format!("{}/{}", self.account.table_endpoint, self.table);
        let inserted = self
            .send(Method::POST, &insert_url, None, Some(&marker))
            .await?;
        match inserted.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT => {}
            StatusCode::CONFLICT => return Ok(0),
            status => return Err(self.unexpected("a purge marker", status)),
        }
        // A filter on a property scans the table; entries laid out by day so that old ones go
        // whole are the next step. Until then one page of old entries goes per purge.
        let filter = format!("At lt '{}'", rfc3339(cutoff));
        let url = format!(
            "{}/{}()?$filter={}&$select=PartitionKey,RowKey",
            self.account.table_endpoint,
            self.table,
            filter.replace(' ', "%20").replace('\'', "%27")
        );
        let response = self.send(Method::GET, &url, None, None).await?;
        if response.status() != StatusCode::OK {
            return Err(self.unexpected("a purge query", response.status()));
        }
        #[derive(Deserialize)]
        struct Page {
            value: Vec<Keys>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Keys {
            partition_key: String,
            row_key: String,
        }
        let page: Page = response
            .json()
            .await
            .map_err(|e| LedgerError(format!("table {}: unreadable page: {e}", self.table)))?;
        let mut removed = 0;
        for keys in page.value {
            let url = format!(
                "{}/{}(PartitionKey='{}',RowKey='{}')",
                self.account.table_endpoint, self.table, keys.partition_key, keys.row_key
            );
            let response = self.send(Method::DELETE, &url, Some("*"), None).await?;
            removed += usize::from(response.status() == StatusCode::NO_CONTENT);
        }
        Ok(removed)
    }
}

/// The entity's JSON body, its keys taken from its URL.
fn entity_json(url: &str, entity: &Entity) -> serde_json::Value {
    let mut body = serde_json::to_value(entity).expect("an entity serialises");
    let keys = url
        .rsplit_once('(')
        .map_or("", |(_, k)| k.trim_end_matches(')'));
    for part in keys.split(',') {
        if let Some((name, value)) = part.split_once('=') {
            body[name] = serde_json::Value::String(value.trim_matches('\'').to_owned());
        }
    }
    body
}

fn hex_digest(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc())
}
