//! One proto `Span` (with its resource's service name) into a [`SpanView`],
//! or the reason it cannot be shown.

use chrono::DateTime;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as ProtoKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use sagascope_model::{SpanEventView, SpanKind, SpanStatus, SpanView, Timestamp};

use super::attribute_text::attributes;

/// Why one span of a request was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanRejection {
    #[error("{field} has {found} bytes; it must have {expected}")]
    IdLength {
        field: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("{field} is all zeros, which OTLP calls invalid")]
    ZeroId { field: &'static str },
    #[error("{field} `{value}` is not a hex id")]
    NotHex { field: &'static str, value: String },
    #[error("startTimeUnixNano is missing (0)")]
    MissingStartTime,
    #[error("endTimeUnixNano ({end}) is before startTimeUnixNano ({start})")]
    EndBeforeStart { start: u64, end: u64 },
    #[error("{field} ({value}) is beyond the year 2262")]
    TimeOutOfRange { field: &'static str, value: u64 },
    #[error("not an OTLP span: {0}")]
    Malformed(String),
}

fn id_hex(bytes: &[u8], field: &'static str, expected: usize) -> Result<String, SpanRejection> {
    if bytes.len() != expected {
        return Err(SpanRejection::IdLength {
            field,
            found: bytes.len(),
            expected,
        });
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(SpanRejection::ZeroId { field });
    }
    Ok(hex::encode(bytes))
}

fn time(nanos: u64, field: &'static str) -> Result<Timestamp, SpanRejection> {
    i64::try_from(nanos)
        .map(DateTime::from_timestamp_nanos)
        .map_err(|_| SpanRejection::TimeOutOfRange {
            field,
            value: nanos,
        })
}

fn kind(value: i32) -> SpanKind {
    match ProtoKind::try_from(value) {
        Ok(ProtoKind::Internal) => SpanKind::Internal,
        Ok(ProtoKind::Server) => SpanKind::Server,
        Ok(ProtoKind::Client) => SpanKind::Client,
        Ok(ProtoKind::Producer) => SpanKind::Producer,
        Ok(ProtoKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

fn status(span: &Span) -> (SpanStatus, Option<String>) {
    let Some(status) = &span.status else {
        return (SpanStatus::Unset, None);
    };
    let code = match StatusCode::try_from(status.code) {
        Ok(StatusCode::Ok) => SpanStatus::Ok,
        Ok(StatusCode::Error) => SpanStatus::Error,
        _ => SpanStatus::Unset,
    };
    let message = (!status.message.is_empty()).then(|| status.message.clone());
    (code, message)
}

pub(crate) fn span_view(span: &Span, service: &str) -> Result<SpanView, SpanRejection> {
    let trace_id = id_hex(&span.trace_id, "traceId", 16)?;
    let span_id = id_hex(&span.span_id, "spanId", 8)?;
    // An empty (or all-zero) parent marks a root span.
    let parent_span_id =
        if span.parent_span_id.is_empty() || span.parent_span_id.iter().all(|b| *b == 0) {
            None
        } else {
            Some(id_hex(&span.parent_span_id, "parentSpanId", 8)?)
        };
    if span.start_time_unix_nano == 0 {
        return Err(SpanRejection::MissingStartTime);
    }
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(SpanRejection::EndBeforeStart {
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
        });
    }
    let start = time(span.start_time_unix_nano, "startTimeUnixNano")?;
    let end = time(span.end_time_unix_nano, "endTimeUnixNano")?;
    let duration_us = ((span.end_time_unix_nano - span.start_time_unix_nano) / 1_000) as i64;
    let (status, status_message) = status(span);
    let events = span
        .events
        .iter()
        .map(|event| SpanEventView {
            name: event.name.clone(),
            // An event without a usable time is shown at the span's start.
            at: match event.time_unix_nano {
                0 => start,
                nanos => time(nanos, "timeUnixNano").unwrap_or(start),
            },
            attributes: attributes(&event.attributes),
        })
        .collect();
    Ok(SpanView {
        trace_id,
        span_id,
        parent_span_id,
        name: span.name.clone(),
        service: service.to_string(),
        kind: kind(span.kind),
        start,
        end,
        duration_us,
        status,
        status_message,
        attributes: attributes(&span.attributes),
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Span {
        Span {
            trace_id: vec![7; 16],
            span_id: vec![1; 8],
            name: "GET /orders".into(),
            kind: 2,
            start_time_unix_nano: 1_544_712_660_000_000_000,
            end_time_unix_nano: 1_544_712_661_000_500_000,
            ..Default::default()
        }
    }

    #[test]
    fn a_good_span_converts() {
        let view = span_view(&good(), "orders").unwrap();
        assert_eq!(view.trace_id, "07".repeat(16));
        assert_eq!(view.span_id, "01".repeat(8));
        assert_eq!(view.parent_span_id, None);
        assert_eq!(view.kind, SpanKind::Server);
        assert_eq!(view.duration_us, 1_000_500);
        assert_eq!(view.status, SpanStatus::Unset);
        assert_eq!(view.service, "orders");
    }

    #[test]
    fn bad_spans_say_what_is_wrong() {
        let cases: Vec<(Span, SpanRejection)> = vec![
            (
                Span {
                    trace_id: vec![7; 8],
                    ..good()
                },
                SpanRejection::IdLength {
                    field: "traceId",
                    found: 8,
                    expected: 16,
                },
            ),
            (
                Span {
                    trace_id: vec![0; 16],
                    ..good()
                },
                SpanRejection::ZeroId { field: "traceId" },
            ),
            (
                Span {
                    span_id: vec![],
                    ..good()
                },
                SpanRejection::IdLength {
                    field: "spanId",
                    found: 0,
                    expected: 8,
                },
            ),
            (
                Span {
                    parent_span_id: vec![3; 4],
                    ..good()
                },
                SpanRejection::IdLength {
                    field: "parentSpanId",
                    found: 4,
                    expected: 8,
                },
            ),
            (
                Span {
                    start_time_unix_nano: 0,
                    ..good()
                },
                SpanRejection::MissingStartTime,
            ),
            (
                Span {
                    end_time_unix_nano: 5,
                    start_time_unix_nano: 6,
                    ..good()
                },
                SpanRejection::EndBeforeStart { start: 6, end: 5 },
            ),
            (
                Span {
                    start_time_unix_nano: u64::MAX - 1,
                    end_time_unix_nano: u64::MAX,
                    ..good()
                },
                SpanRejection::TimeOutOfRange {
                    field: "startTimeUnixNano",
                    value: u64::MAX - 1,
                },
            ),
        ];
        for (span, expected) in cases {
            assert_eq!(span_view(&span, "s").unwrap_err(), expected);
        }
    }
}
