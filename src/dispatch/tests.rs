//! The dispatcher over an in-memory ledger and fake transports: what each event calls for,
//! and what the answer says.

use super::*;
use crate::delivery::{Delivered, Letter, MailTransport, SendError, WebhookTransport};
use crate::event::{EventType, ObjectKind};
use crate::ledger::RedbLedger;
use crate::webhook::Webhook;
use std::sync::Mutex;
use std::time::Duration;

/// Records every envelope; sends succeed.
#[derive(Default)]
struct Recording {
    sends: Mutex<Vec<Vec<String>>>,
}

#[async_trait::async_trait]
impl MailTransport for Recording {
    async fn send(&self, letter: &Letter<'_>) -> Result<Delivered, SendError> {
        let to = letter
            .envelope
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        self.sends.lock().expect("not poisoned").push(to);
        Ok(Delivered::Sent)
    }
}

/// A webhook that refuses every post for good, as a retired one does.
struct Retired;

#[async_trait::async_trait]
impl WebhookTransport for Retired {
    async fn post(&self, _: &Webhook, _: &serde_json::Value) -> Result<(), Failure> {
        Err(Failure::Permanent(
            "hooks.example.com answered 404 Not Found".into(),
        ))
    }
}

fn dispatcher(settings: &[(&str, &str)]) -> (Dispatcher, Arc<Recording>) {
    let values = crate::settings::Values::from_pairs([], settings.iter().copied());
    let config = Config::from_values(&values).expect("valid settings");
    let mail = Arc::new(Recording::default());
    let deliverer = Deliverer::new(
        Arc::new(RedbLedger::in_memory()),
        mail.clone(),
        Arc::new(Retired),
        Duration::from_secs(1),
        Duration::from_secs(1),
    );
    (Dispatcher::with_deliverer(config, deliverer), mail)
}

fn event(event_type: EventType, id: &str) -> Event {
    let mut event = KeyVaultEvent::example(event_type, Utc::now());
    event.id = id.to_owned();
    event.key = crate::event::EventKey::Id(id.to_owned());
    Event::KeyVault(Box::new(event))
}

const OWNERS_SET: (&str, &str) = ("OWNER_EMAILS", "a@contoso.com, b@contoso.com");

#[tokio::test]
async fn an_expiry_event_mails_the_owners_once() {
    let (dispatcher, mail) = dispatcher(&[OWNERS_SET]);
    let expiring = || event(EventType::NearExpiry(ObjectKind::Secret), "e1");

    let first = dispatcher.handle_all(vec![expiring()]).await;
    let again = dispatcher.handle_all(vec![expiring()]).await;

    assert_eq!(first[0].actions[0].outcome, Outcome::Sent);
    assert_eq!(again[0].actions[0].outcome, Outcome::Duplicate);
    assert_eq!(
        *mail.sends.lock().expect("not poisoned"),
        [["a@contoso.com", "b@contoso.com"]]
    );
}

#[tokio::test]
async fn a_rotation_is_recorded_without_an_action() {
    let (dispatcher, mail) = dispatcher(&[OWNERS_SET]);

    let reports = dispatcher
        .handle_all(vec![event(
            EventType::NewVersionCreated(ObjectKind::Key),
            "e2",
        )])
        .await;

    assert!(reports[0].actions.is_empty());
    assert!(mail.sends.lock().expect("not poisoned").is_empty());
}

#[tokio::test]
async fn a_mail_with_nobody_to_go_to_is_skipped_naming_the_setting() {
    let (dispatcher, mail) = dispatcher(&[]);

    let reports = dispatcher
        .handle_all(vec![event(
            EventType::Expired(ObjectKind::Certificate),
            "e3",
        )])
        .await;

    let action = &reports[0].actions[0];
    assert_eq!(action.outcome.status(), "skipped");
    assert!(
        action
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("OWNER_EMAILS"))
    );
    assert!(!reports[0].needs_retry());
    assert!(mail.sends.lock().expect("not poisoned").is_empty());
}

#[tokio::test]
async fn a_webhook_refused_for_good_fails_the_action_without_asking_for_a_retry() {
    let (dispatcher, _) = dispatcher(&[
        ("SECURITY_EMAILS", "secops@contoso.com"),
        ("ALERT_WEBHOOK_URL", "https://hooks.example.com/x"),
    ]);

    let reports = dispatcher
        .handle_all(vec![event(EventType::VaultAccessPolicyChanged, "e4")])
        .await;

    let statuses: Vec<&str> = reports[0]
        .actions
        .iter()
        .map(|a| a.outcome.status())
        .collect();
    assert_eq!(statuses, ["sent", "failed"], "mail sent, webhook refused");
    assert!(!reports[0].needs_retry(), "a retry cannot help a 404");
}

#[tokio::test]
async fn every_event_of_a_batch_is_handled() {
    let (dispatcher, mail) = dispatcher(&[OWNERS_SET]);
    let batch = vec![
        event(EventType::NearExpiry(ObjectKind::Secret), "b1"),
        event(EventType::Expired(ObjectKind::Key), "b2"),
        Event::Other {
            id: Some("b3".into()),
            event_type: Some("Microsoft.Storage.BlobCreated".into()),
        },
    ];

    let reports = dispatcher.handle_all(batch).await;

    assert_eq!(reports.len(), 3);
    assert_eq!(mail.sends.lock().expect("not poisoned").len(), 2);
    assert!(reports[2].actions.is_empty());
}
