//! The ledger's disk fails (full, or damaged): no alert is answered as done that was not
//! recorded, and the handler recovers by itself once the fault clears.

use crate::support::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs, mounted for the test and unmounted after it: a disk that really fills up.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed: these tests fill a real disk and must run as root \
             (scripts/test does, as CI does)"
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..512]).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_ledger_disk_fails_invocations_until_space_returns_then_recovers_without_a_restart()
{
    let disk = SmallDisk::mount("2m");
    let ledger = disk.path().join("ledger.redb");
    let smtp = SmtpServer::start();
    let settings = mail_settings_with_ledger(&smtp.url(), &ledger);
    let handler = Handler::start(&pairs(&settings)).await;
    let before = event_grid("SecretNearExpiry", "before", Some(5));
    assert_eq!(handler.invoke(before.clone()).await.status, 200);

    let filler = disk.fill();
    let mut during = Vec::new();
    for n in 0..40 {
        let event = event_grid("SecretNearExpiry", &format!("during-{n}"), Some(5));
        let answer = handler.invoke(event.clone()).await;
        let failed = answer.status == 500;
        during.push((event, answer));
        if failed {
            break;
        }
    }
    let (_, last) = during.last().expect("one event at least");
    assert_eq!(
        last.status,
        500,
        "the ledger never reported the full disk: {}",
        handler.output()
    );
    assert!(
        last.text.contains("No space left") || last.text.contains("ledger"),
        "{}",
        last.text
    );

    std::fs::remove_file(filler).expect("free the space");
    let after = event_grid("KeyNearExpiry", "after", Some(5));
    let answer = handler.invoke(after.clone()).await;
    assert_eq!(
        (answer.status, answer.statuses()),
        (200, vec!["sent".to_owned()]),
        "{}",
        answer.text
    );

    // Everything answered 200 was recorded: after a restart on the same ledger, each is a
    // duplicate. The event that failed is delivered on its redelivery.
    drop(handler);
    let handler = Handler::start(&pairs(&settings)).await;
    for (event, answer) in during.iter().filter(|(_, a)| a.status == 200) {
        let again = handler.invoke(event.clone()).await;
        assert_eq!(again.statuses(), ["duplicate"], "answered {}", answer.text);
    }
    for event in [&before, &after] {
        assert_eq!(
            handler.invoke(event.clone()).await.statuses(),
            ["duplicate"]
        );
    }
    let (failed, _) = during.last().expect("the failed one");
    let redelivered = handler.invoke(failed.clone()).await;
    assert_eq!(redelivered.status, 200, "{}", redelivered.text);
}

/// Overwrites part of the page after the header with garbage, as a failing disk would: redb
/// still opens such a file, and used to fail (or panic) only when a transaction reached it.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read the ledger");
    for (i, byte) in bytes[4096 + 64..4096 + 600].iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(151).wrapping_add(7);
    }
    std::fs::write(path, bytes).expect("write the ledger");
}

#[tokio::test]
async fn a_damaged_ledger_is_set_aside_at_start_up_and_alerts_keep_flowing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = dir.path().join("ledger.redb");
    let smtp = SmtpServer::start();
    let settings = mail_settings_with_ledger(&smtp.url(), &ledger);
    let mut handler = Handler::start(&pairs(&settings)).await;
    // Beyond the reminder ladder, so that the entries are keyed by event id and the damage
    // below lands in the b-tree's pages whatever the clock says.
    for n in 0..30 {
        let event = event_grid("SecretNearExpiry", &format!("s{n}"), Some(100));
        assert_eq!(handler.invoke(event).await.status, 200);
    }
    handler.terminate();
    assert!(
        handler
            .wait_exit(std::time::Duration::from_secs(10))
            .is_some()
    );
    damage(&ledger);

    let handler = Handler::start(&pairs(&settings)).await;
    let answers = [
        handler
            .invoke(event_grid("KeyExpired", "k", Some(-1)))
            .await,
        handler
            .invoke(event_grid("SecretNearExpiry", "s", Some(3)))
            .await,
    ];

    for answer in &answers {
        assert_eq!(
            (answer.status, answer.statuses()),
            (200, vec!["sent".to_owned()]),
            "{}",
            answer.text
        );
    }
    let log = handler.output_with("moved aside");
    assert!(log.contains("damaged beyond repair"), "{log}");
    let aside = std::fs::read_dir(dir.path())
        .expect("the ledger folder")
        .flatten()
        .any(|f| f.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(aside, "the damaged file is kept for a post-mortem");
}

#[tokio::test]
async fn a_ledger_disk_full_before_its_first_write_recovers_once_space_returns() {
    let disk = SmallDisk::mount("64k");
    let filler = disk.fill();
    let ledger = disk.path().join("ledger.redb");
    let smtp = SmtpServer::start();
    let settings = mail_settings_with_ledger(&smtp.url(), &ledger);
    let handler = Handler::start(&pairs(&settings)).await;

    let during = handler
        .invoke(event_grid("SecretNearExpiry", "during", Some(5)))
        .await;
    std::fs::remove_file(filler).expect("free the space");
    let after = handler
        .invoke(event_grid("SecretNearExpiry", "after", Some(5)))
        .await;

    assert_eq!(
        during.status, 500,
        "nothing recorded on a full disk: {}",
        during.text
    );
    assert_eq!(
        (after.status, after.statuses()),
        (200, vec!["sent".to_owned()]),
        "no restart needed: {}\n{}",
        after.text,
        handler.output()
    );
}

#[test]
fn a_ledger_that_would_forget_before_event_grid_stops_redelivering_is_refused() {
    let output =
        Handler::refused_start(&[("LEDGER_RETENTION_DAYS", "0.5")], "LEDGER_RETENTION_DAYS");

    assert!(output.contains("less than a day"), "{output}");
}
