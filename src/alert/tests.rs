//! What each kind of alert says, and a sample event for the tests of other modules.

use super::*;
use crate::event::ObjectKind;
use chrono::TimeDelta;

/// An event of `event_type` for `object` in prod-kv, expiring `days` (plus an hour) from
/// the returned `now`.
pub(crate) fn sample(
    event_type: EventType,
    object: &str,
    days: Option<i64>,
) -> (KeyVaultEvent, DateTime<Utc>) {
    let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
    let event = KeyVaultEvent {
        vault: Some("prod-kv".into()),
        object_type: event_type.object_kind().map(|k| k.as_str().to_owned()),
        object: Some(object.into()),
        version: Some("v1".into()),
        topic: Some(
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/prod-kv".into(),
        ),
        expires: days.map(|d| now + TimeDelta::days(d) + TimeDelta::hours(1)),
        event_time: Some(now),
        ..KeyVaultEvent::new(
            "e1".into(),
            crate::event::EventKey::Id("e1".into()),
            event_type,
        )
    };
    (event, now)
}

fn alert(event_type: EventType, object: &str, days: Option<i64>) -> Alert {
    let (event, now) = sample(event_type, object, days);
    Alert::new(&event, now)
}

#[test]
fn near_expiry_subject_counts_days_left() {
    let alert = alert(
        EventType::NearExpiry(ObjectKind::Secret),
        "db-password",
        Some(29),
    );
    assert_eq!(
        alert.subject,
        "Secret db-password in prod-kv expires in 29 days"
    );
    assert_eq!(alert.days_left, Some(29));
}

#[test]
fn expired_subject_is_marked_and_counts_days_since() {
    let alert = alert(EventType::Expired(ObjectKind::Key), "signing", Some(-3));
    assert_eq!(
        alert.subject,
        "EXPIRED: Key signing in prod-kv expired 2 days ago"
    );
}

#[test]
fn a_rotation_says_a_new_version_exists() {
    let alert = alert(
        EventType::NewVersionCreated(ObjectKind::Certificate),
        "www",
        None,
    );
    assert_eq!(
        alert.subject,
        "Certificate www in prod-kv has a new version"
    );
}

#[test]
fn line_breaks_in_names_never_reach_the_subject() {
    let alert = alert(
        EventType::NearExpiry(ObjectKind::Secret),
        "a\r\nBcc: evil@x.com",
        Some(5),
    );
    assert!(!alert.subject.contains(['\r', '\n']));
    assert!(!alert.object.contains(['\r', '\n']));
}

#[test]
fn long_names_are_truncated_in_the_subject_only() {
    let long = "n".repeat(500);
    let alert = alert(EventType::NearExpiry(ObjectKind::Secret), &long, Some(5));
    assert!(alert.subject.chars().count() < 200);
    assert_eq!(alert.object.len(), 500);
}

#[test]
fn portal_link_points_at_the_object_list_of_the_vault() {
    let alert = alert(EventType::NearExpiry(ObjectKind::Certificate), "c", Some(5));
    assert!(alert.portal_url.ends_with("/vaults/prod-kv/certificates"));
}

#[test]
fn a_renewing_certificates_notice_reads_without_runs_of_spaces() {
    let (mut event, now) = sample(
        EventType::NearExpiry(ObjectKind::Certificate),
        "www",
        Some(9),
    );
    event.reminder = Some(crate::event::Reminder {
        step: 14,
        kept_from: now,
        next: Some(7),
        auto_renews: Some(true),
    });

    let alert = Alert::new(&event, now);

    assert!(
        alert.summary.contains("renews it automatically"),
        "{}",
        alert.summary
    );
    assert!(!alert.summary.contains("  "), "{:?}", alert.summary);
}
