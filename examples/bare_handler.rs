//! The floor for any warp custom handler, for the benchmarks: answers `GET /` and reads each
//! invocation body, then returns a constant envelope. Same runtime, same warp, same profile
//! as kv-notify, and no work at all.

use warp::Filter;

#[tokio::main(flavor = "current_thread")]
async fn main() {
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
        .map(|body: bytes::Bytes| {
            std::hint::black_box(body);
            warp::reply::json(
                &serde_json::json!({"Outputs": {}, "Logs": [], "ReturnValue": {"events": []}}),
            )
        });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    warp::serve(ready.or(invoke)).incoming(listener).run().await;
}
