//! Unit tests of what the health notice says, and when it says nothing.

use super::*;
use crate::event::EventKey;
use std::time::Duration;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T06:00:00Z")
        .expect("a time")
        .to_utc()
}

fn trouble(kind: TroubleKind, subject: &str, since_hours: i64, last_hours: i64) -> Trouble {
    let mut trouble = Trouble::seen(kind, subject, "550 5.1.1 mailbox unavailable", now());
    trouble.since = now() - TimeDelta::hours(since_hours);
    trouble.last = now() - TimeDelta::hours(last_hours);
    trouble
}

fn lines_of(troubles: Vec<Trouble>) -> Vec<String> {
    let findings = Findings {
        troubles,
        ..Findings::default()
    };
    notice(&findings, now())
        .and_then(|n| n.diagnosis)
        .map(|d| d.fix)
        .unwrap_or_default()
}

#[test]
fn a_clean_day_says_nothing() {
    assert!(notice(&Findings::default(), now()).is_none());
    let old = trouble(TroubleKind::MailRefused, "bob@contoso.com", 50, 30);
    assert!(
        lines_of(vec![old]).is_empty(),
        "a refusal of two days ago was in yesterday's notice"
    );
}

#[test]
fn a_refused_recipient_is_named_with_the_reason_and_the_fix() {
    let lines = lines_of(vec![trouble(
        TroubleKind::MailRefused,
        "bob@contoso.com",
        3,
        3,
    )]);

    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("bob@contoso.com"), "{}", lines[0]);
    assert!(lines[0].contains("550 5.1.1"), "{}", lines[0]);
    assert!(lines[0].contains("OWNER_EMAILS"), "{}", lines[0]);
}

#[test]
fn a_failing_webhook_is_news_only_after_a_day_of_failures() {
    let young = trouble(TroubleKind::WebhookFailing, "teams", 5, 1);
    let old = trouble(TroubleKind::WebhookFailing, "slack", 30, 1);

    let lines = lines_of(vec![young, old]);

    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("Webhook channel slack has been failing since 2026-11-22T00:00:00Z")
    );
}

#[test]
fn the_notice_is_keyed_by_the_day_and_counts_its_problems() {
    let troubles = vec![
        trouble(TroubleKind::MailRefused, "a@contoso.com", 1, 1),
        trouble(TroubleKind::WebhookRefused, "security", 2, 2),
    ];
    let findings = Findings {
        troubles,
        ..Findings::default()
    };

    let event = notice(&findings, now()).expect("a notice");

    assert_eq!(event.key, EventKey::Id("health/2026-11-23".to_owned()));
    assert_eq!(event.event_type, EventType::HealthNotice);
    let diagnosis = event.diagnosis.expect("a diagnosis");
    assert!(
        diagnosis.cause.contains("2 problems that need"),
        "{}",
        diagnosis.cause
    );
    assert!(diagnosis.fix[0].starts_with("Webhook channel security refused"));
}

#[test]
fn many_troubles_of_one_kind_are_cut_short_and_counted() {
    let troubles = (0..25)
        .map(|n| {
            trouble(
                TroubleKind::TagIgnored,
                &format!("Secret s{n:02} in kv-a"),
                1,
                1,
            )
        })
        .collect();

    let lines = lines_of(troubles);

    assert_eq!(lines.len(), LINES_PER_KIND + 1);
    assert!(lines[LINES_PER_KIND].contains("and 15 more"), "{lines:?}");
}

#[test]
fn the_sweep_adds_what_it_could_not_read_and_a_budget_run_out() {
    let mut vault = crate::sweep::VaultSummary {
        vault: "kv-b".to_owned(),
        out_of_budget: true,
        ..Default::default()
    };
    vault.errors.push("secrets: access denied".to_owned());
    vault.errors.push("keys: access denied".to_owned());
    vault.errors.push("certificates: timed out".to_owned());
    let mut sweep = SweepReport::new(now(), vec![vault], Duration::from_secs(200));
    sweep
        .subscriptions_not_listed
        .push("0000000a-0000-0000-0000-000000000001: access denied".to_owned());
    let findings = Findings {
        sweep: Some(&sweep),
        ..Findings::default()
    };

    let lines = notice(&findings, now())
        .and_then(|n| n.diagnosis)
        .map(|d| d.fix)
        .unwrap_or_default();

    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("Subscription 0000000a"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("Vault kv-b was not read in full by today's sweep: secrets and keys: access denied; certificates: timed out."),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains("200 s budget"), "{}", lines[2]);
}
