//! The commands beside the server: `check`, `explain` and `preview`.

use crate::support::kv_notify_in as kv_notify;
use crate::support::*;
use serde_json::Value;
use std::process::Command;

const BROKEN: &str = "\
[[owners]]
vault = \"prod-[\"
emails = [\"dba@contoso.com\", \"not-an-address\"]

[channels.hook]
webhook = \"htp:/nowhere\"

[[rules]]
events = [\"SecretNearExpiry\", \"SecretExploded\"]
notify = [\"owners\", \"pager\"]
";

#[test]
fn check_accepts_the_example_and_prints_the_effective_routing() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        app_root().join("examples/rules.toml"),
        dir.path().join("rules.toml"),
    )
    .expect("copy");

    let output = kv_notify(
        dir.path(),
        &["check"],
        &[
            ("OWNER_EMAILS", "fallback@contoso.com"),
            ("VAULTS", "prod-kv"),
            ("SUBSCRIPTIONS", "0000000A-0000-0000-0000-000000000001"),
        ],
    );

    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains(
            "expiry sweep: vaults prod-kv and the vaults of subscriptions \
             0000000a-0000-0000-0000-000000000001; reminder steps 60,30,14,7,1,0,-7"
        ),
        "{text}"
    );
    assert!(
        text.contains("routing from rules.toml"),
        "found rules.toml in the app root: {text}"
    );
    assert!(
        text.contains("vault prod-* object db-* -> dba@contoso.com"),
        "{text}"
    );
    assert!(
        text.contains("secops-teams: teams webhook at prod-00.westeurope.logic.azure.com"),
        "{text}"
    );
    assert!(
        !text.contains("/workflows/"),
        "webhook paths are never printed: {text}"
    );
    let policy = text
        .lines()
        .find(|l| l.trim_start().starts_with("VaultAccessPolicyChanged"))
        .expect("a routing line");
    assert!(
        policy.contains("security-mail, secops-teams, secops-slack (vaults prod-*)"),
        "{policy}"
    );
    let rotation = text
        .lines()
        .find(|l| l.trim_start().starts_with("SecretNewVersionCreated"))
        .expect("a routing line");
    assert!(rotation.contains("recorded only"), "{rotation}");
}

#[test]
fn check_lists_every_problem_with_its_line_and_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rules.toml"), BROKEN).expect("write");

    let output = kv_notify(dir.path(), &["check"], &[("SECURITY_EMAILS", "nope")]);

    assert!(!output.status.success());
    let text = stdout(&output);
    for expected in [
        "SECURITY_EMAILS",
        "rules.toml:2: bad glob",
        "rules.toml:3: \"not-an-address\" is not an email address",
        "rules.toml:6: channel \"hook\": webhook",
        "rules.toml:9: unknown event name \"SecretExploded\"",
        "rules.toml:10: unknown channel \"pager\"",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

#[tokio::test]
async fn the_handler_refuses_to_start_on_what_check_rejects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, BROKEN).expect("write");
    let output = Handler::refused_start(&[("RULES_FILE", rules.to_str().expect("utf-8"))], "pager");
    assert!(output.contains("unknown channel \"pager\""), "{output}");
}

#[test]
fn a_broken_template_is_a_check_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("templates")).expect("mkdir");
    std::fs::write(dir.path().join("templates/mail.txt"), "{{ subjet }}").expect("write");

    let output = kv_notify(dir.path(), &["check"], &[("TEMPLATES_DIR", "templates")]);

    assert!(!output.status.success());
    assert!(
        stdout(&output).contains("TEMPLATES_DIR"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn explain_shows_the_matching_rules_and_recipients_and_sends_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        app_root().join("examples/rules.toml"),
        dir.path().join("rules.toml"),
    )
    .expect("copy");
    let event = event_grid("SecretExpired", "db-password", Some(-1));
    std::fs::write(dir.path().join("event.json"), event.to_string()).expect("write");

    let output = kv_notify(
        dir.path(),
        &["explain", "event.json"],
        &[("OUTBOX_DIR", "outbox")],
    );

    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("SecretExpired prod-kv/db-password"), "{text}");
    assert!(
        text.contains("matches line 32: -> owners, audit-json"),
        "{text}"
    );
    assert!(text.contains("email (owners) to dba@contoso.com"), "{text}");
    assert!(
        text.contains("webhook audit-json: json webhook at audit.contoso.com"),
        "{text}"
    );
    assert!(
        !dir.path().join("outbox").exists(),
        "nothing was written to the outbox"
    );
}

#[test]
fn preview_writes_the_html_mail_of_each_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("expiring.json"),
        event_grid("KeyNearExpiry", "<k>", Some(7)).to_string(),
    )
    .expect("write");

    let output = kv_notify(
        dir.path(),
        &["preview", "expiring.json", "--out", "html"],
        &[],
    );

    assert!(output.status.success(), "{}", stdout(&output));
    let html =
        std::fs::read_to_string(dir.path().join("html/expiring.html")).expect("preview written");
    assert!(html.contains("Key &lt;k&gt; in prod-kv expires in 7 days"));
}

