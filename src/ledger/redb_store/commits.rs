//! Group commit: one thread writes completions and releases, as many per durable transaction
//! as have queued up while the previous one was syncing.

use super::{Entry, LedgerError, Store, encode};
use redb::Durability;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Most writes in one transaction: bounds the time one commit holds the write lock.
const MAX_GROUP: usize = 256;

/// One durable write: an entry to store under `key`, or `None` to remove it.
struct Commit {
    key: String,
    entry: Option<Entry>,
    done: oneshot::Sender<Result<(), LedgerError>>,
}

/// The queue to the committer thread. When the last clone is dropped, the thread finishes
/// what is queued and ends, and the drop waits for it, so that the database is closed after.
#[derive(Clone)]
pub(super) struct Committer(Arc<Thread>);

struct Thread {
    queue: Option<Sender<Commit>>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Thread {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Committer {
    /// Starts the committer thread for `store`.
    pub(super) fn start(store: Arc<Store>) -> Self {
        let (queue, commits) = channel();
        let handle = std::thread::Builder::new()
            .name("ledger-commits".to_owned())
            .spawn(move || run(&store, &commits))
            .expect("the ledger commit thread starts");
        Self(Arc::new(Thread {
            queue: Some(queue),
            handle: Some(handle),
        }))
    }

    /// Writes `entry` under `key` (or removes it), durably, and returns once it is on disk.
    pub(super) async fn commit(
        &self,
        key: String,
        entry: Option<Entry>,
    ) -> Result<(), LedgerError> {
        let (done, written) = oneshot::channel();
        let stopped = || LedgerError("the ledger commit thread has stopped".to_owned());
        let queue = self.0.queue.as_ref().ok_or_else(stopped)?;
        queue
            .send(Commit { key, entry, done })
            .map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

fn run(store: &Store, commits: &Receiver<Commit>) {
    while let Ok(first) = commits.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match commits.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let result = store.guarded(|store| {
            store.write(Durability::Immediate, |table| {
                for commit in &group {
                    match &commit.entry {
                        Some(entry) => table.insert(commit.key.as_str(), encode(entry).as_slice()),
                        None => table.remove(commit.key.as_str()),
                    }?;
                }
                Ok(())
            })
        });
        for commit in group {
            // A caller that stopped waiting needs no answer.
            let _ = commit.done.send(result.clone());
        }
    }
}
