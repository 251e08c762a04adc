//! The shared ledger: a table in the function app's own storage account (Azure Table Storage,
//! or Azurite locally), so that every instance of a scaled-out app, and every restart on a new
//! disk, sees the same claims and completions.
//!
//! Each entry is one entity, in a table per month (`kvnotifyledger202611`): the month of the
//! event's own time (for a reminder step, of its ladder's end; see `filing`), so that every
//! redelivery finds it, and so that a month past its retention goes whole, with one request,
//! never a scan (see `retention`). Its keys are digests (Table keys
//! forbid `/ \ # ?` and control characters, which event ids and addresses may hold): the
//! partition is the event, so all of an event's entries sit together, and the row is the action
//! and target; the originals are kept as a property. The state machine is the file ledger's, made
//! of conditional writes:
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

mod filing;
mod memory;
mod requests;
mod retention;
mod troubles;

pub use crate::storage::Account;

use super::{ActionKey, Claim, Ledger, LedgerError, Recorded, Trouble, TroubleKind};
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

/// Largest entity read: an entry is a few hundred bytes (a table allows 1 MiB).
const ENTITY_CAP: usize = 1024 * 1024;

/// First wait before a completion is tried again; it doubles up to [`COMPLETION_MAX_PAUSE`].
const COMPLETION_FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Longest wait between two tries of a completion.
const COMPLETION_MAX_PAUSE: Duration = Duration::from_secs(2);

/// Added to a lease before another instance may take it over: the instances' clocks differ.
const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(5);

/// A ledger in a storage account's tables, one per month.
pub struct TableLedger {
    http: reqwest::Client,
    account: Account,
    /// The tables' common name (`LEDGER_TABLE`); each month's adds `YYYYMM`.
    prefix: String,
    /// How long an event's entries are kept.
    retention: TimeDelta,
    /// Each entry this instance holds a claim on: its URL and ETag, by ledger key.
    held: Mutex<HashMap<String, Held>>,
}

/// An entry this instance claimed.
struct Held {
    url: String,
    etag: String,
    /// When the claim's lease ends: until then no other instance takes it over.
    until: DateTime<Utc>,
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
    /// While claimed: when first claimed, kept over a takeover of a lapsed claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    /// When done: the recorded outcome, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    /// The ledger key in full: event, action and target.
    key: String,
}

