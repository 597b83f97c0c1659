//! The span of one copy's produce, `redrive.produce`: an OpenTelemetry
//! producer span with the `messaging.*` attributes, the dead letter and
//! the attempt, and a span link to the operator's request that asked for
//! it (a single retry's HTTP request, or the request that started the bulk
//! job), so a trace viewer goes from the copy to the click and back. The
//! request's context never goes into the copy: its headers stay the dead
//! letter's own.
//!
//! Also counts `sagascope_retries_produced_total{topic,result}`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanContext, TraceContextExt};
use sagascope_store::RetryPayload;
use tracing::field::Empty;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::copy_producer::CopyProducer;

/// How long a bulk job's request context is kept for the job's runner.
const JOB_LINK_KEPT: Duration = Duration::from_secs(24 * 3600);

/// The span context of the current span: at the entry of a re-drive, the
/// operator's request. None outside any span (or without the
/// OpenTelemetry layer).
pub(crate) fn current_span_context() -> Option<SpanContext> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.clone())
}

/// One copy as the produce span describes it.
pub(crate) struct ProduceOf<'a> {
    pub(crate) topic: &'a str,
    pub(crate) payload: &'a RetryPayload,
    pub(crate) retry_count: u32,
    pub(crate) attempt_id: &'a str,
    /// The operator's request, linked.
    pub(crate) request: Option<&'a SpanContext>,
}

/// Produces the copy inside its `redrive.produce` span (see the module
/// doc) and counts it.
pub(crate) async fn produce_traced(
    producer: &CopyProducer,
    copy: ProduceOf<'_>,
) -> Result<(i32, i64), String> {
    let span = tracing::info_span!(
        "redrive.produce",
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "kafka",
        "messaging.operation.type" = "send",
        messaging.operation.name = "send",
        messaging.destination.name = %copy.topic,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = Empty,
        // Numbers as i64: tracing-opentelemetry keeps unsigned ones as text.
        messaging.message.body.size = copy.payload.value.as_ref().map_or(0, Vec::len) as i64,
        sagascope.dead_letter.id = %copy.payload.id,
        sagascope.retry.attempt_id = %copy.attempt_id,
        sagascope.retry.count = i64::from(copy.retry_count),
        error.type = Empty,
    );
    if let Some(request) = copy.request {
        span.add_link(request.clone());
    }
    let result = producer
        .produce(copy.topic, copy.payload, copy.retry_count)
        .instrument(span.clone())
        .await;
    let outcome = match &result {
        Ok((partition, offset)) => {
            span.record("messaging.destination.partition.id", partition.to_string());
            span.record("messaging.kafka.offset", offset);
            "produced"
        }
        Err(error) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", "kafka_produce");
            span.in_scope(|| tracing::warn!(%error, topic = copy.topic, "re-drive produce failed"));
            "failed"
        }
    };
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            "sagascope_retries_produced_total",
            "Copies of dead letters produced by re-drives (single and bulk), by target topic and result (produced, failed)."
        );
    });
    metrics::counter!(
        "sagascope_retries_produced_total",
        "topic" => copy.topic.to_string(),
        "result" => outcome,
    )
    .increment(1);
    result
}

/// The request contexts of the bulk jobs started in this process, for the
/// job runner's produce spans. In memory: a job resumed by another
/// process (or after a restart) has no link.
#[derive(Debug, Default)]
pub(crate) struct JobLinks {
    links: std::sync::Mutex<HashMap<String, (SpanContext, Instant)>>,
}

impl JobLinks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (SpanContext, Instant)>> {
        self.links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers the request of `job_id`; forgets links older than a day
    /// (jobs another runner took).
    pub(crate) fn remember(&self, job_id: &str, request: SpanContext) {
        let mut links = self.lock();
        links.retain(|_, (_, at)| at.elapsed() < JOB_LINK_KEPT);
        links.insert(job_id.to_string(), (request, Instant::now()));
    }

    pub(crate) fn get(&self, job_id: &str) -> Option<SpanContext> {
        self.lock().get(job_id).map(|(context, _)| context.clone())
    }

    pub(crate) fn forget(&self, job_id: &str) {
        self.lock().remove(job_id);
    }
}
