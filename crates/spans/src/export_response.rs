//! The receiver's answers, in the encoding of the request (OTLP/HTTP):
//! an `ExportTraceServiceResponse` on success (with `partialSuccess` when
//! spans were rejected), a `google.rpc.Status` on a 4xx/5xx.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    Protobuf,
    Json,
}

impl OtlpEncoding {
    /// From a `Content-Type` header: its media type, parameters ignored.
    pub fn from_content_type(content_type: &str) -> Option<OtlpEncoding> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if media_type.eq_ignore_ascii_case("application/x-protobuf")
            || media_type.eq_ignore_ascii_case("application/protobuf")
        {
            Some(OtlpEncoding::Protobuf)
        } else if media_type.eq_ignore_ascii_case("application/json") {
            Some(OtlpEncoding::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OtlpEncoding::Protobuf => "application/x-protobuf",
            OtlpEncoding::Json => "application/json",
        }
    }
}

/// The body of a 200. `rejected` spans and the message go into
/// `partialSuccess`; with none rejected it is left out (full success).
pub fn export_response_body(
    encoding: OtlpEncoding,
    rejected: u64,
    message: Option<&str>,
) -> Vec<u8> {
    let partial = (rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: message.unwrap_or_default().to_string(),
    });
    match encoding {
        OtlpEncoding::Protobuf => ExportTraceServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        // By hand: the JSON mapping wants the int64 as a string.
        OtlpEncoding::Json => match partial {
            None => b"{}".to_vec(),
            Some(partial) => json!({
                "partialSuccess": {
                    "rejectedSpans": partial.rejected_spans.to_string(),
                    "errorMessage": partial.error_message,
                }
            })
            .to_string()
            .into_bytes(),
        },
    }
}

/// `google.rpc.Status` (code, message), the body OTLP/HTTP gives errors.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The body of an error answer; `grpc_code` is the matching gRPC status
/// code (3 invalid argument, 16 unauthenticated, 8 resource exhausted, …).
pub fn error_body(encoding: OtlpEncoding, grpc_code: i32, message: &str) -> Vec<u8> {
    match encoding {
        OtlpEncoding::Protobuf => RpcStatus {
            code: grpc_code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        OtlpEncoding::Json => json!({ "code": grpc_code, "message": message })
            .to_string()
            .into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_pick_the_encoding() {
        assert_eq!(
            OtlpEncoding::from_content_type("application/x-protobuf"),
            Some(OtlpEncoding::Protobuf)
        );
        assert_eq!(
            OtlpEncoding::from_content_type("Application/JSON; charset=utf-8"),
            Some(OtlpEncoding::Json)
        );
        assert_eq!(OtlpEncoding::from_content_type("text/plain"), None);
    }

    #[test]
    fn partial_success_is_reported_in_both_encodings() {
        let body = export_response_body(OtlpEncoding::Protobuf, 2, Some("two bad"));
        let decoded = ExportTraceServiceResponse::decode(&body[..]).unwrap();
        let partial = decoded.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 2);
        assert_eq!(partial.error_message, "two bad");
        assert!(export_response_body(OtlpEncoding::Protobuf, 0, None).is_empty());

        let body = export_response_body(OtlpEncoding::Json, 2, Some("two bad"));
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["partialSuccess"]["rejectedSpans"], "2");
        assert_eq!(export_response_body(OtlpEncoding::Json, 0, None), b"{}");
    }

    #[test]
    fn errors_are_rpc_statuses() {
        let body = error_body(OtlpEncoding::Protobuf, 3, "bad body");
        let status = RpcStatus::decode(&body[..]).unwrap();
        assert_eq!((status.code, status.message.as_str()), (3, "bad body"));
        let value: serde_json::Value =
            serde_json::from_slice(&error_body(OtlpEncoding::Json, 16, "no token")).unwrap();
        assert_eq!(value, json!({"code": 16, "message": "no token"}));
    }
}
