//! The consumer loop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sagascope_domain::{Decoder, KafkaCoords, RawMessage};
use sagascope_model::StreamMessage;
use sagascope_store::{BatchOutcome, IngestBatch, Store};
use tokio::sync::{broadcast, watch};

use crate::batch::{backlog_bounds, decode_batch, DecodedBatch};
use crate::catchup::PartitionMarks;
use crate::dlq_topics::{DlqPatternError, DlqTopics};
use crate::ingest_status::{ConsumerState, IngestStatus};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("no topics to consume: give --topics names or ^regex patterns")]
    NoTopics,
    #[error(transparent)]
    DlqPattern(#[from] DlqPatternError),
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub brokers: String,
    /// Topic names or librdkafka `^regex` patterns.
    pub topics: Vec<String>,
    /// Dead-letter topics (names or `^regex`), consumed besides `topics`;
    /// their messages become dead letters, never events. Empty: none (the
    /// CLI defaults to [`crate::DEFAULT_DLQ_TOPICS`]).
    pub dlq_topics: Vec<String>,
    pub group_id: String,
    pub batch_size: usize,
    pub batch_linger: Duration,
    pub session_timeout: Duration,
    /// Extra librdkafka properties (security settings and the like).
    pub client_properties: Vec<(String, String)>,
}

impl IngestConfig {
    pub fn new(
        brokers: impl Into<String>,
        topics: Vec<String>,
        group_id: impl Into<String>,
    ) -> IngestConfig {
        IngestConfig {
            brokers: brokers.into(),
            topics,
            dlq_topics: Vec::new(),
            group_id: group_id.into(),
            batch_size: 1000,
            batch_linger: Duration::from_millis(100),
            session_timeout: Duration::from_secs(10),
            client_properties: Vec::new(),
        }
    }
}

/// Records librdkafka's client-level errors (broker down, auth) in the
/// ingest status so `/readyz` and the UI can say "Kafka unreachable since …".
struct IngestContext {
    status: Arc<IngestStatus>,
}

impl ClientContext for IngestContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if self.status.note_client_error(reason) {
            tracing::info!(reason, "a subscribed topic or pattern matches no topic yet");
            return;
        }
        tracing::warn!(%error, reason, "kafka client error");
        self.status.degraded(format!("kafka: {reason}"));
    }
}

/// How long the first assignment's watermark queries may take in all; the
/// partitions left after that fall back to timestamps (see
/// [`crate::catchup`]).
/// Short: the callback runs inside `recv` on a runtime worker, and
/// librdkafka wants rebalance callbacks to return quickly.
const MARKS_BUDGET: Duration = Duration::from_secs(3);
const MARKS_TIMEOUT: Duration = Duration::from_secs(2);

