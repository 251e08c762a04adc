//! The embedded ledger: a redb file on local disk.
//!
//! A `complete` is durable (fsynced) before it returns, so a completion that returned survives
//! kill -9. Completions and releases are written by one committer thread, which takes every one
//! queued while the previous commit was syncing into the next transaction: under a burst, many
//! completions share one fsync instead of queueing for one each, so a mail the server accepted
//! is recorded milliseconds later, not after every completion ahead of it. A claim is committed
//! without fsync (`Durability::None`): a claim lost in a crash only means that a redelivery
//! need not wait for its lease; unless claims are made durable
//! ([`RedbLedger::with_durable_claims`]), for a transport whose repeats must carry the first
//! attempt's time. redb is synchronous; calls run on tokio's blocking pool or the
//! committer thread, never on the reactor.

mod commits;
mod memory;
mod open;
mod troubles;

use open::{lock, open_checked};

use super::{ActionKey, Claim, Entry, Ledger, LedgerError, Recorded, State, Trouble, TroubleKind};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, StorageError, TableDefinition};
use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

const ACTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("actions");

/// A ledger in a redb database.
///
/// After an I/O error (a full disk) redb refuses every later transaction until the database is
/// reopened, and a panic inside redb leaves it in an unknown state. So either closes the
/// database: calls fail fast until the next one reopens it, which succeeds once the fault has
/// cleared. No restart is needed, and nothing is answered as done that was not recorded.
#[derive(Clone)]
pub struct RedbLedger {
    store: Arc<Store>,
    commits: commits::Committer,
    /// How claims are committed: without fsync, unless they must survive a crash.
    claims: Durability,
}

/// The database and how to reopen it; shared with the committer thread.
struct Store {
    /// The file; `None` for a ledger in memory, which is never reopened.
    path: Option<PathBuf>,
    /// `<file>.lock`, locked for as long as the process lives: the file is this process's.
    _lock: Option<File>,
    /// The open database; `None` once a fault closed it, until a call reopens it.
    db: Mutex<Option<Arc<Database>>>,
    /// Set once the database opened at start-up has been checked; calls wait for it.
    checked: OnceLock<()>,
}

impl RedbLedger {
    /// Opens (or creates) the ledger file at `path`, creating its directory; a file another
    /// process holds is an error here (its lock file, `<file>.lock`, is taken first). The file
    /// is then opened (which syncs it) and its integrity checked on a thread of its own, while
    /// the host waits for the handler to answer; the first calls wait for both (a few
    /// milliseconds). A file damaged beyond repair is moved aside
    /// (`<name>.corrupt-<time>`) and a fresh ledger started, with an error in the log: a lost
    /// history can repeat a mail that a redelivery brings back, but a handler that cannot start
    /// loses every alert.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| LedgerError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let lock = lock(path)?;
        let ledger = Self::init(Some((path.to_owned(), lock)));
        let (store, path) = (ledger.store.clone(), path.to_owned());
        std::thread::Builder::new()
            .name("ledger-check".to_owned())
            .spawn(move || {
                let checked = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    open_checked(&path).and_then(|db| store.install(db))
                }))
                .unwrap_or_else(|_| Err(LedgerError("redb panicked checking it".to_owned())));
                if let Err(err) = checked {
                    // The next call tries again, opening and checking the file itself.
                    tracing::error!(error = %err, "ledger check failed");
                }
                // Set whatever happened: calls wait for it.
                store.checked.set(()).ok();
            })
            .map_err(|e| LedgerError(format!("cannot start the ledger check: {e}")))?;
        Ok(ledger)
    }

    /// A ledger in memory: for one-off runs (the replay CLI) and tests.
    pub fn in_memory() -> Self {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("an in-memory database opens");
        let ledger = Self::init(None);
        ledger
            .store
            .install(db)
            .expect("an in-memory table is created");
        ledger.store.checked.set(()).ok();
        ledger
    }

    /// Claims fsynced before they are answered, so that the time an action was first claimed
    /// survives kill -9: a mail transport that recognises repeats (ACS Email) needs it to send
    /// a repeat as the same request. Costs one fsync per claim.
    #[must_use]
    pub fn with_durable_claims(mut self) -> Self {
        self.claims = Durability::Immediate;
        self
    }

    fn init(file: Option<(PathBuf, File)>) -> Self {
        let (path, lock) = file.unzip();
        let store = Arc::new(Store {
            path,
            _lock: lock,
            db: Mutex::new(None),
            checked: OnceLock::new(),
        });
        Self {
            commits: commits::Committer::start(store.clone()),
            store,
            claims: Durability::None,
        }
    }

    /// Runs blocking ledger work off the async reactor.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.guarded(f))
            .await
            .map_err(|e| LedgerError(format!("ledger task failed: {e}")))?
    }
}

