//! `POST /v1/traces`: the OTLP/HTTP trace receiver (protobuf and JSON; no
//! gRPC). Answers as the OTLP/HTTP specification says: 200 with an
//! `ExportTraceServiceResponse` in the request's encoding (with
//! `partialSuccess.rejectedSpans` when some spans were bad), and errors as
//! a `google.rpc.Status` — 400 for an undecodable body, 401 without the
//! token, 404 when the receiver is off, 413 above the size limit, 415 for
//! another content type or encoding, 503 when the store fails (exporters
//! retry that one).
//!
//! Authentication: exporters cannot sign in or carry a CSRF token, so the
//! auth middleware lets exactly this path through (`Access::Open`) and the
//! handler requires `Authorization: Bearer <--otlp-token>`, compared in
//! constant time, unless `--otlp-allow-anonymous`.

use std::io::Read;
use std::sync::Once;

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sagascope_spans::{
    decode_json, decode_protobuf, error_body, export_response_body, OtlpEncoding,
};
use subtle::ConstantTimeEq;

use crate::app_state::AppState;
use crate::span_settings::OtlpReceiverConfig;

/// The OTLP/HTTP traces path (exempt from the session/CSRF guard).
pub const OTLP_TRACES_PATH: &str = "/v1/traces";

// gRPC status codes of the `google.rpc.Status` bodies.
const INVALID_ARGUMENT: i32 = 3;
const NOT_FOUND: i32 = 5;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

fn answer(status: StatusCode, encoding: OtlpEncoding, body: Vec<u8>) -> Response {
    (status, [(CONTENT_TYPE, encoding.content_type())], body).into_response()
}

fn refuse(status: StatusCode, encoding: OtlpEncoding, grpc_code: i32, message: &str) -> Response {
    answer(status, encoding, error_body(encoding, grpc_code, message))
}

fn authorised(config: &OtlpReceiverConfig, headers: &HeaderMap) -> bool {
    if config.allow_anonymous {
        return true;
    }
    let Some(expected) = &config.token else {
        return false;
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    presented.is_some_and(|token| bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())))
}

fn describe_metrics() {
    static DESCRIBED: Once = Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            "sagascope_spans_received_total",
            "Spans received on POST /v1/traces and stored."
        );
        metrics::describe_counter!(
            "sagascope_spans_rejected_total",
            "Spans of OTLP exports left out (bad ids or times; partialSuccess)."
        );
    });
}

/// The gzip-decompressed body, at most `limit` bytes; Err(413) above it.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, (StatusCode, i32, String)> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| {
            (
                StatusCode::BAD_REQUEST,
                INVALID_ARGUMENT,
                format!("the body is not valid gzip: {error}"),
            )
        })?;
    if out.len() > limit {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            RESOURCE_EXHAUSTED,
            format!("the decompressed body is larger than {} MiB", limit >> 20),
        ));
    }
    Ok(out)
}

