//! [`SpanService`]: the spans of a trace, or of every trace of a saga,
//! from the configured source — sagascope's own store (spans received on
//! `POST /v1/traces`) or a Jaeger/Tempo query API (fetched per trace on
//! demand, cached) — limited to `max_spans` per trace, with a deep link.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sagascope_model::{SpanSource, SpanView, TraceSpans, MAX_SPANS_PER_TRACE};
use sagascope_store::Store;

use crate::remote::{RemoteKind, RemoteSource};
use crate::trace_cache::TraceCache;
use crate::{parse_trace_id, trace_link, SpanError};

/// The most trace ids of one saga whose spans are looked up (a saga
/// usually has one to a few).
pub const MAX_TRACES_PER_SAGA: usize = 20;

/// Where spans are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanSourceConfig {
    /// The database, fed by sagascope's OTLP receiver.
    Store,
    /// A Jaeger v2 query API (`{query_url}/api/v3/traces/{id}`).
    Jaeger { query_url: String },
    /// A Tempo query API (`{query_url}/api/traces/{id}`).
    Tempo { query_url: String },
}

#[derive(Debug, Clone)]
pub struct SpanConfig {
    pub source: SpanSourceConfig,
    /// A URL with `{trace_id}`: the deep link of each trace.
    pub link_template: Option<String>,
    /// How long a fetched trace is reused (query APIs only).
    pub cache_ttl: Duration,
    /// How many fetched traces are kept.
    pub cache_capacity: usize,
    /// Timeout of one query API request.
    pub request_timeout: Duration,
    /// Spans returned per trace; a trace with more is `truncated`.
    pub max_spans: usize,
}

impl Default for SpanConfig {
    fn default() -> SpanConfig {
        SpanConfig {
            source: SpanSourceConfig::Store,
            link_template: None,
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 1000,
            request_timeout: Duration::from_secs(10),
            max_spans: MAX_SPANS_PER_TRACE,
        }
    }
}

/// Cheap to clone; shared by the HTTP handlers and the server functions.
#[derive(Clone)]
pub struct SpanService {
    store: Store,
    config: Arc<SpanConfig>,
    remote: Option<Arc<RemoteSource>>,
    cache: Arc<TraceCache>,
}

impl std::fmt::Debug for SpanService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SpanService {
    pub fn new(store: Store, config: SpanConfig) -> Result<SpanService, SpanError> {
        let remote = match &config.source {
            SpanSourceConfig::Store => None,
            SpanSourceConfig::Jaeger { query_url } => Some(RemoteSource::new(
                RemoteKind::Jaeger,
                query_url,
                config.request_timeout,
            )?),
            SpanSourceConfig::Tempo { query_url } => Some(RemoteSource::new(
                RemoteKind::Tempo,
                query_url,
                config.request_timeout,
            )?),
        };
        Ok(SpanService {
            store,
            cache: Arc::new(TraceCache::new(config.cache_capacity, config.cache_ttl)),
            remote: remote.map(Arc::new),
            config: Arc::new(config),
        })
    }

    /// Spans from the store, no deep link: the default.
    pub fn from_store(store: Store) -> SpanService {
        SpanService {
            store,
            remote: None,
            cache: Arc::new(TraceCache::new(1, Duration::ZERO)),
            config: Arc::new(SpanConfig::default()),
        }
    }

    pub fn source(&self) -> SpanSource {
        self.remote
            .as_ref()
            .map_or(SpanSource::Otlp, |remote| remote.kind().source())
    }

    pub fn config(&self) -> &SpanConfig {
        &self.config
    }

    /// Stores received spans (idempotent per trace and span id); how many.
    pub async fn store_spans(&self, spans: &[SpanView]) -> Result<u64, SpanError> {
        Ok(self.store.insert_spans(spans).await?)
    }

    /// The trace's spans, ordered by start then span id; None when the
    /// source has none.
    #[tracing::instrument(skip(self), err)]
    pub async fn trace_spans(&self, trace_id: &str) -> Result<Option<TraceSpans>, SpanError> {
        let trace_id =
            parse_trace_id(trace_id).ok_or_else(|| SpanError::BadTraceId(trace_id.to_string()))?;
        let Some(remote) = &self.remote else {
            let (spans, truncated) = self
                .store
                .trace_spans(&trace_id, self.config.max_spans)
                .await?;
            return Ok((!spans.is_empty()).then(|| self.trace(trace_id, spans, truncated)));
        };
        if let Some(cached) = self.cache.get(&trace_id, Instant::now()) {
            return Ok(cached.map(|trace| (*trace).clone()));
        }
        let fetched = remote.fetch(&trace_id).await?.map(|mut spans| {
            spans.sort_by(|a, b| (a.start, &a.span_id).cmp(&(b.start, &b.span_id)));
            spans.dedup_by(|a, b| a.span_id == b.span_id);
            let truncated = spans.len() > self.config.max_spans;
            spans.truncate(self.config.max_spans);
            self.trace(trace_id.clone(), spans, truncated)
        });
        self.cache
            .put(&trace_id, fetched.clone().map(Arc::new), Instant::now());
        Ok(fetched)
    }

