//! OTLP/HTTP JSON (`application/json`), the protobuf JSON mapping the OTLP
//! specification fixes: camelCase fields, trace and span ids as hex (any
//! case), 64-bit integers as strings (numbers are accepted too), enums as
//! integers (their names are accepted too).
//!
//! The document is walked down to each span, and each span is read into
//! the proto struct (opentelemetry-proto's `with-serde`) on its own: a span
//! that does not fit is rejected and counted, the others are kept. Links
//! are not shown, so they are dropped before (their ids cannot then fail
//! a good span).
//!
//! [`JsonDialect::QueryApi`] also reads what the query APIs answer: Tempo's
//! `batches` and `instrumentationLibrarySpans` and its base64 ids (Go's
//! `jsonpb` encodes bytes as base64).

use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use sagascope_model::base64_decode;
use serde_json::{Map, Value};

use super::attribute_text::service_name;
use super::span_conversion::{span_view, SpanRejection};
use super::{DecodeError, DecodedSpans};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonDialect {
    /// The OTLP JSON mapping (what exporters send to `POST /v1/traces`).
    Otlp,
    /// Also the older and jsonpb shapes of the Jaeger and Tempo query APIs.
    QueryApi,
}

pub fn decode_json(body: &[u8]) -> Result<DecodedSpans, DecodeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| DecodeError::InvalidJson(error.to_string()))?;
    decode_json_value(value, JsonDialect::Otlp)
}

/// A parsed `ExportTraceServiceRequest` (or `TracesData`: the same shape).
pub fn decode_json_value(value: Value, dialect: JsonDialect) -> Result<DecodedSpans, DecodeError> {
    let Value::Object(mut root) = value else {
        return Err(DecodeError::UnexpectedShape(
            "the top level must be an object with `resourceSpans`".into(),
        ));
    };
    let list_names: &[&str] = match dialect {
        JsonDialect::Otlp => &["resourceSpans"],
        JsonDialect::QueryApi => &["resourceSpans", "batches"],
    };
    let mut decoded = DecodedSpans::default();
    for resource_spans in take_list(&mut root, list_names)? {
        let Value::Object(mut resource_spans) = resource_spans else {
            return Err(DecodeError::UnexpectedShape(
                "each of `resourceSpans` must be an object".into(),
            ));
        };
        let resource: Resource = match resource_spans.remove("resource") {
            None | Some(Value::Null) => Resource::default(),
            Some(value) => serde_json::from_value(value)
                .map_err(|error| DecodeError::UnexpectedShape(format!("`resource`: {error}")))?,
        };
        let service = service_name(&resource.attributes);
        let scope_names: &[&str] = match dialect {
            JsonDialect::Otlp => &["scopeSpans"],
            JsonDialect::QueryApi => &["scopeSpans", "instrumentationLibrarySpans"],
        };
        for scope_spans in take_list(&mut resource_spans, scope_names)? {
            let Value::Object(mut scope_spans) = scope_spans else {
                return Err(DecodeError::UnexpectedShape(
                    "each of `scopeSpans` must be an object".into(),
                ));
            };
            for span in take_list(&mut scope_spans, &["spans"])? {
                let name = span
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                match read_span(span, dialect).and_then(|span| span_view(&span, &service)) {
                    Ok(view) => decoded.spans.push(view),
                    Err(reason) => decoded.reject(&name, reason),
                }
            }
        }
    }
    Ok(decoded)
}

/// The first of `names` present as an array (null or absent: empty).
fn take_list(object: &mut Map<String, Value>, names: &[&str]) -> Result<Vec<Value>, DecodeError> {
    for name in names {
        match object.remove(*name) {
            None => continue,
            Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => return Ok(items),
            Some(_) => {
                return Err(DecodeError::UnexpectedShape(format!(
                    "`{name}` must be an array"
                )))
            }
        }
    }
    Ok(Vec::new())
}

fn read_span(span: Value, dialect: JsonDialect) -> Result<Span, SpanRejection> {
    let Value::Object(mut span) = span else {
        return Err(SpanRejection::Malformed("a span must be an object".into()));
    };
    span.remove("links");
    for (field, bytes) in [("traceId", 16), ("spanId", 8), ("parentSpanId", 8)] {
        match span.get(field) {
            None => {}
            Some(Value::Null) => {
                span.remove(field);
            }
            Some(Value::String(text)) => {
                let hex = id_as_hex(text, field, bytes, dialect)?;
                span.insert(field.to_string(), Value::String(hex));
            }
            Some(other) => {
                return Err(SpanRejection::NotHex {
                    field,
                    value: shorten(&other.to_string()),
                })
            }
        }
    }
    if let Some(Value::String(name)) = span.get("kind") {
        let code = kind_code(name);
        span.insert("kind".into(), Value::from(code));
    }
    if let Some(Value::Object(status)) = span.get_mut("status") {
        if let Some(Value::String(name)) = status.get("code") {
            let code = status_code(name);
            status.insert("code".into(), Value::from(code));
        }
    }
    serde_json::from_value(Value::Object(span))
        .map_err(|error| SpanRejection::Malformed(error.to_string()))
}

