//! `inventory` and `sweep`: the expiry sweep from the command line, with the timer's code.

use crate::dispatch::Dispatcher;
use crate::sweep::{InventoryRow, Sweeper};

/// Longest `inventory --days` window (ten years).
const MAX_DAYS: i64 = 3650;

/// The sweep, once it can sign in and reach the vaults; else a message saying why (the
/// setting that turns it on, the sign-in or the name that fails), once.
async fn reachable(sweeper: Option<&Sweeper>) -> Option<&Sweeper> {
    let Some(sweeper) = sweeper else {
        say!(
            "neither VAULTS nor SUBSCRIPTIONS is set: name the vaults to read (kv-a,kv-b or \
             https://kv-a.vault.azure.net), or the subscriptions whose vaults to find"
        );
        return None;
    };
    if let Err(why) = sweeper.reachable().await {
        say!("cannot read the vaults of {}: {why}", sweeper.scope());
        return None;
    }
    Some(sweeper)
}

/// Prints every object expiring within `days` (or never) across the vaults; `false` when a
/// vault could not be read in full.
pub async fn inventory(
    dispatcher: &Dispatcher,
    sweeper: Option<&Sweeper>,
    days: i64,
    json: bool,
) -> anyhow::Result<bool> {
    if !(0..=MAX_DAYS).contains(&days) {
        anyhow::bail!("--days {days}: give a number of days from 0 to {MAX_DAYS}");
    }
    let Some(sweeper) = reachable(sweeper).await else {
        return Ok(false);
    };
    let mut rows = sweeper.inventory(dispatcher, days).await;
    rows.sort_by(|a, b| {
        (a.days_left.is_none(), a.days_left, &a.vault, &a.name).cmp(&(
            b.days_left.is_none(),
            b.days_left,
            &b.vault,
            &b.name,
        ))
    });
    let complete = rows.iter().all(|r| !r.name.is_empty());
    if json {
        say!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(complete);
    }
    let vaults: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r.vault.as_str())
        .filter(|v| !v.is_empty())
        .collect();
    say!(
        "{} object(s) expiring within {days} days or never, in {} vault(s) of {}; reminder steps: {} (REMINDER_DAYS)",
        rows.iter().filter(|r| !r.name.is_empty()).count(),
        vaults.len(),
        sweeper.scope(),
        dispatcher.ladder()
    );
    for row in &rows {
        say!("{}", line(row));
    }
    Ok(complete)
}

fn line(row: &InventoryRow) -> String {
    let left = row
        .days_left
        .map_or_else(|| "-".to_owned(), |d| d.to_string());
    let expires = row
        .expires
        .as_deref()
        .map_or("never", |t| t.get(..10).unwrap_or(t));
    let owners = if row.name.is_empty() {
        "(not read)".to_owned()
    } else if row.owners.is_empty() {
        "nobody (set OWNER_EMAILS, an [[owners]] entry or an owner tag)".to_owned()
    } else if row.owner_source.is_empty() {
        row.owners.join(", ")
    } else {
        format!(
            "{} (owners from {})",
            row.owners.join(", "),
            row.owner_source
        )
    };
    let mut line = format!(
        "{:<24} {:<11} {:<32} {:>10} {:>5}  {:<26} -> {owners}",
        row.vault, row.object_type, row.name, expires, left, row.reminder
    );
    for note in &row.notes {
        line.push_str(&format!("; {note}"));
    }
    line
}

/// Runs one sweep and prints its summary; `false` when something failed.
pub async fn sweep(
    dispatcher: &Dispatcher,
    sweeper: Option<&Sweeper>,
    dry_run: bool,
) -> anyhow::Result<bool> {
    let Some(sweeper) = reachable(sweeper).await else {
        return Ok(false);
    };
    let report = sweeper.run(dispatcher, dry_run).await;
    for line in report.log_lines() {
        say!("{line}");
    }
    Ok(!report.failed())
}
