//! sagascope's own telemetry: log lines (JSON or pretty, env filter) that
//! carry the trace and span ids of the span they were written in, and
//! OpenTelemetry spans and metrics exported over OTLP/HTTP (protobuf) when
//! the standard `OTEL_*` environment variables ask for it.
//!
//! The OpenTelemetry layer is always on, exporting or not, so every span
//! has a trace id that a log line can show and an operator can quote.
//! Export is configured the way every OpenTelemetry SDK is (see
//! [`OtelSettings::from_env`]); `main` calls [`TelemetryGuard::shutdown`]
//! after the server stopped, which flushes what is still queued.
//!
//! One file per concern:
//! - `log_format.rs`: the trace ids in each log line.
//! - `otlp.rs`: resource, tracer and meter providers, exporters.
//! - `otel_metrics.rs`: the `metrics` recorder that feeds Prometheus and
//!   OpenTelemetry from the same calls.
//! - `http_spans.rs`: the span of each HTTP request (W3C `traceparent`
//!   extracted as its parent) and the request duration metric.

mod http_spans;
mod log_format;
mod otel_metrics;
mod otlp;

use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::format::{Format, JsonFields};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};

pub use http_spans::{http_trace_layer, record_http_request, HttpTraceLayer};
pub use otel_metrics::MetricsBridge;

/// What to export, decided from the environment ([`OtelSettings::from_env`])
/// or given explicitly (tests).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtelSettings {
    /// Export spans over OTLP.
    pub export_traces: bool,
    /// Export metrics over OTLP.
    pub export_metrics: bool,
    /// A base URL (`http://collector:4318`) that overrides the endpoint
    /// variables; `/v1/traces` and `/v1/metrics` are appended. None: the
    /// exporter reads `OTEL_EXPORTER_OTLP_{TRACES_,METRICS_,}ENDPOINT`.
    pub endpoint: Option<String>,
}

