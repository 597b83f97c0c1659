//! Spans beside the sagas (issue 6, "trace beside the saga").
//!
//! - `decode/`: OTLP trace exports (`ExportTraceServiceRequest`, protobuf
//!   or the OTLP JSON mapping) into [`SpanView`](sagascope_model::SpanView)s,
//!   keeping the good spans of a request and counting the bad ones
//!   (OTLP's `partialSuccess`).
//! - `export_response.rs`: the receiver's answers in the request's encoding.
//! - `trace_id.rs`: what counts as a trace id.
//! - `service.rs`: [`SpanService`], the spans of a trace or of a saga from
//!   the configured source: sagascope's own store (spans received over
//!   OTLP) or a Jaeger/Tempo query API (`remote/`), cached per trace
//!   (`trace_cache.rs`), with a deep link from a URL template
//!   (`trace_link.rs`).

mod decode;
mod error;
mod export_response;
mod remote;
mod service;
mod trace_cache;
mod trace_id;
mod trace_link;

pub use decode::{
    decode_json, decode_json_value, decode_protobuf, DecodeError, DecodedSpans, JsonDialect,
    SpanRejection,
};
pub use error::SpanError;
pub use export_response::{error_body, export_response_body, OtlpEncoding};
pub use service::{SpanConfig, SpanService, SpanSourceConfig, MAX_TRACES_PER_SAGA};
pub use trace_id::parse_trace_id;
pub use trace_link::trace_link;
