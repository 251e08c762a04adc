//! The mails, as a real SMTP server receives them, and as Microsoft Graph (its stand-in) does:
//! the content tests run over both transports.

use crate::support::*;
use serde_json::json;

over_every_transport!(
    near_expiry_is_one_mail_to_all_owners_with_days_left_in_the_subject,
    the_mail_has_text_and_html_parts_with_every_fact_and_the_next_steps,
    the_html_part_is_self_contained_and_styled_inline,
    expired_mail_is_marked_as_expired_and_counts_days_since,
    access_policy_change_alerts_only_the_security_contacts,
    a_new_version_is_recorded_and_sends_no_mail,
    markup_in_names_is_escaped_in_the_html,
    line_breaks_in_names_add_no_header_and_no_recipient,
    an_encoded_word_in_a_name_cannot_make_the_subject_show_other_text,
    direction_overrides_and_line_separators_never_reach_the_mail
);

async fn deliver(event: serde_json::Value, sink: MailSink) -> (MailSink, Answer) {
    let settings = sink.settings();
    let handler = Handler::start(&pairs(&settings)).await;
    let answer = handler.invoke(event).await;
    (sink, answer)
}

async fn near_expiry_is_one_mail_to_all_owners_with_days_left_in_the_subject(sink: MailSink) {
    let (sink, answer) = deliver(
        event_grid("SecretNearExpiry", "db-password", Some(29)),
        sink,
    )
    .await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.statuses(), ["sent"]);
    let mails = sink.messages();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(
        mail.subject(),
        "Secret db-password in prod-kv expires in 29 days"
    );
    assert_eq!(mail.rcpt_to(), ["owner1@contoso.com", "owner2@contoso.com"]);
    let to = mail.header("To").expect("To");
    assert!(
        to.contains("owner1@contoso.com") && to.contains("owner2@contoso.com"),
        "{to}"
    );
    assert!(
        mail.header("From")
            .is_some_and(|f| f.contains("kv-notify@contoso.com"))
    );
}

async fn the_mail_has_text_and_html_parts_with_every_fact_and_the_next_steps(sink: MailSink) {
    let (sink, _) = deliver(event_grid("KeyNearExpiry", "token-signing", Some(12)), sink).await;

    let mail = &sink.messages()[0];
    assert!(
        mail.text()
            .lines()
            .any(|l| l.trim_end() == "Time left: 12 days"),
        "{}",
        mail.text()
    );
    assert_eq!(mail.parsed().ctype.mimetype, "multipart/alternative");
    // minijinja escapes `/` as `&#x2f;` in HTML, which browsers and mail clients decode.
    for part in [mail.text(), mail.html().replace("&#x2f;", "/")] {
        for fact in [
            "token-signing",
            "prod-kv",
            "0123456789abcdef",
            "Time left",
            "expires in 12 days",
            "UTC",
            "Not before",
            "Event time",
        ] {
            assert!(part.contains(fact), "{fact} missing from:\n{part}");
        }
        assert!(!part.contains("days left"), "said once, not twice:\n{part}");
        assert!(
            part.contains("https://portal.azure.com/#@/asset/Microsoft_Azure_KeyVault/Key/"),
            "a portal link to the key itself"
        );
        assert!(
            part.contains("Create a new version of Key token-signing"),
            "next step"
        );
    }
}

async fn the_html_part_is_self_contained_and_styled_inline(sink: MailSink) {
    let (sink, _) = deliver(event_grid("CertificateNearExpiry", "www", Some(5)), sink).await;

    let html = sink.messages()[0].html();
    assert!(html.contains("style=\""));
    for forbidden in ["<script", "<img", "<link", "<style"] {
        assert!(!html.contains(forbidden), "{forbidden} in the HTML");
    }
}

async fn expired_mail_is_marked_as_expired_and_counts_days_since(sink: MailSink) {
    let (sink, answer) =
        deliver(event_grid("CertificateExpired", "api-cert", Some(-4)), sink).await;

    assert_eq!(answer.statuses(), ["sent"]);
    let mail = &sink.messages()[0];
    assert_eq!(
        mail.subject(),
        "EXPIRED: Certificate api-cert in prod-kv expired 3 days ago"
    );
    assert!(mail.html().contains("Expired"));
}

async fn access_policy_change_alerts_only_the_security_contacts(sink: MailSink) {
    let (sink, answer) = deliver(
        event_grid("VaultAccessPolicyChanged", "prod-kv", None),
        sink,
    )
    .await;

    assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    let mail = &sink.messages()[0];
    assert_eq!(mail.rcpt_to(), ["secops@contoso.com"]);
    assert_eq!(
        mail.subject(),
        "Security alert: Access policy changed on vault prod-kv"
    );
}

