//! Mail through Azure Communication Services Email, against an HTTPS stand-in of `emails:send`
//! and its operations, with tokens from the managed-identity stand-in or the access key.

use crate::support::*;
use std::time::Duration;

#[tokio::test]
async fn acs_sends_as_the_managed_identity_once_per_event() {
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&acs_settings(&acs, &identity))).await;
    let event = event_grid("SecretNearExpiry", "db-password", Some(5));

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(first.statuses(), ["sent"], "{}", first.text);
    assert_eq!(again.statuses(), ["duplicate"]);
    let requests = acs.requests();
    assert_eq!(requests.len(), 1, "the redelivery asked ACS nothing");
    assert_eq!(
        (requests[0].status, requests[0].auth.as_str()),
        (202, "token"),
        "a token for https://communication.azure.com"
    );
    let mail = &acs.accepted()[0];
    assert_eq!(mail.rcpt_to(), ["owner1@contoso.com", "owner2@contoso.com"]);
    assert!(identity.requests() >= 1);
}

#[tokio::test]
async fn with_the_access_key_every_request_is_signed() {
    let acs = FakeAcs::start();
    let handler = Handler::start(&pairs(&acs_key_settings(&acs))).await;

    let answer = handler
        .invoke(event_grid("KeyExpired", "signing", Some(-1)))
        .await;

    assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    let requests = acs.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].auth, "key", "signed, and the signature held");
    assert!(
        !handler.output().contains(ACS_KEY),
        "the key never reaches the log"
    );
}

#[tokio::test]
async fn a_missing_role_or_a_foreign_sender_is_final_and_throttling_asks_for_a_redelivery() {
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&acs_settings(&acs, &identity))).await;
    let forbidden = event_grid("KeyExpired", "no-role", Some(-1));
    let foreign = event_grid("KeyExpired", "foreign-sender", Some(-1));
    let throttled = event_grid("SecretExpired", "throttled", Some(-1));

    acs.answer("403");
    let refused = handler.invoke(forbidden.clone()).await;
    let refused_again = handler.invoke(forbidden).await;
    acs.answer("400-sender");
    let not_verified = handler.invoke(foreign).await;
    acs.answer("429");
    let during = handler.invoke(throttled.clone()).await;
    acs.answer("500");
    let failing = handler.invoke(throttled.clone()).await;
    acs.answer("202");
    let after = handler.invoke(throttled.clone()).await;
    let again = handler.invoke(throttled).await;

    assert_eq!(refused.status, 200, "retrying cannot grant a role");
    let reason = |answer: &Answer| answer.events()[0]["actions"][0]["reason"].to_string();
    assert!(reason(&refused).contains("role"), "{}", refused.text);
    assert_eq!(
        refused_again.statuses(),
        ["failed"],
        "recorded, not tried again"
    );
    assert_eq!(not_verified.status, 200);
    assert!(
        reason(&not_verified).contains("ACS_SENDER"),
        "{}",
        not_verified.text
    );
    assert_eq!(during.status, 500, "{}", during.text);
    assert!(reason(&during).contains("429"), "{}", during.text);
    assert_eq!(failing.status, 500, "{}", failing.text);
    assert_eq!(after.statuses(), ["sent"], "{}", after.text);
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(acs.accepted().len(), 1);
    let statuses: Vec<u16> = acs.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 400, 429, 500, 202], "one request each");
}

#[tokio::test]
async fn a_bad_recipient_is_refused_alone_and_the_others_get_the_mail() {
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let mut settings = acs_settings(&acs, &identity);
    set(
        &mut settings,
        "OWNER_EMAILS",
        "owner1@contoso.com, bad@contoso.com",
    );
    let handler = Handler::start(&pairs(&settings)).await;
    let event = event_grid("CertificateNearExpiry", "tls", Some(7));

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(
        first.status, 200,
        "a refused address is final: {}",
        first.text
    );
    let mails = acs.accepted();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_to(), ["owner1@contoso.com"]);
    assert_eq!(again.status, 200);
    assert_eq!(
        acs.requests().len(),
        3,
        "to both, then to each alone; none on redelivery"
    );
}

