//! `kv-notify replay FILE...`: feeds saved events through the same pipeline as the server and
//! prints what was done, so a team can try its settings without Azure.

use crate::dispatch::Dispatcher;
use crate::envelope;
use crate::report::{ActionStatus, EventReport};
use anyhow::Context;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Replays every file (directories: their `*.json` files, sorted) and prints one block per
/// event. Returns whether everything was understood and nothing failed.
pub async fn replay(dispatcher: &Dispatcher, paths: &[PathBuf]) -> anyhow::Result<bool> {
    let mut ok = true;
    for file in expand(paths)? {
        match replay_file(dispatcher, &file).await {
            Ok(reports) => {
                for report in &reports {
                    ok &= !report
                        .actions
                        .iter()
                        .any(|a| a.status == ActionStatus::Failed);
                    print_report(&file, report);
                }
            }
            Err(err) => {
                ok = false;
                println!("{}: error: {err:#}", file.display());
            }
        }
    }
    Ok(ok)
}

async fn replay_file(dispatcher: &Dispatcher, file: &Path) -> anyhow::Result<Vec<EventReport>> {
    let text = std::fs::read(file).context("cannot read the file")?;
    let json: Value = serde_json::from_slice(&text).context("not valid JSON")?;
    let events = if envelope::is_invocation(&json) {
        envelope::events_of_invocation(&text)?
    } else {
        envelope::events_of_value(json)?
    };
    Ok(dispatcher.handle_all(&events).await?)
}

fn print_report(file: &Path, report: &EventReport) {
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut lines = report.log_lines().into_iter();
    if let Some(first) = lines.next() {
        println!("{name}: {first}");
    }
    for line in lines {
        println!("{line}");
    }
}

/// Files as given; directories replaced by their `*.json` files in name order.
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    anyhow::ensure!(!files.is_empty(), "no event files given");
    Ok(files)
}