async fn a_new_version_is_recorded_and_sends_no_mail(sink: MailSink) {
    let (sink, answer) =
        deliver(event_grid("SecretNewVersionCreated", "rotated", None), sink).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.events()[0]["type"], "SecretNewVersionCreated");
    assert_eq!(answer.events()[0]["actions"], json!([]));
    assert!(
        answer.json()["Logs"][0]
            .as_str()
            .is_some_and(|l| l.contains("recorded"))
    );
    assert!(sink.messages().is_empty());
}

async fn markup_in_names_is_escaped_in_the_html(sink: MailSink) {
    let mut event = event_grid("SecretNearExpiry", "x", Some(9));
    event["data"]["ObjectName"] = json!("<script>alert(1)</script>");
    event["data"]["VaultName"] = json!("kv\"><img src=x>");

    let (sink, answer) = deliver(event, sink).await;

    assert_eq!(answer.statuses(), ["sent"]);
    let html = sink.messages()[0].html();
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(!html.contains("<img src=x>"));
    assert!(html.contains("&lt;script&gt;"));
}

async fn line_breaks_in_names_add_no_header_and_no_recipient(sink: MailSink) {
    let mut event = event_grid("SecretNearExpiry", "x", Some(9));
    event["data"]["ObjectName"] = json!("db\r\nBcc: attacker@evil.example\r\nX-Injected: yes");
    event["data"]["VaultName"] = json!("kv\nTo: attacker@evil.example");

    let (sink, answer) = deliver(event, sink).await;

    assert_eq!(answer.statuses(), ["sent"]);
    let mail = &sink.messages()[0];
    assert_eq!(mail.rcpt_to(), ["owner1@contoso.com", "owner2@contoso.com"]);
    assert!(mail.headers_named("X-Injected").is_empty());
    assert!(mail.headers_named("Bcc").is_empty());
    assert_eq!(mail.headers_named("To").len(), 1);
    assert!(!mail.header("To").unwrap_or_default().contains("evil"));
    assert!(
        mail.subject().contains("Bcc: attacker"),
        "the name stays visible, on one line"
    );
}

async fn an_encoded_word_in_a_name_cannot_make_the_subject_show_other_text(sink: MailSink) {
    let event = event_grid("SecretNearExpiry", "=?utf-8?q?Bcc:_evil@x?=", Some(9));

    let (sink, answer) = deliver(event, sink).await;

    assert_eq!(answer.statuses(), ["sent"]);
    let subject = sink.messages()[0].subject();
    assert!(!subject.contains("Bcc: evil"), "shown as {subject:?}");
    assert!(
        subject.contains("?utf-8?q?Bcc:_evil@x?="),
        "shown as {subject:?}"
    );
}

async fn direction_overrides_and_line_separators_never_reach_the_mail(sink: MailSink) {
    let mut event = event_grid("SecretNearExpiry", "x", Some(9));
    event["data"]["ObjectName"] = json!("invoice\u{202E}fdp.exe\u{2028}Bcc: x");

    let (sink, answer) = deliver(event, sink).await;

    assert_eq!(answer.statuses(), ["sent"]);
    let mail = &sink.messages()[0];
    for part in [mail.subject(), mail.text(), mail.html()] {
        assert!(!part.contains(['\u{202E}', '\u{2028}']), "{part}");
    }
    assert!(mail.subject().contains("invoice fdp.exe Bcc: x"));
}

