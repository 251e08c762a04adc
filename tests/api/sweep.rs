//! The daily expiry sweep, fired as the host fires a timer: the Key Vault stand-in serves the
//! vaults' lists (paged, with managed, disabled and undated objects), the identity stand-in the
//! tokens, a real SMTP server takes the reminders.

use crate::support::*;
use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};

on_both_ledgers!(an_expiry_moved_back_across_a_month_end_is_not_reminded_again);

struct Setup {
    smtp: SmtpServer,
    vault: FakeVault,
    _identity: IdentityEndpoint,
    settings: Vec<(&'static str, String)>,
}

fn setup(vaults: &[&str]) -> Setup {
    let smtp = SmtpServer::start();
    let identity = IdentityEndpoint::start();
    let vault = FakeVault::start(vaults);
    let mut settings = mail_settings(&smtp.url());
    settings.extend(vault.settings(vaults, &identity));
    Setup {
        smtp,
        vault,
        _identity: identity,
        settings,
    }
}

/// `ReturnValue.vaults[i]`.
fn vault_summary(answer: &Answer, i: usize) -> Value {
    answer.json()["ReturnValue"]["vaults"][i].clone()
}

fn subjects(smtp: &SmtpServer) -> Vec<String> {
    let mut subjects: Vec<String> = smtp.messages().iter().map(Received::subject).collect();
    subjects.sort();
    subjects
}

#[tokio::test]
async fn a_sweep_mails_each_due_object_once_and_a_second_run_sends_nothing() {
    let s = setup(&["kv-a"]);
    // 40 undated secrets put the dated ones on the second page.
    let mut secrets: Vec<Value> = (0..40)
        .map(|n| json!({"name": format!("plain-{n}")}))
        .collect();
    secrets.push(expiring("db-password", 10.5));
    secrets.push(expiring("api-key", 45.5));
    secrets.push(expiring("far-off", 100.5));
    secrets.push(expiring_with(
        "switched-off",
        5.5,
        json!({"enabled": false}),
    ));
    secrets.push(expiring_with("www", 3.5, json!({"managed": true})));
    s.vault.set(json!({"vaults": {"kv-a": {
        "secrets": secrets,
        "keys": [expiring_with("www", 3.5, json!({"managed": true})), expiring("signing", 0.5)],
        "certificates": [expiring_with("www", 3.5, json!({"autoRenew": true}))],
    }}}));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let first = handler.timer().await;

    assert_eq!(first.status, 200, "{}", first.text);
    let summary = vault_summary(&first, 0);
    assert_eq!(summary["objects"], 48, "{summary}");
    assert_eq!(
        (summary["due"].clone(), summary["sent"].clone()),
        (json!(4), json!(4)),
        "{summary}"
    );
    assert_eq!(
        subjects(&s.smtp),
        [
            "Certificate www in kv-a expires in 3 days",
            "Key signing in kv-a expires today",
            "Secret api-key in kv-a expires in 45 days",
            "Secret db-password in kv-a expires in 10 days",
        ]
    );
    let logs = first.json()["Logs"].to_string();
    assert!(
        logs.contains("vault kv-a: 48 objects, 4 reminder(s) due: 4 sent"),
        "{logs}"
    );
    let requests = s.vault.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/secrets?") && r.contains("skiptoken=25")),
        "{requests:?}"
    );
    assert!(
        s.vault.violations().is_empty(),
        "{:?}",
        s.vault.violations()
    );

    let second = handler.timer().await;

    let summary = vault_summary(&second, 0);
    assert_eq!(
        (summary["sent"].clone(), summary["duplicate"].clone()),
        (json!(0), json!(4)),
        "{summary}"
    );
    assert_eq!(s.smtp.messages().len(), 4);
}

