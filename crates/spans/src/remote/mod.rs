//! Spans fetched on demand from a tracing backend's query API, by trace
//! id. Both answer OTLP JSON in a wrapper of their own (`jaeger.rs`,
//! `tempo.rs`); the shared part here does the HTTP: timeouts, 404 as "not
//! found", other failures as typed errors naming the backend.

mod jaeger;
mod tempo;

use std::time::Duration;

use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use sagascope_model::{SpanSource, SpanView};
use serde_json::Value;

use crate::decode::{decode_json_value, JsonDialect};
use crate::SpanError;

/// Largest answer read (a trace of many thousands of spans fits).
const MAX_ANSWER_BYTES: usize = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteKind {
    Jaeger,
    Tempo,
}

impl RemoteKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RemoteKind::Jaeger => "Jaeger",
            RemoteKind::Tempo => "Tempo",
        }
    }

    pub(crate) fn source(self) -> SpanSource {
        match self {
            RemoteKind::Jaeger => SpanSource::Jaeger,
            RemoteKind::Tempo => SpanSource::Tempo,
        }
    }
}

#[derive(Debug)]
pub(crate) struct RemoteSource {
    kind: RemoteKind,
    base_url: String,
    client: reqwest::Client,
}

impl RemoteSource {
    pub(crate) fn new(
        kind: RemoteKind,
        base_url: &str,
        timeout: Duration,
    ) -> Result<RemoteSource, SpanError> {
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(SpanError::Config(format!(
                "the {} query URL `{base_url}` must start with http:// or https://",
                kind.name()
            )));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|error| SpanError::Config(error.to_string()))?;
        Ok(RemoteSource {
            kind,
            base_url,
            client,
        })
    }

    pub(crate) fn kind(&self) -> RemoteKind {
        self.kind
    }

    /// The trace's spans as the backend has them (unsorted); None when it
    /// does not know the trace.
    #[tracing::instrument(skip(self), fields(source = self.kind.name()), err)]
    pub(crate) async fn fetch(&self, trace_id: &str) -> Result<Option<Vec<SpanView>>, SpanError> {
        let url = match self.kind {
            RemoteKind::Jaeger => jaeger::trace_url(&self.base_url, trace_id),
            RemoteKind::Tempo => tempo::trace_url(&self.base_url, trace_id),
        };
        let source_name = self.kind.name();
        let unreachable = |error: reqwest::Error| SpanError::Unreachable {
            source_name,
            url: self.base_url.clone(),
            message: if error.is_timeout() {
                "timed out".to_string()
            } else {
                error.to_string()
            },
        };
        let response = self
            .client
            .get(&url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
        {
            return Err(SpanError::BadAnswer {
                source_name,
                message: format!("the answer is larger than {} MiB", MAX_ANSWER_BYTES >> 20),
            });
        }
        let body = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let shown: String = text.chars().take(200).collect();
            return Err(SpanError::UpstreamStatus {
                source_name,
                status: status.as_u16(),
                trace_id: trace_id.to_string(),
                body: shown,
            });
        }
        let bad_answer = |message: String| SpanError::BadAnswer {
            source_name,
            message,
        };
        let value: Value =
            serde_json::from_slice(&body).map_err(|error| bad_answer(error.to_string()))?;
        let traces = match self.kind {
            RemoteKind::Jaeger => jaeger::unwrap_answer(value),
            RemoteKind::Tempo => tempo::unwrap_answer(value),
        }
        .map_err(bad_answer)?;
        let Some(traces) = traces else {
            return Ok(None);
        };
        let decoded = decode_json_value(traces, JsonDialect::QueryApi)
            .map_err(|error| bad_answer(error.to_string()))?;
        if decoded.rejected > 0 {
            tracing::debug!(
                rejected = decoded.rejected,
                reasons = ?decoded.reasons,
                "spans of the query API's answer left out"
            );
        }
        Ok((!decoded.spans.is_empty()).then_some(decoded.spans))
    }
}
