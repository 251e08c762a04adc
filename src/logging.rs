//! Log lines on stderr, each tagged with the invocation it was written in.
//!
//! The invocation id is kept in a task-local value, not a `tracing` span: a span costs every
//! invocation its creation, field formatting and enter/exit bookkeeping (about 6% of the
//! handler's instructions per invocation), while the task-local costs nothing until a line is
//! written. [`Format`] reads it when it writes a line, in the place and shape a span would
//! have: `2026-11-21T08:00:00.000000Z  WARN invocation{id=…}: target: message fields`.

use std::fmt;
use std::future::Future;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

tokio::task_local! {
    static INVOCATION: String;
}

/// Runs `future` as invocation `id`: every line it logs carries the id.
pub async fn in_invocation<F: Future>(id: String, future: F) -> F::Output {
    INVOCATION.scope(id, future).await
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
        .event_format(Format)
        .init();
}

/// `tracing-subscriber`'s full format with the invocation id in front of the spans.
#[derive(Debug, Clone, Copy, Default)]
pub struct Format;

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        SystemTime.format_time(&mut writer)?;
        write!(writer, " {:>5} ", meta.level())?;
        INVOCATION
            .try_with(|id| {
                if id.is_empty() {
                    Ok(())
                } else {
                    write!(writer, "invocation{{id={id}}}: ")
                }
            })
            // Outside an invocation (start-up, the purge task) there is no id to write.
            .unwrap_or(Ok(()))?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.metadata().name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_str(": ")?;
            }
        }
        write!(writer, "{}: ", meta.target())?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
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
            .event_format(Format)
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
        let out = lines_of(in_invocation("inv-7".to_owned(), async {
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
    fn a_line_outside_an_invocation_has_no_id_and_spans_still_show() {
        let out = lines_of(async {
            let span = tracing::info_span!("ledger", path = "x.redb");
            let _entered = span.enter();
            tracing::info!("open");
        });
        assert!(
            out.trim_end()
                .ends_with("  INFO ledger{path=\"x.redb\"}: kv_notify::logging::tests: open"),
            "{out}"
        );
        assert!(!out.contains("invocation"), "{out}");
    }

    #[test]
    fn an_invocation_without_an_id_adds_nothing() {
        let out = lines_of(in_invocation(String::new(), async {
            tracing::error!("boom");
        }));
        assert!(
            out.trim_end()
                .ends_with(" ERROR kv_notify::logging::tests: boom"),
            "{out}"
        );
    }
}