#[tokio::test]
async fn a_certificate_notice_speaks_for_its_key_and_secret_and_its_renewal() {
    let s = setup(&["kv-a"]);
    s.vault.set(json!({"vaults": {"kv-a": {
        "secrets": [expiring_with("www", 6.5, json!({"managed": true}))],
        "keys": [expiring_with("www", 6.5, json!({"managed": true}))],
        "certificates": [expiring_with("www", 6.5, json!({"autoRenew": true}))],
    }}}));
    let handler = Handler::start(&pairs(&s.settings)).await;

    handler.timer().await;

    let messages = s.smtp.messages();
    assert_eq!(
        messages.len(),
        1,
        "one notice for the certificate, none for its key and secret"
    );
    let text = messages[0].text();
    assert!(
        text.contains(
            "Its key and secret (the certificate's own, of the same name) expire with it"
        ),
        "{text}"
    );
    assert!(
        text.contains("Its policy renews it automatically"),
        "{text}"
    );
    assert!(text.contains("daily expiry sweep"), "{text}");
    assert!(text.contains("Next reminder: on "), "{text}");
    assert!(messages[0].html().contains("renews it automatically"));
    let certificate_reads: Vec<String> = s
        .vault
        .requests()
        .into_iter()
        .filter(|r| r.contains("/certificates/"))
        .collect();
    assert_eq!(
        certificate_reads.len(),
        1,
        "the version and the policy come from one read of the certificate: {certificate_reads:?}"
    );
}

#[tokio::test]
async fn with_list_permission_alone_a_certificate_is_still_reminded_without_a_renewal_claim() {
    let s = setup(&["kv-a"]);
    s.vault.set(json!({"listOnly": ["kv-a"], "vaults": {"kv-a": {
        "certificates": [expiring_with("www", 6.5, json!({"autoRenew": true, "version": "c0ffee"}))],
    }}}));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let invocation = handler.timer().await;

    assert_eq!(
        vault_summary(&invocation, 0)["sent"],
        json!(1),
        "{invocation:?}"
    );
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 1);
    let text = messages[0].text();
    assert!(
        text.contains("c0ffee"),
        "keyed by the version its versions name: {text}"
    );
    assert!(!text.contains("renews it automatically"), "{text}");
}

#[tokio::test]
async fn the_ladder_climbs_down_step_by_step_and_a_rotation_starts_a_new_one() {
    let s = setup(&["kv-a"]);
    let at = |days: f64, version: &str| {
        let secret = expiring_with("db", days, json!({"version": version}));
        json!({"vaults": {"kv-a": {"secrets": [secret]}}})
    };
    let handler = Handler::start(&pairs(&s.settings)).await;
    let mut expected = Vec::new();
    // The same version, its days left falling as days pass: 45 (step 60), 40 (still 60),
    // 29 (30), 13 (14), 13 again, 6 (7).
    for (days, mailed) in [
        (45.5, true),
        (40.5, false),
        (29.5, true),
        (13.5, true),
        (13.2, false),
        (6.5, true),
    ] {
        s.vault.set(at(days, "v1"));
        let answer = handler.timer().await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        if mailed {
            expected.push(format!("Secret db in kv-a expires in {} days", days as i64));
        }
        let mut subjects: Vec<String> = s.smtp.messages().iter().map(Received::subject).collect();
        subjects.sort();
        let mut sorted = expected.clone();
        sorted.sort();
        assert_eq!(subjects, sorted, "at {days} days left: {}", answer.text);
    }
    // Rotated: the new version expires in a year, so the old ladder ends and nothing is due.
    s.vault.set(at(365.5, "v2"));
    let rotated = handler.timer().await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(s.smtp.messages().len(), 4);
    // Rotated again to a version expiring soon: its own ladder starts at its step.
    s.vault.set(at(5.5, "v3"));
    let again = handler.timer().await;
    assert_eq!(again.status, 200, "{}", again.text);
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 5, "{}", again.text);
    assert_eq!(messages[4].subject(), "Secret db in kv-a expires in 5 days");
}

