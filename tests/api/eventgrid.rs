//! The host's Event Grid endpoint in front of the handler (protocol.md §2).

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn an_unknown_function_name_is_404_without_an_invocation() {
    let handler = Handler::start(&[]).await;

    let missing = handler
        .eventgrid(None, Some("Notification"), json!([]))
        .await;
    let wrong_case = handler
        .eventgrid(Some("Function-Trigger"), Some("Notification"), json!([]))
        .await;

    assert_eq!((missing.status, wrong_case.status), (404, 404));
    assert_eq!(handler.invocations(), 0);
}

#[tokio::test]
async fn the_validation_handshake_is_answered_without_invoking_the_handler() {
    let handler = Handler::start(&[]).await;
    let validation = json!([{
        "id": new_id(), "topic": TOPIC, "subject": "", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://rp-eastus2.eventgrid.azure.net/x"},
        "dataVersion": "2", "metadataVersion": "1", "eventTime": "2026-11-21T08:00:00Z"
    }]);

    let answer = handler
        .eventgrid(
            Some("function-trigger"),
            Some("SubscriptionValidation"),
            validation,
        )
        .await;

    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json()["validationResponse"],
        "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    );
    assert_eq!(handler.invocations(), 0);
}

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
