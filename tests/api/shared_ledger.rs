//! Several instances of the app on one storage-account table (Azurite): exactly one mail per
//! event and recipient, whichever instance each delivery lands on.

use crate::support::*;
use futures_util::future::join_all;

#[tokio::test]
async fn one_event_delivered_to_three_instances_at_once_is_one_mail() {
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start());
    let settings = mail_settings_on_table(&smtp.url(), &azurite);
    let settings = pairs(&settings);
    let instances = join_all((0..3).map(|_| Handler::start(&settings))).await;
    let event = event_grid("SecretNearExpiry", "shared", Some(5));

    let answers = join_all(instances.iter().map(|h| h.invoke(event.clone()))).await;

    let mut statuses: Vec<String> = answers.iter().flat_map(Answer::statuses).collect();
    statuses.sort();
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    assert_eq!(statuses, ["duplicate", "duplicate", "sent"]);
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn forty_events_each_delivered_to_two_instances_are_forty_mails() {
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start());
    let settings = mail_settings_on_table(&smtp.url(), &azurite);
    let settings = pairs(&settings);
    let (a, b) = tokio::join!(Handler::start(&settings), Handler::start(&settings));
    let events: Vec<_> = (0..40)
        .map(|n| event_grid("KeyNearExpiry", &format!("k{n}"), Some(5)))
        .collect();

    let answers = join_all(
        events
            .iter()
            .flat_map(|e| [a.invoke(e.clone()), b.invoke(e.clone())]),
    )
    .await;

    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(smtp.messages().len(), 40);
}

#[tokio::test]
async fn a_fresh_instance_on_a_new_disk_finds_what_another_sent() {
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start());
    let settings = mail_settings_on_table(&smtp.url(), &azurite);
    let event = event_grid("CertificateNearExpiry", "tls", Some(5));
    let first = Handler::start(&pairs(&settings)).await;
    assert_eq!(first.invoke(event.clone()).await.statuses(), ["sent"]);
    drop(first);

    let fresh = Handler::start(&pairs(&settings)).await;
    let again = fresh.invoke(event).await;

    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn a_wrong_account_key_stops_start_up_and_is_never_printed() {
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start());
    let mut settings = mail_settings_on_table(&smtp.url(), &azurite);
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=";
    let connection = azurite.connection_string();
    let (before, rest) = connection.split_once("AccountKey=").expect("a key");
    let after = rest.split_once(';').map_or("", |(_, tail)| tail);
    set(
        &mut settings,
        "AzureWebJobsStorage",
        &format!("{before}AccountKey={wrong_key};{after}"),
    );
    let output = Handler::refused_start(&pairs(&settings), "AzureWebJobsStorage");
    assert!(output.contains("refused the key"), "{output}");
    assert!(!output.contains(wrong_key));
}

#[tokio::test]
async fn with_the_storage_account_down_no_mail_goes_out_and_the_redelivery_sends_once() {
    let (smtp, mut azurite) = (SmtpServer::start(), Azurite::start());
    let settings = mail_settings_on_table(&smtp.url(), &azurite);
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("SecretExpired", "down", Some(-1));

    azurite.stop();
    let started = std::time::Instant::now();
    let during = handler.invoke(event.clone()).await;
    let took = started.elapsed();
    azurite.restart();
    let after = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(during.status, 500, "{}", during.text);
    assert!(
        took < std::time::Duration::from_secs(20),
        "answered after {took:?}"
    );
    assert_eq!(after.statuses(), ["sent"], "{}", after.text);
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(
        smtp.messages().len(),
        1,
        "no mail while the ledger was down"
    );
}

#[tokio::test]
async fn a_claim_left_by_a_killed_instance_is_taken_over_after_its_lease_and_sent_once() {
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start());
    // The first instance's mail server never answers: it claims the mail and hangs.
    let (_silent, silent_url) = silent_server();
    let mut hung = mail_settings_on_table(&smtp.url(), &azurite);
    set(&mut hung, "SMTP_URL", &silent_url);
    set(&mut hung, "SMTP_TIMEOUT_SECS", "1");
    let mut healthy = mail_settings_on_table(&smtp.url(), &azurite);
    set(&mut healthy, "SMTP_TIMEOUT_SECS", "1");
    set(&mut healthy, "DEADLINE_SECS", "30");
    let first = Handler::start(&pairs(&hung)).await;
    let second = Handler::start(&pairs(&healthy)).await;
    let event = event_grid("KeyExpired", "orphan", Some(-1));

    let (_, answer) = tokio::join!(first.try_invoke(event.clone()), async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        first.sigkill();
        second.invoke(event.clone()).await
    });
    let again = second.invoke(event).await;

    assert_eq!(
        (answer.status, answer.statuses()),
        (200, vec!["sent".to_owned()]),
        "{}",
        answer.text
    );
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(smtp.messages().len(), 1);
}

