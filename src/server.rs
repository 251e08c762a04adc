//! The HTTP side of the custom-handler protocol: `GET /` for the host's readiness probe,
//! `POST /function-trigger` for Event Grid invocations and `POST /expiry-sweep` for the
//! daily timer.
//!
//! Bodies arrive chunked (no `Content-Length`) or sized; both are read through one limit.
//! Every answer the handler writes is JSON; rejections become answers in `recover`.

use crate::dispatch::Dispatcher;
use crate::envelope::{self, InvocationResponse, RequestError};
use crate::storage::Queue;
use crate::sweep::Sweeper;
use crate::sweep::health::SetAside;
use crate::{queued, timer};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// The function's name: its folder in the function app, and the path the host POSTs to.
pub const FUNCTION_NAME: &str = "function-trigger";

/// Largest invocation body accepted. Event Grid caps a batch at 1 MiB of events; the host's
/// envelope repeats the data, so this leaves room and still bounds memory.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Most events one invocation takes. The host sends one event per invocation; a batch is a
/// convenience for hand-made requests, and a bound keeps a batch within the deadline, and its
/// answer and memory small. A larger batch is refused whole (413) rather than cut: a cut batch
/// redelivered as it was would be cut at the same place for ever.
pub const MAX_EVENTS: usize = 1000;

/// The port to listen on when neither the host nor the command line gives one.
pub const DEFAULT_PORT: u16 = 3000;

/// The port the Functions host gives (`FUNCTIONS_CUSTOMHANDLER_PORT`, then the older
/// `FUNCTIONS_HTTPWORKER_PORT`), or `None` when the handler was started by hand.
pub fn port_from_host(get: impl Fn(&str) -> Option<String>) -> Result<Option<u16>, BadPort> {
    for name in ["FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"] {
        if let Some(raw) = get(name).filter(|v| !v.trim().is_empty()) {
            return raw
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| BadPort(format!("{name}: {raw:?} is not a port number")));
        }
    }
    Ok(None)
}

/// How long a client may take to send a request's headers, and then its body. The host sends
/// both at once; a client that stalls half-way must not hold a connection (and a file
/// descriptor) for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// See [`HEADER_READ_TIMEOUT`].
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The host's port setting is not a port number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPort(String);

/// What the functions of the app run on: the pipeline every event goes through, and the
/// sweep the timer runs (when `VAULTS` or `SUBSCRIPTIONS` is set).
pub struct Functions {
    /// The event pipeline.
    pub dispatcher: Dispatcher,
    /// The expiry sweep.
    pub sweeper: Option<Sweeper>,
    /// Where the queue-triggered function sets aside a message it can never handle (with a
    /// storage account).
    pub rejected: Option<Queue>,
    /// Where events that could not be handled wait, which the health notice looks into (with
    /// a storage account).
    pub set_aside: SetAside,
}

/// Serves the handler on `listener` until `shutdown` completes, then finishes in-flight
/// invocations. HTTP/1.1 only: it is all the host speaks to a custom handler.
pub async fn run(
    listener: TcpListener,
    functions: Arc<Functions>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let service = TowerToHyperService::new(warp::service(routes(functions)));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = http.serve_connection(TokioIo::new(stream), service.clone());
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// All routes, with errors recovered into JSON answers.
pub fn routes(
    functions: Arc<Functions>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    // The host polls with GET; HEAD answers too, as probes often use it.
    let ready = warp::get()
        .or(warp::head())
        .unify()
        .and(warp::path::end())
        .map(|| json(StatusCode::OK, &serde_json::json!({"status": "ready"})));
    let invoke = warp::post()
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::header::optional::<String>(
            "x-azure-functions-invocationid",
        ))
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and(warp::any().map(move || functions.clone()))
        .and_then(invoke);
    ready.or(invoke).unify().recover(recover).unify()
}

/// Why a request got no invocation result.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error(
        "no function named {0:?}: the functions are {FUNCTION_NAME}, {timer} and {queue}",
        timer = timer::FUNCTION_NAME,
        queue = queued::FUNCTION_NAME
    )]
    UnknownFunction(String),
    #[error(transparent)]
    NotATimer(timer::NotATimer),
    #[error(transparent)]
    NotAQueueInvocation(queued::NotAQueueInvocation),
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the request body could not be read: {0}")]
    Body(String),
    #[error("the request body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs())]
    BodyTimeout,
    #[error(
        "an invocation takes at most {MAX_EVENTS} events and this one has {0}: send them in \
         smaller batches (the Functions host sends one event per invocation)"
    )]
    TooManyEvents(usize),
    #[error(transparent)]
    BadRequest(#[from] RequestError),
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnknownFunction(_) => StatusCode::NOT_FOUND,
            Self::TooLarge | Self::TooManyEvents(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Body(_)
            | Self::BadRequest(_)
            | Self::NotATimer(_)
            | Self::NotAQueueInvocation(_) => StatusCode::BAD_REQUEST,
        }
    }
}

