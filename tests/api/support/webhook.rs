//! A real local HTTP server standing in for Teams, Slack or an audit endpoint: it records
//! every POST and answers with a status the test sets.

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
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl WebhookServer {
    pub fn start() -> Self {
        let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let (log, answer) = (received.clone(), status.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let route = warp::post()
                    .and(warp::path::full())
                    .and(warp::body::json())
                    .map(move |path: warp::path::FullPath, body: Value| {
                        log.lock()
                            .expect("lock")
                            .push((path.as_str().to_owned(), body));
                        let code = warp::http::StatusCode::from_u16(answer.load(Ordering::SeqCst))
                            .expect("status");
                        warp::reply::with_status("webhook test server says hello", code)
                    });
                warp::serve(route)
                    .incoming(listener)
                    .graceful(async {
                        stopped.await.ok();
                    })
                    .run()
                    .await;
            });
        });
        Self {
            port,
            received,
            status,
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
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}