/// The identity-based form of `AzureWebJobsStorage`, against Azurite over HTTPS checking tokens.
fn identity_based(
    smtp: &SmtpServer,
    azurite: &Azurite,
    identity: &IdentityEndpoint,
    header: &str,
) -> Vec<(&'static str, String)> {
    let mut settings = mail_settings(&smtp.url());
    set(&mut settings, "LEDGER", "table");
    set(
        &mut settings,
        "AzureWebJobsStorage__accountName",
        "devstoreaccount1",
    );
    set(
        &mut settings,
        "AzureWebJobsStorage__tableServiceUri",
        &azurite.table_uri(),
    );
    set(
        &mut settings,
        "AzureWebJobsStorage__credential",
        "managedidentity",
    );
    set(&mut settings, "IDENTITY_ENDPOINT", &identity.url());
    set(&mut settings, "IDENTITY_HEADER", header);
    let certificate = azurite.certificate().expect("HTTPS");
    set(
        &mut settings,
        "SSL_CERT_FILE",
        &certificate.to_string_lossy(),
    );
    settings
}

#[tokio::test]
async fn the_managed_identity_reaches_the_table_without_a_key_and_its_token_is_reused() {
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start_with_oauth());
    let identity = IdentityEndpoint::start();
    let settings = identity_based(&smtp, &azurite, &identity, IDENTITY_SECRET);
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("SecretNearExpiry", "keyless", Some(5));

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(first.statuses(), ["sent"], "{}", first.text);
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(
        identity.requests(),
        1,
        "one token, cached for every request"
    );
    assert!(!handler.output().contains("eyJ"), "a token reached the log");
}

#[tokio::test]
async fn an_identity_the_endpoint_refuses_stops_start_up_naming_the_identity() {
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start_with_oauth());
    let identity = IdentityEndpoint::start();
    let settings = identity_based(&smtp, &azurite, &identity, "wrong-secret");

    let output = Handler::refused_start(&pairs(&settings), "managed identity");

    assert!(
        output.contains("no token for https://storage.azure.com/"),
        "{output}"
    );
    assert!(!output.contains("wrong-secret"));
}

#[tokio::test]
async fn a_second_process_on_one_ledger_file_is_refused_naming_the_shared_ledger() {
    let folder = tempfile::tempdir().expect("temp dir");
    let (file, outbox) = (
        folder.path().join("ledger.redb"),
        folder.path().join("outbox"),
    );
    let settings = [
        ("LEDGER_PATH", file.to_str().expect("utf-8")),
        ("OUTBOX_DIR", outbox.to_str().expect("utf-8")),
    ];
    let _first = Handler::start(&settings).await;

    let output = Handler::refused_start(&settings, "LEDGER=table");

    assert!(output.contains("another process has it open"), "{output}");
}

/// Runs `kv-notify purge` with `settings` as its environment; its standard output.
fn purge(settings: &[(&'static str, String)]) -> String {
    let folder = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(kv_notify_binary())
        .arg("purge")
        .current_dir(folder.path())
        .env_clear()
        .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run kv-notify purge");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn a_month_past_retention_goes_whole_and_the_current_month_stays() {
    let (smtp, azurite) = (SmtpServer::start(), Azurite::start());
    // A ten-year memory, so that an event of March 2025 is filed by its own month. (Expiry
    // events are filed by their reminder ladder instead: these are access policy alerts.)
    let mut long = mail_settings_on_table(&smtp.url(), &azurite);
    set(&mut long, "LEDGER_RETENTION_DAYS", "3650");
    let mut old = event_grid("VaultAccessPolicyChanged", "prod-kv", None);
    old["eventTime"] = "2025-03-10T08:00:00Z".into();
    let recent = event_grid("VaultAccessPolicyChanged", "prod-kv", None);
    let handler = Handler::start(&pairs(&long)).await;
    assert_eq!(handler.invoke(old.clone()).await.statuses(), ["sent"]);
    assert_eq!(handler.invoke(recent.clone()).await.statuses(), ["sent"]);

    let kept = purge(&long);
    let mut short = long.clone();
    set(&mut short, "LEDGER_RETENTION_DAYS", "30");
    let dropped = purge(&short);
    let old_again = handler.invoke(old).await;
    let recent_again = handler.invoke(recent).await;

    assert!(kept.contains("0 monthly tables dropped"), "{kept}");
    assert!(dropped.contains("1 monthly tables dropped"), "{dropped}");
    assert_eq!(old_again.statuses(), ["sent"], "its month went whole");
    assert_eq!(recent_again.statuses(), ["duplicate"], "this month stays");
    assert_eq!(smtp.messages().len(), 3);
}
