//! What can go wrong getting spans; the UI shows it as "spans unavailable: …".

/// Errors of [`crate::SpanService`].
#[derive(Debug, thiserror::Error)]
pub enum SpanError {
    #[error("`{0}` is not a trace id: 32 hex digits (or 16)")]
    BadTraceId(String),
    #[error("the span store failed: {0}")]
    Store(#[from] sagascope_store::StoreError),
    #[error("the {source_name} query API at {url} did not answer: {message}")]
    Unreachable {
        source_name: &'static str,
        url: String,
        message: String,
    },
    #[error("the {source_name} query API answered HTTP {status} for trace {trace_id}: {body}")]
    UpstreamStatus {
        source_name: &'static str,
        status: u16,
        trace_id: String,
        body: String,
    },
    #[error("the {source_name} query API answered something that is not an OTLP trace: {message}")]
    BadAnswer {
        source_name: &'static str,
        message: String,
    },
    #[error("invalid span source configuration: {0}")]
    Config(String),
}

impl SpanError {
    /// The caller's mistake (HTTP 400), not the server's.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, SpanError::BadTraceId(_))
    }

    /// The remote query API failed (HTTP 502: a gateway's answer).
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            SpanError::Unreachable { .. }
                | SpanError::UpstreamStatus { .. }
                | SpanError::BadAnswer { .. }
        )
    }
}
