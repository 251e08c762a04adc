//! Routing rules and channels end to end: the documented example file, real webhook servers
//! and the real SMTP server.

use crate::support::*;
use serde_json::{Value, json};

/// The README's example rules file, with its three webhook URLs pointed at local servers.
struct Example {
    smtp: SmtpServer,
    teams: WebhookServer,
    slack: WebhookServer,
    audit: WebhookServer,
    dir: tempfile::TempDir,
}

impl Example {
    fn new() -> Self {
        let example = Self {
            smtp: SmtpServer::start(),
            teams: WebhookServer::start(),
            slack: WebhookServer::start(),
            audit: WebhookServer::start(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let text = std::fs::read_to_string(app_root().join("examples/rules.toml"))
            .expect("example rules")
            .replace(
                "https://prod-00.westeurope.logic.azure.com/workflows/...",
                &example.teams.url("/workflows/sig=TEAMS-KEY"),
            )
            .replace(
                "https://hooks.slack.com/services/...",
                &example.slack.url("/services/SLACK-KEY"),
            )
            .replace(
                "https://audit.contoso.com/kv-events",
                &example.audit.url("/kv-events"),
            );
        std::fs::write(example.rules_path(), text).expect("write rules");
        example
    }

    fn rules_path(&self) -> std::path::PathBuf {
        self.dir.path().join("rules.toml")
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        let mut settings = mail_settings(&self.smtp.url());
        settings.retain(|(k, _)| *k != "OWNER_EMAILS" && *k != "SECURITY_EMAILS");
        settings.push((
            "RULES_FILE",
            self.rules_path().to_string_lossy().into_owned(),
        ));
        settings
    }

    async fn handler(&self) -> Handler {
        Handler::start(&pairs(&self.settings())).await
    }
}

fn with_vault(mut event: Value, vault: &str) -> Value {
    event["data"]["VaultName"] = json!(vault);
    event
}

#[tokio::test]
async fn owners_are_the_first_matching_entry_of_the_example() {
    let example = Example::new();
    let handler = example.handler().await;

    let db = handler
        .invoke(event_grid("SecretNearExpiry", "db-password", Some(20)))
        .await;
    let other = handler
        .invoke(with_vault(
            event_grid("KeyNearExpiry", "signing", Some(20)),
            "dev-kv",
        ))
        .await;

    assert_eq!(
        (db.statuses(), other.statuses()),
        (vec!["sent".to_owned()], vec!["sent".to_owned()])
    );
    let served: Vec<Vec<String>> = example
        .smtp
        .messages()
        .iter()
        .map(Received::rcpt_to)
        .collect();
    assert_eq!(
        served,
        [
            vec!["dba@contoso.com".to_owned()],
            vec!["platform@contoso.com".to_owned()]
        ]
    );
}

#[tokio::test]
async fn an_expired_object_mails_its_owners_and_posts_the_documented_json() {
    let example = Example::new();
    let handler = example.handler().await;
    let event = with_vault(event_grid("KeyExpired", "signing", Some(-2)), "dev-kv");

    let answer = handler.invoke(event.clone()).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.statuses(), ["sent", "sent"]);
    assert_eq!(answer.events()[0]["actions"][1]["action"], "webhook");
    assert_eq!(
        answer.events()[0]["actions"][1]["to"],
        json!(["audit-json"])
    );
    let posted = example.audit.received();
    assert_eq!(posted.len(), 1);
    let (path, body) = &posted[0];
    assert_eq!(path, "/kv-events");
    assert_eq!(body["source"], "kv-notify");
    assert_eq!(body["schemaVersion"], 1);
    assert_eq!(body["kind"], "expired");
    assert_eq!(body["event"]["id"], event["id"]);
    assert_eq!(body["event"]["type"], "KeyExpired");
    assert_eq!(body["event"]["vault"], "dev-kv");
    assert_eq!(body["event"]["object"], "signing");
    assert_eq!(body["event"]["daysLeft"], -1);
    assert!(
        body["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("EXPIRED: Key signing"))
    );
    assert!(example.teams.received().is_empty() && example.slack.received().is_empty());
}

#[tokio::test]
async fn an_access_policy_change_in_prod_reaches_mail_teams_and_slack() {
    let example = Example::new();
    let handler = example.handler().await;

    let answer = handler
        .invoke(event_grid("VaultAccessPolicyChanged", "prod-kv", None))
        .await;

    assert_eq!(answer.statuses(), ["sent", "sent", "sent"]);
    assert_eq!(example.smtp.messages()[0].rcpt_to(), ["secops@contoso.com"]);
    let (_, teams) = &example.teams.received()[0];
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert!(
        card["content"]["body"]
            .to_string()
            .contains("Access policy changed on vault prod-kv")
    );
    let (_, slack) = &example.slack.received()[0];
    assert!(
        slack["text"]
            .as_str()
            .is_some_and(|t| t.contains("prod-kv"))
    );
    assert_eq!(slack["blocks"][0]["type"], "header");
}

#[tokio::test]
async fn a_rule_filtered_to_other_vaults_does_nothing() {
    let example = Example::new();
    let handler = example.handler().await;

    let answer = handler
        .invoke(with_vault(
            event_grid("VaultAccessPolicyChanged", "dev-kv", None),
            "dev-kv",
        ))
        .await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.events()[0]["actions"], json!([]));
    assert!(example.smtp.messages().is_empty() && example.teams.received().is_empty());
}

#[tokio::test]
async fn a_failing_webhook_fails_the_invocation_and_only_it_runs_again_on_redelivery() {
    let example = Example::new();
    example.audit.answer_with(503);
    let handler = example.handler().await;
    let event = event_grid("SecretExpired", "db-old", Some(-1));

    let first = handler.invoke(event.clone()).await;
    example.audit.answer_with(200);
    let second = handler.invoke(event.clone()).await;
    let third = handler.invoke(event).await;

    assert_eq!(
        (first.status, first.statuses()),
        (500, vec!["sent".to_owned(), "failed".to_owned()])
    );
    let reason = first.events()[0]["actions"][1]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("503") && reason.contains("webhook test server says hello"),
        "{reason}"
    );
    assert_eq!(
        (second.status, second.statuses()),
        (200, vec!["duplicate".to_owned(), "sent".to_owned()])
    );
    assert_eq!(third.statuses(), ["duplicate", "duplicate"]);
    assert_eq!(example.smtp.messages().len(), 1);
    assert_eq!(
        example.audit.received().len(),
        2,
        "one failed post, one good one"
    );
}