    fn trace(&self, trace_id: String, spans: Vec<SpanView>, truncated: bool) -> TraceSpans {
        TraceSpans {
            external_url: trace_link(self.config.link_template.as_deref(), &trace_id),
            trace_id,
            source: self.source(),
            spans,
            truncated,
        }
    }

    /// The spans of each of the saga's traces that has some, in the order
    /// the saga first met them; empty for an unknown saga.
    pub async fn saga_spans(&self, saga_id: &str) -> Result<Vec<TraceSpans>, SpanError> {
        Ok(self.saga_spans_if_known(saga_id).await?.unwrap_or_default())
    }

    /// [`Self::saga_spans`], or None when no saga has that id.
    #[tracing::instrument(skip(self), err)]
    pub async fn saga_spans_if_known(
        &self,
        saga_id: &str,
    ) -> Result<Option<Vec<TraceSpans>>, SpanError> {
        let Some(trace_ids) = self.store.saga_trace_ids(saga_id).await? else {
            return Ok(None);
        };
        // Ids that are not W3C/Jaeger trace ids (a business key used as
        // trace id) cannot have spans.
        let lookups = trace_ids
            .iter()
            .filter(|id| parse_trace_id(id).is_some())
            .take(MAX_TRACES_PER_SAGA)
            .map(|id| self.trace_spans(id));
        let mut traces = Vec::new();
        for found in futures::future::join_all(lookups).await {
            traces.extend(found?);
        }
        Ok(Some(traces))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sagascope_store::test_support::fresh_sqlite_store;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stand-in for Jaeger's query API on a real socket: answers every
    /// request with `status` and `body`, counting the requests.
    async fn fake_query_api(status: u16, body: String) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut request = vec![0u8; 4096];
                let _ = socket.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (format!("http://{addr}"), hits)
    }

    fn jaeger_config(query_url: String) -> SpanConfig {
        SpanConfig {
            source: SpanSourceConfig::Jaeger { query_url },
            link_template: Some("http://localhost:16686/trace/{trace_id}".into()),
            max_spans: 1,
            ..SpanConfig::default()
        }
    }

    const TRACE: &str = "5b8efff798038103d269b633813fc60c";

    #[tokio::test]
    async fn jaeger_traces_are_fetched_once_truncated_and_linked() {
        let body = serde_json::json!({"result": {"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": TRACE, "spanId": "eee19b7ec3c1b174", "name": "later",
             "startTimeUnixNano": "2000", "endTimeUnixNano": "3000"},
            {"traceId": TRACE, "spanId": "eee19b7ec3c1b173", "name": "first",
             "startTimeUnixNano": "1000", "endTimeUnixNano": "3000"}
        ]}]}]}});
        let (url, hits) = fake_query_api(200, body.to_string()).await;
        let service = SpanService::new(fresh_sqlite_store().await, jaeger_config(url)).unwrap();
        assert_eq!(service.source(), SpanSource::Jaeger);
        let trace = service
            .trace_spans(&TRACE.to_uppercase())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(trace.source, SpanSource::Jaeger);
        assert_eq!(trace.spans.len(), 1);
        assert_eq!(trace.spans[0].name, "first");
        assert!(trace.truncated);
        assert_eq!(
            trace.external_url.as_deref(),
            Some("http://localhost:16686/trace/5b8efff798038103d269b633813fc60c")
        );
        let again = service.trace_spans(TRACE).await.unwrap().unwrap();
        assert_eq!(again, trace);
        assert_eq!(hits.load(Ordering::SeqCst), 1, "the second read is cached");
    }

    #[tokio::test]
    async fn query_api_failures_are_typed() {
        let (url, _) = fake_query_api(404, "{}".into()).await;
        let service = SpanService::new(fresh_sqlite_store().await, jaeger_config(url)).unwrap();
        assert_eq!(service.trace_spans(TRACE).await.unwrap(), None);

        let (url, _) = fake_query_api(500, "{\"error\":\"disk full\"}".into()).await;
        let service = SpanService::new(fresh_sqlite_store().await, jaeger_config(url)).unwrap();
        let error = service.trace_spans(TRACE).await.unwrap_err();
        assert!(error.is_upstream(), "{error}");
        assert!(error.to_string().contains("HTTP 500"), "{error}");
        assert!(error.to_string().contains("disk full"), "{error}");

        let (url, _) = fake_query_api(200, "<html>".into()).await;
        let service = SpanService::new(fresh_sqlite_store().await, jaeger_config(url)).unwrap();
        assert!(matches!(
            service.trace_spans(TRACE).await.unwrap_err(),
            SpanError::BadAnswer { .. }
        ));

        // Nothing listens there.
        let service = SpanService::new(
            fresh_sqlite_store().await,
            jaeger_config("http://127.0.0.1:9".into()),
        )
        .unwrap();
        assert!(matches!(
            service.trace_spans(TRACE).await.unwrap_err(),
            SpanError::Unreachable { .. }
        ));
        assert!(service
            .trace_spans("nope")
            .await
            .unwrap_err()
            .is_bad_request());
        assert!(SpanService::new(
            fresh_sqlite_store().await,
            jaeger_config("jaeger:16686".into())
        )
        .is_err());
    }
}
