//! The exactly-once step with an in-memory ledger and fake transports.

use super::*;
use crate::ledger::{LedgerError, RedbLedger};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, Mutex};

static EVENT: LazyLock<EventKey> = LazyLock::new(|| EventKey::Id("event-1".to_owned()));

type Answer = Box<dyn Fn(&[String]) -> Result<Delivered, SendError> + Send + Sync>;

/// A mail transport that records every envelope and answers as told, after `delay`.
struct FakeMail {
    sends: Mutex<Vec<Vec<String>>>,
    answer: Answer,
    delay: Duration,
}

impl FakeMail {
    fn new(
        answer: impl Fn(&[String]) -> Result<Delivered, SendError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Self::slow(Duration::ZERO, answer)
    }

    fn slow(
        delay: Duration,
        answer: impl Fn(&[String]) -> Result<Delivered, SendError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            sends: Mutex::new(Vec::new()),
            answer: Box::new(answer),
            delay,
        })
    }

    fn sends(&self) -> Vec<Vec<String>> {
        self.sends.lock().expect("not poisoned").clone()
    }
}

#[async_trait::async_trait]
impl MailTransport for FakeMail {
    async fn send(&self, letter: &Letter<'_>) -> Result<Delivered, SendError> {
        let to: Vec<String> = letter
            .envelope
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        self.sends.lock().expect("not poisoned").push(to.clone());
        tokio::time::sleep(self.delay).await;
        (self.answer)(&to)
    }
}

/// A webhook transport that counts posts and answers as told.
struct FakeWebhook {
    posts: AtomicUsize,
    answer: Result<(), Failure>,
}

#[async_trait::async_trait]
impl WebhookTransport for FakeWebhook {
    async fn post(&self, _: &Webhook, _: &serde_json::Value) -> Result<(), Failure> {
        self.posts.fetch_add(1, Ordering::SeqCst);
        self.answer.clone()
    }
}

fn deliverer(mail: Arc<FakeMail>, webhook: Arc<FakeWebhook>) -> Deliverer {
    let ledger: Arc<dyn Ledger> = Arc::new(RedbLedger::in_memory());
    Deliverer::new(ledger, mail, webhook, SEND_TIMEOUT, SEND_TIMEOUT)
}

/// A ledger on a full disk: claims pass (they need no sync), completions fail.
struct FullDisk(RedbLedger);

#[async_trait::async_trait]
impl Ledger for FullDisk {
    async fn claim(
        &self,
        key: &ActionKey,
        now: chrono::DateTime<Utc>,
        lease: Duration,
    ) -> Result<Claim, LedgerError> {
        self.0.claim(key, now, lease).await
    }

    async fn complete(
        &self,
        _: &ActionKey,
        _: Recorded,
        _: chrono::DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        Err(LedgerError("No space left on device".into()))
    }

    async fn release(&self, key: &ActionKey) -> Result<(), LedgerError> {
        self.0.release(key).await
    }

    async fn purge(&self, cutoff: chrono::DateTime<Utc>) -> Result<usize, LedgerError> {
        self.0.purge(cutoff).await
    }

    async fn note(&self, _: &crate::ledger::Trouble) -> Result<(), LedgerError> {
        Err(LedgerError("No space left on device".into()))
    }

    async fn remember(&self, _: &str, _: &str) -> Result<(), LedgerError> {
        Err(LedgerError("No space left on device".into()))
    }

    async fn recall(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.0.recall(key).await
    }

    async fn clear(
        &self,
        kind: crate::ledger::TroubleKind,
        subject: &str,
    ) -> Result<(), LedgerError> {
        self.0.clear(kind, subject).await
    }

    async fn troubles(&self) -> Result<Vec<crate::ledger::Trouble>, LedgerError> {
        self.0.troubles().await
    }
}

#[tokio::test]
async fn a_send_the_ledger_cannot_record_is_reported_sent_and_asks_for_a_redelivery() {
    let mail = FakeMail::new(|_| Ok(Delivered::Sent));
    let ledger: Arc<dyn Ledger> = Arc::new(FullDisk(RedbLedger::in_memory()));
    let deliverer = Deliverer::new(
        ledger,
        mail.clone(),
        no_webhook(),
        SEND_TIMEOUT,
        SEND_TIMEOUT,
    );
    let to = mailboxes(&["a@contoso.com"]);

    let report = deliverer.email(job(&to, SECOND)).await;

    assert_eq!(report.outcome.status(), "sent");
    assert!(report.outcome.needs_retry(), "{report:?}");
    assert!(
        report
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("No space left") && r.contains("may send it again")),
        "{report:?}"
    );
}