#[utoipa::path(
    post,
    path = "/v1/traces",
    tag = "otlp",
    summary = "OTLP/HTTP trace export",
    description = "The OTLP/HTTP traces receiver (protobuf or JSON, optionally gzip): an \
        `ExportTraceServiceRequest` in, an `ExportTraceServiceResponse` out in the same \
        encoding (with `partialSuccess` when some spans were left out); errors are a \
        `google.rpc.Status`. Needs `Authorization: Bearer <--otlp-token>` unless \
        `--otlp-allow-anonymous`; no session, no CSRF token.",
    request_body(content(
        (serde_json::Value = "application/json"),
        (String = "application/x-protobuf"),
    )),
    params(("content-encoding" = Option<String>, Header, description = "`gzip`, or none.")),
    security(("otlp_token" = [])),
    responses(
        (status = 200, description = "Stored; `partialSuccess` counts the spans left out.", content(
            (serde_json::Value = "application/json"),
            (String = "application/x-protobuf"),
        )),
        (status = 400, description = "The body does not decode (or is not valid gzip).", content(
            (serde_json::Value = "application/json"),
            (String = "application/x-protobuf"),
        )),
        (status = 401, description = "Missing or wrong OTLP token.", content(
            (serde_json::Value = "application/json"),
            (String = "application/x-protobuf"),
        )),
        (status = 404, description = "The receiver is off (no --otlp-token).", content(
            (serde_json::Value = "application/json"),
            (String = "application/x-protobuf"),
        )),
        (status = 413, description = "The body (or its decompressed form) is over the size limit.", content(
            (serde_json::Value = "application/json"),
            (String = "application/x-protobuf"),
        )),
        (status = 415, description = "Another content type or content encoding.", content(
            (serde_json::Value = "application/json"),
            (String = "application/x-protobuf"),
        )),
        (status = 503, description = "The spans could not be stored; retry later.", content(
            (serde_json::Value = "application/json"),
            (String = "application/x-protobuf"),
        )),
    )
)]
#[tracing::instrument(
    skip_all,
    fields(bytes = tracing::field::Empty, spans = tracing::field::Empty, rejected = tracing::field::Empty)
)]
pub async fn receive_traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    describe_metrics();
    let config = &state.otlp;
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let encoding = OtlpEncoding::from_content_type(content_type);
    // Errors before the content type is known are answered in JSON.
    let reply_in = encoding.unwrap_or(OtlpEncoding::Json);
    if !config.enabled() {
        return refuse(
            StatusCode::NOT_FOUND,
            reply_in,
            NOT_FOUND,
            "the OTLP receiver is off: start sagascope with --otlp-token (or --otlp-allow-anonymous)",
        );
    }
    if !authorised(config, &headers) {
        let mut response = refuse(
            StatusCode::UNAUTHORIZED,
            reply_in,
            UNAUTHENTICATED,
            "missing or wrong OTLP token: send Authorization: Bearer <--otlp-token>",
        );
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            "Bearer".parse().expect("a valid header value"),
        );
        return response;
    }
    let Some(encoding) = encoding else {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            reply_in,
            INVALID_ARGUMENT,
            &format!(
                "unsupported content type `{content_type}`: send application/x-protobuf or application/json (OTLP/HTTP; gRPC is not served)"
            ),
        );
    };
    let gzip = match headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                INVALID_ARGUMENT,
                &format!("unsupported content encoding `{other}`: send gzip or none"),
            )
        }
    };
    let limit = config.max_body_bytes;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            RESOURCE_EXHAUSTED,
            &format!("the body is larger than {} MiB", limit >> 20),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return too_large();
    }
    let Ok(bytes) = to_bytes(body, limit).await else {
        return too_large();
    };
    tracing::Span::current().record("bytes", bytes.len());
    let bytes = if gzip {
        match gunzip(&bytes, limit) {
            Ok(bytes) => bytes,
            Err((status, code, message)) => return refuse(status, encoding, code, &message),
        }
    } else {
        bytes.to_vec()
    };
    let decoded = match encoding {
        OtlpEncoding::Protobuf => decode_protobuf(&bytes),
        OtlpEncoding::Json => decode_json(&bytes),
    };
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                encoding,
                INVALID_ARGUMENT,
                &error.to_string(),
            )
        }
    };
    if let Err(error) = state.spans.store_spans(&decoded.spans).await {
        tracing::error!(%error, "received spans could not be stored");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            encoding,
            UNAVAILABLE,
            "the spans could not be stored; retry later",
        );
    }
    let span = tracing::Span::current();
    span.record("spans", decoded.spans.len());
    span.record("rejected", decoded.rejected);
    metrics::counter!("sagascope_spans_received_total").increment(decoded.spans.len() as u64);
    if decoded.rejected > 0 {
        metrics::counter!("sagascope_spans_rejected_total").increment(decoded.rejected);
        tracing::info!(rejected = decoded.rejected, reasons = ?decoded.reasons, "OTLP spans rejected");
    }
    let message = decoded.error_message();
    answer(
        StatusCode::OK,
        encoding,
        export_response_body(encoding, decoded.rejected, message.as_deref()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_token_must_match_exactly() {
        let config = OtlpReceiverConfig::with_token("s3cret");
        assert!(authorised(&config, &bearer("Bearer s3cret")));
        assert!(authorised(&config, &bearer("bearer  s3cret ")));
        assert!(!authorised(&config, &bearer("Bearer s3cre")));
        assert!(!authorised(&config, &bearer("Basic s3cret")));
        assert!(!authorised(&config, &HeaderMap::new()));
        let anonymous = OtlpReceiverConfig {
            allow_anonymous: true,
            ..OtlpReceiverConfig::default()
        };
        assert!(authorised(&anonymous, &HeaderMap::new()));
        assert!(!authorised(
            &OtlpReceiverConfig::default(),
            &bearer("Bearer ")
        ));
    }

    #[test]
    fn gzip_bodies_are_bounded() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&vec![b'x'; 4096]).unwrap();
        let zipped = encoder.finish().unwrap();
        assert_eq!(gunzip(&zipped, 4096).unwrap().len(), 4096);
        assert_eq!(
            gunzip(&zipped, 4095).unwrap_err().0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            gunzip(b"plain", 4096).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
    }
}