#[tokio::test]
async fn an_expiry_event_and_the_sweep_never_send_one_step_twice_in_either_order() {
    let s = setup(&["prod-kv"]);
    let handler = Handler::start(&pairs(&s.settings)).await;
    let event_first = event_grid("SecretNearExpiry", "event-first", Some(29));
    let sweep_first = event_grid("KeyNearExpiry", "sweep-first", Some(29));
    // The version the events name, current in the vault.
    let current = |event: &Value| json!({"name": event["data"]["ObjectName"], "version": event["data"]["Version"], "exp": event["data"]["EXP"]});
    s.vault.set(json!({"vaults": {"prod-kv": {
        "secrets": [current(&event_first)],
        "keys": [current(&sweep_first)],
    }}}));

    let answer = handler.invoke(event_first).await;
    assert_eq!(answer.statuses(), ["sent"]);
    let swept = handler.timer().await;
    let again = handler.invoke(sweep_first).await;

    let summary = vault_summary(&swept, 0);
    assert_eq!(
        (summary["sent"].clone(), summary["duplicate"].clone()),
        (json!(1), json!(1)),
        "{summary}"
    );
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(
        subjects(&s.smtp),
        [
            "Key sweep-first in prod-kv expires in 29 days",
            "Secret event-first in prod-kv expires in 29 days"
        ]
    );
}

#[tokio::test]
async fn throttling_is_waited_out_with_or_without_retry_after() {
    let s = setup(&["kv-a", "kv-b"]);
    s.vault.set(json!({
        "vaults": {
            "kv-a": {"secrets": [expiring("a", 3.5)]},
            "kv-b": {"secrets": [expiring("b", 3.5)]},
        },
        "throttle": {"kv-a": {"count": 2, "retryAfter": 1}, "kv-b": {"count": 1}},
    }));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(vault_summary(&answer, 0)["throttled"], 2);
    assert_eq!(vault_summary(&answer, 1)["throttled"], 1);
    assert_eq!(s.smtp.messages().len(), 2);
    let throttled = s
        .vault
        .requests()
        .iter()
        .filter(|r| r.ends_with(" 429"))
        .count();
    assert_eq!(throttled, 3);
}

#[tokio::test]
async fn a_vault_that_refuses_is_reported_and_the_others_are_still_swept() {
    let s = setup(&["kv-a", "kv-b"]);
    s.vault.set(json!({
        "vaults": {"kv-a": {"secrets": [expiring("a", 3.5)]}, "kv-b": {"secrets": [expiring("b", 3.5)]}},
        "deny": {"kv-b": "ForbiddenByRbac"},
    }));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let answer = handler.timer().await;

    assert_eq!(
        answer.status, 500,
        "a failed sweep shows in the function's monitor"
    );
    let not_reached = answer.json()["ReturnValue"]["notReached"].to_string();
    assert!(
        not_reached.contains("kv-b") && not_reached.contains("ForbiddenByRbac"),
        "{not_reached}"
    );
    assert!(!not_reached.contains("kv-a"), "{not_reached}");
    assert_eq!(
        subjects(&s.smtp),
        [
            "Health notice: kv-notify needs attention",
            "Secret a in kv-a expires in 3 days",
            "Security alert: kv-notify cannot see vault kv-b"
        ]
    );
    let blind = s
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().contains("cannot see"))
        .expect("the blind-spot alert");
    assert_eq!(blind.rcpt_to(), ["secops@contoso.com"]);
    let text = blind.text();
    assert!(text.contains("ForbiddenByRbac"), "{text}");
    assert!(text.contains("Key Vault Reader"), "{text}");
    assert!(blind.html().contains("Key Vault Reader"));

    let again = handler.timer().await;

    assert_eq!(
        s.smtp.messages().len(),
        3,
        "once in 15 days per vault (and the health notice once a day)"
    );
    assert_eq!(vault_summary(&again, 1)["blindSpotAlert"], "sent before");
    assert!(
        again
            .text
            .contains("security contacts alerted: sent before"),
        "{}",
        again.text
    );
}