#[test]
fn explain_names_a_vault_event_by_its_vault_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let event = event_grid("VaultAccessPolicyChanged", "prod-kv", None);
    std::fs::write(dir.path().join("event.json"), event.to_string()).expect("write");

    let output = kv_notify(dir.path(), &["explain", "event.json"], &[]);

    let text = stdout(&output);
    assert!(
        text.contains("VaultAccessPolicyChanged prod-kv (id"),
        "{text}"
    );
    assert!(!text.contains("prod-kv/prod-kv"), "{text}");
}

#[test]
fn check_does_not_offer_owner_emails_behind_a_catch_all_owners_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("rules.toml"),
        "[[owners]]\nvault = \"*\"\nemails = [\"platform@contoso.com\"]\n",
    )
    .expect("write");

    let output = kv_notify(dir.path(), &["check"], &[]);

    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(!text.contains("OWNER_EMAILS is empty"), "{text}");
    assert!(!text.contains("otherwise: OWNER_EMAILS"), "{text}");
    assert!(text.contains("matches every object"), "{text}");
}

#[tokio::test]
async fn the_server_started_by_hand_reads_local_settings_json_like_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = serde_json::json!({
        "IsEncrypted": false,
        "Values": {
            "OWNER_EMAILS": "owner@contoso.com",
            "OUTBOX_DIR": "mail",
            "LEDGER_PATH": "state/ledger.redb",
        }
    });
    std::fs::write(dir.path().join("local.settings.json"), settings.to_string()).expect("write");
    let port = free_port();
    let mut server = Command::new(kv_notify_binary())
        .args(["serve", "--port", &port.to_string()])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start kv-notify");
    let url = format!("http://127.0.0.1:{port}");
    let ready = wait_until(std::time::Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let body = serde_json::json!({
        "Data": {"event": event_grid("SecretNearExpiry", "db-password", Some(9))},
        "Metadata": {}
    });
    let answer = http_client()
        .post(format!("{url}/function-trigger"))
        .json(&body)
        .send()
        .await
        .expect("invoke");
    let status = answer.status();
    let json: serde_json::Value = answer.json().await.expect("JSON");
    server.kill().ok();
    let output = server.wait_with_output().expect("stopped");

    assert!(ready, "listened on --port {port}");
    assert_eq!(status, 200, "{json}");
    let action = &json["ReturnValue"]["events"][0]["actions"][0];
    assert_eq!(action["status"], "written", "{action}");
    assert_eq!(action["to"][0], "owner@contoso.com", "{action}");
    assert!(
        dir.path().join("state/ledger.redb").is_file(),
        "LEDGER_PATH from the file"
    );
    let written = std::fs::read_dir(dir.path().join("mail")).expect("OUTBOX_DIR from the file");
    assert_eq!(written.count(), 1);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("settings from local.settings.json and the environment"),
        "{log}"
    );
}

/// For each event (by id) of `explain`'s or `replay`'s output, the addresses its mail goes to.
fn mail_recipients(output: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut by_event = std::collections::BTreeMap::new();
    let mut current = None;
    for line in output.lines() {
        let id = line
            .split_once("(id ")
            .map(|(_, rest)| rest.trim_end_matches(')'))
            .or_else(|| {
                line.split_once(": event ")
                    .and_then(|(_, rest)| rest.split_whitespace().next())
            });
        if let Some(id) = id {
            current = Some(id.to_owned());
            by_event.entry(id.to_owned()).or_insert_with(Vec::new);
            continue;
        }
        let Some(to) = line
            .trim_start()
            .strip_prefix("email")
            .and_then(|l| l.split_once(" to "))
        else {
            continue;
        };
        let to = to.1.split(": ").next().unwrap_or_default();
        let mut addresses: Vec<String> = to
            .split(", ")
            .filter(|a| a.contains('@'))
            .map(str::to_owned)
            .collect();
        addresses.sort();
        if let Some(id) = &current {
            by_event.insert(id.clone(), addresses);
        }
    }
    by_event
}

