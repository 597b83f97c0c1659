//! The consumer loop.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sagascope_domain::{Decoder, KafkaCoords, RawMessage};
use sagascope_model::StreamMessage;
use sagascope_store::{BatchOutcome, IngestBatch, Store};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

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
/// ingest status so `/readyz` and the UI can say "Kafka unreachable since …",
/// and starts each assigned partition at the offset stored with the data.
struct IngestContext {
    status: Arc<IngestStatus>,
    store: Store,
    group_id: String,
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
/// How long reading the stored offsets may hold up an assignment.
const STORED_OFFSETS_TIMEOUT: Duration = Duration::from_secs(5);

impl ConsumerContext for IngestContext {
    /// librdkafka's default rebalance, except that an assignment starts each
    /// partition where the read model says (quickwit's model): the offsets
    /// stored in the same transaction as the data are the truth, Kafka's
    /// committed offsets are advisory (kept for lag tools). So a commit the
    /// database lost is read again, a rewound Kafka offset does not make it
    /// read stored data again, and a new database re-reads the topics from
    /// the start. (Batches in flight at a rebalance may be read twice: the
    /// store's idempotence absorbs them.)
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            rdkafka::consumer::RebalanceProtocol::Cooperative
        );
        let now = chrono::Utc::now();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.start_at_stored_offsets(tpl);
                // Watermarks before the assignment is applied: once it is,
                // the assigned partitions' own offset lookups queue ahead
                // of these (measured: ~0.4 s each instead of a few ms).
                let marks = if self.status.catch_up(|c| c.started()) {
                    Vec::new()
                } else {
                    first_assignment_marks(consumer, tpl)
                };
                restart_partitions_that_end_before_their_stored_offset(tpl, &marks);
                let result = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                if let Err(error) = result {
                    tracing::warn!(%error, "applying the assignment failed");
                }
                // Before any message of the assignment is handed out (this
                // runs inside `recv`): every message finds its partition's
                // backlog boundary.
                let partitions = partitions_of(tpl);
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
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(error) = result {
                    tracing::warn!(%error, "applying the revocation failed");
                }
                let partitions = partitions_of(tpl);
                tracing::info!(partitions = partitions.len(), "partitions revoked");
                self.status.catch_up(|c| c.revoked(&partitions, now));
            }
            other => {
                let error = KafkaError::Rebalance(other.into());
                tracing::warn!(%error, "rebalance failed");
                if let Err(error) = consumer.unassign() {
                    tracing::warn!(%error, "unassigning after a failed rebalance failed");
                }
            }
        }
    }
}

impl IngestContext {
    /// Sets each assigned partition's start to the offset the read model
    /// stored for it, or the beginning when it has none. When the store
    /// cannot be read, leaves the assignment to Kafka's committed offsets:
    /// they are committed only after the store's commit, so they are never
    /// ahead of the data (a batch may be read twice, idempotently).
    fn start_at_stored_offsets(&self, tpl: &mut TopicPartitionList) {
        let stored = match self.read_stored_offsets() {
            Ok(stored) => stored,
            Err(reason) => {
                tracing::warn!(%reason, "cannot read the stored offsets; the assignment starts at Kafka's committed offsets");
                return;
            }
        };
        let mut started_at_stored = 0usize;
        for (topic, partition) in partitions_of(tpl) {
            let offset = match stored.get(&(topic.clone(), partition)) {
                Some(next) => {
                    started_at_stored += 1;
                    Offset::Offset(*next)
                }
                None => Offset::Beginning,
            };
            if let Err(error) = tpl.set_partition_offset(&topic, partition, offset) {
                tracing::warn!(%error, topic, partition, "cannot set the start offset");
            }
        }
        tracing::info!(
            partitions = tpl.count(),
            started_at_stored,
            "assigned partitions start at the offsets stored with the data"
        );
    }

    /// The store's next offsets of this group. The rebalance callback is
    /// synchronous and runs inside `recv` on a runtime worker, so the query
    /// runs there with the worker handed off (`block_in_place`); a
    /// current-thread runtime cannot do that and gets an error instead.
    fn read_stored_offsets(&self) -> Result<std::collections::HashMap<(String, i32), i64>, String> {
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err("the ingest runs on a current-thread runtime".into());
        }
        let progress = tokio::task::block_in_place(|| {
            handle.block_on(tokio::time::timeout(
                STORED_OFFSETS_TIMEOUT,
                self.store.partition_progress(&self.group_id),
            ))
        })
        .map_err(|_| format!("no answer within {STORED_OFFSETS_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
        Ok(progress
            .into_iter()
            .filter_map(|p| Some(((p.topic, i32::try_from(p.partition).ok()?), p.next_offset)))
            .collect())
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

/// The high watermark and the start offset (the stored offset the
/// assignment starts at, else the low watermark) of each partition of the
/// first assignment. Blocking, once per process: one `ListOffsets` per
/// partition, within [`MARKS_BUDGET`]. A partition whose watermark cannot
/// be read is left out (it falls back to timestamps).
fn first_assignment_marks(
    consumer: &BaseConsumer<IngestContext>,
    tpl: &TopicPartitionList,
) -> Vec<PartitionMarks> {
    let started = Instant::now();
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
                let start = match element.offset() {
                    Offset::Offset(offset) if offset >= 0 => offset.clamp(low, high),
                    _ => low,
                };
                marks.push(PartitionMarks {
                    topic: topic.to_string(),
                    partition,
                    high,
                    start: Some(start),
                });
            }
            Err(error) => {
                tracing::warn!(%error, topic, partition, "cannot read the high watermark; its backlog goes by timestamps");
            }
        }
    }
    marks
}