fn is_hex(text: &str) -> bool {
    text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Lowercase hex of an id: hex of the right length first, then (query APIs)
/// base64, then hex of another length (rejected later with its length).
fn id_as_hex(
    text: &str,
    field: &'static str,
    bytes: usize,
    dialect: JsonDialect,
) -> Result<String, SpanRejection> {
    let text = text.trim();
    if is_hex(text) && text.len() == bytes * 2 {
        return Ok(text.to_ascii_lowercase());
    }
    if dialect == JsonDialect::QueryApi {
        if let Some(decoded) = base64_decode(text).filter(|d| !d.is_empty()) {
            return Ok(hex::encode(decoded));
        }
    }
    if is_hex(text) {
        return Ok(text.to_ascii_lowercase());
    }
    Err(SpanRejection::NotHex {
        field,
        value: shorten(text),
    })
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `SPAN_KIND_SERVER` (jsonpb) or `server` → the enum's number.
fn kind_code(name: &str) -> i32 {
    match name
        .trim_start_matches("SPAN_KIND_")
        .to_ascii_lowercase()
        .as_str()
    {
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        other => other.parse().unwrap_or(0),
    }
}

fn status_code(name: &str) -> i32 {
    match name
        .trim_start_matches("STATUS_CODE_")
        .to_ascii_lowercase()
        .as_str()
    {
        "ok" => 1,
        "error" => 2,
        other => other.parse().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sagascope_model::{SpanKind, SpanStatus};

    /// The OTLP specification's example request, hand-written: uppercase
    /// hex ids, 64-bit times as strings, enums as numbers.
    const SPEC_EXAMPLE: &str = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
          "scope": {"name": "my.library", "version": "1.0.0", "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "EEE19B7EC3C1B173",
            "name": "I'm a server span",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "kind": 2,
            "attributes": [
              {"key": "my.span.attr", "value": {"stringValue": "some value"}},
              {"key": "http.status_code", "value": {"intValue": "503"}},
              {"key": "sampled", "value": {"boolValue": true}},
              {"key": "ratio", "value": {"doubleValue": 0.25}},
              {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}}
            ],
            "status": {"code": 2, "message": "upstream <b>timeout</b>"},
            "events": [{"timeUnixNano": "1544712660500000000", "name": "exception",
                        "attributes": [{"key": "exception.type", "value": {"stringValue": "Timeout"}}]}],
            "links": [{"traceId": "not even hex", "spanId": "??"}]
          }, {
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b173",
            "parentSpanId": "",
            "name": "root",
            "startTimeUnixNano": 1544712659000000000,
            "endTimeUnixNano": "1544712662000000000"
          }]
        }]
      }]
    }"#;

    #[test]
    fn the_specification_example_decodes() {
        let decoded = decode_json(SPEC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(decoded.rejected, 0, "{:?}", decoded.reasons);
        assert_eq!(decoded.spans.len(), 2);
        let span = &decoded.spans[0];
        assert_eq!(span.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(span.span_id, "eee19b7ec3c1b174");
        assert_eq!(span.parent_span_id.as_deref(), Some("eee19b7ec3c1b173"));
        assert_eq!(span.service, "my.service");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.status, SpanStatus::Error);
        assert_eq!(
            span.status_message.as_deref(),
            Some("upstream <b>timeout</b>")
        );
        assert_eq!(span.duration_us, 1_000_000);
        assert_eq!(span.start.to_rfc3339(), "2018-12-13T14:51:00+00:00");
        let values: Vec<(&str, &str)> = span
            .attributes
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            values,
            vec![
                ("my.span.attr", "some value"),
                ("http.status_code", "503"),
                ("sampled", "true"),
                ("ratio", "0.25"),
                ("tags", r#"["a",1]"#),
            ]
        );
        assert_eq!(span.events[0].name, "exception");
        assert_eq!(span.events[0].attributes[0].value, "Timeout");
        let root = &decoded.spans[1];
        assert_eq!(root.parent_span_id, None);
        assert_eq!(root.kind, SpanKind::Unspecified);
        assert_eq!(root.status, SpanStatus::Unset);
    }

    #[test]
    fn bad_spans_are_rejected_one_by_one() {
        let body = r#"{"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "good",
             "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000"},
            {"traceId": "5b8efff798038103", "spanId": "eee19b7ec3c1b174", "name": "short trace id",
             "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000"},
            {"traceId": "zz8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "not hex",
             "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175", "name": "backwards",
             "startTimeUnixNano": "1544712661000000000", "endTimeUnixNano": "1544712660000000000"},
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b176", "name": "bad time",
             "startTimeUnixNano": "soon", "endTimeUnixNano": "1544712660000000000"},
            "not a span"
        ]}]}]}"#;
        let decoded = decode_json(body.as_bytes()).unwrap();
        assert_eq!(decoded.spans.len(), 1);
        assert_eq!(decoded.spans[0].name, "good");
        assert_eq!(decoded.spans[0].service, "unknown_service");
        assert_eq!(decoded.rejected, 5);
        let message = decoded.error_message().unwrap();
        for expected in [
            "span `short trace id`: traceId has 8 bytes; it must have 16",
            "span `not hex`: traceId `zz8efff798038103d269b633813fc60c` is not a hex id",
            "span `backwards`: endTimeUnixNano",
            "span `bad time`: not an OTLP span",
        ] {
            assert!(message.contains(expected), "{expected} in {message}");
        }
    }

    #[test]
    fn unreadable_documents_are_errors() {
        assert!(matches!(
            decode_json(b"{"),
            Err(DecodeError::InvalidJson(_))
        ));
        assert!(matches!(
            decode_json(b"[]"),
            Err(DecodeError::UnexpectedShape(_))
        ));
        assert!(matches!(
            decode_json(br#"{"resourceSpans": {"spans": []}}"#),
            Err(DecodeError::UnexpectedShape(_))
        ));
        assert_eq!(decode_json(b"{}").unwrap(), DecodedSpans::default());
        assert_eq!(
            decode_json(br#"{"resourceSpans": []}"#).unwrap(),
            DecodedSpans::default()
        );
    }

    #[test]
    fn tempo_answers_with_batches_base64_ids_and_enum_names() {
        // What Tempo's /api/traces/{id} answers (gogo jsonpb).
        let body = serde_json::json!({"batches": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shell script"}}]},
            "instrumentationLibrarySpans": [{"spans": [{
                "traceId": "AAAAAAAAAAABI0VniavN7w==",
                "spanId": "AAAAAAAAEjQ=",
                "name": "span from bash!",
                "kind": "SPAN_KIND_CLIENT",
                "startTimeUnixNano": "1608239395286533000",
                "endTimeUnixNano": "1608239395386533000",
                "status": {"code": "STATUS_CODE_OK"}
            }]}]
        }]});
        let decoded = decode_json_value(body.clone(), JsonDialect::QueryApi).unwrap();
        assert_eq!(decoded.rejected, 0, "{:?}", decoded.reasons);
        let span = &decoded.spans[0];
        assert_eq!(span.trace_id, "00000000000000000123456789abcdef");
        assert_eq!(span.span_id, "0000000000001234");
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.status, SpanStatus::Ok);
        assert_eq!(span.service, "shell script");
        // The receiver reads the OTLP mapping only: no `batches` there.
        assert_eq!(
            decode_json_value(body, JsonDialect::Otlp).unwrap(),
            DecodedSpans::default()
        );
    }

    proptest! {
        /// Whatever the text, decoding answers (never panics).
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,300}") {
            let _ = decode_json(text.as_bytes());
        }

        /// Ids in any case come out as lowercase hex.
        #[test]
        fn hex_ids_of_any_case_are_read(trace in "[0-9a-fA-F]{32}", span in "[0-9a-fA-F]{16}") {
            prop_assume!(!trace.bytes().all(|b| b == b'0') && !span.bytes().all(|b| b == b'0'));
            let body = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
                "traceId": trace, "spanId": span, "name": "x",
                "startTimeUnixNano": "1000", "endTimeUnixNano": "2000"
            }]}]}]});
            let decoded = decode_json(body.to_string().as_bytes()).unwrap();
            prop_assert_eq!(decoded.rejected, 0);
            prop_assert_eq!(&decoded.spans[0].trace_id, &trace.to_ascii_lowercase());
            prop_assert_eq!(&decoded.spans[0].span_id, &span.to_ascii_lowercase());
        }
    }
}