fn no_webhook() -> Arc<FakeWebhook> {
    Arc::new(FakeWebhook {
        posts: AtomicUsize::new(0),
        answer: Ok(()),
    })
}

fn mailboxes(addresses: &[&str]) -> Vec<Mailbox> {
    addresses
        .iter()
        .map(|a| a.parse().expect("an address"))
        .collect()
}

fn job<'a>(to: &'a [Mailbox], deadline: Duration) -> MailJob<'a> {
    MailJob {
        event: &EVENT,
        event_time: None,
        to,
        from: "kv-notify@contoso.com".parse().expect("an address"),
        raw: b"Subject: test\r\n\r\nbody\r\n".to_vec(),
        parts: crate::mail::Rendered {
            subject: "test".to_owned(),
            text: "body".to_owned(),
            html: "<p>body</p>".to_owned(),
        },
        name: "kv_object_SecretNearExpiry".to_owned(),
        deadline: Instant::now() + deadline,
    }
}

fn refused_for(
    bad: &'static str,
    failure: fn(String) -> Failure,
) -> impl Fn(&[String]) -> Result<Delivered, SendError> {
    move |to: &[String]| {
        if to.iter().any(|a| a == bad) {
            Err(SendError::Refused(failure(format!("550 {bad} unknown"))))
        } else {
            Ok(Delivered::Sent)
        }
    }
}

/// The transports' timeout the deliverer plans with (the fakes answer on their own time).
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// An invocation deadline that leaves time to act.
const SECOND: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_mail_goes_once_to_all_recipients_and_a_redelivery_is_a_duplicate() {
    let mail = FakeMail::new(|_| Ok(Delivered::Sent));
    let deliverer = deliverer(mail.clone(), no_webhook());
    let to = mailboxes(&["a@contoso.com", "b@contoso.com"]);

    let first = deliverer.email(job(&to, SECOND)).await;
    let again = deliverer.email(job(&to, SECOND)).await;

    assert_eq!(first.outcome, Outcome::Sent);
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert_eq!(mail.sends(), [["a@contoso.com", "b@contoso.com"]]);
}

#[tokio::test]
async fn a_refused_mail_is_sent_to_each_recipient_alone_and_only_the_unserved_are_retried() {
    let mail = FakeMail::new(refused_for("b@contoso.com", Failure::Transient));
    let deliverer = deliverer(mail.clone(), no_webhook());
    let to = mailboxes(&["a@contoso.com", "b@contoso.com"]);

    let first = deliverer.email(job(&to, SECOND)).await;
    let again = deliverer.email(job(&to, SECOND)).await;

    assert!(first.outcome.needs_retry(), "{first:?}");
    assert!(
        first
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("for b@contoso.com"))
    );
    assert!(again.outcome.needs_retry());
    assert_eq!(
        mail.sends(),
        [
            vec!["a@contoso.com", "b@contoso.com"],
            vec!["a@contoso.com"],
            vec!["b@contoso.com"],
            vec!["b@contoso.com"],
        ],
        "a got it once; b is tried again on redelivery"
    );
}

#[tokio::test]
async fn a_recipient_refused_for_good_is_recorded_and_never_tried_again() {
    let mail = FakeMail::new(refused_for("b@contoso.com", Failure::Permanent));
    let deliverer = deliverer(mail.clone(), no_webhook());
    let to = mailboxes(&["a@contoso.com", "b@contoso.com"]);

    let first = deliverer.email(job(&to, SECOND)).await;
    let sends_after_first = mail.sends().len();
    let again = deliverer.email(job(&to, SECOND)).await;

    assert_eq!(first.outcome.status(), "failed");
    assert!(!first.outcome.needs_retry(), "no retry can help: {first:?}");
    assert!(!again.outcome.needs_retry());
    assert_eq!(mail.sends().len(), sends_after_first, "nothing sent again");
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_send_one_mail() {
    let mail = FakeMail::slow(Duration::from_millis(200), |_| Ok(Delivered::Sent));
    let deliverer = deliverer(mail.clone(), no_webhook());
    let to = mailboxes(&["a@contoso.com"]);

    let reports = futures_util::future::join_all(
        (0..5).map(|_| deliverer.email(job(&to, Duration::from_secs(5)))),
    )
    .await;

    let statuses: Vec<&str> = reports.iter().map(|r| r.outcome.status()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "sent").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "duplicate").count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(mail.sends().len(), 1);
}

