//! Trace ids in log lines: a line written inside a span carries that
//! span's OpenTelemetry `trace_id` and `span_id` (top-level JSON fields,
//! or a ` trace_id=…` suffix in the pretty format), so a line can be
//! followed to its trace and a trace id quoted to support finds the lines.
//! Lines outside any span carry none.

use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use tracing::dispatcher::WeakDispatch;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The process's dispatcher, set once the subscriber is built (the
/// formatter lives inside it, hence weak).
pub(super) type DispatchCell = Arc<OnceLock<WeakDispatch>>;

/// Wraps a formatter (`Format<Json>` or `Format<Compact>`) and adds the
/// ids of the event's span to its line.
pub(super) struct WithTraceIds<F> {
    inner: F,
    json: bool,
    dispatch: DispatchCell,
}

impl<F> WithTraceIds<F> {
    /// `inner` writes one JSON object per line.
    pub(super) fn json(inner: F, dispatch: DispatchCell) -> WithTraceIds<F> {
        WithTraceIds {
            inner,
            json: true,
            dispatch,
        }
    }

    /// `inner` writes one text line.
    pub(super) fn pretty(inner: F, dispatch: DispatchCell) -> WithTraceIds<F> {
        WithTraceIds {
            inner,
            json: false,
            dispatch,
        }
    }

    /// The OpenTelemetry ids of a span (none for a span the OpenTelemetry
    /// layer does not know, e.g. before `init` finished).
    fn ids_of(&self, span: &tracing::span::Id) -> Option<(TraceId, SpanId)> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let context = tracing_opentelemetry::get_otel_context(span, &dispatch)?;
        let otel_span = context.span();
        let span_context = otel_span.span_context();
        span_context
            .is_valid()
            .then(|| (span_context.trace_id(), span_context.span_id()))
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The span's id is read before anything holds its extensions.
        let ids = ctx.parent_span().and_then(|span| self.ids_of(&span.id()));
        let Some((trace_id, span_id)) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        if self.json {
            match body.strip_suffix('}') {
                Some(open) => writeln!(
                    writer,
                    r#"{open},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#
                ),
                None => writeln!(writer, "{body}"),
            }
        } else {
            writeln!(writer, "{body} trace_id={trace_id}")
        }
    }
}

/// Colours for a person at a terminal, unless `NO_COLOR` is set.
pub(super) fn stdout_wants_colours() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Mutex;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::fmt::format::{Format, JsonFields};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    /// The lines `emit` logs under a scoped subscriber of `json` or not.
    fn lines(json: bool, emit: impl FnOnce()) -> Vec<String> {
        let buffer = Buffer::default();
        let provider = SdkTracerProvider::builder().build();
        let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let cell: DispatchCell = Arc::new(OnceLock::new());
        let registry = tracing_subscriber::registry().with(otel);
        let dispatch: tracing::Dispatch = if json {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .fmt_fields(JsonFields::new())
                        .event_format(WithTraceIds::json(
                            Format::default().json().with_current_span(true),
                            cell.clone(),
                        ))
                        .with_writer(buffer.clone()),
                )
                .into()
        } else {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .event_format(WithTraceIds::pretty(
                            Format::default().compact().with_ansi(false),
                            cell.clone(),
                        ))
                        .with_writer(buffer.clone()),
                )
                .into()
        };
        let _ = cell.set(dispatch.downgrade());
        tracing::dispatcher::with_default(&dispatch, emit);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn json_lines_in_a_span_carry_its_ids_at_the_top_level() {
        let mut expected = None;
        let lines = lines(true, || {
            tracing::info!("outside");
            let span = tracing::info_span!("work", job = 7);
            let _entered = span.enter();
            tracing::info!(n = 1, "inside");
            let cx = tracing_opentelemetry::OpenTelemetrySpanExt::context(&span);
            let otel_span = cx.span();
            let ids = otel_span.span_context();
            expected = Some((ids.trace_id().to_string(), ids.span_id().to_string()));
        });
        let (trace_id, span_id) = expected.unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let outside: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(outside.get("trace_id").is_none(), "{outside}");
        let inside: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(inside["trace_id"], trace_id.as_str(), "{inside}");
        assert_eq!(inside["span_id"], span_id.as_str(), "{inside}");
        assert_eq!(inside["fields"]["message"], "inside");
        assert_eq!(inside["span"]["job"], 7);
        assert_ne!(trace_id, TraceId::INVALID.to_string());
    }

    #[test]
    fn pretty_lines_in_a_span_end_with_the_trace_id() {
        let mut expected = String::new();
        let lines = lines(false, || {
            tracing::info!("outside");
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            tracing::warn!("inside");
            let cx = tracing_opentelemetry::OpenTelemetrySpanExt::context(&span);
            expected = cx.span().span_context().trace_id().to_string();
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(!lines[0].contains("trace_id="), "{}", lines[0]);
        assert!(
            lines[1].ends_with(&format!(" trace_id={expected}")),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("inside"), "{}", lines[1]);
    }
}
