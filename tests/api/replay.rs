//! `kv-notify replay`: the README's first command.

use crate::support::*;
use std::process::Command;

#[test]
fn replaying_the_bundled_samples_writes_one_mail_per_alerting_event() {
    let outbox = tempfile::tempdir().expect("temp dir");

    let output = Command::new(kv_notify_binary())
        .args(["replay", "examples/events/"])
        .current_dir(app_root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OUTBOX_DIR", outbox.path())
        .output()
        .expect("run replay");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mails = std::fs::read_dir(outbox.path()).expect("outbox").count();
    assert_eq!(
        mails, 8,
        "6 expiry mails, 1 access alert, 1 from the envelope sample:\n{stdout}"
    );
    for short_type in ALL_TYPES {
        assert!(
            stdout.contains(short_type),
            "{short_type} missing from:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("sample-kv/newsecret"),
        "the doc example with its quirks"
    );
}

#[test]
fn replay_reports_a_file_it_cannot_understand_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ not json").expect("write");

    let output = Command::new(kv_notify_binary())
        .arg("replay")
        .arg(&broken)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OUTBOX_DIR", dir.path().join("outbox"))
        .output()
        .expect("run replay");

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("broken.json: error: not valid JSON"));
}

/// Runs `replay` in `dir` with a clean environment (no SMTP, the outbox in `dir`).
fn replay_in(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = Command::new(kv_notify_binary())
        .arg("replay")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OWNER_EMAILS", "owner@contoso.com")
        .env("OUTBOX_DIR", dir.join("outbox"))
        .output()
        .expect("run replay");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The one mail in `dir`'s outbox, as text.
fn only_mail(dir: &std::path::Path) -> String {
    let files: Vec<_> = std::fs::read_dir(dir.join("outbox"))
        .expect("outbox")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::read_to_string(&files[0]).expect("readable")
}

/// A near-expiry event sent long ago: 30 days before its expiry, 400 days before today.
fn old_near_expiry_event() -> serde_json::Value {
    // At 06:00, so that a `--now` date (midnight) leaves the whole-day count unambiguous.
    let day = (chrono::Utc::now() - chrono::TimeDelta::days(400)).date_naive();
    let sent = day.and_hms_opt(6, 0, 0).expect("a time").and_utc();
    let mut event = event_grid("SecretNearExpiry", "db-password", None);
    event["eventTime"] = sent.to_rfc3339().into();
    // Twelve hours past the thirtieth day, so the whole-day count is unambiguous.
    let expires = sent + chrono::TimeDelta::days(30) + chrono::TimeDelta::hours(12);
    event["data"]["EXP"] = expires.timestamp().into();
    event
}

#[test]
fn replay_counts_days_left_from_the_event_time_so_old_samples_still_read_as_near_expiry() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("old.json"),
        old_near_expiry_event().to_string(),
    )
    .expect("write");

    let (ok, stdout) = replay_in(dir.path(), &["old.json"]);

    assert!(ok, "{stdout}");
    let mail = only_mail(dir.path());
    assert!(mail.contains("expires in 30 days"), "{mail}");
    assert!(!mail.contains("expired"), "{mail}");
}

#[test]
fn replay_now_counts_days_left_from_the_given_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let event = old_near_expiry_event();
    std::fs::write(dir.path().join("old.json"), event.to_string()).expect("write");
    let sent = chrono::DateTime::parse_from_rfc3339(event["eventTime"].as_str().expect("time"))
        .expect("RFC 3339");
    let later = (sent + chrono::TimeDelta::days(20))
        .format("%Y-%m-%d")
        .to_string();

    let (ok, stdout) = replay_in(dir.path(), &["old.json", "--now", &later]);

    assert!(ok, "{stdout}");
    let mail = only_mail(dir.path());
    assert!(mail.contains("expires in 10 days"), "{mail}");
}

#[test]
fn replay_says_where_each_mail_was_written_and_names_it_by_time_and_subject() {
    let dir = tempfile::tempdir().expect("temp dir");
    let event = event_grid("KeyExpired", "token-signing", Some(-2));
    std::fs::write(dir.path().join("e.json"), event.to_string()).expect("write");

    let (ok, stdout) = replay_in(dir.path(), &["e.json"]);

    assert!(ok, "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("email to"))
        .expect("an action line");
    assert!(line.contains(": written (to "), "{line}");
    assert!(!line.contains("sent"), "{line}");
    let file = std::fs::read_dir(dir.path().join("outbox"))
        .expect("outbox")
        .next()
        .expect("one file")
        .expect("entry")
        .file_name()
        .to_string_lossy()
        .into_owned();
    assert!(
        line.contains(&file),
        "the line names the file {file}: {line}"
    );
    assert!(file.starts_with("20"), "time first: {file}");
    assert!(
        file.ends_with("_prod-kv_token-signing_KeyExpired.eml"),
        "{file}"
    );
}
