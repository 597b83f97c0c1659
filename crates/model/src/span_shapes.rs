//! Spans shown beside a saga: the JSON shapes of
//! `GET /api/v1/traces/{trace_id}/spans` and `GET /api/v1/sagas/{id}/spans`,
//! whichever source they came from (sagascope's own OTLP receiver, or a
//! Jaeger/Tempo query API).

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// What a span's operation is, as OTLP's `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Unknown names read as `unspecified` (rows written by a newer version).
    pub fn parse(name: &str) -> SpanKind {
        match name {
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// OTLP's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SpanStatus {
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Unset => "unset",
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }

    pub fn parse(name: &str) -> SpanStatus {
        match name {
            "ok" => SpanStatus::Ok,
            "error" => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }
}

/// An attribute with its value rendered as text (strings unquoted; numbers,
/// booleans, arrays and maps as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpanAttribute {
    pub key: String,
    pub value: String,
}

/// A timed event inside a span (an exception, a log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpanEventView {
    pub name: String,
    pub at: Timestamp,
    pub attributes: Vec<SpanAttribute>,
}

/// One span. Ids are lowercase hex: 32 digits for traces, 16 for spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpanView {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// The resource's `service.name` (`unknown_service` when absent).
    pub service: String,
    pub kind: SpanKind,
    pub start: Timestamp,
    pub end: Timestamp,
    /// `end - start` in microseconds (never negative).
    pub duration_us: i64,
    pub status: SpanStatus,
    pub status_message: Option<String>,
    pub attributes: Vec<SpanAttribute>,
    pub events: Vec<SpanEventView>,
}

/// Where the spans of a trace came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SpanSource {
    /// sagascope's own OTLP receiver (`POST /v1/traces`).
    Otlp,
    /// A Jaeger query API, fetched on demand and cached.
    Jaeger,
    /// A Tempo query API, fetched on demand and cached.
    Tempo,
}

/// The spans of one trace, ordered by start time then span id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraceSpans {
    pub trace_id: String,
    pub source: SpanSource,
    pub spans: Vec<SpanView>,
    /// More spans exist than the limit returned (`MAX_SPANS_PER_TRACE`).
    pub truncated: bool,
    /// A deep link to this trace in Jaeger, Tempo or Grafana, from the
    /// configured URL template; None when no template is set.
    pub external_url: Option<String>,
}

/// The most spans one trace returns; a trace with more is `truncated`.
pub const MAX_SPANS_PER_TRACE: usize = 20_000;