#[tokio::test]
async fn a_send_past_the_deadline_is_pending_and_records_its_real_outcome() {
    let mail = FakeMail::slow(Duration::from_millis(1500), |_| Ok(Delivered::Sent));
    let deliverer = deliverer(mail.clone(), no_webhook());
    let to = mailboxes(&["a@contoso.com"]);

    let first = deliverer.email(job(&to, Duration::from_millis(1200))).await;
    let finished = deliverer.finish(Instant::now() + SECOND).await;
    let again = deliverer.email(job(&to, SECOND)).await;

    assert_eq!(first.outcome, Outcome::Pending, "{first:?}");
    assert!(first.outcome.needs_retry());
    assert!(finished, "the send went on after the deadline");
    assert_eq!(
        again.outcome,
        Outcome::Duplicate,
        "the late answer was recorded"
    );
    assert_eq!(mail.sends().len(), 1);
}

#[tokio::test]
async fn no_send_starts_without_time_to_finish_and_record_it() {
    let mail = FakeMail::new(|_| Ok(Delivered::Sent));
    let deliverer = deliverer(mail.clone(), no_webhook());
    let to = mailboxes(&["a@contoso.com"]);

    // Less than the send timeout plus the ledger allowance.
    let late = deliverer.email(job(&to, Duration::from_millis(900))).await;
    let in_time = deliverer.email(job(&to, SECOND)).await;

    assert!(late.outcome.needs_retry(), "{late:?}");
    assert!(
        late.reason
            .as_deref()
            .is_some_and(|r| r.contains("too little time")),
        "{late:?}"
    );
    assert_eq!(in_time.outcome, Outcome::Sent, "the claim was given back");
    assert_eq!(mail.sends().len(), 1);
}

#[tokio::test]
async fn a_written_mail_reports_its_file() {
    let file = std::path::PathBuf::from("outbox/x.eml");
    let written = file.clone();
    let mail = FakeMail::new(move |_| Ok(Delivered::Written(written.clone())));
    let deliverer = deliverer(mail, no_webhook());
    let to = mailboxes(&["a@contoso.com"]);

    let report = deliverer.email(job(&to, SECOND)).await;

    assert_eq!(report.outcome, Outcome::Written(file));
    assert_eq!(report.reason.as_deref(), Some("to outbox/x.eml"));
}

async fn post_twice(answer: Result<(), Failure>) -> (ActionReport, ActionReport, usize) {
    let webhook = Arc::new(FakeWebhook {
        posts: AtomicUsize::new(0),
        answer,
    });
    let deliverer = deliverer(FakeMail::new(|_| Ok(Delivered::Sent)), webhook.clone());
    let target = Webhook::parse("https://hooks.example.com/x", Some("json")).expect("a URL");
    let job = || WebhookJob {
        event: &EVENT,
        event_time: None,
        channel: "audit",
        webhook: &target,
        payload: serde_json::json!({}),
        deadline: Instant::now() + SECOND,
    };
    let first = deliverer.webhook(job()).await;
    let again = deliverer.webhook(job()).await;
    (first, again, webhook.posts.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_webhook_post_is_made_once() {
    let (first, again, posts) = post_twice(Ok(())).await;

    assert_eq!(first.outcome, Outcome::Sent);
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn a_webhook_refusing_for_good_is_recorded_not_retried() {
    let (first, again, posts) = post_twice(Err(Failure::Permanent("404".into()))).await;

    assert!(!first.outcome.needs_retry(), "{first:?}");
    assert_eq!(first.outcome.status(), "failed");
    assert!(!again.outcome.needs_retry());
    assert_eq!(posts, 1, "not posted again");
}

#[tokio::test]
async fn a_webhook_that_may_pass_later_is_released_for_a_retry() {
    let (first, again, posts) = post_twice(Err(Failure::Transient("503".into()))).await;

    assert!(first.outcome.needs_retry(), "{first:?}");
    assert!(again.outcome.needs_retry());
    assert_eq!(posts, 2, "each delivery tries again");
}