impl ConsumerContext for IngestContext {
    /// Runs on the thread that polls (inside `recv`), after librdkafka
    /// applied the assignment and before any message of it is handed out:
    /// so every message finds its partition's backlog boundary.
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let now = chrono::Utc::now();
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = partitions_of(tpl);
                let marks = if self.status.catch_up(|c| c.started()) {
                    Vec::new()
                } else {
                    first_assignment_marks(consumer, tpl)
                };
                tracing::info!(
                    partitions = partitions.len(),
                    backlog = marks
                        .iter()
                        .map(|m| (m.high - m.start.unwrap_or(m.high)).max(0))
                        .sum::<i64>(),
                    "partitions assigned"
                );
                self.status
                    .catch_up(|c| c.assigned(&partitions, &marks, now));
            }
            Rebalance::Revoke(tpl) => {
                let partitions = partitions_of(tpl);
                tracing::info!(partitions = partitions.len(), "partitions revoked");
                self.status.catch_up(|c| c.revoked(&partitions, now));
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// The high watermark and the start offset (committed, else the low
/// watermark, as `auto.offset.reset` is earliest) of each partition of the
/// first assignment. Blocking, once per process: one `OffsetFetch` and one
/// `ListOffsets` per partition, within [`MARKS_BUDGET`]. A partition whose
/// watermark cannot be read is left out (it falls back to timestamps).
fn first_assignment_marks(
    consumer: &BaseConsumer<IngestContext>,
    tpl: &TopicPartitionList,
) -> Vec<PartitionMarks> {
    let started = Instant::now();
    let committed = match consumer.committed_offsets(tpl.clone(), MARKS_TIMEOUT) {
        Ok(committed) => committed,
        Err(error) => {
            tracing::warn!(%error, "cannot read the committed offsets; the catch-up counts from the low watermarks");
            TopicPartitionList::new()
        }
    };
    let mut marks = Vec::new();
    for element in tpl.elements() {
        let left = MARKS_BUDGET.saturating_sub(started.elapsed());
        if left.is_zero() {
            tracing::warn!("watermark queries took too long; the remaining partitions' backlog goes by timestamps");
            break;
        }
        let (topic, partition) = (element.topic(), element.partition());
        match consumer.fetch_watermarks(topic, partition, left.min(MARKS_TIMEOUT)) {
            Ok((low, high)) => {
                let committed =
                    committed
                        .find_partition(topic, partition)
                        .and_then(|e| match e.offset() {
                            Offset::Offset(offset) if offset >= 0 => Some(offset),
                            _ => None,
                        });
                marks.push(PartitionMarks {
                    topic: topic.to_string(),
                    partition,
                    high,
                    start: Some(committed.map_or(low, |c| c.clamp(low, high))),
                });
            }
            Err(error) => {
                tracing::warn!(%error, topic, partition, "cannot read the high watermark; its backlog goes by timestamps");
            }
        }
    }
    marks
}

pub struct Ingestor {
    consumer: StreamConsumer<IngestContext>,
    store: Store,
    decoder: Decoder,
    dlq_topics: DlqTopics,
    live: broadcast::Sender<StreamMessage>,
    status: Arc<IngestStatus>,
    config: IngestConfig,
}

fn to_raw(message: &BorrowedMessage<'_>) -> RawMessage {
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    RawMessage {
        coords: KafkaCoords {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
        },
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: message
            .timestamp()
            .to_millis()
            .and_then(chrono::DateTime::from_timestamp_millis),
    }
}

impl Ingestor {
    pub fn new(
        config: IngestConfig,
        store: Store,
        decoder: Decoder,
        live: broadcast::Sender<StreamMessage>,
    ) -> Result<Ingestor, IngestError> {
        let dlq_topics = DlqTopics::new(&config.dlq_topics)?;
        // Topics ∪ DLQ topics, each once, in the order given.
        let mut subscription: Vec<&str> = Vec::new();
        for topic in config.topics.iter().chain(&config.dlq_topics) {
            let topic = topic.trim();
            if !topic.is_empty() && !subscription.contains(&topic) {
                subscription.push(topic);
            }
        }
        if subscription.is_empty() {
            return Err(IngestError::NoTopics);
        }
        let status = Arc::new(IngestStatus::default());
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", &config.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                config.session_timeout.as_millis().to_string(),
            )
            // Regex subscriptions pick up new topics at this interval.
            .set("topic.metadata.refresh.interval.ms", "5000");
        for (key, value) in &config.client_properties {
            client.set(key, value);
        }
        let consumer: StreamConsumer<IngestContext> =
            client.create_with_context(IngestContext {
                status: status.clone(),
            })?;
        consumer.subscribe(&subscription)?;
        Ok(Ingestor {
            consumer,
            store,
            decoder,
            dlq_topics,
            live,
            status,
            config,
        })
    }

    pub fn status(&self) -> Arc<IngestStatus> {
        self.status.clone()
    }

    /// Runs until `shutdown` turns true, then writes and commits what it has
    /// (graceful drain) and returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(topics = ?self.config.topics, dlq_topics = ?self.config.dlq_topics, group_id = %self.config.group_id, "ingest started");
        let mut pending: Vec<RawMessage> = Vec::with_capacity(self.config.batch_size);
        // Whether each pending message is backlog (see `crate::catchup`),
        // decided when it arrives.
        let mut backlog: Vec<bool> = Vec::with_capacity(self.config.batch_size);
        let mut batch_started = Instant::now();
        let mut quiet_check = Instant::now();
        loop {
            let wait = if pending.is_empty() {
                Duration::from_millis(250)
            } else {
                self.config
                    .batch_linger
                    .saturating_sub(batch_started.elapsed())
            };
            let stopping = *shutdown.borrow();
            if stopping {
                break;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                received = tokio::time::timeout(wait, self.consumer.recv()) => match received {
                    Ok(Ok(message)) => {
                        if pending.is_empty() {
                            batch_started = Instant::now();
                        }
                        self.status.topic_seen(message.topic());
                        let raw = to_raw(&message);
                        backlog.push(self.status.catch_up(|c| {
                            c.classify(&raw.coords, raw.timestamp, chrono::Utc::now())
                        }));
                        pending.push(raw);
                        if !matches!(self.status.state(), ConsumerState::Running) {
                            self.status.set_state(ConsumerState::Running);
                        }
                    }
                    Ok(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition))) => {
                        // A subscribed topic does not exist yet; it may appear later.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "consume failed");
                        self.status.degraded(format!("consume: {error}"));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(_linger_elapsed) => {}
                },
            }
            // Start-up partitions quiet for a while are past their backlog.
            // Checked every second whatever else is arriving: a partition
            // whose last offsets are transaction markers never delivers its
            // high watermark, and busy topics may never let the consumer
            // go idle as a whole.
            if quiet_check.elapsed() >= Duration::from_secs(1) {
                quiet_check = Instant::now();
                self.status.catch_up(|c| c.idle(chrono::Utc::now()));
                crate::ingest_metrics::record_catch_up(self.status.catch_up_view().as_ref());
            }
            let full = pending.len() >= self.config.batch_size;
            let lingered =
                !pending.is_empty() && batch_started.elapsed() >= self.config.batch_linger;
            if full || lingered {
                self.flush(&mut pending, &mut backlog, &shutdown).await;
            }
        }
        self.flush(&mut pending, &mut backlog, &shutdown).await;
        if let Err(error) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing pending is reported as NoOffset: not a failure.
            if !matches!(
                error,
                KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)
            ) {
                tracing::warn!(%error, "final commit failed");
            }
        }
        self.status.set_state(ConsumerState::Stopped);
        tracing::info!("ingest stopped");
    }

    /// Writes one batch, retrying the store until it succeeds (or shutdown
    /// is requested while the store stays down: then the offsets are simply
    /// not committed and the messages are consumed again next time).
    #[tracing::instrument(
        name = "ingest.batch",
        skip_all,
        fields(
            // As i64: the OpenTelemetry layer keeps unsigned numbers as text.
            messages = pending.len() as i64,
            partitions = pending
                .iter()
                .map(|m| (m.coords.topic.as_str(), m.coords.partition))
                .collect::<std::collections::HashSet<_>>()
                .len() as i64,
            group_id = %self.config.group_id,
        )
    )]
    async fn flush(
        &self,
        pending: &mut Vec<RawMessage>,
        backlog: &mut Vec<bool>,
        shutdown: &watch::Receiver<bool>,
    ) {
        if pending.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let ingested_at = chrono::Utc::now();
        let DecodedBatch { mut batch, ignored } = decode_batch(
            &self.config.group_id,
            &self.decoder,
            &self.dlq_topics,
            pending,
            ingested_at,
        );
        batch.backlog = backlog_bounds(pending, backlog);
        let mut backoff = Duration::from_millis(100);
        let outcome = loop {
            match self.store.write_batch(&batch).await {
                Ok(outcome) => break outcome,
                Err(error) => {
                    tracing::error!(%error, "store write failed; retrying");
                    self.status.degraded(format!("store: {error}"));
                    if *shutdown.borrow() {
                        pending.clear();
                        backlog.clear();
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        self.commit(&batch);
        self.record(pending.len(), ignored, &outcome);
        self.status.catch_up(|c| {
            c.stored(
                pending
                    .iter()
                    .zip(backlog.iter())
                    .map(|(m, b)| (&m.coords, m.timestamp, *b)),
                ingested_at,
                chrono::Utc::now(),
            )
        });
        crate::ingest_metrics::record_batch(
            pending.len(),
            backlog.iter().filter(|b| **b).count(),
            ignored,
            &outcome,
            &batch,
            started.elapsed(),
        );
        crate::ingest_metrics::record_catch_up(self.status.catch_up_view().as_ref());
        self.publish(outcome);
        pending.clear();
        backlog.clear();
    }

    fn commit(&self, batch: &IngestBatch) {
        let mut offsets = TopicPartitionList::new();
        for offset in &batch.offsets {
            if let Err(error) = offsets.add_partition_offset(
                &offset.topic,
                offset.partition,
                Offset::Offset(offset.next_offset),
            ) {
                tracing::warn!(%error, "bad offset");
            }
        }
        // Async: the store already holds the offsets; a lost commit only
        // means idempotent redelivery.
        if let Err(error) = self.consumer.commit(&offsets, CommitMode::Async) {
            tracing::warn!(%error, "offset commit failed; messages may be redelivered (idempotent)");
        }
    }

    fn record(&self, messages: usize, ignored: usize, outcome: &BatchOutcome) {
        let s = &self.status;
        s.ignored.fetch_add(ignored as u64, Ordering::Relaxed);
        s.messages.fetch_add(messages as u64, Ordering::Relaxed);
        s.events
            .fetch_add(outcome.new_events.len() as u64, Ordering::Relaxed);
        s.duplicates
            .fetch_add(outcome.duplicates as u64, Ordering::Relaxed);
        s.ingest_errors
            .fetch_add(outcome.errors.len() as u64, Ordering::Relaxed);
        s.batches.fetch_add(1, Ordering::Relaxed);
        s.last_batch_at_us
            .store(chrono::Utc::now().timestamp_micros(), Ordering::Relaxed);
        if matches!(s.state(), ConsumerState::Degraded { .. }) {
            s.set_state(ConsumerState::Running);
        }
    }

    /// Live fan-out after commit. No subscribers is not an error.
    fn publish(&self, outcome: BatchOutcome) {
        // Merges first (lists drop the old rows), then events, then the saga
        // summaries they produced.
        for (from, into) in outcome.merged {
            let _ = self.live.send(StreamMessage::Merged { from, into });
        }
        for event in outcome.new_events {
            let _ = self.live.send(StreamMessage::Event { event });
        }
        for saga in outcome.sagas {
            let _ = self.live.send(StreamMessage::Saga { saga });
        }
        for error in outcome.errors {
            let _ = self.live.send(StreamMessage::IngestError { error });
        }
    }
}
