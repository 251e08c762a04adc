//! The health notice's troubles in the ledger file: a table of their own, by kind and subject.
//! They are written without an fsync: one lost in a crash costs a line of a health notice, not
//! a mail, and the next completion makes them durable.

use super::{RedbLedger, Store, store_error};
use crate::ledger::{LedgerError, Trouble};
use chrono::{DateTime, Utc};
use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition};

/// The troubles, by kind and subject.
const TROUBLES: TableDefinition<&str, &[u8]> = TableDefinition::new("troubles");

impl RedbLedger {
    /// Records a trouble, keeping a known one's first sighting.
    pub(super) async fn note_trouble(&self, mut trouble: Trouble) -> Result<(), LedgerError> {
        self.blocking(move |store| {
            store.write_in(TROUBLES, Durability::None, |table| {
                let key = Trouble::key(trouble.kind, &trouble.subject);
                let known = table
                    .get(key.as_str())?
                    .and_then(|v| serde_json::from_slice::<Trouble>(v.value()).ok());
                if let Some(known) = known {
                    trouble.since = known.since.min(trouble.since);
                }
                let value = serde_json::to_vec(&trouble).expect("a trouble serialises");
                table.insert(key.as_str(), value.as_slice())?;
                Ok(())
            })
        })
        .await
    }

    /// Forgets the trouble stored under `key`.
    pub(super) async fn clear_trouble(&self, key: String) -> Result<(), LedgerError> {
        self.blocking(move |store| {
            store.write_in(TROUBLES, Durability::None, |table| {
                table.remove(key.as_str())?;
                Ok(())
            })
        })
        .await
    }

    /// Every trouble kept (none before the first is noted).
    pub(super) async fn list_troubles(&self) -> Result<Vec<Trouble>, LedgerError> {
        self.blocking(|store| {
            let db = store.database()?;
            let txn = db.begin_read().map_err(store_error)?;
            let table = match txn.open_table(TROUBLES) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(store_error(e)),
            };
            let mut troubles = Vec::new();
            for row in table.iter().map_err(store_error)? {
                let (_, value) = row.map_err(store_error)?;
                troubles.extend(serde_json::from_slice::<Trouble>(value.value()).ok());
            }
            Ok(troubles)
        })
        .await
    }
}

impl Store {
    /// Deletes the troubles last seen before `cutoff` (and any that cannot be read).
    pub(super) fn prune_troubles(&self, cutoff: DateTime<Utc>) -> Result<(), LedgerError> {
        self.write_in(TROUBLES, Durability::None, |table| {
            table.retain(|_, value| {
                serde_json::from_slice::<Trouble>(value).is_ok_and(|t| t.last >= cutoff)
            })
        })
    }
}