async fn invoke(
    function: String,
    invocation_id: Option<String>,
    content_length: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
    functions: Arc<Functions>,
) -> Result<Response, Rejection> {
    let (dispatcher, sweeper) = (&functions.dispatcher, functions.sweeper.as_ref());
    let rejected = functions.rejected.as_ref();
    let set_aside = &functions.set_aside;
    let (timer, queue) = match function.as_str() {
        FUNCTION_NAME => (false, false),
        timer::FUNCTION_NAME => (true, false),
        queued::FUNCTION_NAME => (false, true),
        _ => return Err(warp::reject::custom(ApiError::UnknownFunction(function))),
    };
    crate::logging::in_invocation(invocation_id.as_deref(), async move {
        let body = tokio::time::timeout(BODY_READ_TIMEOUT, read_limited(body, content_length))
            .await
            .map_err(|_| ApiError::BodyTimeout)??;
        if timer {
            // Boxed: the sweep runs once a day, and its future would make every invocation's
            // larger, which is moved as it is polled.
            let (response, failed) = Box::pin(timer::invoke(&body, dispatcher, sweeper, set_aside))
                .await
                .map_err(ApiError::NotATimer)?;
            let status = if failed {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            return Ok(json(status, &response));
        }
        if queue {
            let answer = queued::invoke(&body, dispatcher, rejected)
                .await
                .map_err(ApiError::NotAQueueInvocation)?;
            let status = if answer.failed {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            return Ok(json(status, &answer.body));
        }
        let raw = envelope::events_of_invocation(&body).map_err(ApiError::from)?;
        if raw.len() > MAX_EVENTS {
            return Err(ApiError::TooManyEvents(raw.len()));
        }
        let events = envelope::parse_all(raw).map_err(ApiError::from)?;
        let count = events.len();
        let reports = dispatcher.handle_all(events).await;
        let response = InvocationResponse::new(reports);
        let status = if response.needs_retry() {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        tracing::debug!(status = status.as_u16(), events = count, "invocation done");
        Ok(json(status, &response))
    })
    .await
    .map_err(|e: ApiError| warp::reject::custom(e))
}

/// Collects the body, refusing more than [`MAX_BODY_BYTES`] whether or not it is chunked.
async fn read_limited(
    mut body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
    content_length: Option<u64>,
) -> Result<Bytes, ApiError> {
    if content_length.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return Err(ApiError::TooLarge);
    }
    let expected = content_length.map_or(0, |len| len as usize);
    let mut joined = BytesMut::with_capacity(expected);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::Body(e.to_string()))?;
        if joined.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(ApiError::TooLarge);
        }
        joined.put(chunk);
    }
    Ok(joined.freeze())
}

/// The one place where errors become answers: always JSON, never an empty body.
async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, message) = if let Some(err) = rejection.find::<ApiError>() {
        (err.status(), err.to_string())
    } else if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "not found".to_owned())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed".to_owned(),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            format!("bad request: {rejection:?}"),
        )
    };
    if status.is_server_error() || status == StatusCode::BAD_REQUEST {
        tracing::warn!(status = status.as_u16(), error = %message, "request refused");
    }
    Ok(json(status, &serde_json::json!({ "error": message })))
}

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    // Sized for a one-event answer, so that it is written without growing.
    let mut bytes = Vec::with_capacity(1024);
    if let Err(err) = serde_json::to_writer(&mut bytes, body) {
        tracing::error!(error = %err, "cannot serialize an answer");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut response = Response::new(bytes.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    async fn read(chunks: &[&[u8]], content_length: Option<u64>) -> Result<Bytes, ApiError> {
        let chunks: Vec<Result<Bytes, warp::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        read_limited(stream::iter(chunks), content_length).await
    }

    #[tokio::test]
    async fn a_body_in_one_chunk_is_read_whole() {
        let chunk = Bytes::from_static(b"{\"Data\":{}}");
        let stream = stream::iter(vec![Ok::<_, warp::Error>(chunk.clone())]);
        let body = read_limited(stream, Some(11)).await.expect("read");
        assert_eq!(body, chunk);
    }

    #[tokio::test]
    async fn a_body_in_several_chunks_is_joined_in_order() {
        for length in [None, Some(9)] {
            let body = read(&[b"", b"abc", b"", b"def", b"ghi"], length)
                .await
                .expect("read");
            assert_eq!(&body[..], b"abcdefghi");
        }
    }

    #[tokio::test]
    async fn no_chunk_is_an_empty_body() {
        assert!(read(&[], None).await.expect("read").is_empty());
    }

    #[tokio::test]
    async fn too_much_is_refused_whether_announced_or_sent() {
        let big = vec![b'x'; MAX_BODY_BYTES / 2 + 1];
        assert!(matches!(
            read(&[&big, &big], None).await,
            Err(ApiError::TooLarge)
        ));
        assert!(matches!(
            read(&[b"{}"], Some(MAX_BODY_BYTES as u64 + 1)).await,
            Err(ApiError::TooLarge)
        ));
        let exactly = vec![b'x'; MAX_BODY_BYTES / 2];
        assert_eq!(
            read(&[&exactly, &exactly], None).await.expect("read").len(),
            MAX_BODY_BYTES
        );
    }
}