#[tokio::test]
async fn a_blind_spot_alert_names_the_fix_for_a_firewall_and_for_an_access_policy() {
    let s = setup(&["kv-f", "kv-p"]);
    s.vault.set(json!({
        "vaults": {"kv-f": {}, "kv-p": {}},
        "deny": {"kv-f": "ForbiddenByFirewall", "kv-p": "AccessDenied"},
    }));
    let handler = Handler::start(&pairs(&s.settings)).await;

    handler.timer().await;

    let messages = s.smtp.messages();
    let text_for = |vault: &str| {
        messages
            .iter()
            .find(|m| m.subject().ends_with(&format!("cannot see vault {vault}")))
            .map(Received::text)
            .unwrap_or_default()
    };
    let firewall = text_for("kv-f");
    assert!(
        firewall.contains("possibleOutboundIpAddresses"),
        "{firewall}"
    );
    assert!(!firewall.contains("Key Vault Reader role on"), "{firewall}");
    let policy = text_for("kv-p");
    assert!(
        policy.contains("az keyvault set-policy -n kv-p"),
        "{policy}"
    );
    assert!(policy.contains("access policy"), "{policy}");
}

#[tokio::test]
async fn a_vault_whose_name_does_not_resolve_is_a_blind_spot_named_as_such() {
    let s = setup(&["kv-a"]);
    let mut settings = s.settings.clone();
    // `.invalid` never resolves (RFC 6761); its vaults take tokens for its domain.
    set(&mut settings, "KEY_VAULT_RESOURCE", "https://vault.invalid");
    set(&mut settings, "VAULTS", "https://kv-gone.vault.invalid");
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 500, "{}", answer.text);
    let gone = vault_summary(&answer, 0);
    assert!(
        gone["errors"]
            .to_string()
            .contains("kv-gone.vault.invalid does not resolve"),
        "{gone}"
    );
    let blind = s
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().ends_with("cannot see vault kv-gone"))
        .expect("the blind-spot alert");
    let text = blind.text();
    assert!(text.contains("does not resolve"), "{text}");
    assert!(text.contains("privatelink.vaultcore.azure.net"), "{text}");
}

