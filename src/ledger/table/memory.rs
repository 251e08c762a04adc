//! What kv-notify remembers between events in the shared ledger: one table,
//! `<LEDGER_TABLE>memory` (six characters, as `health`), one entity per key (its digest the row
//! key). Small: a vault's exposure settings, a role assignment's role and principal.

use super::{TableLedger, hex_digest, table_name};
use crate::ledger::LedgerError;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

/// The one partition: the table holds a few hundred entities at most.
const PARTITION: &str = "memory";

/// Longest value kept: a string property holds at most 64 KiB (32,768 UTF-16 characters).
const MAX_VALUE: usize = 30_000;

/// One remembered value as stored.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    key: String,
    value: String,
}

impl TableLedger {
    fn memory_url(&self) -> String {
        format!("{}/{}memory", self.account.table_endpoint, self.prefix)
    }

    fn remembered_url(&self, key: &str) -> String {
        format!(
            "{}(PartitionKey='{PARTITION}',RowKey='{}')",
            self.memory_url(),
            hex_digest(key)
        )
    }

    /// Inserts or replaces the value of `key` (the table is made on first use).
    pub(super) async fn store_memory(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        if value.len() > MAX_VALUE {
            return Err(LedgerError(format!(
                "a value of {} bytes is too large to remember (at most {MAX_VALUE})",
                value.len()
            )));
        }
        let url = self.remembered_url(key);
        let row = Row {
            key: key.to_owned(),
            value: value.to_owned(),
        };
        let body = super::entity_json(&url, &row);
        for _ in 0..2 {
            let response = self.send(Method::PUT, &url, None, Some(&body)).await?;
            match response.status() {
                StatusCode::NO_CONTENT | StatusCode::OK | StatusCode::CREATED => return Ok(()),
                StatusCode::NOT_FOUND => {
                    let table = self.memory_url();
                    self.create_table(table_name(&table)).await?;
                }
                status => return Err(self.unexpected("remembering a value", status)),
            }
        }
        Err(LedgerError("the memory table could not be made".to_owned()))
    }

    /// What `key` holds (nothing before the table exists).
    pub(super) async fn read_memory(&self, key: &str) -> Result<Option<String>, LedgerError> {
        let url = self.remembered_url(key);
        let response = self.send(Method::GET, &url, None, None).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            status => return Err(self.unexpected("reading a remembered value", status)),
        }
        let row: Row = response
            .json()
            .await
            .map_err(|e| LedgerError(format!("unreadable remembered value: {e}")))?;
        // A digest is shared only by equal keys; a row of another key would be a broken store.
        Ok((row.key == key).then_some(row.value))
    }
}
