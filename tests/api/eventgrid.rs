//! The host's Event Grid endpoint in front of the handler: one invocation per event, 202 or 500.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_notification_array_is_one_invocation_per_event_and_202() {
    let smtp = SmtpServer::start();
    let settings = mail_settings(&smtp.url());
    let handler = Handler::start(&pairs(&settings)).await;
    let events = json!([
        event_grid("SecretNearExpiry", "a", Some(20)),
        event_grid("KeyExpired", "b", Some(-1)),
        event_grid("CertificateNewVersionCreated", "c", None),
    ]);

    let answer = handler
        .eventgrid(Some("function-trigger"), Some("Notification"), events)
        .await;

    assert_eq!(answer.status, 202);
    assert_eq!(handler.invocations(), 3);
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn a_single_cloud_event_is_one_invocation() {
    let handler = Handler::start(&[]).await;

    let answer = handler
        .eventgrid(
            Some("function-trigger"),
            Some("Notification"),
            cloud_event("KeyNewVersionCreated", "k", None),
        )
        .await;

    assert_eq!(answer.status, 202);
    assert_eq!(handler.invocations(), 1);
}

#[tokio::test]
async fn a_failed_invocation_makes_the_endpoint_answer_500_so_event_grid_redelivers() {
    let unreachable = format!("smtp://127.0.0.1:{}", free_port());
    let settings = mail_settings(&unreachable);
    let handler = Handler::start(&pairs(&settings)).await;
    let events = json!([
        event_grid("SecretNewVersionCreated", "fine", None),
        event_grid("SecretNearExpiry", "needs-mail", Some(10)),
    ]);

    let answer = handler
        .eventgrid(Some("function-trigger"), Some("Notification"), events)
        .await;

    assert_eq!(answer.status, 500);
}
