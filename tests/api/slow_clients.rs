//! Clients that stall half-way through a request are cut off, so they cannot hold connections
//! (and file descriptors) for ever.

use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `request` and reads until the server answers or closes; `None` if it does neither
/// within 30 s.
fn send_and_wait(port: u16, request: &[u8]) -> Option<(Duration, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let started = Instant::now();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => Some((
            started.elapsed(),
            String::from_utf8_lossy(&received).into_owned(),
        )),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
            Some((started.elapsed(), String::new()))
        }
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_gets_a_408_in_json() {
    let (_outbox, handler) = Handler::start_with_outbox().await;
    let port = handler.port;

    let answer = tokio::task::spawn_blocking(move || {
        send_and_wait(
            port,
            b"POST /function-trigger HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"Data\":",
        )
    })
    .await
    .expect("the client thread");

    let (took, text) = answer.expect("the connection stayed open with no answer");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("application/json") && text.contains("did not arrive"),
        "{text}"
    );
    assert!(took < Duration::from_secs(20), "after {took:?}");
}

#[tokio::test]
async fn headers_that_never_end_close_the_connection() {
    let (_outbox, handler) = Handler::start_with_outbox().await;
    let port = handler.port;

    let closed = tokio::task::spawn_blocking(move || {
        send_and_wait(port, b"POST /function-trigger HTTP/1.1\r\nHost: x\r\n")
    })
    .await
    .expect("the client thread");

    let (took, _) = closed.expect("the connection stayed open");
    assert!(took < Duration::from_secs(20), "after {took:?}");
    let ready = reqwest::get(handler.url("/")).await.expect("GET /");
    assert_eq!(ready.status(), 200, "the handler still serves");
}