#[tokio::test]
async fn a_send_that_fails_after_acceptance_is_final_and_says_why() {
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&acs_settings(&acs, &identity))).await;
    acs.answer("fail-later");

    let answer = handler
        .invoke(event_grid("SecretNearExpiry", "suppressed", Some(3)))
        .await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.statuses(), ["failed"]);
    assert!(
        answer.text.contains("EmailDroppedAllRecipientsSuppressed"),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn an_acs_that_hangs_is_cut_off_and_the_redelivery_sends_once() {
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&acs_settings(&acs, &identity))).await;
    let event = event_grid("CertificateExpired", "stalled", Some(-1));

    acs.answer("hang");
    let started = std::time::Instant::now();
    let hung = handler.invoke(event.clone()).await;
    let took = started.elapsed();
    acs.answer("202");
    let after = handler.invoke(event).await;

    assert_eq!(hung.status, 500, "{}", hung.text);
    assert!(
        took < Duration::from_secs(10),
        "cut off by SMTP_TIMEOUT_SECS (3 s), answered after {took:?}"
    );
    assert_eq!(after.statuses(), ["sent"], "{}", after.text);
    assert_eq!(acs.accepted().len(), 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_make_one_request() {
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&acs_settings(&acs, &identity))).await;
    let event = event_grid("KeyNearExpiry", "twice-at-once", Some(9));

    let (a, b) = tokio::join!(handler.invoke(event.clone()), handler.invoke(event));

    let mut statuses = [a.statuses(), b.statuses()].concat();
    statuses.sort();
    assert_eq!(statuses, ["duplicate", "sent"], "{} {}", a.text, b.text);
    assert_eq!(acs.requests().len(), 1);
}

#[tokio::test]
async fn a_redelivery_after_a_crash_between_the_202_and_the_ledger_write_repeats_the_same_request()
{
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let ledger = tempfile::tempdir().expect("temp dir");
    let mut settings = acs_settings(&acs, &identity);
    let path = ledger.path().join("ledger.redb");
    set(&mut settings, "LEDGER_PATH", path.to_str().expect("UTF-8"));
    set(&mut settings, "SMTP_TIMEOUT_SECS", "1");
    let event = event_grid("SecretNearExpiry", "crash", Some(5));
    // ACS accepts the mail, then never answers for its operation: the handler is killed while
    // it waits, after the 202 and before the ledger write.
    acs.answer("stall-operation");
    let handler = Handler::start(&pairs(&settings)).await;
    let (_, ()) = tokio::join!(handler.try_invoke(event.clone()), async {
        for _ in 0..200 {
            if !acs.requests().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handler.sigkill();
    });
    drop(handler);

    acs.answer("202");
    let handler = Handler::start(&pairs(&settings)).await;
    // Event Grid redelivers until it gets a 200; the killed claim holds until its lease ends.
    let mut answer = handler.invoke(event.clone()).await;
    for _ in 0..30 {
        if answer.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        answer = handler.invoke(event.clone()).await;
    }

    assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    let requests = acs.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0].repeatability_id, requests[1].repeatability_id,
        "the same request, repeated"
    );
    assert_eq!(
        requests[1].status, 202,
        "ACS answered the repeat from its record"
    );
    assert_eq!(acs.accepted().len(), 1, "and sent nothing twice");
}

#[tokio::test]
async fn a_token_that_cannot_be_had_asks_for_a_redelivery_and_names_the_resource() {
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let mut settings = acs_settings(&acs, &identity);
    set(&mut settings, "IDENTITY_HEADER", "not-the-platforms-secret");
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler
        .invoke(event_grid("SecretNearExpiry", "no-token", Some(5)))
        .await;

    assert_eq!(answer.status, 500, "{}", answer.text);
    assert!(
        acs.requests().is_empty(),
        "nothing was sent without a token"
    );
    let log = handler.output_with("no token for Azure Communication Services");
    assert!(log.contains("https://communication.azure.com"), "{log}");
    assert!(!log.contains("not-the-platforms-secret"), "{log}");
}

#[tokio::test]
async fn on_a_developers_machine_acs_tokens_come_from_the_azure_cli_login() {
    let (acs, identity) = (FakeAcs::start(), IdentityEndpoint::start());
    let az = fake_azure_cli();
    let mut settings = acs_settings(&acs, &identity);
    as_azure_cli_login(&mut settings, az.path());
    let handler = Handler::start(&pairs(&settings)).await;

    let answer = handler
        .invoke(event_grid("CertificateNearExpiry", "tls", Some(9)))
        .await;

    assert_eq!(answer.statuses(), ["sent"], "{}", answer.text);
    assert_eq!(acs.requests()[0].auth, "token");
    let calls = std::fs::read_to_string(az.path().join("calls")).expect("az was called");
    assert!(
        calls.contains("--resource https://communication.azure.com"),
        "{calls}"
    );
    assert_eq!(identity.requests(), 0);
}