#[tokio::test]
async fn without_recipients_the_action_is_skipped_with_a_reason() {
    let smtp = SmtpServer::start();
    let handler = Handler::start(&[("SMTP_URL", &smtp.url())]).await;

    let answer = handler
        .invoke(event_grid("KeyNearExpiry", "k", Some(3)))
        .await;

    assert_eq!(answer.status, 200);
    let action = &answer.events()[0]["actions"][0];
    assert_eq!(action["status"], "skipped");
    assert!(
        action["reason"]
            .as_str()
            .is_some_and(|r| r.contains("OWNER_EMAILS"))
    );
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn without_smtp_the_mail_is_written_to_the_outbox() {
    let (outbox, handler) = Handler::start_with_outbox().await;

    let answer = handler
        .invoke(event_grid("SecretExpired", "old", Some(-2)))
        .await;

    assert_eq!(answer.statuses(), ["written"]);
    let files: Vec<_> = std::fs::read_dir(outbox.path())
        .expect("outbox")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read_to_string(files[0].path()).expect("eml");
    assert!(
        raw.contains("Subject: EXPIRED: Secret old in prod-kv"),
        "{raw}"
    );
    assert!(raw.contains("Message-ID: <"), "{raw}");
}

#[tokio::test]
async fn each_mail_has_its_own_message_id_and_one_objects_mails_share_a_thread() {
    let smtp = SmtpServer::start();
    let handler = Handler::start(&pairs(&mail_settings(&smtp.url()))).await;

    for event in [
        event_grid("SecretNearExpiry", "db-password", Some(20)),
        event_grid("SecretExpired", "db-password", Some(-1)),
        event_grid("KeyExpired", "signing", Some(-1)),
    ] {
        let answer = handler.invoke(event).await;
        assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    }

    let messages = smtp.messages();
    let ids: Vec<String> = messages
        .iter()
        .map(|m| m.header("Message-ID").expect("a Message-ID"))
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.starts_with('<') && id.ends_with("@contoso.com>")),
        "{ids:?}"
    );
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "{ids:?}");
    let threads: Vec<Option<String>> = messages.iter().map(|m| m.header("References")).collect();
    assert!(threads[0].is_some(), "{threads:?}");
    assert_eq!(threads[0], threads[1], "one secret's mails, one thread");
    assert_ne!(
        threads[1], threads[2],
        "another object's mail, another thread"
    );
}

#[tokio::test]
async fn with_pooling_off_every_mail_still_arrives() {
    let smtp = SmtpServer::start();
    let mut settings = mail_settings(&smtp.url());
    settings.push(("SMTP_POOL", "false".to_owned()));
    let handler = Handler::start(&pairs(&settings)).await;

    let first = handler
        .invoke(event_grid("SecretNearExpiry", "a", Some(3)))
        .await;
    let second = handler
        .invoke(event_grid("KeyExpired", "b", Some(-3)))
        .await;

    assert_eq!(
        (first.statuses(), second.statuses()),
        (vec!["sent".to_owned()], vec!["sent".to_owned()])
    );
    assert_eq!(smtp.messages().len(), 2);
    let output = handler.output_with("a connection per mail");
    assert!(output.contains("a connection per mail"), "{output}");
}

#[tokio::test]
async fn what_an_invocation_logs_carries_the_host_invocation_id() {
    let smtp = SmtpServer::start();
    let handler = Handler::start(&pairs(&mail_settings(&smtp.url()))).await;

    handler
        .invoke(event_grid("SecretNearExpiry", "db-password", Some(5)))
        .await;
    let second = handler
        .invoke(event_grid("KeyNearExpiry", "signing", Some(5)))
        .await;

    assert_eq!(second.statuses(), ["sent"]);
    let output = handler.output_with("invocation{id=inv-2}");
    let line = output
        .lines()
        .find(|line| line.contains("invocation{id=inv-2}"))
        .unwrap_or_else(|| panic!("no line of invocation inv-2 in:\n{output}"));
    assert!(
        line.contains("INFO") && line.contains("action done") && line.contains(r#"status="sent""#),
        "{line}"
    );
}

#[tokio::test]
async fn a_mail_says_why_it_came_when_the_next_reminder_comes_and_links_the_object() {
    let smtp = SmtpServer::start();
    let handler = Handler::start(&pairs(&mail_settings(&smtp.url()))).await;

    let expiry = handler
        .invoke(event_grid("SecretNearExpiry", "db-password", Some(20)))
        .await;
    let access = handler
        .invoke(event_grid("VaultAccessPolicyChanged", "prod-kv", None))
        .await;

    assert_eq!(
        (expiry.statuses(), access.statuses()),
        (vec!["sent".to_owned()], vec!["sent".to_owned()])
    );
    let messages = smtp.messages();
    let expiry = messages
        .iter()
        .find(|m| m.subject().contains("db-password"))
        .expect("expiry mail");
    let text = expiry.text();
    assert!(
        text.contains("Why you got this: you are in OWNER_EMAILS"),
        "{text}"
    );
    assert!(
        text.contains("14 days before it expires"),
        "the next step of the ladder: {text}"
    );
    assert!(!text.contains("-day step"), "{text}");
    assert!(
        text.contains("https://portal.azure.com/#@/asset/Microsoft_Azure_KeyVault/Secret/https://prod-kv.vault.azure.net/secrets/db-password"),
        "{text}"
    );
    let access = messages
        .iter()
        .find(|m| m.subject().contains("Access policy"))
        .expect("access mail");
    let text = access.text();
    assert!(
        text.contains("Why you got this: you are a security contact (SECURITY_EMAILS)"),
        "{text}"
    );
    assert!(
        text.contains("/providers/Microsoft.KeyVault/vaults/prod-kv/activitylog"),
        "{text}"
    );
}
