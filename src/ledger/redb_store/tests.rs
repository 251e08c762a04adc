//! The redb ledger's state machine, on a file and in memory.

use super::*;

fn key(target: &str) -> ActionKey {
    ActionKey {
        event: crate::event::EventKey::Id("e1".into()),
        action: super::super::ActionKind::Email,
        target: target.into(),
        event_time: None,
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("valid time")
}

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_completed_action_is_done_for_every_later_claim() {
    let ledger = RedbLedger::in_memory();
    assert_eq!(
        ledger.claim(&key("a"), at(0), LEASE).await.ok(),
        Some(Claim::Acquired { since: at(0) })
    );
    ledger
        .complete(&key("a"), Recorded::Sent, at(1))
        .await
        .expect("complete");

    let again = ledger
        .claim(&key("a"), at(3600), LEASE)
        .await
        .expect("claim");

    assert_eq!(again, Claim::Done(Recorded::Sent));
}

#[tokio::test]
async fn a_held_claim_is_busy_until_its_lease_runs_out() {
    let ledger = RedbLedger::in_memory();
    ledger.claim(&key("a"), at(0), LEASE).await.expect("claim");

    let during = ledger.claim(&key("a"), at(59), LEASE).await.expect("claim");
    let after = ledger.claim(&key("a"), at(61), LEASE).await.expect("claim");

    // The takeover keeps the first claim's time: a repeat after a crash says when it was
    // first tried.
    assert_eq!(
        (during, after),
        (Claim::Busy, Claim::Acquired { since: at(0) })
    );
}

#[tokio::test]
async fn a_released_action_can_be_claimed_again_at_once() {
    let ledger = RedbLedger::in_memory();
    ledger.claim(&key("a"), at(0), LEASE).await.expect("claim");
    ledger.release(&key("a")).await.expect("release");

    assert_eq!(
        ledger.claim(&key("a"), at(1), LEASE).await.ok(),
        Some(Claim::Acquired { since: at(1) })
    );
}

#[tokio::test]
async fn targets_of_one_event_are_independent() {
    let ledger = RedbLedger::in_memory();
    ledger.claim(&key("a"), at(0), LEASE).await.expect("claim");
    ledger
        .complete(&key("a"), Recorded::Sent, at(0))
        .await
        .expect("complete");

    assert_eq!(
        ledger.claim(&key("b"), at(0), LEASE).await.ok(),
        Some(Claim::Acquired { since: at(0) })
    );
}

#[tokio::test]
async fn a_reminder_steps_record_outlives_its_ladder_not_just_the_retention_period() {
    let ledger = RedbLedger::in_memory();
    let day = 86_400;
    // The 60-day step, mailed now; the ladder's last step begins in 66 days.
    let step = ActionKey {
        event: crate::event::EventKey::step("kv", crate::event::ObjectKind::Secret, "db", "v1", 60),
        event_time: Some(at(66 * day)),
        ..key("owner@contoso.com")
    };
    ledger.claim(&step, at(0), LEASE).await.expect("claim");
    ledger
        .complete(&step, Recorded::Sent, at(1))
        .await
        .expect("complete");

    // A week's retention, 30 days on: an event's record would be gone, the step's is not.
    assert_eq!(ledger.purge(at(23 * day)).await.expect("purge"), 0);
    assert_eq!(
        ledger.claim(&step, at(30 * day), LEASE).await.ok(),
        Some(Claim::Done(Recorded::Sent))
    );
    // A week after the last step began, it goes.
    assert_eq!(ledger.purge(at(66 * day + 1)).await.expect("purge"), 1);
}

#[tokio::test]
async fn purge_removes_only_entries_older_than_the_cutoff() {
    let ledger = RedbLedger::in_memory();
    for (target, time) in [("old", at(0)), ("new", at(100))] {
        ledger
            .claim(&key(target), time, LEASE)
            .await
            .expect("claim");
        ledger
            .complete(&key(target), Recorded::Sent, time)
            .await
            .expect("complete");
    }

    let removed = ledger.purge(at(50)).await.expect("purge");

    assert_eq!(removed, 1);
    assert_eq!(
        ledger.claim(&key("old"), at(200), LEASE).await.ok(),
        Some(Claim::Acquired { since: at(200) })
    );
    assert_eq!(
        ledger.claim(&key("new"), at(200), LEASE).await.ok(),
        Some(Claim::Done(Recorded::Sent))
    );
}

#[tokio::test]
async fn completed_entries_survive_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.redb");
    {
        let ledger = RedbLedger::open(&path).expect("open");
        ledger.claim(&key("a"), at(0), LEASE).await.expect("claim");
        ledger
            .complete(
                &key("a"),
                Recorded::Refused {
                    reason: "550".into(),
                },
                at(0),
            )
            .await
            .expect("complete");
    }
    let reopened = RedbLedger::open(&path).expect("reopen");

    let claim = reopened
        .claim(&key("a"), at(10), LEASE)
        .await
        .expect("claim");

    assert_eq!(
        claim,
        Claim::Done(Recorded::Refused {
            reason: "550".into()
        })
    );
}

#[tokio::test]
async fn many_concurrent_completions_are_all_on_disk_when_they_return() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.redb");
    let keys: Vec<ActionKey> = (0..64).map(|n| key(&format!("r{n}"))).collect();
    {
        let ledger = RedbLedger::open(&path).expect("open");
        let completions = keys.iter().map(|k| {
            let ledger = ledger.clone();
            async move { ledger.complete(k, Recorded::Sent, at(0)).await }
        });
        for result in futures_util::future::join_all(completions).await {
            result.expect("complete");
        }
    }
    let reopened = RedbLedger::open(&path).expect("reopen");

    for k in &keys {
        let claim = reopened.claim(k, at(1), LEASE).await.expect("claim");
        assert_eq!(claim, Claim::Done(Recorded::Sent), "{k}");
    }
}

#[tokio::test]
async fn a_trouble_seen_again_keeps_its_first_sighting_until_cleared_or_purged() {
    let ledger = RedbLedger::in_memory();
    assert_eq!(ledger.troubles().await.ok(), Some(Vec::new()), "none yet");
    let refused = |now| Trouble::seen(TroubleKind::MailRefused, "bob@contoso.com", "550", now);
    let failing = Trouble::seen(TroubleKind::WebhookFailing, "teams", "503", at(10));

    ledger.note(&refused(at(0))).await.expect("noted");
    ledger.note(&refused(at(100))).await.expect("noted again");
    ledger.note(&failing).await.expect("noted");

    let mut troubles = ledger.troubles().await.expect("read");
    troubles.sort_by_key(|t| t.kind);
    assert_eq!(troubles.len(), 2, "{troubles:?}");
    assert_eq!((troubles[0].since, troubles[0].last), (at(0), at(100)));

    ledger
        .clear(TroubleKind::WebhookFailing, "teams")
        .await
        .expect("cleared");
    ledger.purge(at(101)).await.expect("purged");

    assert_eq!(ledger.troubles().await.ok(), Some(Vec::new()));
}