impl Store {
    /// Makes `db` the open database, with the ledger's table in it. Creating the table needs
    /// no fsync: the first completion makes it durable.
    fn install(&self, db: Database) -> Result<(), LedgerError> {
        create_table(&db)?;
        *self.db.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(db));
        Ok(())
    }

    /// The open database, once checked; reopened if a fault closed it.
    fn database(&self) -> Result<Arc<Database>, LedgerError> {
        self.checked.wait();
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = db.as_ref() {
            return Ok(open.clone());
        }
        let path = self
            .path
            .as_deref()
            .expect("only a file ledger is ever closed");
        let reopened = open_checked(path)?;
        // The table too: a file whose first write met a full disk may hold none yet.
        create_table(&reopened)?;
        let reopened = Arc::new(reopened);
        tracing::info!(path = %path.display(), "ledger reopened");
        *db = Some(reopened.clone());
        Ok(reopened)
    }

    /// Closes the database after a fault, so that the next call reopens it.
    fn close(&self) {
        if self.path.is_some() {
            self.db.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
    }

    /// Runs `f` on the actions in one write transaction and commits it.
    fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<T, StorageError>,
    ) -> Result<T, LedgerError> {
        self.write_in(ACTIONS, durability, f)
    }

    /// Runs `f` on `table` in one write transaction and commits it.
    fn write_in<T>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        durability: Durability,
        f: impl FnOnce(&mut redb::Table<&str, &[u8]>) -> Result<T, StorageError>,
    ) -> Result<T, LedgerError> {
        let db = self.database()?;
        let mut txn = db.begin_write().map_err(store_error)?;
        txn.set_durability(durability)
            .map_err(|e| LedgerError(e.to_string()))?;
        let result = {
            let mut table = txn.open_table(table).map_err(store_error)?;
            f(&mut table).map_err(store_error)?
        };
        txn.commit().map_err(store_error)?;
        Ok(result)
    }

    /// Runs `f`; a storage fault or a panic closes the database (see [`RedbLedger`]).
    fn guarded<T>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(self)))
            .unwrap_or_else(|_| Err(LedgerError("the ledger store panicked".to_owned())));
        if result.is_err() {
            self.close();
        }
        result
    }

    fn read(&self, key: &str) -> Result<Option<Entry>, LedgerError> {
        let db = self.database()?;
        let txn = db.begin_read().map_err(store_error)?;
        let table = txn.open_table(ACTIONS).map_err(store_error)?;
        let value = table.get(key).map_err(store_error)?;
        Ok(value.and_then(|v| decode(v.value())))
    }
}

#[async_trait]
impl Ledger for RedbLedger {
    async fn claim(
        &self,
        key: &ActionKey,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, LedgerError> {
        let kept_from = key.kept_from(now);
        let key = key.to_string();
        let until = super::lease_end(now, lease);
        let durability = self.claims;
        self.blocking(move |store| {
            // A read first: a redelivery of a finished action costs no disk write.
            if let Some(claim) = store.read(&key)?.and_then(|entry| entry.claim_at(now)) {
                return Ok(claim);
            }
            // A claim need not survive a crash (unless made durable): lost, it only means a
            // redelivery after the crash does not wait for the lease. It becomes durable with
            // the next completion, which is the write that matters. This saves one fsync per
            // action.
            store.write(durability, |table| {
                let found = table.get(key.as_str())?.and_then(|v| decode(v.value()));
                if let Some(claim) = found.as_ref().and_then(|entry| entry.claim_at(now)) {
                    return Ok(claim);
                }
                let since = found.map_or(now, |entry| entry.first_claimed(now));
                let entry = Entry {
                    at: kept_from,
                    state: State::Claimed {
                        until,
                        since: Some(since),
                    },
                };
                table.insert(key.as_str(), encode(&entry).as_slice())?;
                Ok(Claim::Acquired { since })
            })
        })
        .await
    }

    async fn complete(
        &self,
        key: &ActionKey,
        outcome: Recorded,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let entry = Entry {
            at: key.kept_from(now),
            state: State::Done { outcome },
        };
        self.commits.commit(key.to_string(), Some(entry)).await
    }

    async fn release(&self, key: &ActionKey) -> Result<(), LedgerError> {
        self.commits.commit(key.to_string(), None).await
    }

    async fn purge(&self, cutoff: DateTime<Utc>) -> Result<usize, LedgerError> {
        self.blocking(move |store| {
            store.prune_troubles(cutoff)?;
            store.write(Durability::Immediate, |table| {
                let mut removed = 0;
                table.retain(|_, value| {
                    // Unreadable entries are dropped too: they cannot answer a claim.
                    let keep = decode(value).is_some_and(|entry| entry.at >= cutoff);
                    removed += usize::from(!keep);
                    keep
                })?;
                Ok(removed)
            })
        })
        .await
    }

    async fn note(&self, trouble: &Trouble) -> Result<(), LedgerError> {
        self.note_trouble(trouble.clone()).await
    }

    async fn clear(&self, kind: TroubleKind, subject: &str) -> Result<(), LedgerError> {
        self.clear_trouble(Trouble::key(kind, subject)).await
    }

    async fn troubles(&self) -> Result<Vec<Trouble>, LedgerError> {
        self.list_troubles().await
    }

    async fn remember(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        self.store_memory(key.to_owned(), value.to_owned()).await
    }

    async fn recall(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.read_memory(key.to_owned()).await
    }
}

/// Creates the ledger's table if the file has none yet. Needs no fsync: the first completion
/// makes it durable.
fn create_table(db: &Database) -> Result<(), LedgerError> {
    let mut txn = db.begin_write().map_err(store_error)?;
    txn.set_durability(Durability::None)
        .map_err(|e| LedgerError(e.to_string()))?;
    txn.open_table(ACTIONS).map_err(store_error)?;
    txn.commit().map_err(store_error)
}

fn encode(entry: &Entry) -> Vec<u8> {
    serde_json::to_vec(entry).expect("an entry serialises")
}

fn decode(bytes: &[u8]) -> Option<Entry> {
    serde_json::from_slice(bytes).ok()
}

fn store_error(err: impl Into<redb::Error>) -> LedgerError {
    LedgerError(err.into().to_string())
}

#[cfg(test)]
mod tests;
