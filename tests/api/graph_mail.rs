//! Mail through Microsoft Graph as the app's managed identity, against an HTTPS stand-in of
//! `sendMail` and of the managed-identity endpoint.

use crate::support::*;

#[tokio::test]
async fn graph_sends_the_whole_mime_mail_as_the_mailbox_once_per_event() {
    let (graph, identity) = (FakeGraph::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&graph_settings(&graph, &identity))).await;
    let event = event_grid("SecretNearExpiry", "db-<b>password</b>", Some(5));

    let first = handler.invoke(event.clone()).await;
    let again = handler.invoke(event).await;

    assert_eq!(first.statuses(), ["sent"], "{}", first.text);
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(graph.requests(), 1, "the redelivery asked Graph nothing");
    let accepted = graph.accepted();
    let (sender, mail) = &accepted[0];
    assert_eq!(sender, "alerts@contoso.com");
    assert_eq!(
        mail.header("To").as_deref(),
        Some("owner1@contoso.com, owner2@contoso.com")
    );
    assert!(
        mail.subject().contains("db-<b>password</b>"),
        "{}",
        mail.subject()
    );
    assert!(mail.text().contains("db-<b>password</b>"));
    assert!(
        mail.html().contains("db-&lt;b&gt;password&lt;&#x2f;b&gt;"),
        "{}",
        mail.html()
    );
    assert!(identity.requests() >= 1, "a token came from the identity");
}

#[tokio::test]
async fn a_missing_permission_is_final_and_throttling_asks_for_a_redelivery() {
    let (graph, identity) = (FakeGraph::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&graph_settings(&graph, &identity))).await;
    let forbidden = event_grid("KeyExpired", "no-permission", Some(-1));
    let throttled = event_grid("SecretExpired", "throttled", Some(-1));

    graph.answer("403");
    let refused = handler.invoke(forbidden.clone()).await;
    let refused_again = handler.invoke(forbidden).await;
    graph.answer("429");
    let during = handler.invoke(throttled.clone()).await;
    graph.answer("202");
    let after = handler.invoke(throttled.clone()).await;
    let again = handler.invoke(throttled).await;

    assert_eq!(refused.status, 200, "retrying cannot grant a permission");
    let action = &refused.events()[0]["actions"][0];
    assert_eq!(action["status"], "failed");
    assert!(
        action["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Mail.Send")),
        "{action}"
    );
    assert_eq!(
        refused_again.statuses(),
        ["failed"],
        "recorded, not tried again"
    );
    assert_eq!(during.status, 500, "{}", during.text);
    assert_eq!(after.statuses(), ["sent"], "{}", after.text);
    assert_eq!(again.statuses(), ["duplicate"]);
    assert_eq!(graph.accepted().len(), 1);
    assert_eq!(graph.requests(), 3, "403 once, 429 once, 202 once");
}

#[tokio::test]
async fn on_a_developers_machine_graph_tokens_come_from_the_azure_cli_login() {
    let (graph, identity) = (FakeGraph::start(), IdentityEndpoint::start());
    let az = fake_azure_cli();
    let mut settings = graph_settings(&graph, &identity);
    as_azure_cli_login(&mut settings, az.path());
    let handler = Handler::start(&pairs(&settings)).await;

    let first = handler
        .invoke(event_grid("CertificateNearExpiry", "tls", Some(9)))
        .await;
    let second = handler
        .invoke(event_grid("KeyNearExpiry", "signing", Some(9)))
        .await;

    assert_eq!(first.statuses(), ["sent"], "{}", first.text);
    assert_eq!(second.statuses(), ["sent"], "{}", second.text);
    assert_eq!(graph.accepted().len(), 2);
    let calls = std::fs::read_to_string(az.path().join("calls")).expect("az was called");
    assert_eq!(calls.lines().count(), 1, "the token is reused: {calls}");
    assert!(
        calls.contains(&format!("--resource {}", graph.url())),
        "{calls}"
    );
    assert_eq!(identity.requests(), 0);
}

#[tokio::test]
async fn a_graph_that_hangs_or_fails_is_cut_off_and_the_redelivery_sends_once() {
    let (graph, identity) = (FakeGraph::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&graph_settings(&graph, &identity))).await;
    let event = event_grid("CertificateExpired", "stalled", Some(-1));

    graph.answer("hang");
    let started = std::time::Instant::now();
    let hung = handler.invoke(event.clone()).await;
    let took = started.elapsed();
    graph.answer("500");
    let failed = handler.invoke(event.clone()).await;
    graph.answer("202");
    let after = handler.invoke(event).await;

    assert_eq!(hung.status, 500, "{}", hung.text);
    assert!(
        took < std::time::Duration::from_secs(10),
        "cut off by SMTP_TIMEOUT_SECS (3 s), answered after {took:?}"
    );
    assert_eq!(failed.status, 500, "{}", failed.text);
    assert_eq!(after.statuses(), ["sent"], "{}", after.text);
    assert_eq!(graph.accepted().len(), 1);
}

#[tokio::test]
async fn a_bad_request_is_final_for_each_recipient_and_not_tried_again() {
    let (graph, identity) = (FakeGraph::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&graph_settings(&graph, &identity))).await;
    let event = event_grid("SecretNearExpiry", "bad-request", Some(4));

    graph.answer("400");
    let refused = handler.invoke(event.clone()).await;
    graph.answer("202");
    let again = handler.invoke(event).await;

    assert_eq!(
        refused.status, 200,
        "no redelivery can fix it: {}",
        refused.text
    );
    assert_eq!(refused.statuses(), ["failed"]);
    assert_eq!(again.statuses(), ["failed"], "recorded, not tried again");
    assert_eq!(graph.requests(), 3, "to both, then to each alone");
    assert!(graph.accepted().is_empty());
}

#[tokio::test]
async fn a_hung_identity_endpoint_delays_graph_mail_but_never_doubles_it() {
    let (graph, identity) = (FakeGraph::start(), IdentityEndpoint::start());
    // A token kv-notify holds for about a second (it renews five minutes before the end).
    identity.token_lifetime(301);
    let mut settings = graph_settings(&graph, &identity);
    set(&mut settings, "SMTP_TIMEOUT_SECS", "5");
    let handler = Handler::start(&pairs(&settings)).await;
    let events: Vec<_> = (0..8)
        .map(|n| event_grid("SecretNearExpiry", &format!("s{n}"), Some(5)))
        .collect();
    let first = handler.invoke(events[0].clone()).await;
    assert_eq!(first.statuses(), ["sent"], "{}", first.text);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    // The cached token has lapsed; the endpoint now hangs for 45 s while Event Grid delivers
    // and redelivers every few seconds.
    identity.hang_for(std::time::Duration::from_secs(45));
    let started = std::time::Instant::now();
    let mut pending: Vec<serde_json::Value> = events[1..].to_vec();
    while !pending.is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(150),
            "{} events never delivered",
            pending.len()
        );
        let answers =
            futures_util::future::join_all(pending.iter().map(|e| handler.invoke(e.clone()))).await;
        pending = pending
            .into_iter()
            .zip(answers)
            .filter(|(_, answer)| answer.status != 200)
            .map(|(event, _)| event)
            .collect();
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }

    assert_eq!(graph.requests(), 8, "one Graph send per event");
}
