//! OTLP/HTTP protobuf (`application/x-protobuf`): one
//! `ExportTraceServiceRequest` message.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::attribute_text::service_name;
use super::span_conversion::span_view;
use super::{DecodeError, DecodedSpans};

pub fn decode_protobuf(body: &[u8]) -> Result<DecodedSpans, DecodeError> {
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|error| DecodeError::InvalidProtobuf(error.to_string()))?;
    let mut decoded = DecodedSpans::default();
    for resource_spans in &request.resource_spans {
        let service = service_name(
            resource_spans
                .resource
                .as_ref()
                .map_or(&[][..], |r| &r.attributes[..]),
        );
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                match span_view(span, &service) {
                    Ok(view) => decoded.spans.push(view),
                    Err(reason) => decoded.reject(&span.name, reason),
                }
            }
        }
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::Event;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
    use proptest::prelude::*;
    use sagascope_model::{SpanKind, SpanStatus};

    fn text(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![text("service.name", "payments")],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn span(n: u8) -> Span {
        Span {
            trace_id: vec![0x4b; 16],
            span_id: vec![n; 8],
            parent_span_id: if n == 1 { vec![] } else { vec![1; 8] },
            name: format!("step {n}"),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(n) * 1_000,
            end_time_unix_nano: 1_700_000_000_002_000_000,
            attributes: vec![
                text("http.method", "POST"),
                KeyValue {
                    key: "retry".into(),
                    value: Some(AnyValue {
                        value: Some(Value::IntValue(2)),
                    }),
                    ..Default::default()
                },
            ],
            events: vec![Event {
                time_unix_nano: 1_700_000_000_001_000_000,
                name: "exception".into(),
                attributes: vec![text("exception.message", "card <declined>")],
                ..Default::default()
            }],
            status: Some(Status {
                code: 2,
                message: "card declined".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_request_round_trips_through_protobuf() {
        let body = request(vec![span(1), span(2)]).encode_to_vec();
        let decoded = decode_protobuf(&body).unwrap();
        assert_eq!(decoded.rejected, 0);
        assert_eq!(decoded.spans.len(), 2);
        let child = &decoded.spans[1];
        assert_eq!(child.trace_id, "4b".repeat(16));
        assert_eq!(child.span_id, "02".repeat(8));
        assert_eq!(child.parent_span_id.as_deref(), Some("0101010101010101"));
        assert_eq!(child.service, "payments");
        assert_eq!(child.kind, SpanKind::Client);
        assert_eq!(child.status, SpanStatus::Error);
        assert_eq!(child.status_message.as_deref(), Some("card declined"));
        assert_eq!(child.attributes[0].value, "POST");
        assert_eq!(child.attributes[1].value, "2");
        assert_eq!(child.events[0].name, "exception");
        assert_eq!(child.events[0].attributes[0].value, "card <declined>");
        assert_eq!(
            child.events[0].at.timestamp_nanos_opt(),
            Some(1_700_000_000_001_000_000)
        );
        assert_eq!(decoded.spans[0].parent_span_id, None);
    }

    #[test]
    fn bad_spans_are_counted_and_good_ones_kept() {
        let mut short = span(3);
        short.trace_id = vec![1; 15];
        let mut backwards = span(4);
        backwards.end_time_unix_nano = 1;
        let body = request(vec![span(1), short, backwards]).encode_to_vec();
        let decoded = decode_protobuf(&body).unwrap();
        assert_eq!(decoded.spans.len(), 1);
        assert_eq!(decoded.rejected, 2);
        let message = decoded.error_message().unwrap();
        assert!(
            message.contains("span `step 3`: traceId has 15 bytes; it must have 16"),
            "{message}"
        );
        assert!(
            message.contains("span `step 4`: endTimeUnixNano"),
            "{message}"
        );
    }

    #[test]
    fn an_empty_request_is_fine_and_garbage_is_an_error() {
        assert_eq!(decode_protobuf(&[]).unwrap(), DecodedSpans::default());
        let error = decode_protobuf(b"\x0a\xff\xff\xff\xff\x0fnot protobuf").unwrap_err();
        assert!(
            matches!(error, DecodeError::InvalidProtobuf(_)),
            "{error:?}"
        );
    }

    proptest! {
        /// Whatever the bytes, decoding answers (never panics).
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_protobuf(&bytes);
        }

        /// Any well-formed span survives the round trip with its ids and times.
        #[test]
        fn well_formed_spans_round_trip(
            trace in proptest::array::uniform16(1u8..=255),
            id in proptest::array::uniform8(1u8..=255),
            start in 1u64..4_000_000_000_000_000_000,
            length in 0u64..1_000_000_000_000,
        ) {
            let span = Span {
                trace_id: trace.to_vec(),
                span_id: id.to_vec(),
                start_time_unix_nano: start,
                end_time_unix_nano: start + length,
                ..Default::default()
            };
            let decoded = decode_protobuf(&request(vec![span]).encode_to_vec()).unwrap();
            prop_assert_eq!(decoded.rejected, 0);
            let view = &decoded.spans[0];
            prop_assert_eq!(&view.trace_id, &hex::encode(trace));
            prop_assert_eq!(&view.span_id, &hex::encode(id));
            prop_assert_eq!(view.start.timestamp_nanos_opt(), Some(start as i64));
            prop_assert_eq!(view.duration_us, (length / 1000) as i64);
        }
    }
}
