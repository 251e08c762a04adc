//! `kv-notify requeue`: puts the events that were set aside (the host's poison queue,
//! kv-notify's rejected one, and Event Grid's dead letters) back on the queue the app reads,
//! once the cause is fixed.
//!
//! Each message is put back before it is deleted where it waited, so a run cut short leaves a
//! message in both places at worst, never in neither; the ledger then mails its event once.

use crate::queued::{POISON, QUEUE, REJECTED};
use crate::storage::{Account, Container, Queue};
use crate::sweep::health::dead_letter_events;
use std::time::Duration;

/// How long a message being moved is hidden from another `requeue`.
const HIDDEN: Duration = Duration::from_secs(120);

/// Moves every message of the poison and rejected queues back to the app's queue; prints what
/// it moved. `false` when some could not be moved.
/// `problem` says why the storage settings cannot be used, when they cannot.
pub async fn requeue(
    account: Option<&Account>,
    problem: Option<&str>,
    dead_letters: &str,
) -> anyhow::Result<bool> {
    let Some(account) = account else {
        if let Some(problem) = problem {
            anyhow::bail!("requeue cannot reach the app's storage account: {problem}");
        }
        anyhow::bail!(
            "requeue needs the app's storage account: set AzureWebJobsStorage (a connection \
             string) or AzureWebJobsStorage__accountName with the app's identity (or, on a \
             developer's machine, the Azure CLI's login)"
        );
    };
    if account.queue_endpoint.is_empty() {
        anyhow::bail!("AzureWebJobsStorage names no Queue service (QueueEndpoint)");
    }
    let target = Queue::new(account.clone(), QUEUE)?;
    let mut ok = true;
    for source in [POISON, REJECTED] {
        let source = Queue::new(account.clone(), source)?;
        let (moved, failed) = move_all(&source, &target).await;
        super::emit(format_args!(
            "{}: {moved} message(s) put back on {QUEUE}{}",
            source.name(),
            failed
                .as_ref()
                .map(|why| format!("; stopped: {why}"))
                .unwrap_or_default()
        ));
        ok &= failed.is_none();
    }
    if account.blob_endpoint.is_empty() {
        return Ok(ok);
    }
    let container = Container::new(account.clone(), dead_letters)?;
    let (moved, failed) = move_dead_letters(&container, &target).await;
    super::emit(format_args!(
        "container {dead_letters}: {moved} dead-lettered event(s) put back on {QUEUE}{}",
        failed
            .as_ref()
            .map(|why| format!("; stopped: {why}"))
            .unwrap_or_default()
    ));
    ok &= failed.is_none();
    Ok(ok)
}

/// Puts each event of each dead-letter blob on `target`, then deletes the blob.
async fn move_dead_letters(container: &Container, target: &Queue) -> (usize, Option<String>) {
    let blobs = match container.list().await {
        Ok(blobs) => blobs,
        Err(error) => return (0, Some(error.to_string())),
    };
    let mut moved = 0;
    for blob in blobs {
        let text = match container.read(&blob.name).await {
            Ok(text) => text,
            Err(error) => return (moved, Some(error.to_string())),
        };
        for event in dead_letter_events(&text) {
            if let Err(error) = target.put(&event.to_string()).await {
                return (moved, Some(error.to_string()));
            }
            moved += 1;
        }
        if let Err(error) = container.delete(&blob.name).await {
            return (moved, Some(error.to_string()));
        }
    }
    (moved, None)
}

/// Moves `source`'s messages to `target` until it is empty; how many, and why it stopped early.
async fn move_all(source: &Queue, target: &Queue) -> (usize, Option<String>) {
    let mut moved = 0;
    loop {
        let batch = match source.receive(32, HIDDEN).await {
            Ok(batch) if batch.is_empty() => return (moved, None),
            Ok(batch) => batch,
            Err(error) => return (moved, Some(error.to_string())),
        };
        for message in batch {
            if let Err(error) = target.put(&message.text).await {
                return (moved, Some(error.to_string()));
            }
            if let Err(error) = source.delete(&message).await {
                return (moved, Some(error.to_string()));
            }
            moved += 1;
        }
    }
}
