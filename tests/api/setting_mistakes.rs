//! Settings a new user gets wrong, and that must never lose an alert without a word: no mail
//! transport in Azure, misspelt names, a rules file that leaves alerts out, a retiring webhook.

use crate::support::kv_notify_in as kv_notify;
use crate::support::*;
use std::path::Path;

/// The settings of a function app in Azure, as the platform sets them, without mail.
fn in_azure(ledger: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("WEBSITE_INSTANCE_ID", "8f3c2a".to_owned()),
        ("WEBSITE_SITE_NAME", "kv-notify-prod".to_owned()),
        ("FUNCTIONS_WORKER_RUNTIME", "custom".to_owned()),
        ("OWNER_EMAILS", "platform@contoso.com".to_owned()),
        ("SECURITY_EMAILS", "secops@contoso.com".to_owned()),
        (
            "LEDGER_PATH",
            ledger.join("ledger.redb").display().to_string(),
        ),
        ("OUTBOX_DIR", ledger.join("outbox").display().to_string()),
    ]
}

/// A rules file that sends every alert to a Teams webhook and nothing to mail.
const WEBHOOK_ONLY: &str = r#"
[channels.teams]
webhook = "https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"

[[rules]]
events = ["*"]
notify = ["teams"]
"#;

#[test]
fn in_azure_without_a_mail_transport_start_up_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = in_azure(dir.path());
    // Misspelt: the transport the user meant to set.
    set(&mut settings, "SMTP_URI", "smtp://mail.contoso.com:587");

    let output = Handler::refused_start(&pairs(&settings), "no mail transport is set");

    assert!(
        output.contains("in Azure mail would be written to the worker's disk"),
        "{output}"
    );
    assert!(output.contains("did you mean SMTP_URL?"), "{output}");
}

#[tokio::test]
async fn in_azure_an_outbox_asked_for_by_name_or_a_webhook_only_set_up_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut outbox = in_azure(dir.path());
    set(&mut outbox, "MAIL_TRANSPORT", "outbox");
    let handler = Handler::start(&pairs(&outbox)).await;
    drop(handler);

    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, WEBHOOK_ONLY).expect("write rules");
    let mut webhooks = in_azure(dir.path());
    webhooks.retain(|(name, _)| !name.ends_with("_EMAILS"));
    set(&mut webhooks, "RULES_FILE", rules.to_str().expect("utf-8"));
    let handler = Handler::start(&pairs(&webhooks)).await;
    assert!(
        handler.output().contains("listening"),
        "{}",
        handler.output()
    );
}

#[test]
fn each_misspelt_setting_gets_exactly_one_suggestion_in_check_and_at_start_up() {
    for (typed, meant) in [
        ("REMINDER_DAY", "REMINDER_DAYS"),
        ("VAULT", "VAULTS"),
        ("SECURTY_EMAILS", "SECURITY_EMAILS"),
        ("OWNERS_EMAILS", "OWNER_EMAILS"),
        ("SMTP_URI", "SMTP_URL"),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = format!(r#"{{"Values": {{"{typed}": "30", "OWNER_EMAILS": "a@contoso.com"}}}}"#);
        std::fs::write(dir.path().join("local.settings.json"), file).expect("write");
        let from_file = stdout(&kv_notify(dir.path(), &["check"], &[]));
        let empty = tempfile::tempdir().expect("temp dir");
        let from_env = stdout(&kv_notify(empty.path(), &["check"], &[(typed, "30")]));
        for text in [from_file, from_env] {
            let suggestions: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("did you mean"))
                .collect();
            assert_eq!(suggestions.len(), 1, "{typed}: {text}");
            assert!(suggestions[0].contains(typed), "{text}");
            assert!(
                suggestions[0].contains(&format!("did you mean {meant}?")),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn the_server_warns_of_a_misspelt_setting_once_at_start_up() {
    let handler = Handler::start(&[
        ("REMINDER_DAY", "30,7,1"),
        ("OWNER_EMAILS", "a@contoso.com"),
    ])
    .await;

    let output = handler.output();

    assert_eq!(
        output.matches("did you mean REMINDER_DAYS?").count(),
        1,
        "{output}"
    );
}

#[test]
fn the_apps_own_local_settings_get_no_warning_about_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        app_root().join("local.settings.json"),
        dir.path().join("local.settings.json"),
    )
    .expect("copy");

    let text = stdout(&kv_notify(
        dir.path(),
        &["check"],
        &[("HOSTNAME", "dev-box")],
    ));

    assert!(!text.contains("did you mean"), "{text}");
    assert!(!text.contains("not a kv-notify setting"), "{text}");
}

#[test]
fn a_rules_file_that_leaves_expiry_alerts_out_is_warned_of_and_fails_strict_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("rules.toml"),
        r#"
[channels.teams]
webhook = "https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"

[[rules]]
events = ["VaultAccessPolicyChanged"]
notify = ["teams"]
"#,
    )
    .expect("write rules");
    let env = [("OWNER_EMAILS", "a@contoso.com"), ("VAULTS", "prod-kv")];

    let check = kv_notify(dir.path(), &["check"], &env);
    let strict = kv_notify(dir.path(), &["check", "--strict"], &env);

    let text = stdout(&check);
    assert!(check.status.success(), "{text}");
    let warning = text
        .lines()
        .find(|l| l.contains("reach nobody"))
        .unwrap_or_else(|| panic!("no warning: {text}"));
    for kind in [
        "SecretNearExpiry",
        "CertificateExpired",
        "SecretReminder",
        "KeyReminder",
    ] {
        assert!(warning.contains(kind), "{kind}: {warning}");
    }
    assert_eq!(strict.status.code(), Some(1), "{}", stdout(&strict));
}

#[test]
fn strict_check_passes_the_defaults_with_everything_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("SMTP_URL", "smtp://mail.contoso.com:587"),
        ("OWNER_EMAILS", "a@contoso.com"),
        ("SECURITY_EMAILS", "secops@contoso.com"),
        ("VAULTS", "prod-kv"),
    ];

    let strict = kv_notify(dir.path(), &["check", "--strict"], &env);

    assert!(strict.status.success(), "{}", stdout(&strict));
}

#[test]
fn an_office_365_connector_url_is_said_to_be_retiring() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("rules.toml"),
        "[channels.old]\nwebhook = \"https://contoso.webhook.office.com/webhookb2/abc/IncomingWebhook/def\"\n\n[[rules]]\nevents = [\"*\"]\nnotify = [\"old\", \"owners\"]\n",
    )
    .expect("write rules");

    let text = stdout(&kv_notify(
        dir.path(),
        &["check"],
        &[("OWNER_EMAILS", "a@contoso.com")],
    ));

    assert!(text.contains("Office 365 connector"), "{text}");
    assert!(text.contains("Teams Workflows"), "{text}");
    assert!(
        !text.contains("IncomingWebhook"),
        "the URL's path is never printed: {text}"
    );
}
