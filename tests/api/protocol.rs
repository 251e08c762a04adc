//! The custom-handler protocol, as the Functions host speaks it.

use crate::support::*;
use serde_json::json;

#[test]
fn host_json_runs_the_release_binary_and_the_functions_bind_event_grid_a_daily_timer_and_a_queue() {
    let app = FunctionApp::load();
    assert_eq!(app.executable, app_root().join("target/release/kv-notify"));
    let binding = &app.functions["function-trigger"];
    assert_eq!(binding["type"], "eventGridTrigger");
    assert_eq!(binding["name"], "event");
    assert_eq!(binding["direction"], "in");
    let timer = &app.functions["expiry-sweep"];
    assert_eq!(timer["type"], "timerTrigger");
    assert_eq!(timer["name"], "timer");
    assert_eq!(timer["schedule"], "0 0 6 * * *", "daily at 06:00 UTC");
    assert_eq!(timer["runOnStartup"], false);
    let queue = &app.functions["event-queue"];
    assert_eq!(queue["type"], "queueTrigger");
    assert_eq!(queue["queueName"], "kv-notify-events");
    assert_eq!(app.functions.len(), 3);
}

#[test]
fn local_settings_name_the_custom_runtime_and_development_storage() {
    let text = std::fs::read_to_string(app_root().join("local.settings.json"))
        .expect("local.settings.json");
    let values = serde_json::from_str::<serde_json::Value>(&text).expect("JSON")["Values"].clone();
    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
    assert_eq!(values["AzureWebJobsStorage"], "UseDevelopmentStorage=true");
    for setting in ["MAIL_FROM", "OWNER_EMAILS", "SECURITY_EMAILS", "OUTBOX_DIR"] {
        assert!(
            values[setting].is_string(),
            "{setting} has an example value"
        );
    }
}

#[tokio::test]
async fn readiness_probe_gets_a_json_answer() {
    let handler = Handler::start(&[]).await;

    let ready = reqwest::get(handler.url("/")).await.expect("GET /");

    assert_eq!(ready.status(), 200);
    let content_type = ready.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(ready.json::<serde_json::Value>().await.is_ok());
}

#[tokio::test]
async fn the_handler_listens_on_loopback_only() {
    let handler = Handler::start(&[]).await;

    // /proc/net/tcp lists listening sockets (state 0A) with their local address in hex.
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port = format!(":{:04X}", handler.port);
    let listening: Vec<&str> = table
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(3) == Some(&"0A") && fields[1].ends_with(&port)).then_some(fields[1])
        })
        .collect();

    assert_eq!(
        listening,
        [format!("0100007F{port}")],
        "bound to 127.0.0.1 and nothing else"
    );
}

#[tokio::test]
async fn the_httpworker_port_is_used_when_the_custom_handler_port_is_absent() {
    let handler = Handler::start_with_port_var(&[], "FUNCTIONS_HTTPWORKER_PORT").await;
    let answer = handler
        .invoke(event_grid("SecretNewVersionCreated", "s", None))
        .await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn every_answer_is_json_with_outputs_logs_and_return_value() {
    let handler = Handler::start(&[]).await;
    let event = event_grid("KeyNewVersionCreated", "signing-key", Some(400));
    let id = event["id"].clone();

    let answer = handler.invoke(event).await;

    assert_eq!(answer.status, 200);
    assert!(
        answer.content_type.starts_with("application/json"),
        "{}",
        answer.content_type
    );
    let body = answer.json();
    assert_eq!(body["Outputs"], json!({}));
    assert!(body["Logs"].as_array().is_some_and(|l| !l.is_empty()));
    let reported = &body["ReturnValue"]["events"][0];
    assert_eq!(reported["id"], id);
    assert_eq!(reported["type"], "KeyNewVersionCreated");
    assert_eq!(reported["vault"], "prod-kv");
    assert_eq!(reported["objectType"], "Key");
    assert_eq!(reported["object"], "signing-key");
    assert_eq!(reported["version"], "0123456789abcdef");
    assert!(
        reported["expires"]
            .as_str()
            .is_some_and(|e| e.ends_with('Z'))
    );
    assert_eq!(reported["actions"], json!([]));
}

#[tokio::test]
async fn an_event_passed_as_a_json_string_is_accepted() {
    let handler = Handler::start(&[]).await;
    let event = event_grid("SecretNewVersionCreated", "s", None);

    let answer = handler.invoke(json!(event.to_string())).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.events()[0]["id"], event["id"]);
}

#[tokio::test]
async fn a_json_string_holding_a_batch_reports_every_event() {
    let handler = Handler::start(&[]).await;
    let batch = json!([
        event_grid("SecretNewVersionCreated", "a", None),
        event_grid("KeyNewVersionCreated", "b", None),
        cloud_event("CertificateNewVersionCreated", "c", None),
    ]);

    let answer = handler.invoke(json!(batch.to_string())).await;

    assert_eq!(answer.status, 200);
    let objects: Vec<_> = answer
        .events()
        .iter()
        .map(|e| e["object"].clone())
        .collect();
    assert_eq!(objects, [json!("a"), json!("b"), json!("c")]);
}

#[tokio::test]
async fn a_sized_body_works_like_a_chunked_one() {
    let handler = Handler::start(&[]).await;
    let body =
        json!({"Data": {"event": event_grid("KeyNewVersionCreated", "k", None)}, "Metadata": {}});

    let answer = handler
        .post_sized("/function-trigger", body.to_string().into_bytes())
        .await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.events().len(), 1);
}

#[tokio::test]
async fn an_unknown_function_is_a_json_404() {
    let handler = Handler::start(&[]).await;

    let answer = handler
        .post_chunked("/other-function", b"{}".to_vec())
        .await;

    assert_eq!(answer.status, 404);
    assert!(
        answer.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("other-function"))
    );
}

#[tokio::test]
async fn invalid_settings_stop_start_up_listing_every_problem() {
    let output = Handler::refused_start(
        &[
            ("MAIL_FROM", "nobody"),
            ("OWNER_EMAILS", "a@b.com, broken"),
            ("SMTP_TIMEOUT_SECS", "zero"),
        ],
        "SMTP_TIMEOUT_SECS",
    );
    for setting in ["MAIL_FROM", "OWNER_EMAILS", "SMTP_TIMEOUT_SECS"] {
        assert!(output.contains(setting), "{setting} missing from: {output}");
    }
}

#[tokio::test]
async fn start_up_says_where_mail_goes_without_smtp_and_warns_about_missing_recipients() {
    let outbox = tempfile::tempdir().expect("temp dir");
    let handler = Handler::start(&[("OUTBOX_DIR", outbox.path().to_str().expect("utf-8"))]).await;

    let output = handler.output_with("OWNER_EMAILS is empty");

    assert!(output.contains("no mail transport is set"), "{output}");
    assert!(output.contains("OWNER_EMAILS is empty"), "{output}");
}

#[tokio::test]
async fn a_head_probe_of_the_root_answers_200() {
    let handler = Handler::start(&[]).await;

    let answer = http_client()
        .head(handler.url("/"))
        .send()
        .await
        .expect("HEAD /");

    assert_eq!(answer.status(), 200);
}
