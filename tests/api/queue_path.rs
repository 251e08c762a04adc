//! Event Grid through a Storage Queue (private networks): Azurite's Queue service holds the
//! messages, the host's queue listener (the Azure SDK's client, retry timings scaled down)
//! invokes `event-queue` as the Functions host does, a real SMTP server takes the mail.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

/// One second a retry: host.json's 30 minutes divided by this.
const SCALE: u32 = 1800;

struct Setup {
    queues: AzuriteQueues,
    smtp: SmtpServer,
    settings: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let queues = AzuriteQueues::start();
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = mail_settings_with_ledger(&smtp.url(), &dir.path().join("ledger.redb"));
    set(
        &mut settings,
        "AzureWebJobsStorage",
        &queues.connection_string(),
    );
    set(&mut settings, "LEDGER", "file");
    Setup {
        queues,
        smtp,
        settings,
        _dir: dir,
    }
}

fn host_json() -> std::path::PathBuf {
    app_root().join("host.json")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    assert!(wait_until(Duration::from_secs(30), &mut done), "{what}");
}

#[tokio::test]
async fn a_queued_event_is_mailed_once_and_the_same_event_pushed_too_is_not_mailed_again() {
    let s = setup();
    let handler = Handler::start(&pairs(&s.settings)).await;
    let listener = QueueHost::start(&s.queues, &handler.url(""), &host_json(), SCALE);
    let event = event_grid("SecretNearExpiry", "db-password", Some(20));

    s.queues.put("kv-notify-events", &event.to_string());
    wait_for("the queued event is mailed", || {
        s.smtp.messages().len() == 1
    });
    let pushed = handler.invoke(event.clone()).await;
    // And once more through the queue, as a redelivery would.
    s.queues.put("kv-notify-events", &event.to_string());
    wait_for("both queued copies are handled", || {
        listener.invocations().len() == 2
    });

    assert_eq!(pushed.status, 200, "{}", pushed.text);
    let messages = s.smtp.messages();
    assert_eq!(messages.len(), 1, "one mail for one event");
    assert_eq!(
        messages[0].subject(),
        "Secret db-password in prod-kv expires in 20 days"
    );
    assert!(
        listener
            .invocations()
            .iter()
            .all(|(_, tries, status)| (*tries, *status) == (1, 200))
    );
    assert!(s.queues.peek("kv-notify-events").is_empty());
}

