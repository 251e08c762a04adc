//! `check`, `explain` and `preview`: look at the configuration and at what it would do, without
//! sending anything.

use super::{event_files, file_name, read_events};
use crate::alert::Alert;
use crate::config::Config;
use crate::dispatch::Clock;
use crate::event::Event;
use std::path::{Path, PathBuf};

/// What the daily sweep reads, in one line.
fn sweep_scope(settings: &crate::settings::Settings) -> String {
    match &settings.sweep {
        None => "off (set VAULTS or SUBSCRIPTIONS)".to_owned(),
        Some(sweep) => format!(
            "{}; reminder steps {} (REMINDER_DAYS)",
            sweep.scope(),
            settings.ladder
        ),
    }
}

/// Prints the effective configuration: start-up warnings, where mail goes, the templates and
/// the routing.
pub fn check(config: &Config) {
    let settings = &config.settings;
    for warning in config.warnings() {
        say!("warning: {warning}");
    }
    say!(
        "mail: {}, from {}",
        settings.describe_mail(),
        settings.mail_from
    );
    let templates = settings.templates_dir.as_ref().map_or_else(
        || "built-in".to_owned(),
        |d| format!("{} (built-in where a file is missing)", d.display()),
    );
    say!("templates: {templates}");
    say!("expiry sweep: {}", sweep_scope(settings));
    say!("");
    say!("{}", config.routing.describe().trim_end());
    say!("\nok: the configuration is valid");
}

/// Prints, for every event in the files, which rules match and who would be notified: an
/// expiry event placed on the reminder ladder as the server places it (days left counting from
/// `clock`), so that rules with `steps` match as they do in `replay`. Returns whether every
/// file was understood.
pub fn explain(config: &Config, paths: &[PathBuf], clock: Clock) -> anyhow::Result<bool> {
    let mut ok = true;
    for file in event_files(paths)? {
        for parsed in events_of(&file, &mut ok) {
            let Event::KeyVault(mut event) = parsed else {
                say!(
                    "{}: not a Key Vault event kv-notify acts on: acknowledged only",
                    file_name(&file)
                );
                continue;
            };
            let now = clock.now_for(&event);
            crate::ladder::place_event(&mut event, |expires| config.ladder_position(expires, now));
            let plan = config.routing.plan(&event);
            say!(
                "{}: {} {} (id {})",
                file_name(&file),
                event.event_type,
                event.display_name(),
                event.id
            );
            if let Some(reminder) = &event.reminder {
                say!("  reminder step {} of the ladder", reminder.step);
            }
            if plan.rules.is_empty() {
                say!("  no rule matches: recorded only");
            }
            for rule in &plan.rules {
                say!("  matches {rule}");
            }
            if !plan.email_channels.is_empty() {
                let to: Vec<String> = plan.emails.iter().map(ToString::to_string).collect();
                let to = if to.is_empty() {
                    "nobody (no recipients configured)".to_owned()
                } else {
                    to.join(", ")
                };
                say!("  email ({}) to {to}", plan.email_channels.join(", "));
            }
            for (channel, webhook) in &plan.webhooks {
                say!("  webhook {channel}: {webhook}");
            }
        }
    }
    say!("(nothing was sent)");
    Ok(ok)
}

/// Writes the HTML mail of every Key Vault event in the files to `out`, and prints the paths.
/// Days left count from `clock`.
pub fn preview(
    config: &Config,
    paths: &[PathBuf],
    out: &Path,
    clock: Clock,
) -> anyhow::Result<bool> {
    std::fs::create_dir_all(out)?;
    let mut ok = true;
    for file in event_files(paths)? {
        let stem = file
            .file_stem()
            .map_or_else(|| "event".into(), |s| s.to_string_lossy().into_owned());
        for (n, parsed) in events_of(&file, &mut ok).into_iter().enumerate() {
            let Event::KeyVault(event) = parsed else {
                continue;
            };
            let rendered = config
                .composer
                .render(&Alert::new(&event, clock.now_for(&event)))?;
            let suffix = if n == 0 {
                String::new()
            } else {
                format!("-{n}")
            };
            let path = out.join(format!("{stem}{suffix}.html"));
            std::fs::write(&path, rendered.html)?;
            say!("{}: {}", path.display(), rendered.subject);
        }
    }
    Ok(ok)
}

/// The parsed events of a file; problems are printed and clear `ok`.
fn events_of(file: &Path, ok: &mut bool) -> Vec<Event> {
    let raw = match read_events(file) {
        Ok(raw) => raw,
        Err(err) => {
            *ok = false;
            say!("{}: error: {err:#}", file.display());
            return Vec::new();
        }
    };
    raw.into_iter()
        .filter_map(|raw| {
            raw.into_event()
                .map_err(|err| {
                    *ok = false;
                    say!("{}: error: {err}", file.display());
                })
                .ok()
        })
        .collect()
}
