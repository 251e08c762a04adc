//! What the benchmark's reference handlers share: the port the host names, the readiness
//! route, and a server on the same current-thread runtime and warp as kv-notify.

use bytes::Bytes;
use warp::{Filter, Reply};

/// Serves `GET /` for readiness and answers every `POST /function-trigger` body with
/// `answer`, on `FUNCTIONS_CUSTOMHANDLER_PORT` (3000 when unset).
pub fn serve<R, F>(answer: F)
where
    R: Reply + Send + 'static,
    F: Fn(Bytes) -> R + Clone + Send + Sync + 'static,
{
    let port: u16 = std::env::var("FUNCTIONS_CUSTOMHANDLER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let ready = warp::get()
        .and(warp::path::end())
        .map(|| warp::reply::json(&serde_json::json!({"status": "ready"})));
    let invoke = warp::post()
        .and(warp::path("function-trigger"))
        .and(warp::body::bytes())
        .map(answer);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("bind");
            warp::serve(ready.or(invoke)).incoming(listener).run().await;
        });
}
