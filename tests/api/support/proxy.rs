//! A proxy in front of Azurite, for storage faults a real account has: requests whose path holds
//! a given text answered late, every request answered late, writes refused after some went
//! through (a partition busy), and a spell in which every connection is dropped as soon as it
//! is made (a front-end failover). Shared Key Lite signs the
//! path and the date, not the host, so the ledger's requests pass through unchanged.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Faults {
    /// Requests whose path holds the text wait this long first.
    slow_paths: Vec<(String, Duration)>,
    /// Every request waits this long first.
    slow_all: Duration,
    /// Until then, every new connection is dropped at once.
    down_until: Option<Instant>,
    /// PUTs whose path holds the text: how many more go through before the rest are answered
    /// 503 Server Busy.
    refused_puts: Option<(String, usize)>,
}

/// The proxy, on its own thread and runtime; it stops with the test process.
pub struct StorageProxy {
    pub port: u16,
    faults: Arc<Mutex<Faults>>,
}

impl StorageProxy {
    /// Forwards to the table service at `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> Self {
        let faults: Arc<Mutex<Faults>> = Arc::default();
        let (shared, upstream) = (faults.clone(), upstream.trim_end_matches('/').to_owned());
        let port = super::serve_on_a_thread(move |listener| serve(listener, shared, upstream));
        Self { port, faults }
    }

    /// Requests whose path holds `text` wait `delay` before they are forwarded.
    pub fn slow_paths(&self, text: &str, delay: Duration) {
        let mut faults = self.faults.lock().expect("lock");
        faults.slow_paths.push((text.to_owned(), delay));
    }

    /// Every request waits `delay` before it is forwarded.
    pub fn slow_all(&self, delay: Duration) {
        self.faults.lock().expect("lock").slow_all = delay;
    }

    /// From now on, PUTs whose path holds `text` are answered 503 Server Busy after `through`
    /// more of them went through; until [`Self::accept_puts`].
    pub fn refuse_puts_after(&self, text: &str, through: usize) {
        self.faults.lock().expect("lock").refused_puts = Some((text.to_owned(), through));
    }

    /// Every PUT goes through again.
    pub fn accept_puts(&self) {
        self.faults.lock().expect("lock").refused_puts = None;
    }

    /// Drops every connection made in the next `spell`.
    pub fn go_down_for(&self, spell: Duration) {
        self.faults.lock().expect("lock").down_until = Some(Instant::now() + spell);
    }

    /// In front of `azurite`.
    pub fn before(azurite: &super::Azurite) -> Self {
        let table = azurite.table_uri();
        let origin = table
            .rsplit_once('/')
            .map_or(table.as_str(), |(origin, _)| origin);
        Self::start(origin)
    }

    /// `azurite`'s connection string, through this proxy.
    pub fn connection_string(&self, azurite: &super::Azurite) -> String {
        let table = azurite.table_uri();
        azurite
            .connection_string()
            .replace(&table, &self.endpoint(&table))
    }

    /// Rewrites a table endpoint of the upstream (`http://127.0.0.1:UP/devstoreaccount1`) to
    /// go through this proxy.
    pub fn endpoint(&self, upstream_endpoint: &str) -> String {
        let path = upstream_endpoint
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|slash| &rest[slash..]))
            .unwrap_or("");
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

async fn serve(listener: tokio::net::TcpListener, faults: Arc<Mutex<Faults>>, upstream: String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    while let Ok((socket, _)) = listener.accept().await {
        if is_down(&faults) {
            drop(socket);
            continue;
        }
        let (faults, client, upstream) = (faults.clone(), client.clone(), upstream.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                forward(request, faults.clone(), client.clone(), upstream.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

/// Whether a PUT to `target` is refused, counting it when it goes through.
fn refused(faults: &Mutex<Faults>, target: &str) -> bool {
    let mut faults = faults.lock().expect("lock");
    match &mut faults.refused_puts {
        Some((text, through)) if target.contains(text.as_str()) => {
            if *through == 0 {
                return true;
            }
            *through -= 1;
            false
        }
        _ => false,
    }
}

fn is_down(faults: &Mutex<Faults>) -> bool {
    faults
        .lock()
        .expect("lock")
        .down_until
        .is_some_and(|until| Instant::now() < until)
}

async fn forward(
    request: Request<Incoming>,
    faults: Arc<Mutex<Faults>>,
    client: reqwest::Client,
    upstream: String,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let dropped = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "down");
    if is_down(&faults) {
        // A request on a connection made before the spell: the connection goes too.
        return Err(dropped());
    }
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let delay = {
        let faults = faults.lock().expect("lock");
        let by_path = faults
            .slow_paths
            .iter()
            .filter(|(text, _)| target.contains(text.as_str()))
            .map(|(_, delay)| *delay)
            .max()
            .unwrap_or_default();
        by_path.max(faults.slow_all)
    };
    tokio::time::sleep(delay).await;
    if is_down(&faults) {
        return Err(dropped());
    }
    let method = request.method().clone();
    if method == hyper::Method::PUT && refused(&faults, &target) {
        let mut busy = Response::new(Full::new(Bytes::from_static(
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code>\
              <Message>The server is busy.</Message></Error>",
        )));
        *busy.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
        return Ok(busy);
    }
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut outgoing = client.request(method, format!("{upstream}{target}"));
    for (name, value) in &headers {
        if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = match outgoing.body(body).send().await {
        Ok(answer) => answer,
        Err(_) => {
            let mut failed = Response::new(Full::new(Bytes::new()));
            *failed.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            return Ok(failed);
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != hyper::header::CONTENT_LENGTH && name != hyper::header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    if is_down(&faults) {
        // The answer is lost on its way back, as the write it answers landed.
        return Err(dropped());
    }
    Ok(response
        .body(Full::new(bytes))
        .expect("a response from parts that came as one"))
}
