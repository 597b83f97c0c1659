//! The OpenTelemetry SDK's providers: the resource (service name and
//! attributes), a tracer provider that always assigns ids (and exports
//! through a batch span processor when asked) and a meter provider with a
//! periodic OTLP reader when asked. Always OTLP/HTTP with protobuf bodies,
//! over the blocking reqwest client on the SDK's own threads.

use opentelemetry::{Key, KeyValue};
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use super::OtelSettings;

/// Used when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES`
/// names the service.
const DEFAULT_SERVICE_NAME: &str = "sagascope";

/// The SDK's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`),
/// with sagascope's name and version where those say nothing.
pub(super) fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder();
    if !named {
        builder = builder.with_service_name(DEFAULT_SERVICE_NAME);
    }
    if detected
        .get(&Key::from_static_str("service.version"))
        .is_none()
    {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

/// Spans get ids whether exported or not (logs show them). The sampler
/// is the SDK's (`OTEL_TRACES_SAMPLER`, default parent-based always-on).
pub(super) fn tracer_provider(settings: &OtelSettings, resource: Resource) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if !settings.export_traces {
        return builder.build();
    }
    warn_about_protocol();
    let mut exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(base) = &settings.endpoint {
        exporter = exporter.with_endpoint(signal_url(base, "traces"));
    }
    match exporter.build() {
        Ok(exporter) => builder.with_batch_exporter(exporter).build(),
        Err(error) => {
            eprintln!(
                "telemetry: cannot create the OTLP span exporter ({error}); spans are not exported"
            );
            builder.build()
        }
    }
}

/// Metrics are collected every `OTEL_METRIC_EXPORT_INTERVAL` ms (default
/// 60 s) and once more at shutdown. Without export: a provider with no
/// reader, whose instruments cost next to nothing.
pub(super) fn meter_provider(settings: &OtelSettings, resource: Resource) -> SdkMeterProvider {
    let builder = SdkMeterProvider::builder().with_resource(resource);
    if !settings.export_metrics {
        return builder.build();
    }
    let mut exporter = MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(base) = &settings.endpoint {
        exporter = exporter.with_endpoint(signal_url(base, "metrics"));
    }
    match exporter.build() {
        Ok(exporter) => builder
            .with_reader(PeriodicReader::builder(exporter).build())
            .build(),
        Err(error) => {
            eprintln!("telemetry: cannot create the OTLP metric exporter ({error}); metrics are not exported");
            builder.build()
        }
    }
}

/// `http://host:4318` + `/v1/traces`, as the SDK does with
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn signal_url(base: &str, signal: &str) -> String {
    format!("{}/v1/{signal}", base.trim_end_matches('/'))
}

/// Only OTLP/HTTP with protobuf is built in; a collector set up for gRPC
/// or JSON would refuse the requests, so say so at start.
fn warn_about_protocol() {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Ok(protocol) = std::env::var(name) {
            if !protocol.trim().is_empty() && protocol.trim() != "http/protobuf" {
                eprintln!(
                    "telemetry: {name}={protocol} is not supported; exporting with http/protobuf"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_endpoint_gets_the_signal_path() {
        assert_eq!(
            signal_url("http://127.0.0.1:4318/", "traces"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            signal_url("http://c:4318", "metrics"),
            "http://c:4318/v1/metrics"
        );
    }
}
