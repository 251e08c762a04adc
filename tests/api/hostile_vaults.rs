//! A sweep that no vault or subscription can crash, flood or misroute: the Key Vault and
//! Resource Manager stand-in serves answers no real service sends (dates off the calendar,
//! lists that loop or never end, pages of thousands), and one subscription refuses the app.

use crate::support::*;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TEAM: &str = "00000000-0000-0000-0000-00000000000a";
const NO_READER: &str = "00000000-0000-0000-0000-00000000000b";

/// A real SMTP server, the identity stand-in, and settings that sweep `vaults` on `vault`.
fn setup(vault: &FakeVault, vaults: &[&str]) -> (SmtpServer, IdentityEndpoint, Settings) {
    let (smtp, identity) = (SmtpServer::start(), IdentityEndpoint::start());
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(vaults, &identity));
    (smtp, identity, settings)
}

type Settings = Vec<(&'static str, String)>;

/// The timer's answer to a run that found something for a person: 500, with its report.
fn assert_answered_with_its_report(answer: &Answer) {
    let head = &answer.text[..answer.text.len().min(2000)];
    assert_eq!(answer.status, 500, "{head}");
    assert!(answer.json()["ReturnValue"]["vaults"].is_array(), "{head}");
}

/// The summary of vault `name` in a timer's answer.
fn summary_of(answer: &Answer, name: &str) -> Value {
    let vaults = answer.json()["ReturnValue"]["vaults"].clone();
    vaults
        .as_array()
        .and_then(|all| all.iter().find(|v| v["vault"] == name).cloned())
        .unwrap_or_else(|| panic!("no summary of {name}: {vaults}"))
}

/// Requests the stand-in served whose line contains `needle`.
fn requests_with(vault: &FakeVault, needle: &str) -> usize {
    vault
        .requests()
        .iter()
        .filter(|r| r.contains(needle))
        .count()
}

#[tokio::test]
async fn an_expiry_off_the_calendar_costs_no_other_object_its_reminder_and_is_named() {
    let vault = FakeVault::start(&["kv-a", "kv-b"]);
    let (smtp, _identity, mut settings) = setup(&vault, &["kv-a", "kv-b"]);
    set(&mut settings, "REMINDER_DAYS", "30,7,1");
    vault.set(json!({"vaults": {
        "kv-a": {
            "secrets": [
                {"name": "odd", "exp": -8_300_000_000_000_i64},
                expiring("db-password", 10.5),
            ],
            "keys": [expiring("signing", 3.5)],
        },
        "kv-b": {"secrets": [expiring("api-key", 5.5)]},
    }}));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_answered_with_its_report(&answer);
    let mut subjects: Vec<String> = smtp.messages().iter().map(Received::subject).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Health notice: kv-notify needs attention",
            "Key signing in kv-a expires in 3 days",
            "Secret api-key in kv-b expires in 5 days",
            "Secret db-password in kv-a expires in 10 days",
        ]
    );
    let text = smtp.health_notice().text();
    assert!(
        text.contains("Secret odd: exp -8300000000000 is not a date between 1990 and 2200"),
        "{text}"
    );
    assert_eq!(
        summary_of(&answer, "kv-a")["badDates"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn a_next_link_back_to_its_own_page_stops_the_list_and_its_page_is_still_reminded() {
    let vault = FakeVault::start(&["kv-a"]);
    let (smtp, _identity, settings) = setup(&vault, &["kv-a"]);
    vault.set(json!({
        "vaults": {"kv-a": {"secrets": [expiring("one", 5.5), expiring("two", 12.5)]}},
        "hostile": {"kv-a": {"loop": true}},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_answered_with_its_report(&answer);
    let summary = summary_of(&answer, "kv-a");
    assert_eq!(summary["sent"], 2, "{summary}");
    let mut subjects: Vec<String> = smtp.messages().iter().map(Received::subject).collect();
    subjects.sort();
    assert_eq!(
        subjects.len(),
        3,
        "two reminders and the notice: {subjects:?}"
    );
    let errors = summary["errors"].to_string();
    assert!(
        errors.contains("secrets: unexpected answer: the list's nextLink leads back"),
        "{errors}"
    );
    assert_eq!(
        requests_with(&vault, "GET /secrets?"),
        1,
        "the page is read once"
    );
    assert!(
        smtp.health_notice()
            .text()
            .contains("leads back to a page already read")
    );
}

#[tokio::test]
async fn a_list_without_end_stops_at_the_page_cap() {
    let vault = FakeVault::start(&["kv-a"]);
    let (_smtp, _identity, settings) = setup(&vault, &["kv-a"]);
    vault.set(json!({
        "vaults": {"kv-a": {"secrets": [expiring("far-off", 400.5)]}},
        "hostile": {"kv-a": {"endless": true}},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_answered_with_its_report(&answer);
    let errors = summary_of(&answer, "kv-a")["errors"].to_string();
    assert!(errors.contains("goes on past 2000 pages"), "{errors}");
    assert_eq!(requests_with(&vault, "GET /secrets?"), 2000);
}

#[tokio::test]
async fn pages_of_thousands_of_due_objects_keep_the_answer_the_notice_and_memory_small() {
    let vault = FakeVault::start(&["kv-flood", "kv-versions"]);
    let (smtp, _identity, mut settings) = setup(&vault, &["kv-flood", "kv-versions"]);
    set(&mut settings, "SWEEP_BUDGET_SECS", "10");
    let due: Vec<Value> = (0..2000).map(|n| expiring(&format!("s{n}"), 5.5)).collect();
    // One object with 5,000 versions, in pages of 2,000 that lead back to themselves.
    let older: Vec<String> = (0..5000).map(|n| format!("{n:032x}")).collect();
    let many = json!({"name": "rotated-a-lot", "exp": expiring("x", 5.5)["exp"], "older": older});
    vault.set(json!({
        "vaults": {
            "kv-flood": {"secrets": due},
            "kv-versions": {"secrets": [many]},
        },
        "hostile": {
            // Never-ending pages of 2,000 due objects: past the first round, no vault holds
            // them, so each lookup fails.
            "kv-flood": {"pageSize": 2000, "endless": true},
            "kv-versions": {"pageSize": 2000, "loopVersions": true},
        },
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let started = Instant::now();
    let answer = handler.timer().await;
    let took = started.elapsed();

    assert_answered_with_its_report(&answer);
    assert!(took < Duration::from_secs(25), "answered after {took:?}");
    assert!(
        answer.text.len() < 1024 * 1024,
        "answer of {} bytes",
        answer.text.len()
    );
    let flood = summary_of(&answer, "kv-flood");
    assert_eq!(flood["errors"].as_array().map(Vec::len), Some(5), "{flood}");
    assert!(flood["moreErrors"].as_u64().unwrap_or(0) > 50, "{flood}");
    let versions = summary_of(&answer, "kv-versions")["errors"].to_string();
    assert!(
        versions.contains("rotated-a-lot") && versions.contains("leads back"),
        "{versions}"
    );
    let notice = smtp.health_notice();
    assert!(
        notice.raw.len() < 1_000_000,
        "a notice of {} bytes",
        notice.raw.len()
    );
    let peak = handler.peak_memory();
    assert!(
        peak < 128 * 1024 * 1024,
        "peak RSS {} MiB",
        peak / (1024 * 1024)
    );
}

#[tokio::test]
async fn a_subscription_without_reader_costs_no_event_its_tag_owner_nor_another_listing() {
    let vault = FakeVault::start_with(&["prod-kv"], 400, 0);
    let (smtp, _identity, mut settings) = setup(&vault, &[]);
    settings.retain(|(name, _)| *name != "VAULTS");
    set(
        &mut settings,
        "SUBSCRIPTIONS",
        &format!("{TEAM}, {NO_READER}"),
    );
    set(&mut settings, "ARM_ENDPOINT", &vault.arm_endpoint());
    let events: Vec<Value> = (0..40)
        .map(|n| event_grid("SecretNearExpiry", &format!("secret-{n}"), Some(20)))
        .collect();
    let secrets: Vec<Value> = events
        .iter()
        .map(|e| json!({"name": e["data"]["ObjectName"], "version": e["data"]["Version"], "exp": e["data"]["EXP"]}))
        .collect();
    vault.set(json!({
        "subscriptions": {
            TEAM: [{"name": "prod-kv", "tags": {"owner": "platform@contoso.com"}}],
            NO_READER: "AuthorizationFailed",
        },
        "vaults": {"prod-kv": {"secrets": secrets}},
    }));
    let handler = Handler::start(&pairs(&settings)).await;

    let answers = join_all(events.into_iter().map(|e| handler.invoke(e))).await;

    for answer in &answers {
        assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    }
    let to_tag_owner = smtp
        .messages()
        .iter()
        .filter(|m| m.rcpt_to() == ["platform@contoso.com"])
        .count();
    assert_eq!(to_tag_owner, 40);
    assert!(
        requests_with(&vault, "management GET") <= 2,
        "{:?}",
        vault.requests()
    );
}

#[tokio::test]
async fn three_hundred_subscriptions_are_listed_over_a_few_connections() {
    let vault = FakeVault::start_with(&[], 50, 0);
    let (_smtp, _identity, mut settings) = setup(&vault, &[]);
    settings.retain(|(name, _)| *name != "VAULTS");
    let ids: Vec<String> = (1..=300)
        .map(|n| format!("00000000-0000-0000-0000-{n:012}"))
        .collect();
    set(&mut settings, "SUBSCRIPTIONS", &ids.join(","));
    set(&mut settings, "ARM_ENDPOINT", &vault.arm_endpoint());
    let subscriptions: serde_json::Map<String, Value> =
        ids.iter().map(|id| (id.clone(), json!([]))).collect();
    vault.set(json!({"subscriptions": subscriptions}));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(requests_with(&vault, "management GET"), 300);
    assert!(
        vault.connections() <= 4,
        "{} connections",
        vault.connections()
    );
}
