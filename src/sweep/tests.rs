//! Unit tests of how events and the sweep's reminders meet on the ladder.

use super::*;
use crate::event::{EventType, KeyVaultEvent};
use crate::ladder::{Ladder, place_event};

#[test]
fn an_expiry_event_in_a_step_is_keyed_like_the_sweeps_reminder_of_it() {
    let now = Utc::now();
    let ladder = Ladder::default();
    let memory = TimeDelta::days(7);
    let position = |t| ladder.position(t, now, memory);
    let mut event = KeyVaultEvent::example(EventType::NearExpiry(ObjectKind::Secret), now);
    event.vault = Some("Contoso-KV".to_owned());
    place_event(&mut event, position);
    let reminder = event.reminder.expect("on the ladder");
    assert_eq!(reminder.step, 30);
    let vault = VaultRef::parse("contoso-kv", "vault.azure.net").expect("a name");
    let object = VaultObject {
        kind: ObjectKind::Secret,
        name: "DB-PASSWORD".to_owned(),
        enabled: true,
        expires: event.expires,
        not_before: None,
        managed: false,
        tags: Default::default(),
        bad_date: None,
    };
    let expires = event.expires.expect("an expiry");
    let version = event.version.as_deref().map(str::to_uppercase);
    let position = Some(position(expires));
    let swept = reminder_event(&vault, &object, version.as_deref(), position, None, now);
    assert_eq!(swept.key, event.key);
    assert_eq!(
        swept.reminder.map(|r| r.kept_from),
        Some(reminder.kept_from)
    );
}

#[test]
fn an_event_off_the_ladder_keeps_its_own_id() {
    let now = Utc::now();
    let ladder = Ladder::parse("7,1").expect("valid");
    let memory = TimeDelta::days(7);
    for event_type in [
        EventType::NearExpiry(ObjectKind::Key),
        EventType::NewVersionCreated(ObjectKind::Key),
    ] {
        let mut event = KeyVaultEvent::example(event_type, now);
        let key = event.key.clone();
        place_event(&mut event, |t| ladder.position(t, now, memory));
        assert_eq!(event.key, key, "{event_type}");
        assert!(event.reminder.is_none());
    }
}

#[test]
fn a_vault_whose_sweep_failed_on_a_bug_is_reported_with_its_message() {
    let panic =
        std::panic::catch_unwind(|| panic!("overflow in {}", "the ladder")).expect_err("a panic");

    let summary = VaultSummary::crashed("kv-a", panic.as_ref());

    assert!(summary.unread(), "said like a list error");
    assert!(
        summary.errors[0].contains("(overflow in the ladder)"),
        "{:?}",
        summary.errors
    );
}
