//! `kv-notify replay FILE...`: feeds saved events through the same pipeline as the server and
//! prints what was done, so a team can try its settings without Azure.

use super::{event_files, file_name, read_events};
use crate::dispatch::Dispatcher;
use crate::report::EventReport;
use std::path::{Path, PathBuf};

/// Replays every file (directories: their `*.json` files, sorted) and prints one block per
/// event. Returns whether everything was understood and nothing failed.
pub async fn replay(dispatcher: &Dispatcher, paths: &[PathBuf]) -> anyhow::Result<bool> {
    let mut ok = true;
    for file in event_files(paths)? {
        match replay_file(dispatcher, &file).await {
            Ok(reports) => {
                for report in &reports {
                    ok &= !report
                        .actions
                        .iter()
                        .any(|a| a.outcome.status() == "failed");
                    print_report(&file, report);
                }
            }
            Err(err) => {
                ok = false;
                say!("{}: error: {err:#}", file.display());
            }
        }
    }
    Ok(ok)
}

async fn replay_file(dispatcher: &Dispatcher, file: &Path) -> anyhow::Result<Vec<EventReport>> {
    let events = crate::envelope::parse_all(read_events(file)?)?;
    Ok(dispatcher.handle_all(events).await)
}

fn print_report(file: &Path, report: &EventReport) {
    let mut lines = report.log_lines();
    if let Some(first) = lines.next() {
        say!("{}: {first}", file_name(file));
    }
    for line in lines {
        say!("{line}");
    }
}
