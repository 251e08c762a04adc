//! The command-line tools beside the server: `replay`, `check`, `explain`, `preview`, `purge`,
//! `inventory`, `sweep` and `test`.
//!
//! They read `local.settings.json` `Values` as `func start` does (the environment overrides
//! them) and share the server's configuration path, so what they accept the server accepts.

/// Prints a line to stdout. A closed pipe (`kv-notify check | head`) ends the program
/// quietly instead of panicking, as command-line tools do.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::emit(format_args!($($arg)*))
    };
}

pub mod inspect;
pub mod replay;
pub mod requeue;
pub mod sweep;
pub mod test_alert;

use crate::config::{Config, ConfigError};
use crate::envelope;
use crate::event::RawEvent;
use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Loads the configuration from `local.settings.json` in the working directory and the
/// environment.
pub fn load_config() -> anyhow::Result<Result<Config, ConfigError>> {
    let values = crate::settings::Values::local(Path::new("local.settings.json"))?;
    Ok(Config::from_values(&values))
}

/// A `--now` value that is not a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a time: use 2027-01-31 or 2027-01-31T09:00:00Z")]
pub struct InvalidTime(String);

/// Reads a `--now` value: RFC 3339 (`2027-01-31T09:00:00Z`) or a date (`2027-01-31`, midnight
/// UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, InvalidTime> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.to_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| InvalidTime(text.to_owned()))
}

/// Files as given; directories replaced by their `*.json` files in name order.
pub fn event_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
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

/// The raw events in a file: an Event Grid array, one event (either schema), or a whole
/// invocation envelope.
pub fn read_events(file: &Path) -> anyhow::Result<Vec<RawEvent>> {
    let text = std::fs::read(file).context("cannot read the file")?;
    let json: Value = serde_json::from_slice(&text).context("not valid JSON")?;
    let events = if envelope::is_invocation(&json) {
        envelope::events_of_invocation(&text)?
    } else {
        envelope::events_of_value(&json)?
    };
    Ok(events)
}

/// Writes one line to stdout; see `say!`.
pub(crate) fn emit(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(err) = writeln!(out, "{line}")
        && err.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// The file's name, for output lines.
fn file_name(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
