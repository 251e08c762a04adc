//! A server that answers every request with 500 and a body that never ends, as a broken or
//! hostile endpoint can: it counts what it managed to send.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server, on a thread of its own; it stops with the test process.
pub struct EndlessServer {
    pub port: u16,
    sent: Arc<AtomicU64>,
}

impl EndlessServer {
    pub fn start() -> Self {
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let port = super::serve_on_a_thread(move |listener| async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(stream_forever(socket, counter.clone()));
            }
        });
        Self { port, sent }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Bytes of body written to clients so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

async fn stream_forever(mut socket: tokio::net::TcpStream, sent: Arc<AtomicU64>) {
    // The request's head; its body, if any, is left unread.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let start = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\
                 Transfer-Encoding: chunked\r\n\r\n";
    if socket.write_all(start.as_bytes()).await.is_err() {
        return;
    }
    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
    while socket.write_all(chunk.as_bytes()).await.is_ok() {
        sent.fetch_add(0x10000, Ordering::SeqCst);
    }
}
