//! A real local HTTP server standing in for Teams, Slack or an audit endpoint: it records
//! every request (a POST's JSON body; `null` for any other body) and answers with a status the
//! test sets, and a `Location` when the test sets one.

use serde_json::Value;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use warp::Filter;

/// A webhook receiver on its own thread and runtime, so that it answers even while a test
/// blocks; stopped when dropped.
pub struct WebhookServer {
    pub port: u16,
    received: Arc<Mutex<Vec<(String, Value)>>>,
    status: Arc<AtomicU16>,
    location: Arc<Mutex<Option<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WebhookServer {
    pub fn start() -> Self {
        let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let location: Arc<Mutex<Option<String>>> = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (log, answer, moved) = (received.clone(), status.clone(), location.clone());
        let port = super::serve_on_a_thread(move |listener| async move {
            let route = warp::path::full().and(warp::body::bytes()).map(
                move |path: warp::path::FullPath, body: bytes::Bytes| {
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    log.lock()
                        .expect("lock")
                        .push((path.as_str().to_owned(), body));
                    let code = warp::http::StatusCode::from_u16(answer.load(Ordering::SeqCst))
                        .expect("status");
                    let location = moved.lock().expect("lock").clone().unwrap_or_default();
                    let reply = warp::reply::with_status("webhook test server says hello", code);
                    warp::reply::with_header(reply, "location", location)
                },
            );
            warp::serve(route)
                .incoming(listener)
                .graceful(async {
                    stopped.await.ok();
                })
                .run()
                .await;
        });
        Self {
            port,
            received,
            status,
            location,
            stop: Some(stop),
        }
    }

    /// The URL of a path on this server, e.g. `/hooks/SECRET`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request body received so far, with its path.
    pub fn received(&self) -> Vec<(String, Value)> {
        self.received.lock().expect("lock").clone()
    }

    /// Sets the status of the following answers.
    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Answers with `status` (a redirect) and this `Location` from now on.
    pub fn redirect_to(&self, status: u16, location: &str) {
        *self.location.lock().expect("lock") = Some(location.to_owned());
        self.answer_with(status);
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}