/// A partition that ends before the offset stored for it was recreated
/// (or lost its log): offsets start again at 0 there, and not every broker
/// answers a fetch past the end with OFFSET_OUT_OF_RANGE (Tansu 0.6 waits
/// for data instead), so `auto.offset.reset` alone would leave the consumer
/// waiting for offsets the new partition reaches only much later, and skip
/// everything before. Such a partition starts from its beginning; the
/// store keeps messages at reused coordinates beside the old ones.
fn restart_partitions_that_end_before_their_stored_offset(
    tpl: &mut TopicPartitionList,
    marks: &[PartitionMarks],
) {
    for mark in marks {
        let stored = tpl
            .find_partition(&mark.topic, mark.partition)
            .map(|e| e.offset());
        let Some(Offset::Offset(stored)) = stored else {
            continue;
        };
        if stored > mark.high {
            tracing::warn!(
                topic = mark.topic,
                partition = mark.partition,
                stored,
                high = mark.high,
                "the partition ends before the offset stored for it (was the topic recreated?): reading it from the beginning"
            );
            if let Err(error) =
                tpl.set_partition_offset(&mark.topic, mark.partition, Offset::Beginning)
            {
                tracing::warn!(%error, "cannot restart the partition from the beginning");
            }
        }
    }
}

pub struct Ingestor {
    consumer: Arc<StreamConsumer<IngestContext>>,
    store: Store,
    decoder: Arc<Decoder>,
    dlq_topics: Arc<DlqTopics>,
    live: broadcast::Sender<StreamMessage>,
    status: Arc<IngestStatus>,
    config: IngestConfig,
}

/// Batches decoded or being decoded, waiting for the writer: with the one
/// being written and the one being received, at most this many + 2 batches
/// are in memory, so memory stays flat while the store is slow (the
/// receiver waits, and librdkafka's prefetch queue is bounded too).
const DECODED_AHEAD: usize = 2;

/// One batch in the pipeline: its messages, which of them were backlog,
/// and the decode running off the async workers.
struct PendingBatch {
    messages: Vec<RawMessage>,
    backlog: Vec<bool>,
    received_at: Instant,
}

struct DecodedWork {
    pending: PendingBatch,
    decoded: DecodedBatch,
    ingested_at: chrono::DateTime<chrono::Utc>,
}

fn to_raw(message: &BorrowedMessage<'_>) -> RawMessage {
    let headers = crate::message_headers::headers_of(message);
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
        // The prefetch queue holds at most this much per consumer (the
        // default, 64 MB, would dominate the process's memory).
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
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set("queued.max.messages.kbytes", "16384");
        for (key, value) in &config.client_properties {
            client.set(key, value);
        }
        let consumer: StreamConsumer<IngestContext> =
            client.create_with_context(IngestContext {
                status: status.clone(),
                store: store.clone(),
                group_id: config.group_id.clone(),
            })?;
        consumer.subscribe(&subscription)?;
        Ok(Ingestor {
            consumer: Arc::new(consumer),
            store,
            decoder: Arc::new(decoder),
            dlq_topics: Arc::new(dlq_topics),
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
    ///
    /// A pipeline: this loop receives and batches; each full (or lingered)
    /// batch is decoded on the blocking pool while the writer task stores
    /// the one before it, then commits it to Kafka and publishes it, in
    /// batch order. The channel between them is bounded
    /// ([`DECODED_AHEAD`]): when the store is slow, receiving waits.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(topics = ?self.config.topics, dlq_topics = ?self.config.dlq_topics, group_id = %self.config.group_id, "ingest started");
        let (to_writer, from_receiver) = mpsc::channel(DECODED_AHEAD);
        let writer = BatchWriter {
            consumer: self.consumer.clone(),
            store: self.store.clone(),
            live: self.live.clone(),
            status: self.status.clone(),
            shutdown: shutdown.clone(),
        };
        let writing = tokio::spawn(writer.run(from_receiver));
        let mut pending: Vec<RawMessage> = Vec::with_capacity(self.config.batch_size);
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
                        pending.push(to_raw(&message));
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
                self.hand_over(&mut pending, &to_writer).await;
            }
        }
        self.hand_over(&mut pending, &to_writer).await;
        // The writer drains what it was handed, then stops.
        drop(to_writer);
        if let Err(error) = writing.await {
            tracing::error!(%error, "the ingest writer stopped abnormally");
        }
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

    /// Classifies the batch's backlog (one lock and one clock read per
    /// batch), starts its decode on the blocking pool and queues it for the
    /// writer, waiting while the writer is [`DECODED_AHEAD`] batches behind.
    async fn hand_over(
        &self,
        pending: &mut Vec<RawMessage>,
        to_writer: &mpsc::Sender<JoinHandle<DecodedWork>>,
    ) {
        if pending.is_empty() {
            return;
        }
        let messages = std::mem::replace(pending, Vec::with_capacity(self.config.batch_size));
        let backlog: Vec<bool> = self.status.catch_up(|c| {
            let now = chrono::Utc::now();
            messages
                .iter()
                .map(|m| c.classify(&m.coords, m.timestamp, now))
                .collect()
        });
        let batch = PendingBatch {
            messages,
            backlog,
            received_at: Instant::now(),
        };
        let (decoder, dlq_topics) = (self.decoder.clone(), self.dlq_topics.clone());
        let group_id = self.config.group_id.clone();
        let decoding = tokio::task::spawn_blocking(move || {
            let ingested_at = chrono::Utc::now();
            let mut decoded = decode_batch(
                &group_id,
                &decoder,
                &dlq_topics,
                &batch.messages,
                ingested_at,
            );
            decoded.batch.backlog = backlog_bounds(&batch.messages, &batch.backlog);
            DecodedWork {
                pending: batch,
                decoded,
                ingested_at,
            }
        });
        if to_writer.send(decoding).await.is_err() {
            tracing::error!("the ingest writer is gone; the batch is not stored (it is read again after a restart)");
        }
    }
}

