//! Export of the simulated services' spans to an OTLP/HTTP endpoint (JSON),
//! from a background task. Saga production never waits for it: spans go
//! through a bounded channel, and when it is full they are dropped and
//! counted. Batches of up to [`MAX_BATCH_SPANS`] spans, or whatever
//! arrived within [`BATCH_INTERVAL`], are POSTed with the bearer token; a
//! batch the endpoint cannot take yet (connection refused, 5xx, 429) is
//! retried with backoff until it can, since the demo produces its history
//! before its HTTP server listens. On shutdown the task drains the channel
//! and makes a last attempt, bounded by [`FINAL_FLUSH_DEADLINE`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::otlp_json::encode_otlp_json;
use crate::span_shapes::SimulatedSpan;

/// Where the simulated services send their spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanExport {
    /// The full URL of the OTLP/HTTP traces endpoint (`…/v1/traces`).
    pub endpoint: String,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub bearer_token: Option<String>,
}

/// Most spans in one export request.
pub const MAX_BATCH_SPANS: usize = 500;
/// A partial batch is sent after this long.
pub const BATCH_INTERVAL: Duration = Duration::from_secs(1);
/// Spans waiting for the exporter at most; more are dropped.
pub const SPAN_QUEUE_CAPACITY: usize = 50_000;
/// How long the last flush at shutdown may take.
pub const FINAL_FLUSH_DEADLINE: Duration = Duration::from_secs(3);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the exporter has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpanExportStats {
    /// Spans the endpoint accepted.
    pub exported: u64,
    /// Spans dropped: the queue was full, the endpoint refused them for
    /// good (a 4xx), or the final flush ran out of time.
    pub dropped: u64,
    /// Export requests that failed and were retried or given up.
    pub failed_requests: u64,
}

#[derive(Default)]
struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed_requests: AtomicU64,
}

/// The producing side, shared by every clone of the simulator.
#[derive(Clone)]
pub(crate) struct SpanSink {
    queue: mpsc::Sender<SimulatedSpan>,
    counters: Arc<Counters>,
    stop: Arc<watch::Sender<bool>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl SpanSink {
    /// Starts the exporter task (on the current Tokio runtime).
    pub(crate) fn start(export: SpanExport) -> SpanSink {
        let (queue, received) = mpsc::channel(SPAN_QUEUE_CAPACITY);
        let (stop, stopped) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let exporter = Exporter {
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            export,
            counters: counters.clone(),
        };
        let task = tokio::spawn(exporter.run(received, stopped));
        SpanSink {
            queue,
            counters,
            stop: Arc::new(stop),
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Queues `spans` without waiting; what does not fit is dropped.
    pub(crate) fn send(&self, spans: Vec<SimulatedSpan>) {
        for span in spans {
            if self.queue.try_send(span).is_err() {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn stats(&self) -> SpanExportStats {
        SpanExportStats {
            exported: self.counters.exported.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed_requests: self.counters.failed_requests.load(Ordering::Relaxed),
        }
    }

    /// Stops the exporter after a final flush and waits for it (once; later
    /// calls return at once). Spans sent afterwards are dropped.
    pub(crate) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(FINAL_FLUSH_DEADLINE + REQUEST_TIMEOUT, task).await;
        }
    }
}

struct Exporter {
    client: reqwest::Client,
    export: SpanExport,
    counters: Arc<Counters>,
}

/// What became of one export request.
enum Attempt {
    Accepted,
    /// Worth another try later (the endpoint is not up, or overloaded).
    Retry(String),
    /// Never worth another try (a 4xx: a bad token, a bad body).
    Refused(String),
}

impl Exporter {
    async fn run(
        self,
        mut received: mpsc::Receiver<SimulatedSpan>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut batch: Vec<SimulatedSpan> = Vec::new();
        let mut tick = tokio::time::interval(BATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = *stopped.borrow();
        while !stopping {
            tokio::select! {
                changed = stopped.changed() => stopping = changed.is_err() || *stopped.borrow(),
                span = received.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() >= MAX_BATCH_SPANS {
                            stopping = !self.deliver(&mut batch, &mut stopped).await;
                        }
                    }
                    None => stopping = true,
                },
                _ = tick.tick() => if !batch.is_empty() {
                    stopping = !self.deliver(&mut batch, &mut stopped).await;
                },
            }
        }
        // The final flush: what is queued, in batches, until the deadline.
        received.close();
        while let Ok(span) = received.try_recv() {
            batch.push(span);
        }
        let deadline = Instant::now() + FINAL_FLUSH_DEADLINE;
        for chunk in batch.chunks(MAX_BATCH_SPANS) {
            self.deliver_until(chunk, deadline).await;
        }
        let stats = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        tracing::info!(
            exported = stats(&self.counters.exported),
            dropped = stats(&self.counters.dropped),
            "simulated span export stopped"
        );
    }

    /// Sends `batch` (emptying it once accepted or refused), retrying
    /// with backoff while it cannot be taken yet. Returns false when the
    /// stop signal came first: the batch is kept for the final flush.
    async fn deliver(
        &self,
        batch: &mut Vec<SimulatedSpan>,
        stopped: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut backoff = FIRST_BACKOFF;
        let mut logged = false;
        loop {
            match self.attempt(batch).await {
                Attempt::Accepted => {
                    batch.clear();
                    return true;
                }
                Attempt::Refused(reason) => {
                    self.refused(batch.len(), &reason);
                    batch.clear();
                    return true;
                }
                Attempt::Retry(reason) => {
                    if !logged {
                        tracing::debug!(%reason, endpoint = %self.export.endpoint, "span endpoint not ready, retrying");
                        logged = true;
                    }
                }
            }
            tokio::select! {
                changed = stopped.changed() => if changed.is_err() || *stopped.borrow() { return false },
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Sends `batch`, retrying until `deadline`; drops it then.
    async fn deliver_until(&self, batch: &[SimulatedSpan], deadline: Instant) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let reason = match tokio::time::timeout_at(deadline, self.attempt(batch)).await {
                Ok(Attempt::Accepted) => return,
                Ok(Attempt::Refused(reason)) => return self.refused(batch.len(), &reason),
                Ok(Attempt::Retry(reason)) => reason,
                Err(_) => "the final flush ran out of time".to_string(),
            };
            if Instant::now() + backoff >= deadline {
                self.counters
                    .dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                tracing::warn!(%reason, spans = batch.len(), "simulated spans dropped at shutdown");
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn refused(&self, spans: usize, reason: &str) {
        self.counters
            .dropped
            .fetch_add(spans as u64, Ordering::Relaxed);
        tracing::warn!(%reason, spans, endpoint = %self.export.endpoint, "span endpoint refused simulated spans");
    }

    async fn attempt(&self, batch: &[SimulatedSpan]) -> Attempt {
        let mut request = self
            .client
            .post(&self.export.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(encode_otlp_json(batch));
        if let Some(token) = &self.export.bearer_token {
            request = request.bearer_auth(token);
        }
        let outcome = match request.send().await {
            Ok(response) if response.status().is_success() => {
                self.counters
                    .exported
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return Attempt::Accepted;
            }
            Ok(response) => {
                let status = response.status();
                let reason = format!("HTTP {status}");
                if status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT
                {
                    Attempt::Retry(reason)
                } else {
                    Attempt::Refused(reason)
                }
            }
            Err(error) => Attempt::Retry(error.to_string()),
        };
        self.counters
            .failed_requests
            .fetch_add(1, Ordering::Relaxed);
        outcome
    }
}
