//! What kv-notify remembers between events in the ledger file: a table of its own, by key. The
//! values are small (a vault's exposure settings, a role assignment's role and principal), and
//! written without an fsync: one lost in a crash costs a detail of a later alert (a deleted
//! assignment's role), never the alert.

use super::{RedbLedger, store_error};
use crate::ledger::LedgerError;
use redb::{Durability, ReadableDatabase, TableDefinition};

/// The remembered values, by key.
const MEMORY: TableDefinition<&str, &[u8]> = TableDefinition::new("memory");

impl RedbLedger {
    /// Stores `value` under `key`, replacing what was there.
    pub(super) async fn store_memory(&self, key: String, value: String) -> Result<(), LedgerError> {
        self.blocking(move |store| {
            store.write_in(MEMORY, Durability::None, |table| {
                table.insert(key.as_str(), value.as_bytes())?;
                Ok(())
            })
        })
        .await
    }

    /// What `key` holds.
    pub(super) async fn read_memory(&self, key: String) -> Result<Option<String>, LedgerError> {
        self.blocking(move |store| {
            let db = store.database()?;
            let txn = db.begin_read().map_err(store_error)?;
            let table = match txn.open_table(MEMORY) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(store_error(e)),
            };
            let value = table.get(key.as_str()).map_err(store_error)?;
            Ok(value.map(|v| String::from_utf8_lossy(v.value()).into_owned()))
        })
        .await
    }
}
