//! Mail through Microsoft Graph as the app's managed identity, against an HTTPS stand-in of
//! `sendMail` and of the managed-identity endpoint.

use crate::support::*;

fn through_graph(graph: &FakeGraph, identity: &IdentityEndpoint) -> Vec<(&'static str, String)> {
    let mut settings = mail_settings("unused");
    settings.retain(|(name, _)| *name != "SMTP_URL");
    set(&mut settings, "GRAPH_SENDER", "alerts@contoso.com");
    set(&mut settings, "GRAPH_ENDPOINT", &graph.url());
    set(&mut settings, "IDENTITY_ENDPOINT", &identity.url());
    set(&mut settings, "IDENTITY_HEADER", IDENTITY_SECRET);
    set(
        &mut settings,
        "SSL_CERT_FILE",
        &graph.certificate().to_string_lossy(),
    );
    settings
}

#[tokio::test]
async fn graph_sends_the_whole_mime_mail_as_the_mailbox_once_per_event() {
    let (graph, identity) = (FakeGraph::start(), IdentityEndpoint::start());
    let handler = Handler::start(&pairs(&through_graph(&graph, &identity))).await;
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
    let handler = Handler::start(&pairs(&through_graph(&graph, &identity))).await;
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