/// Backoff between attempts to store a batch: quick for a blip, at most
/// a few seconds apart while the database is down.
const WRITE_RETRY_FIRST: Duration = Duration::from_millis(100);
const WRITE_RETRY_MAX: Duration = Duration::from_secs(5);

/// The pipeline's last stage: stores each decoded batch (one transaction,
/// offsets included), then commits its offsets to Kafka, updates the
/// status and metrics and publishes it live, strictly in batch order.
struct BatchWriter {
    consumer: Arc<StreamConsumer<IngestContext>>,
    store: Store,
    live: broadcast::Sender<StreamMessage>,
    status: Arc<IngestStatus>,
    shutdown: watch::Receiver<bool>,
}

impl BatchWriter {
    async fn run(self, mut batches: mpsc::Receiver<JoinHandle<DecodedWork>>) {
        while let Some(decoding) = batches.recv().await {
            match decoding.await {
                Ok(work) => self.write(work).await,
                Err(error) => {
                    tracing::error!(%error, "decoding a batch failed; it is not stored (it is read again after a restart)")
                }
            }
        }
    }

    /// Writes one batch, retrying the store until it succeeds (or shutdown
    /// is requested while the store stays down: then the offsets are simply
    /// not stored and the messages are consumed again next time).
    #[tracing::instrument(
        name = "ingest.batch",
        skip_all,
        fields(
            // As i64: the OpenTelemetry layer keeps unsigned numbers as text.
            messages = work.pending.messages.len() as i64,
            partitions = work.decoded.batch.offsets.len() as i64,
            group_id = %work.decoded.batch.group_id,
        )
    )]
    async fn write(&self, work: DecodedWork) {
        let DecodedWork {
            pending,
            decoded: DecodedBatch { batch, ignored },
            ingested_at,
        } = work;
        // The same batch, again and again: nothing of it is committed to
        // Kafka until the store holds it, and the receiver waits meanwhile
        // (the pipeline's channels are bounded).
        let mut backoff = WRITE_RETRY_FIRST;
        let outcome = loop {
            match self.store.write_batch(&batch).await {
                Ok(outcome) => {
                    self.store.availability().record_success();
                    break outcome;
                }
                Err(error) => {
                    // An unreachable database is an outage (the banner,
                    // `/readyz`); anything else is a bug.
                    if self.store.availability().record_failure(&error) {
                        tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "store unavailable; the batch waits");
                    } else {
                        tracing::error!(%error, retry_in_ms = backoff.as_millis() as u64, "store write failed; retrying");
                    }
                    self.status.degraded(format!("store: {error}"));
                    if *self.shutdown.borrow() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(WRITE_RETRY_MAX);
                }
            }
        };
        self.commit(&batch);
        self.record(pending.messages.len(), ignored, &outcome);
        self.status.catch_up(|c| {
            c.stored(
                pending
                    .messages
                    .iter()
                    .zip(pending.backlog.iter())
                    .map(|(m, b)| (&m.coords, m.timestamp, *b)),
                ingested_at,
                chrono::Utc::now(),
            )
        });
        crate::ingest_metrics::record_batch(
            pending.messages.len(),
            pending.backlog.iter().filter(|b| **b).count(),
            ignored,
            &outcome,
            &batch,
            pending.received_at.elapsed(),
        );
        crate::ingest_metrics::record_catch_up(self.status.catch_up_view().as_ref());
        self.publish(outcome);
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
