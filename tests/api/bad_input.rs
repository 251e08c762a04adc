//! Whatever a caller sends, the handler answers clearly and keeps running.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn requests_that_cannot_be_understood_are_400_with_a_json_error() {
    let handler = Handler::start(&[]).await;
    let bodies: [(&str, Vec<u8>); 7] = [
        ("truncated", br#"{"Data": {"event": {"id": "1", "eventTy"#.to_vec()),
        ("not json", b"hello".to_vec()),
        ("no Data", br#"{"Metadata": {}}"#.to_vec()),
        ("no Data.event", br#"{"Data": {"other": 1}}"#.to_vec()),
        ("event string not json", br#"{"Data": {"event": "{nope"}}"#.to_vec()),
        ("data not an object", json!({"Data": {"event": {"id": "1", "eventType": "Microsoft.KeyVault.SecretExpired", "data": [1]}}}).to_string().into_bytes()),
        ("event a number", br#"{"Data": {"event": 42}}"#.to_vec()),
    ];
    for (name, body) in bodies {
        let answer = handler.post_chunked("/function-trigger", body).await;
        assert_eq!(answer.status, 400, "{name}: {}", answer.text);
        assert!(
            answer.content_type.starts_with("application/json"),
            "{name}"
        );
        assert!(
            answer.json()["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{name}"
        );
    }
    let still_alive = handler
        .invoke(event_grid("KeyNewVersionCreated", "k", None))
        .await;
    assert_eq!(still_alive.status, 200);
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_tolerated_not_fatal() {
    let handler = Handler::start(&[]).await;
    let mut event = event_grid("SecretNewVersionCreated", "s", None);
    event["data"]["VaultName"] = json!(12345);
    event["data"]["ObjectName"] = json!({"nested": true});
    event["data"]["EXP"] = json!([1, 2]);
    event["data"]["NBF"] = json!("not a number");
    event["eventTime"] = json!(false);

    let answer = handler.invoke(event).await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let reported = &answer.events()[0];
    assert_eq!(reported["vault"], "12345");
    assert_eq!(reported["object"], "s", "falls back to the object URL");
    assert_eq!(reported["expires"], json!(null));
}

#[tokio::test]
async fn huge_names_are_handled_and_the_subject_stays_short() {
    let (outbox, handler) = Handler::start_with_outbox().await;
    let mut event = event_grid("SecretNearExpiry", "x", Some(3));
    event["data"]["ObjectName"] = json!("n".repeat(1_000_000));

    let answer = handler.invoke(event).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.statuses(), ["written"]);
    let file = std::fs::read_dir(outbox.path())
        .expect("outbox")
        .flatten()
        .next()
        .expect("a mail");
    let raw = std::fs::read_to_string(file.path()).expect("eml");
    let subject = raw
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .expect("subject");
    assert!(subject.len() < 200, "{subject}");
}

#[tokio::test]
async fn a_body_over_four_mib_is_refused_with_413_chunked_or_sized() {
    let handler = Handler::start(&[]).await;
    let big = format!(
        r#"{{"Data": {{"event": "{}"}}}}"#,
        "a".repeat(4 * 1024 * 1024 + 10)
    );

    let chunked = handler
        .post_chunked("/function-trigger", big.into_bytes())
        .await;
    let sized = announce_body_of(&handler, 5 * 1024 * 1024).await;

    assert_eq!(chunked.status, 413);
    assert!(
        sized.starts_with("HTTP/1.1 413"),
        "refused on Content-Length alone: {sized}"
    );
    assert!(
        chunked.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("larger"))
    );
    assert_eq!(
        handler
            .invoke(event_grid("KeyNewVersionCreated", "k", None))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_bad_event_in_a_batch_rejects_the_batch_before_any_mail() {
    let smtp = SmtpServer::start();
    let settings = mail_settings(&smtp.url());
    let handler = Handler::start(&pairs(&settings)).await;
    let good = event_grid("SecretNearExpiry", "ok", Some(4));
    let bad = json!({"id": "b", "eventType": "Microsoft.KeyVault.KeyExpired", "data": "oops"});

    let answer = handler.invoke(json!([good, bad])).await;

    assert_eq!(answer.status, 400);
    assert!(
        answer.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("data"))
    );
    assert!(smtp.messages().is_empty());
}

/// Sends only the headers of a POST announcing `length` bytes and returns the answer's head:
/// a sized body over the limit is refused without being read.
async fn announce_body_of(handler: &Handler, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", handler.port))
        .await
        .expect("connect");
    let head = format!(
        "POST /function-trigger HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).await.expect("read answer");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn absurd_dates_are_dropped_with_a_warning_instead_of_being_mailed() {
    let (_outbox, handler) = Handler::start_with_outbox().await;

    for absurd in [json!("NaN"), json!(8.2e12), json!(-1), json!("1e400")] {
        let mut event = event_grid("SecretNearExpiry", "odd", Some(3));
        event["data"]["EXP"] = absurd.clone();

        let answer = handler.invoke(event).await;

        assert_eq!(answer.status, 200, "{absurd}: {}", answer.text);
        let report = &answer.events()[0];
        assert!(
            report["expires"].is_null(),
            "{absurd} was taken as {}",
            report["expires"]
        );
    }
    let output = handler.output_with("ignored EXP");
    assert!(
        output.contains("is not a date between 1990 and 2200"),
        "{output}"
    );
}