impl OtelSettings {
    /// Export is on when an endpoint is configured
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`, or the signal's own
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `…_METRICS_ENDPOINT`), unless
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER` /
    /// `OTEL_METRICS_EXPORTER` is `none`. The exporter itself reads the
    /// endpoints, `OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT` and
    /// `…_COMPRESSION`; the SDK reads `OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`(`_ARG`),
    /// `OTEL_BSP_*`, `OTEL_SPAN_*_LIMIT` and `OTEL_METRIC_EXPORT_INTERVAL`.
    pub fn from_env() -> OtelSettings {
        OtelSettings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Both signals to `endpoint` (a base URL such as `http://127.0.0.1:4318`).
    pub fn exporting_to(endpoint: impl Into<String>) -> OtelSettings {
        OtelSettings {
            export_traces: true,
            export_metrics: true,
            endpoint: Some(endpoint.into()),
        }
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> OtelSettings {
        let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
        let is = |name: &str, value: &str| {
            lookup(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
        };
        if is("OTEL_SDK_DISABLED", "true") {
            return OtelSettings::default();
        }
        let any = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        OtelSettings {
            export_traces: (any || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
                && !is("OTEL_TRACES_EXPORTER", "none"),
            export_metrics: (any || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
                && !is("OTEL_METRICS_EXPORTER", "none"),
            endpoint: None,
        }
    }
}

/// Held by `main` for the process lifetime; [`TelemetryGuard::shutdown`]
/// (or Drop) flushes and stops the exporters.
#[must_use = "dropping the guard ends telemetry"]
pub struct TelemetryGuard {
    providers: Mutex<Option<(SdkTracerProvider, SdkMeterProvider)>>,
}

impl TelemetryGuard {
    /// Exports the spans still queued and a last collection of the
    /// metrics, then stops both exporters. Blocks (up to the exporters'
    /// timeouts): call it outside the async runtime's workers, e.g. in
    /// `tokio::task::spawn_blocking`. Idempotent.
    pub fn shutdown(&self) {
        let providers = self
            .providers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some((tracer, meter)) = providers else {
            return;
        };
        if let Err(error) = tracer.shutdown() {
            eprintln!("telemetry: flushing the spans failed: {error}");
        }
        if let Err(error) = meter.shutdown() {
            eprintln!("telemetry: flushing the metrics failed: {error}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Logs to stdout, OpenTelemetry export as the environment says.
pub fn init(args: &LogArgs) -> TelemetryGuard {
    let ansi = log_format::stdout_wants_colours();
    install(
        args,
        OtelSettings::from_env(),
        BoxMakeWriter::new(std::io::stdout),
        ansi,
    )
}

/// Whether metrics go out over OTLP: only then does the metrics recorder
/// copy every update to OTel instruments (`MetricsBridge`), so the ingest's
/// hot path pays nothing for OTLP when it is off.
static METRICS_EXPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once [`init`] configured an OTLP metric exporter.
pub fn metrics_exported() -> bool {
    METRICS_EXPORTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// [`init`] with explicit export settings and log destination (tests),
/// without colours.
pub fn init_with(args: &LogArgs, settings: OtelSettings, writer: BoxMakeWriter) -> TelemetryGuard {
    install(args, settings, writer, false)
}

/// Sets the global subscriber, text-map propagator (W3C trace context)
/// and tracer and meter providers; a second call keeps the first
/// subscriber and says so on stderr.
fn install(
    args: &LogArgs,
    settings: OtelSettings,
    writer: BoxMakeWriter,
    ansi: bool,
) -> TelemetryGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let resource = otlp::resource();
    let tracer_provider = otlp::tracer_provider(&settings, resource.clone());
    let meter_provider = otlp::meter_provider(&settings, resource);
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    if settings.export_metrics {
        METRICS_EXPORTED.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    let filter = EnvFilter::try_new(&args.log_filter).unwrap_or_else(|error| {
        eprintln!(
            "invalid log filter `{}` ({error}); using `info`",
            args.log_filter
        );
        EnvFilter::new("info")
    });
    let otel = tracing_opentelemetry::layer()
        .with_tracer(opentelemetry::trace::TracerProvider::tracer(
            &tracer_provider,
            "sagascope",
        ))
        // Source locations and thread names are noise in a trace view.
        .with_location(false)
        .with_threads(false);
    // The formatter reads each span's OpenTelemetry context through the
    // dispatcher, known only once the subscriber is built.
    let dispatch = Arc::new(OnceLock::new());
    let subscriber = tracing_subscriber::registry().with(filter).with(otel);
    let dispatcher: tracing::Dispatch = match args.log_format {
        LogFormat::Json => subscriber
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(log_format::WithTraceIds::json(
                        Format::default().json().with_current_span(true),
                        dispatch.clone(),
                    ))
                    .with_writer(writer),
            )
            .into(),
        LogFormat::Pretty => subscriber
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .event_format(log_format::WithTraceIds::pretty(
                        Format::default().compact().with_ansi(ansi),
                        dispatch.clone(),
                    ))
                    .with_writer(writer),
            )
            .into(),
    };
    let _ = dispatch.set(dispatcher.downgrade());
    if let Err(error) = dispatcher.try_init() {
        eprintln!("telemetry already initialised: {error}");
    }
    TelemetryGuard {
        providers: Mutex::new(Some((tracer_provider, meter_provider))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> OtelSettings {
        OtelSettings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn export_follows_the_standard_variables() {
        assert_eq!(settings(&[]), OtelSettings::default());
        let both = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]);
        assert!(both.export_traces && both.export_metrics);
        let traces = settings(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/v1/traces")]);
        assert!(traces.export_traces && !traces.export_metrics);
        let disabled = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "TRUE"),
        ]);
        assert_eq!(disabled, OtelSettings::default());
        let no_metrics = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]);
        assert!(no_metrics.export_traces && !no_metrics.export_metrics);
        let blank = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]);
        assert!(!blank.export_traces);
    }
}