#[tokio::test]
async fn a_mail_server_down_for_a_while_loses_nothing_and_sends_once() {
    let s = setup();
    let port = s.smtp.stop();
    let handler = Handler::start(&pairs(&s.settings)).await;
    let listener = QueueHost::start(&s.queues, &handler.url(""), &host_json(), SCALE);
    let event = event_grid("CertificateExpired", "www", Some(-1));

    s.queues.put("kv-notify-events", &event.to_string());
    wait_for("two failed tries", || {
        listener
            .invocations()
            .iter()
            .filter(|(_, _, status)| *status == 500)
            .count()
            >= 2
    });
    let smtp = SmtpServer::start_on(port, SmtpOptions::default());
    wait_for("the retry after the outage is mailed", || {
        smtp.messages().len() == 1
    });
    wait_for("the retry is answered 200", || {
        listener
            .invocations()
            .iter()
            .any(|(_, _, status)| *status == 200)
    });

    let tries = listener.invocations();
    let last = tries.last().expect("tries");
    assert_eq!(last.2, 200, "{tries:?}");
    assert!(
        last.1 >= 3,
        "retried, with the host's dequeue count: {tries:?}"
    );
    assert!(s.queues.peek("kv-notify-events-poison").is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn a_message_that_is_no_event_is_set_aside_after_one_try() {
    let s = setup();
    let handler = Handler::start(&pairs(&s.settings)).await;
    let listener = QueueHost::start(&s.queues, &handler.url(""), &host_json(), SCALE);

    s.queues.put("kv-notify-events", "hello, not an event");
    s.queues
        .put("kv-notify-events", &json!({"nothing": "here"}).to_string());
    wait_for("both are handled", || listener.invocations().len() == 2);

    let tries = listener.invocations();
    assert!(
        tries
            .iter()
            .all(|(_, tries, status)| (*tries, *status) == (1, 200)),
        "{tries:?}"
    );
    let rejected = s.queues.peek("kv-notify-events-rejected");
    let texts: Vec<&str> = rejected.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts.len(), 2, "{rejected:?}");
    assert!(texts.contains(&"hello, not an event"), "{texts:?}");
    assert!(s.queues.peek("kv-notify-events").is_empty());
    assert!(s.smtp.messages().is_empty());
}

#[tokio::test]
async fn a_message_failing_every_try_reaches_the_poison_queue_whole() {
    let s = setup();
    s.smtp.stop();
    let handler = Handler::start(&pairs(&s.settings)).await;
    // host.json's settings with three tries, to reach the end quickly.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut host: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(host_json()).expect("host.json"))
            .expect("json");
    host["extensions"]["queues"]["maxDequeueCount"] = json!(3);
    let short = dir.path().join("host.json");
    std::fs::write(&short, host.to_string()).expect("write");
    let listener = QueueHost::start(&s.queues, &handler.url(""), &short, SCALE);
    let event = event_grid("KeyNearExpiry", "signing", Some(3));

    s.queues.put("kv-notify-events", &event.to_string());
    wait_for("the message reaches the poison queue", || {
        !s.queues.peek("kv-notify-events-poison").is_empty()
    });

    let tries: Vec<u32> = listener.invocations().iter().map(|(_, n, _)| *n).collect();
    assert_eq!(tries, [1, 2, 3]);
    let poisoned = s.queues.peek("kv-notify-events-poison");
    let text = poisoned[0]["text"].as_str().expect("text");
    let kept: serde_json::Value = serde_json::from_str(text).expect("the event, whole");
    assert_eq!(kept["id"], event["id"]);
}

#[tokio::test]
async fn the_health_notice_names_what_waits_set_aside_and_dead_lettered_and_requeue_delivers_it_once()
 {
    let s = setup();
    let event = event_grid("SecretExpired", "api-key", Some(-2));
    // What the host moved to the poison queue, and a message kv-notify set aside.
    s.queues.put("kv-notify-events-poison", &event.to_string());
    s.queues
        .put("kv-notify-events-rejected", "hello, not an event");
    // What Event Grid could not deliver for a day, as it writes it: an array of one event,
    // with why.
    let mut dead = event_grid("CertificateNearExpiry", "www", Some(5));
    dead["deadLetterReason"] = json!("MaxDeliveryAttemptsExceeded");
    dead["deliveryAttempts"] = json!(30);
    let blob = "PROD-KV/2026/12/3/10/0f8fad5b-d9cb-469f-a165-70867728950e.json";
    s.queues
        .put_blob("kv-notify-deadletter", blob, &json!([dead]).to_string());
    let handler = Handler::start(&pairs(&s.settings)).await;

    let timer = handler.timer().await;

    assert_eq!(timer.status, 200, "{}", timer.text);
    let notice = s.smtp.health_notice().text();
    for expected in [
        "1 message(s) wait in queue kv-notify-events-poison, the oldest from ",
        ": SecretExpired on prod-kv.",
        "1 message(s) wait in queue kv-notify-events-rejected",
        ": not an event.",
        "1 message(s) wait in container kv-notify-deadletter, the oldest from ",
        ": CertificateNearExpiry on prod-kv. Event Grid gave up",
        "kv-notify requeue",
    ] {
        assert!(
            notice.contains(expected),
            "{expected}: {notice}\n{}",
            handler.output()
        );
    }

    // Once the cause is fixed: requeue, and the listener delivers it.
    drop(handler);
    let (ok, out) = crate::sweep::kv_notify(&["requeue"], &s.settings);
    assert!(ok, "{out}");
    for said in [
        "kv-notify-events-poison: 1 message(s) put back on kv-notify-events",
        "kv-notify-events-rejected: 1 message(s) put back on kv-notify-events",
        "container kv-notify-deadletter: 1 dead-lettered event(s) put back on kv-notify-events",
    ] {
        assert!(out.contains(said), "{said}: {out}");
    }
    assert!(s.queues.peek("kv-notify-events-poison").is_empty());
    assert!(s.queues.blobs("kv-notify-deadletter").is_empty());
    assert_eq!(s.queues.peek("kv-notify-events").len(), 3);
    let handler = Handler::start(&pairs(&s.settings)).await;
    let listener = QueueHost::start(&s.queues, &handler.url(""), &host_json(), SCALE);
    wait_for("the three requeued messages are handled", || {
        listener.invocations().len() == 3
    });
    let subjects = |smtp: &SmtpServer, about: &str| -> Vec<String> {
        let all = smtp.messages().into_iter().map(|m| m.subject());
        all.filter(|subject| subject.contains(about)).collect()
    };
    assert_eq!(
        subjects(&s.smtp, "api-key"),
        ["EXPIRED: Secret api-key in prod-kv expired 1 day ago"]
    );
    assert_eq!(
        subjects(&s.smtp, "www"),
        ["Certificate www in prod-kv expires in 5 days"]
    );
    // The unusable one is set aside again, not lost.
    assert_eq!(s.queues.peek("kv-notify-events-rejected").len(), 1);
    // A redelivery of the poisoned event mails nothing more.
    s.queues.put("kv-notify-events", &event.to_string());
    wait_for("the redelivery is handled", || {
        listener.invocations().len() == 4
    });
    assert_eq!(subjects(&s.smtp, "api-key").len(), 1);
}

#[test]
fn requeue_from_a_laptop_uses_the_azure_cli_login_and_no_key() {
    let queues = AzuriteQueues::start_with_oauth();
    let event = event_grid("SecretExpired", "api-key", Some(-2));
    queues.put("kv-notify-events-poison", &event.to_string());
    let az = fake_azure_cli();
    // What a developer sets, logged in with `az login`: the account, no key, no identity.
    let mut settings = Vec::new();
    set(
        &mut settings,
        "AzureWebJobsStorage__accountName",
        "devstoreaccount1",
    );
    set(
        &mut settings,
        "AzureWebJobsStorage__queueServiceUri",
        &queues.queue_uri(),
    );
    set(
        &mut settings,
        "AzureWebJobsStorage__blobServiceUri",
        &queues.blob_uri(),
    );
    let ca = queues.certificate().expect("HTTPS");
    set(&mut settings, "SSL_CERT_FILE", &ca.to_string_lossy());
    as_azure_cli_login(&mut settings, az.path());

    let (ok, out) = crate::sweep::kv_notify(&["requeue"], &settings);

    assert!(ok, "{out}");
    assert!(
        out.contains("kv-notify-events-poison: 1 message(s) put back on kv-notify-events"),
        "{out}"
    );
    assert!(queues.peek("kv-notify-events-poison").is_empty());
    assert_eq!(queues.peek("kv-notify-events").len(), 1);
    let calls = std::fs::read_to_string(az.path().join("calls")).expect("az was called");
    assert!(
        calls.contains("--resource https://storage.azure.com"),
        "{calls}"
    );

    // In Azure the same settings without the app's identity are refused, not sent to `az`.
    set(&mut settings, "WEBSITE_INSTANCE_ID", "1");
    set(&mut settings, "MAIL_TRANSPORT", "outbox");
    let (ok, out) = crate::sweep::kv_notify(&["requeue"], &settings);
    assert!(!ok, "{out}");
    assert!(out.contains("needs the app's managed identity"), "{out}");
}
