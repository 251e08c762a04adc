//! Opening the ledger file: its lock, and the check that repairs it or sets a damaged one
//! aside for a fresh one.

use crate::ledger::LedgerError;
use chrono::Utc;
use redb::{Database, DatabaseError, StorageError};
use std::fs::{File, TryLockError};
use std::path::Path;

/// Why a ledger file cannot be opened by a second process.
const ALREADY_OPEN: &str = "another process has it open; instances that share a ledger need the \
                            storage-account table (LEDGER=table)";

/// Page cache for the ledger: the working set is a few days of keys, tiny.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Takes `<path>.lock` for this process, or says which other one holds the ledger. A lock file
/// of its own, so that the lock is known before the database file is opened (redb syncs the
/// file as it opens it: milliseconds the host would wait for at start-up).
pub(super) fn lock(path: &Path) -> Result<File, LedgerError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(|e| cannot_open(path, &format!("cannot open its lock file: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(cannot_open(path, &ALREADY_OPEN)),
        Err(TryLockError::Error(e)) => Err(cannot_open(
            path,
            &format!("cannot lock its lock file: {e}"),
        )),
    }
}

/// Opens the file and checks every page; a file that cannot be repaired is set aside for a
/// fresh one.
pub(super) fn open_checked(path: &Path) -> Result<Database, LedgerError> {
    check(path, open_file(path)?)
}

/// Opens (or creates) the file; one too damaged to open is set aside for a fresh one.
fn open_file(path: &Path) -> Result<Database, LedgerError> {
    let opened =
        std::panic::catch_unwind(|| Database::builder().set_cache_size(CACHE_BYTES).create(path));
    let damage = match opened {
        Ok(Ok(db)) => return Ok(db),
        Ok(Err(DatabaseError::Storage(StorageError::Corrupted(why)))) => why,
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => {
            return Err(cannot_open(path, &ALREADY_OPEN));
        }
        Ok(Err(e)) if never_written(path) => return start_over(path, &e),
        Ok(Err(e)) => return Err(cannot_open(path, &e)),
        Err(_) => "redb panicked while opening it".to_owned(),
    };
    start_afresh(path, &damage)
}

/// Whether the file holds nothing but zeros (or nothing): its creation was cut short, by a
/// full disk most often, before redb wrote its header. Such a file holds no history.
fn never_written(path: &Path) -> bool {
    /// Larger than the region redb sets aside as it creates a file (about 1 MiB, sparse): a
    /// bigger file is not a cut-short creation.
    const MOST: u64 = 16 * 1024 * 1024;
    let small = std::fs::metadata(path).is_ok_and(|m| m.len() <= MOST);
    small && std::fs::read(path).is_ok_and(|bytes| bytes.iter().all(|b| *b == 0))
}

/// Replaces a file whose creation was cut short with a fresh ledger.
fn start_over(path: &Path, why: &dyn std::fmt::Display) -> Result<Database, LedgerError> {
    std::fs::remove_file(path).map_err(|e| cannot_open(path, &format!("{why}; {e}")))?;
    tracing::warn!(path = %path.display(), "the ledger file was never written in full (a full disk?): starting it afresh; it held nothing");
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| cannot_open(path, &e))
}

/// Checks every page of the open `db`, repairing what redb can; a file that cannot be repaired
/// is set aside for a fresh one.
fn check(path: &Path, mut db: Database) -> Result<Database, LedgerError> {
    let damage = match db.check_integrity() {
        Ok(true) => return Ok(db),
        Ok(false) => {
            tracing::warn!(path = %path.display(), "the ledger was damaged and has been repaired");
            return Ok(db);
        }
        Err(DatabaseError::Storage(StorageError::Corrupted(why))) => why,
        Err(e) => return Err(cannot_open(path, &e)),
    };
    drop(db);
    start_afresh(path, &damage)
}

/// Moves the damaged file aside, kept for a post-mortem, and starts a fresh one.
fn start_afresh(path: &Path, damage: &str) -> Result<Database, LedgerError> {
    let aside = path.with_extension(format!(
        "redb.corrupt-{}",
        Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::rename(path, &aside)
        .map_err(|e| cannot_open(path, &format!("{damage}; moving it aside failed: {e}")))?;
    tracing::error!(
        path = %path.display(),
        moved_to = %aside.display(),
        damage = %damage,
        "the ledger was damaged beyond repair: moved aside, starting a fresh one; redeliveries of \
         events handled before now may be mailed again"
    );
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| cannot_open(path, &e))
}

fn cannot_open(path: &Path, e: &dyn std::fmt::Display) -> LedgerError {
    LedgerError(format!("cannot open {}: {e}", path.display()))
}