impl TableLedger {
    /// Connects to the account, and creates this month's table if it is missing: a wrong key or
    /// a missing permission fails here, at start-up, rather than at every invocation. Entries
    /// are kept for `retention`.
    pub async fn connect(
        account: Account,
        prefix: &str,
        retention: Duration,
    ) -> Result<Self, LedgerError> {
        let http = crate::http::client(TIMEOUT).map_err(|e| LedgerError(e.to_string()))?;
        let ledger = Self {
            http,
            account,
            prefix: prefix.to_owned(),
            retention: TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX),
            held: Mutex::new(HashMap::new()),
        };
        ledger.create_table(&ledger.table_at(Utc::now())).await?;
        Ok(ledger)
    }

    /// Where `key`'s entity lives when claimed at `now`: the URL of the entity, and that of its
    /// table.
    fn locate(&self, key: &ActionKey, now: DateTime<Utc>) -> (String, String) {
        self.locate_in(key, &self.table_for(key, now))
    }

    /// The URL of `key`'s entity in `table`, and that of the table.
    fn locate_in(&self, key: &ActionKey, table: &str) -> (String, String) {
        let event = serde_json::to_string(&key.event).expect("a key serialises");
        let partition = hex_digest(&event);
        let row = hex_digest(&format!("{}\n{}", key.action, key.target));
        let table_url = format!("{}/{table}", self.account.table_endpoint);
        let entity_url = format!("{table_url}(PartitionKey='{partition}',RowKey='{row}')");
        (entity_url, table_url)
    }

    /// The entity URL and ETag of an entry this instance claimed; for one it did not (which
    /// the delivery path never asks for), where a claim now would be, and any ETag.
    fn take_held(&self, key: &ActionKey) -> Held {
        self.held_entries()
            .remove(&key.to_string())
            .unwrap_or_else(|| Held {
                url: self.locate(key, Utc::now()).0,
                etag: "*".to_owned(),
                until: Utc::now(),
            })
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
        let (url, table_url) = match self.moved_step_table(key, now).await? {
            Some(table) => self.locate_in(key, &table),
            None => self.locate(key, now),
        };
        let until = super::lease_end(now, lease);
        let claimed = |since| Entity {
            at: rfc3339(now),
            state: "claimed".to_owned(),
            until: Some(rfc3339(until)),
            since: Some(rfc3339(since)),
            outcome: None,
            key: key.to_string(),
        };
        let body = entity_json(&url, &claimed(now));
        // Each turn: insert, or read what is there and take it over if its lease ran out.
        for _ in 0..3 {
            let inserted = self
                .send(Method::POST, &table_url, None, Some(&body))
                .await?;
            match inserted.status() {
                StatusCode::CREATED | StatusCode::NO_CONTENT => {
                    self.hold(key, &url, &inserted, until);
                    return Ok(Claim::Acquired { since: now });
                }
                StatusCode::CONFLICT => {}
                // A new month's table, or one deleted since: make it and insert again.
                StatusCode::NOT_FOUND => {
                    self.create_table(table_name(&table_url)).await?;
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
            let entity: Entity = crate::http::read_json(found, ENTITY_CAP)
                .await
                .map_err(|e| {
                    LedgerError(format!("{}: unreadable entry: {e}", table_name(&table_url)))
                })?;
            if let Some(outcome) = entity.outcome.as_deref() {
                let recorded = serde_json::from_str(outcome).map_err(|e| {
                    LedgerError(format!(
                        "{}: unreadable outcome: {e}",
                        table_name(&table_url)
                    ))
                })?;
                return Ok(Claim::Done(recorded));
            }
            let held_until = entity.until.as_deref().and_then(parse_time);
            if held_until.is_some_and(|until| until + CLOCK_SKEW > now) {
                return Ok(Claim::Busy);
            }
            // The lapsed claim's first time carries over: a repeat says when it was first tried.
            let since = entity.since.as_deref().and_then(parse_time).unwrap_or(now);
            let takeover = entity_json(&url, &claimed(since));
            let taken = self
                .send(Method::PUT, &url, Some(&etag), Some(&takeover))
                .await?;
            match taken.status() {
                StatusCode::NO_CONTENT | StatusCode::OK => {
                    self.hold(key, &url, &taken, until);
                    return Ok(Claim::Acquired { since });
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
        let held = self.take_held(key);
        let done = Entity {
            at: rfc3339(now),
            state: "done".to_owned(),
            until: None,
            since: None,
            outcome: Some(serde_json::to_string(&outcome).expect("an outcome serialises")),
            key: key.to_string(),
        };
        let body = entity_json(&held.url, &done);
        // The action was done: until the lease ends, no other instance can take the entry
        // over, so the record is tried again (a storage blip, a failover) for as long as that
        // holds. Past it, a redelivery may act again; the error says so.
        let mut if_match = Some(held.etag.clone());
        let mut pause = COMPLETION_FIRST_PAUSE;
        loop {
            let answer = self
                .send(Method::PUT, &held.url, if_match.as_deref(), Some(&body))
                .await;
            let failure = match answer.as_ref().map(reqwest::Response::status) {
                Ok(StatusCode::NO_CONTENT | StatusCode::OK) => return Ok(()),
                Ok(StatusCode::PRECONDITION_FAILED) => {
                    tracing::warn!(target = %key.target, "the lease was lost to another instance before the outcome was recorded; its entry is left as it is");
                    return Ok(());
                }
                // The table went (deleted by hand, or dropped): make it again and write the
                // entry whole, since the action was done.
                Ok(StatusCode::NOT_FOUND) => {
                    if let Err(err) = self.create_table(entity_table(&held.url)).await {
                        tracing::warn!(error = %err, "cannot re-create the ledger's table");
                    }
                    if_match = None;
                    "the table or the entry was missing".to_owned()
                }
                Ok(status) => self.unexpected("a completion", status).to_string(),
                Err(err) => err.to_string(),
            };
            if Utc::now() + TimeDelta::from_std(pause).unwrap_or_default() + CLOCK_SKEW
                >= held.until
            {
                return Err(LedgerError(format!(
                    "the outcome could not be recorded before the claim's lease ended: {failure}"
                )));
            }
            tracing::warn!(target = %key.target, reason = %failure, "recording an outcome failed; trying again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(COMPLETION_MAX_PAUSE);
        }
    }

    async fn release(&self, key: &ActionKey) -> Result<(), LedgerError> {
        let held = self.take_held(key);
        let response = self
            .send(Method::DELETE, &held.url, Some(&held.etag), None)
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

    async fn purge_turn(&self, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        self.take_purge_turn(now).await
    }

    async fn purge(&self, cutoff: DateTime<Utc>) -> Result<usize, LedgerError> {
        self.purge_troubles(cutoff).await?;
        self.drop_tables_before(cutoff).await
    }

    async fn note(&self, trouble: &Trouble) -> Result<(), LedgerError> {
        self.note_trouble(trouble).await
    }

    async fn clear(&self, kind: TroubleKind, subject: &str) -> Result<(), LedgerError> {
        self.clear_trouble(kind, subject).await
    }

    async fn troubles(&self) -> Result<Vec<Trouble>, LedgerError> {
        self.list_troubles().await
    }

    async fn remember(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.store_memory(key, value).await
    }

    async fn recall(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.read_memory(key).await
    }
}

/// The entity's JSON body, its keys taken from its URL.
fn entity_json(url: &str, entity: &impl Serialize) -> serde_json::Value {
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

/// The table of an entity's URL (`{endpoint}/{table}(PartitionKey='…',RowKey='…')`).
fn entity_table(entity_url: &str) -> &str {
    table_name(entity_url.split('(').next().unwrap_or(entity_url))
}

/// The table's name, from its URL.
fn table_name(table_url: &str) -> &str {
    table_url.rsplit('/').next().unwrap_or(table_url)
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
