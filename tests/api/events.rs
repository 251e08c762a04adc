//! Every Key Vault event type, in both schemas, with the payload quirks seen in the wild.

use crate::support::*;
use serde_json::json;

fn expected_mails(short_type: &str) -> usize {
    usize::from(!short_type.ends_with("NewVersionCreated"))
}

#[tokio::test]
async fn every_type_in_both_schemas_is_reported_and_mailed_as_the_defaults_say() {
    let smtp = SmtpServer::start();
    let settings = mail_settings(&smtp.url());
    let handler = Handler::start(&pairs(&settings)).await;
    let mut mails = 0;
    for short_type in ALL_TYPES {
        // An object of its own for each: one object version gets one mail per ladder step.
        for event in [
            event_grid(short_type, &format!("{short_type}-eg"), Some(20)),
            cloud_event(short_type, &format!("{short_type}-ce"), Some(20)),
        ] {
            let answer = handler.invoke(event.clone()).await;

            assert_eq!(answer.status, 200, "{short_type}: {}", answer.text);
            let reported = &answer.events()[0];
            assert_eq!(reported["type"], short_type);
            assert_eq!(reported["id"], event["id"]);
            assert_eq!(reported["vault"], "prod-kv");
            let sent = reported["actions"].as_array().map_or(0, |a| a.len());
            assert_eq!(sent, expected_mails(short_type), "{short_type}");
            mails += sent;
        }
    }
    assert!(wait_until(std::time::Duration::from_secs(5), || smtp
        .messages()
        .len()
        == mails));
    assert_eq!(mails, 14);
}

#[tokio::test]
async fn dates_as_numbers_numeric_strings_null_or_absent_are_all_accepted() {
    let handler = Handler::start(&[]).await;
    let cases = [
        (json!(1_900_000_000), json!("2030-03-17T17:46:40Z")),
        (json!("1900000000"), json!("2030-03-17T17:46:40Z")),
        (json!(" 1900000000 "), json!("2030-03-17T17:46:40Z")),
        (json!(null), json!(null)),
    ];
    for (exp, expected) in cases {
        let mut event = event_grid("SecretNewVersionCreated", "s", None);
        event["data"]["EXP"] = exp.clone();
        event["data"]["NBF"] = exp.clone();
        let answer = handler.invoke(event).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.events()[0]["expires"], expected, "EXP = {exp}");
    }
    let mut absent = event_grid("SecretNewVersionCreated", "s", None);
    absent["data"]
        .as_object_mut()
        .expect("data")
        .retain(|k, _| k != "EXP" && k != "NBF");
    let answer = handler.invoke(absent).await;
    assert_eq!(answer.events()[0]["expires"], json!(null));
}

#[tokio::test]
async fn the_documentation_example_with_its_stray_spaces_and_camel_case_is_understood() {
    let handler = Handler::start(&[]).await;
    let event = json!({
        "id": "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
        "topic": "/subscriptions/{subscription-id}/resourceGroups/{resource-group-name}/providers/Microsoft.KeyVault/vaults/sample-kv",
        "subject": "newsecret", "eventType": "Microsoft.KeyVault.SecretNewVersionCreated",
        "eventTime": "2019-07-25T01:08:33.1036736Z",
        "data": {"Id": "https://sample-kv.vault.azure.net/secrets/newsecret/ee059b2bb5bc48398a53b168c6cdcb10",
                 "vaultName": "sample-kv", "objectType": "Secret", "ObjectName ": "newsecret",
                 "version": " ee059b2bb5bc48398a53b168c6cdcb10", "nbf": "1559081980", "exp": "1559082102"},
        "dataVersion": "1", "metadataVersion": "1"
    });

    let answer = handler.invoke(event).await;

    let reported = &answer.events()[0];
    assert_eq!(reported["vault"], "sample-kv");
    assert_eq!(reported["object"], "newsecret");
    assert_eq!(reported["objectType"], "Secret");
    assert_eq!(reported["version"], "ee059b2bb5bc48398a53b168c6cdcb10");
    assert_eq!(reported["expires"], "2019-05-28T22:21:42Z");
}

#[tokio::test]
async fn unknown_key_vault_types_and_other_events_are_acknowledged_without_action() {
    let handler = Handler::start(&[]).await;
    let future_type = json!({"id": "f1", "eventType": "Microsoft.KeyVault.VaultPurged", "data": {"VaultName": "x"}});
    let storage = json!({"id": "s1", "eventType": "Microsoft.Storage.BlobCreated", "data": {}});
    let cloud =
        json!({"specversion": "1.0", "id": "c1", "type": "com.example.Thing", "source": "/x"});

    for event in [future_type, storage, cloud] {
        let answer = handler.invoke(event.clone()).await;
        assert_eq!(answer.status, 200, "{event}");
        assert_eq!(answer.events()[0]["id"], event["id"]);
        assert_eq!(answer.events()[0]["actions"], json!([]));
    }
}
