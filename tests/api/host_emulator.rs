//! The Functions host emulation itself: what it answers on its own, without the handler. These
//! check the harness, so that the tests built on it mean what they say.

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