#[tokio::test]
async fn a_webhook_failure_is_logged_with_its_status_but_never_its_url() {
    let example = Example::new();
    example.teams.answer_with(502);
    let handler = example.handler().await;

    let answer = handler
        .invoke(event_grid("VaultAccessPolicyChanged", "prod-kv", None))
        .await;

    assert_eq!(answer.status, 500);
    let output = handler.output_with("502");
    assert!(output.contains("502"), "{output}");
    for secret in ["TEAMS-KEY", "SLACK-KEY"] {
        assert!(
            !output.contains(secret),
            "{secret} leaked into the log:\n{output}"
        );
        assert!(
            !answer.text.contains(secret),
            "{secret} leaked into the answer"
        );
    }
}

#[tokio::test]
async fn a_webhook_refusing_for_good_is_reported_and_logged_but_not_retried_for_a_day() {
    let example = Example::new();
    example.teams.answer_with(404);
    let handler = example.handler().await;
    let event = event_grid("VaultAccessPolicyChanged", "prod-kv", None);

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(
        first.status, 200,
        "a retry cannot help a 404: {}",
        first.text
    );
    let statuses = first.statuses();
    assert!(statuses.contains(&"failed".to_owned()), "{statuses:?}");
    assert_eq!(again.status, 200);
    assert_eq!(
        example.teams.received().len(),
        1,
        "recorded, not posted again"
    );
    let output = handler.output_with("webhook_refused");
    assert!(output.contains("ERROR"), "logged at error level: {output}");
    assert!(
        output.contains("webhook_refused"),
        "a stable code: {output}"
    );
}

#[tokio::test]
async fn alert_webhook_url_joins_the_security_channel_of_the_defaults() {
    let smtp = SmtpServer::start();
    let hook = WebhookServer::start();
    let mut settings = mail_settings(&smtp.url());
    settings.push(("ALERT_WEBHOOK_URL", hook.url("/alerts/KEY")));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler
        .invoke(event_grid("VaultAccessPolicyChanged", "prod-kv", None))
        .await;

    assert_eq!(answer.statuses(), ["sent", "sent"]);
    assert_eq!(smtp.messages().len(), 1);
    let (_, body) = &hook.received()[0];
    assert_eq!(
        body["kind"], "access_policy_changed",
        "a local URL is guessed to be json"
    );
}

#[tokio::test]
async fn a_recipient_reached_through_two_rules_gets_one_mail() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[channels.sec]\nemail = [\"Owner1@contoso.com\", \"sec@contoso.com\"]\n\
         [[rules]]\nevents = [\"*Expired\"]\nnotify = [\"owners\"]\n\
         [[rules]]\nevents = [\"SecretExpired\"]\nnotify = [\"sec\", \"owners\"]\n",
    )
    .expect("write");
    let mut settings = mail_settings(&smtp.url());
    settings.push(("RULES_FILE", rules.to_string_lossy().into_owned()));
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler
        .invoke(event_grid("SecretExpired", "s", Some(-1)))
        .await;

    assert_eq!(answer.statuses(), ["sent"]);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].rcpt_to(),
        [
            "owner1@contoso.com",
            "owner2@contoso.com",
            "sec@contoso.com"
        ]
    );
}

#[tokio::test]
async fn custom_templates_shape_the_mail() {
    let smtp = SmtpServer::start();
    let templates = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        templates.path().join("mail.txt"),
        "Hello team: {{ headline }} ({{ days_left }} days)",
    )
    .expect("write");
    let mut settings = mail_settings(&smtp.url());
    settings.push((
        "TEMPLATES_DIR",
        templates.path().to_string_lossy().into_owned(),
    ));
    let handler = Handler::start(&pairs(&settings)).await;

    handler
        .invoke(event_grid("SecretNearExpiry", "db", Some(12)))
        .await;

    let mail = &smtp.messages()[0];
    assert_eq!(
        mail.text().trim(),
        "Hello team: Secret db in prod-kv expires in 12 days (12 days)"
    );
    assert!(
        mail.html().contains("Expiring soon"),
        "the HTML keeps the built-in template"
    );
}

#[tokio::test]
async fn a_webhook_that_never_answers_fails_within_its_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}/hook",
        silent.local_addr().expect("addr").port()
    );
    let settings = [
        ("ALERT_WEBHOOK_URL", url.as_str()),
        ("WEBHOOK_TIMEOUT_SECS", "1"),
    ];
    let handler = Handler::start(&settings).await;

    let started = std::time::Instant::now();
    let answer = handler
        .invoke(event_grid("VaultAccessPolicyChanged", "prod-kv", None))
        .await;

    assert_eq!(answer.status, 500);
    let webhook = answer.events()[0]["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["action"] == "webhook").cloned());
    assert_eq!(webhook.map(|w| w["status"].clone()), Some(json!("failed")));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
}
