//! Log lines on stderr, each tagged with the invocation it was written in.
//!
//! The invocation id is a field of a `tracing` span around the invocation, so every layer and
//! format (plain text here; JSON or Application Insights elsewhere) carries it:
//! `2026-11-21T08:00:00.000000Z  WARN invocation{id=…}: target: message fields`.

use std::future::Future;
use tracing::Instrument;

/// Runs `future` as invocation `id` (the host's `X-Azure-Functions-InvocationId`): every line
/// it logs carries the id. Without an id, lines carry nothing extra.
pub async fn in_invocation<F: Future>(id: Option<&str>, future: F) -> F::Output {
    let span = match id.filter(|id| !id.is_empty()) {
        Some(id) => tracing::info_span!("invocation", id = %id),
        None => tracing::Span::none(),
    };
    future.instrument(span).await
}

/// Logs to stderr at the level `KV_NOTIFY_LOG` sets (an `EnvFilter` directive such as `debug`
/// or `kv_notify=debug,lettre=info`), `default` when it is unset or invalid.
pub fn init(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KV_NOTIFY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(log: impl Future<Output = ()>) -> String {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(log);
        String::from_utf8(captured.0.lock().expect("lock").clone()).expect("UTF-8")
    }

    #[test]
    fn a_line_written_in_an_invocation_carries_its_id_before_the_target() {
        let out = lines_of(in_invocation(Some("inv-7"), async {
            tracing::warn!(to = "a@b.c", "action failed");
        }));
        assert!(
            out.trim_end().ends_with(
                " WARN invocation{id=inv-7}: kv_notify::logging::tests: action failed to=\"a@b.c\""
            ),
            "{out}"
        );
    }

    #[test]
    fn an_invocation_without_an_id_adds_nothing() {
        let out = lines_of(in_invocation(None, async {
            tracing::error!("boom");
        }));
        assert!(
            out.trim_end()
                .ends_with(" ERROR kv_notify::logging::tests: boom"),
            "{out}"
        );
    }
}