#[tokio::test]
async fn without_vaults_the_timer_says_so_and_succeeds() {
    let (_outbox, handler) = Handler::start_with_outbox().await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["ReturnValue"]["vaults"], Value::Null);
    assert_eq!(answer.json()["ReturnValue"]["healthNotice"], "not needed");
    assert!(
        answer
            .text
            .contains("neither VAULTS nor SUBSCRIPTIONS is set"),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn rules_send_the_last_steps_of_the_ladder_to_a_webhook_too() {
    let s = setup(&["kv-a"]);
    let hook = WebhookServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.toml");
    let text = format!(
        "[channels.oncall]\nwebhook = \"{}\"\nformat = \"json\"\n\n\
         [[rules]]\nevents = [\"Reminder\"]\nnotify = [\"owners\"]\n\n\
         [[rules]]\nevents = [\"Reminder\"]\nsteps = [1, 0, -7]\nnotify = [\"oncall\"]\n",
        hook.url("/hook")
    );
    std::fs::write(&rules, text).expect("write rules");
    let mut settings = s.settings.clone();
    set(&mut settings, "RULES_FILE", &rules.to_string_lossy());
    s.vault.set(
        json!({"vaults": {"kv-a": {"secrets": [expiring("today", 0.5), expiring("later", 10.5)]}}}),
    );
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler.timer().await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(s.smtp.messages().len(), 2, "both go to the owners");
    let posts = hook.received();
    assert_eq!(
        posts.len(),
        1,
        "only the expiry-day step goes to the webhook: {posts:?}"
    );
    let event = &posts[0].1["event"];
    assert_eq!(event["type"], "SecretReminder");
    assert_eq!(event["object"], "today");
    assert_eq!(event["reminderStep"], 0);
}

pub(crate) fn kv_notify(args: &[&str], settings: &[(&'static str, String)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = std::process::Command::new(kv_notify_binary());
    command
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LEDGER_PATH", dir.path().join("ledger.redb"));
    for (key, value) in settings {
        command.env(key, value);
    }
    let output = command.output().expect("run kv-notify");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test]
async fn inventory_lists_what_expires_with_owners_and_steps_and_a_dry_run_sends_nothing() {
    let s = setup(&["kv-a"]);
    s.vault.set(json!({"vaults": {"kv-a": {
        "secrets": [
            expiring("db-password", 10.5),
            {"name": "no-expiry"},
            expiring("next-year", 200.5),
            expiring_with("switched-off", 20.5, json!({"enabled": false})),
            expiring_with("tls", 75.5, json!({"managed": true})),
        ],
        "certificates": [expiring_with("tls", 75.5, json!({"autoRenew": true}))],
    }}}));

    let (ok, table) = kv_notify(&["inventory", "--days", "90"], &s.settings);

    assert!(ok, "{table}");
    assert!(
        table.contains("4 object(s) expiring within 90 days or never"),
        "{table}"
    );
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("no {name} in {table}"))
            .to_owned()
    };
    assert!(
        line("db-password").contains("step 14 now (then 7)"),
        "{table}"
    );
    assert!(
        line("db-password").contains("owner1@contoso.com, owner2@contoso.com"),
        "{table}"
    );
    assert!(line("tls").contains("step 60 in 15 days"), "{table}");
    assert!(line("tls").contains("renews automatically"), "{table}");
    assert!(
        line("no-expiry").contains("none: no expiry date"),
        "{table}"
    );
    assert!(line("switched-off").contains("disabled"), "{table}");
    assert!(!table.contains("next-year"), "{table}");

    let (ok, json) = kv_notify(&["inventory", "--json"], &s.settings);
    assert!(ok, "{json}");
    let rows: Value = serde_json::from_str(&json).expect("JSON rows");
    assert_eq!(rows.as_array().map(Vec::len), Some(4), "{rows}");

    let (ok, dry) = kv_notify(&["sweep", "--dry-run"], &s.settings);
    assert!(ok, "{dry}");
    assert!(
        dry.contains("1 reminder(s) due") && dry.contains("dry run: 2 mail(s) would go"),
        "{dry}"
    );
    let (ok, real) = kv_notify(&["sweep"], &s.settings);
    assert!(ok, "{real}");
    assert!(real.contains("1 sent"), "{real}");
    assert_eq!(s.smtp.messages().len(), 1, "only the real sweep mails");
}

#[tokio::test]
async fn an_expiry_event_for_a_disabled_rotated_or_deleted_version_is_not_mailed() {
    let s = setup(&["prod-kv"]);
    let handler = Handler::start(&pairs(&s.settings)).await;
    let event = |name: &str| event_grid("SecretNearExpiry", name, Some(20));
    let (fine, off, rotated, gone, managed) = (
        event("fine"),
        event("off"),
        event("rotated"),
        event("gone"),
        event("www"),
    );
    let version = fine["data"]["Version"].clone();
    s.vault.set(json!({"vaults": {"prod-kv": {"secrets": [
        {"name": "fine", "version": version, "exp": fine["data"]["EXP"]},
        {"name": "off", "version": version, "enabled": false},
        {"name": "rotated", "version": "a-newer-one", "older": [version]},
        {"name": "www", "version": version, "managed": true},
    ]}}}));

    let mut outcomes = Vec::new();
    for event in [fine, off, rotated, gone, managed] {
        let answer = handler.invoke(event).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let action = &answer.events()[0]["actions"][0];
        outcomes.push(format!("{} {}", action["status"], action["reason"]));
    }

    assert!(outcomes[0].starts_with("\"sent\""), "{outcomes:?}");
    let reasons = [
        "disabled",
        "rotated",
        "no longer exists",
        "certificate's own",
    ];
    for (outcome, reason) in outcomes[1..].iter().zip(reasons) {
        assert!(
            outcome.contains("skipped") && outcome.contains(reason),
            "{outcomes:?}"
        );
    }
    assert_eq!(
        subjects(&s.smtp),
        ["Secret fine in prod-kv expires in 20 days"]
    );
}

#[tokio::test]
async fn an_expiry_event_is_mailed_when_its_vault_cannot_be_asked() {
    let s = setup(&["prod-kv"]);
    s.vault
        .set(json!({"vaults": {"prod-kv": {}}, "deny": {"prod-kv": "ForbiddenByFirewall"}}));
    let handler = Handler::start(&pairs(&s.settings)).await;

    let answer = handler
        .invoke(event_grid("KeyNearExpiry", "signing", Some(20)))
        .await;

    assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    assert!(
        handler.output().contains("alerting the rules' owners"),
        "{}",
        handler.output()
    );
}

#[tokio::test]
async fn on_a_developers_machine_the_vaults_are_read_with_the_azure_cli_login() {
    let s = setup(&["kv-a"]);
    s.vault
        .set(json!({"vaults": {"kv-a": {"secrets": [expiring("db-password", 10.5)]}}}));
    let az = fake_azure_cli();
    let mut settings = s.settings.clone();
    as_azure_cli_login(&mut settings, az.path());

    let (ok, table) = kv_notify(&["inventory"], &settings);

    assert!(ok, "{table}");
    assert!(table.contains("db-password"), "{table}");
    let calls = std::fs::read_to_string(az.path().join("calls")).expect("az was called");
    assert!(
        calls.contains(&format!("--resource {VAULT_RESOURCE}")),
        "{calls}"
    );
}

/// The start of the month `time` is in.
fn month_start(time: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(time.year(), time.month(), 1, 0, 0, 0)
        .single()
        .expect("the first of a month")
}

/// A one-step ladder (30 days): the step's record is filed by when the step began, this month;
/// the owner then moves the same version's expiry back three days, so that the step began in
/// the month before. Whatever today's date, both moments are past and remembered.
async fn an_expiry_moved_back_across_a_month_end_is_not_reminded_again(ledger: TestLedger) {
    let smtp = SmtpServer::start();
    let identity = IdentityEndpoint::start();
    let vault = FakeVault::start(&["kv-a"]);
    let mut settings = ledger.settings(&smtp.url());
    settings.extend(vault.settings(&["kv-a"], &identity));
    set(&mut settings, "REMINDER_DAYS", "30");
    set(&mut settings, "LEDGER_RETENTION_DAYS", "60");
    let now = Utc::now();
    let this_month = month_start(now);
    let began = this_month + (now - this_month) / 2;
    let moved = this_month - TimeDelta::days(2);
    // The 30-day step begins 31 days before the expiry (when whole days left fall to 30).
    let expiring = |step_began: DateTime<Utc>| {
        let exp = step_began + TimeDelta::days(31);
        json!({"vaults": {"kv-a": {"secrets": [
            {"name": "db", "version": "v1", "exp": exp.timestamp()},
        ]}}})
    };
    let handler = Handler::start(&pairs(&settings)).await;

    vault.set(expiring(began));
    let first = handler.timer().await;
    vault.set(expiring(moved));
    let after_the_move = handler.timer().await;

    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(after_the_move.status, 200, "{}", after_the_move.text);
    let summary = vault_summary(&after_the_move, 0);
    assert_eq!(summary["duplicate"], json!(1), "{summary}");
    let subjects = subjects(&smtp);
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(
        subjects[0].starts_with("Secret db in kv-a expires in"),
        "{subjects:?}"
    );
}
