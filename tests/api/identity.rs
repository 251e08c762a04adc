//! Events without a usable id, and ids or names of absurd length: each still gets exactly one
//! mail of its own, and nothing is amplified into the ledger, the answer or the mail.

use crate::support::*;
use serde_json::{Value, json};

fn with_id(object: &str, id: Value) -> Value {
    let mut event = event_grid("SecretNearExpiry", object, Some(5));
    match id {
        Value::Null if object.starts_with("absent") => {
            event.as_object_mut().map(|e| e.remove("id"));
        }
        id => event["id"] = id,
    }
    event
}

#[tokio::test]
async fn events_without_a_usable_id_do_not_silence_each_other() {
    let smtp = SmtpServer::start();
    let handler = Handler::start(&pairs(&mail_settings(&smtp.url()))).await;
    let events = [
        with_id("absent-id", Value::Null),
        with_id("empty-id", json!("")),
        with_id("blank-id", json!("   ")),
        with_id("null-id", Value::Null),
        with_id("object-id", json!({"a": 1})),
        with_id("number-id", json!(5)),
        with_id("string-id", json!("5")),
    ];

    let mut statuses = Vec::new();
    for event in &events {
        statuses.extend(handler.invoke(event.clone()).await.statuses());
    }

    assert_eq!(statuses, vec!["sent"; events.len()]);
    assert_eq!(smtp.messages().len(), events.len());
}

#[tokio::test]
async fn an_event_without_an_id_is_still_sent_once_when_redelivered() {
    let smtp = SmtpServer::start();
    let handler = Handler::start(&pairs(&mail_settings(&smtp.url()))).await;
    let event = with_id("absent-id", Value::Null);

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(
        (first.statuses(), again.statuses()),
        (vec!["sent".to_owned()], vec!["duplicate".to_owned()])
    );
    assert_eq!(
        first.events()[0]["id"],
        Value::Null,
        "no id is reported as none"
    );
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test]
async fn huge_ids_and_names_are_bounded_in_the_answer_the_mail_and_the_ledger() {
    let smtp = SmtpServer::start();
    let ledger = tempfile::tempdir().expect("temp dir");
    let ledger_path = ledger.path().join("ledger.redb");
    let settings = mail_settings_with_ledger(&smtp.url(), &ledger_path);
    let handler = Handler::start(&pairs(&settings)).await;
    let id = "i".repeat(1_000_000);
    let name = "n".repeat(200_000);
    // 100 days out: beyond the reminder ladder, so the event is known by its id.
    let mut event = event_grid("SecretNearExpiry", &name, Some(100));
    event["id"] = json!(id);
    event["data"]["ObjectName"] = json!(name);
    // Another event whose id differs only after the part that is shown.
    let mut sibling = event.clone();
    sibling["id"] = json!(format!("{id}-2"));

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;
    let other = handler.invoke(sibling).await;

    assert_eq!(first.statuses(), ["sent"]);
    assert_eq!(
        again.statuses(),
        ["duplicate"],
        "the same huge id is one event"
    );
    assert_eq!(
        other.statuses(),
        ["sent"],
        "a different huge id is another event"
    );
    assert!(
        first.text.len() < 5_000,
        "answer of {} bytes",
        first.text.len()
    );
    let reported = &first.events()[0];
    assert!(
        reported["id"]
            .as_str()
            .is_some_and(|i| i.chars().count() <= 257)
    );
    assert!(
        reported["object"]
            .as_str()
            .is_some_and(|o| o.chars().count() <= 513)
    );
    let mails = smtp.messages();
    assert!(
        mails.iter().all(|m| m.raw.len() < 64_000),
        "a mail of {} bytes",
        mails[0].raw.len()
    );
    let ledger_bytes = std::fs::metadata(&ledger_path).expect("the ledger").len();
    assert!(ledger_bytes < 4_000_000, "ledger of {ledger_bytes} bytes");
}
