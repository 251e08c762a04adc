//! `kv-notify replay`: the README's first command.

use crate::support::*;
use std::process::Command;

#[test]
fn replaying_the_bundled_samples_writes_one_mail_per_alerting_event() {
    let outbox = tempfile::tempdir().expect("temp dir");

    let output = Command::new(env!("CARGO_BIN_EXE_kv-notify"))
        .args(["replay", "examples/events/"])
        .current_dir(app_root())
        .env_remove("SMTP_URL")
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

    let output = Command::new(env!("CARGO_BIN_EXE_kv-notify"))
        .arg("replay")
        .arg(&broken)
        .current_dir(dir.path())
        .env("OUTBOX_DIR", dir.path().join("outbox"))
        .output()
        .expect("run replay");

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("broken.json: error: not valid JSON"));
}
