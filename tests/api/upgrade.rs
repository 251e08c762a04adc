//! An upgrade keeps its word: what the previous release delivered, on either ledger, this one
//! never delivers again (events redelivered across the upgrade, reminders of the same steps).

use crate::support::*;
use serde_json::{Value, json};

on_both_ledgers!(what_the_previous_release_delivered_is_not_delivered_again_after_the_upgrade);

/// The previous release handles two events and a sweep of due objects at several steps of the
/// ladder (one ahead of its expiry, one past it); the new build, on the same ledger, gets the
/// events again and sweeps the same vault.
async fn what_the_previous_release_delivered_is_not_delivered_again_after_the_upgrade(
    ledger: TestLedger,
) {
    let previous = previous_release_binary();
    let smtp = SmtpServer::start();
    let identity = IdentityEndpoint::start();
    let vault = FakeVault::start(&["kv-a"]);
    let ledger_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = ledger.settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a"], &identity));
    if let TestLedger::File = ledger {
        let path = ledger_dir.path().join("ledger.redb");
        set(&mut settings, "LEDGER_PATH", path.to_str().expect("utf-8"));
    }
    vault.set(json!({"vaults": {"kv-a": {
        "secrets": [expiring("db-password", 10.5), expiring("api-key", 45.5)],
        "keys": [expiring("signing", -3.5)],
        "certificates": [expiring("www", 0.5)],
    }}}));
    let events = [
        event_grid("SecretNearExpiry", "smtp-password", Some(20)),
        event_grid("VaultAccessPolicyChanged", "prod-kv", None),
    ];

    let old = Handler::start_binary(&previous, &pairs(&settings)).await;
    for event in &events {
        let answer = old.invoke(event.clone()).await;
        assert_eq!(answer.status, 200, "previous release: {}", answer.text);
    }
    let swept = old.timer().await;
    assert_eq!(swept.status, 200, "previous release: {}", swept.text);
    drop(old);
    let delivered = smtp.messages().len();
    assert_eq!(delivered, 6, "2 events and 4 due objects: {}", swept.text);

    let new = Handler::start(&pairs(&settings)).await;
    for event in &events {
        let answer = new.invoke(event.clone()).await;
        assert_eq!(answer.statuses(), ["duplicate"], "{}", answer.text);
    }
    let swept = new.timer().await;
    let summary: Value = swept.json()["ReturnValue"]["vaults"][0].clone();
    assert_eq!(
        (summary["sent"].clone(), summary["duplicate"].clone()),
        (json!(0), json!(4)),
        "{summary}"
    );
    assert_eq!(smtp.messages().len(), delivered);
}
