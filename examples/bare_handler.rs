//! The floor for any warp custom handler, for the benchmarks: answers `GET /` and reads each
//! invocation body, then returns a constant envelope. Same runtime, same warp, same profile
//! as kv-notify, and no work at all.

mod support;

fn main() {
    support::serve(|body| {
        std::hint::black_box(body);
        warp::reply::json(
            &serde_json::json!({"Outputs": {}, "Logs": [], "ReturnValue": {"events": []}}),
        )
    });
}