/// Every `EXP` in the sample events.
fn sample_expiries() -> Vec<i64> {
    fn collect(value: &Value, found: &mut Vec<i64>) {
        match value {
            Value::Object(map) => {
                if let Some(exp) = map.get("EXP").and_then(Value::as_i64) {
                    found.push(exp);
                }
                map.values().for_each(|v| collect(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
            Value::String(text) => {
                if let Ok(inner) = serde_json::from_str::<Value>(text) {
                    collect(&inner, found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(app_root().join("examples/events")).expect("samples") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        collect(&serde_json::from_str(&text).expect("JSON"), &mut found);
    }
    found.sort_unstable();
    found.dedup();
    found
}

#[test]
fn explain_and_replay_name_the_same_recipients_for_rules_with_steps() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("rules.toml"),
        r#"
[channels.early]
email = ["early@contoso.com"]

[channels.late]
email = ["late@contoso.com"]

[[rules]]
events = ["*NearExpiry", "*Expired"]
steps = [45]
notify = ["early"]

[[rules]]
events = ["*NearExpiry", "*Expired"]
steps = [3, 0, -2]
notify = ["late", "owners"]

[[rules]]
events = ["*"]
notify = ["security"]
"#,
    )
    .expect("write rules");
    let outbox = dir.path().join("outbox");
    let env = [
        ("REMINDER_DAYS", "45,3,0,-2"),
        ("OWNER_EMAILS", "owner@contoso.com"),
        ("SECURITY_EMAILS", "secops@contoso.com"),
        ("OUTBOX_DIR", outbox.to_str().expect("utf-8")),
    ];
    let samples = app_root().join("examples/events");
    let samples = samples.to_str().expect("utf-8");
    let mut steps_seen = std::collections::BTreeSet::new();

    for exp in sample_expiries() {
        for step in [45_i64, 3, 0, -2] {
            // Half a day inside the step.
            let now = chrono::DateTime::from_timestamp(exp - step * 86_400 - 43_200, 0)
                .expect("a time")
                .to_rfc3339();
            let explained = stdout(&kv_notify(
                dir.path(),
                &["explain", samples, "--now", &now],
                &env,
            ));
            let replayed = stdout(&kv_notify(
                dir.path(),
                &["replay", samples, "--now", &now],
                &env,
            ));

            let (explain, replay) = (mail_recipients(&explained), mail_recipients(&replayed));
            assert!(!explain.is_empty(), "{explained}");
            assert_eq!(explain, replay, "--now {now}\n{explained}\n{replayed}");
            if explained.contains(&format!("reminder step {step} of the ladder")) {
                steps_seen.insert(step);
            }
        }
    }
    assert_eq!(
        steps_seen.len(),
        4,
        "every step was landed on: {steps_seen:?}"
    );
}

#[test]
fn test_sends_one_labelled_alert_through_every_channel_and_says_what_each_answered() {
    let smtp = SmtpServer::start();
    let (teams, hook) = (WebhookServer::start(), WebhookServer::start());
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("rules.toml"),
        format!(
            r#"
[channels.dba]
email = ["dba@contoso.com"]

[channels.teams]
webhook = "{}"
format = "teams"

[channels.pager]
webhook = "{}"
format = "json"

[[rules]]
events = ["*"]
notify = ["owners", "security", "dba", "teams", "pager"]
"#,
            teams.url("/teams"),
            hook.url("/pager")
        ),
    )
    .expect("write rules");
    hook.answer_with(500);
    let mut env = mail_settings(&smtp.url());
    set(&mut env, "RULES_FILE", "rules.toml");

    let output = kv_notify(dir.path(), &["test"], &pairs(&env));

    let text = stdout(&output);
    let mut subjects: Vec<String> = smtp.messages().iter().map(Received::subject).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "kv-notify test alert for channel dba",
            "kv-notify test alert for channel owners",
            "kv-notify test alert for channel security",
        ]
    );
    assert_eq!(teams.received().len(), 1);
    assert!(
        teams.received()[0]
            .1
            .to_string()
            .contains("This is a test of channel teams")
    );
    assert_eq!(
        hook.received().len(),
        1,
        "tried once: a test is not retried"
    );
    assert!(
        text.contains("owners: mail to owner1@contoso.com, owner2@contoso.com: sent"),
        "{text}"
    );
    assert!(
        text.contains("teams: teams webhook at 127.0.0.1: accepted"),
        "{text}"
    );
    assert!(
        text.contains("pager: json webhook at 127.0.0.1: FAILED"),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(1), "a channel failed: {text}");
}

#[test]
fn bare_kv_notify_in_a_terminal_prints_help_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");

    let output = kv_notify(dir.path(), &[], &[]);

    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("Usage: kv-notify [COMMAND]"), "{text}");
    assert!(text.contains("kv-notify serve --port 3000"), "{text}");
    let created: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(created.is_empty(), "nothing created: {created:?}");
}

#[test]
fn inventory_without_a_sign_in_says_so_once_and_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    // No managed identity here, and no Azure CLI on the PATH.
    let env = [
        ("VAULTS", "kv-a,kv-b,kv-c"),
        ("OWNER_EMAILS", "a@contoso.com"),
    ];

    let output = kv_notify(dir.path(), &["inventory"], &env);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(
        text.lines().count(),
        1,
        "one line, not one per vault and list: {text}"
    );
    assert!(text.contains("cannot sign in to Key Vault"), "{text}");
    assert!(text.contains("az login"), "{text}");
    assert!(!text.contains("nobody (set OWNER_EMAILS"), "{text}");
}

#[test]
fn a_dry_run_sweep_whose_vaults_do_not_resolve_says_so_once_and_fails() {
    let identity = IdentityEndpoint::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("VAULTS", "kv-a,kv-b"),
        ("KEY_VAULT_RESOURCE", "https://vault.invalid"),
        ("IDENTITY_ENDPOINT", &identity.url()),
        ("IDENTITY_HEADER", IDENTITY_SECRET),
        ("OWNER_EMAILS", "a@contoso.com"),
    ];

    let output = kv_notify(dir.path(), &["sweep", "--dry-run"], &env);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("kv-a.vault.invalid does not resolve"),
        "{text}"
    );
}
