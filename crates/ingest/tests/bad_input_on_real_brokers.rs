//! Bad input from a real broker (librdkafka's mock cluster and Tansu, one
//! body each) into a real Postgres store: null keys, empty and null values,
//! header values and keys that are not UTF-8, topics with dots and dashes
//! found by a pattern, messages far above Kafka's default size limit and
//! above the consumer's own fetch limits, and a topic of 1,000 partitions.
//! Every message must end as an event or as an ingest error at its
//! coordinates, once; the ingest must neither stop nor stall; Kafka's
//! committed offsets must never be ahead of the offsets the store holds.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sagascope_domain::decode::REJECTED_TRACE_HEADER;
use sagascope_domain::{Decoder, TRUNCATED_HEADER};
use sagascope_ingest::{ConsumerState, IngestConfig, IngestStatus, Ingestor, HEADER_KEY_NOT_UTF8};
use sagascope_model::{Header as StoredHeader, IngestErrorView, SagaDetail};
use sagascope_store::test_support::fresh_postgres_store;
use sagascope_store::Store;
use sagascope_test_brokers::{
    behind, drop_postgres_database, exactly_once, produce_raw_records, stored_coordinates,
    stored_offsets, wait_for_topics, BrokerKind, Coord, Produced, RawRecord, TestBroker,
};
use tokio::sync::{broadcast, watch};

/// Topic names with dots and dashes, subscribed by [`PATTERN`] only.
const STATE_TOPIC: &str = "bad-input.saga-state.v1";
const OUTBOX_TOPIC: &str = "bad-input.outbox_events-v2";
/// No dot after `bad-input`: the pattern must not take it.
const UNMATCHED_TOPIC: &str = "bad-input-elsewhere";
const PATTERN: &str = r"^bad-input\..+";

const LARGE_TOPIC: &str = "bad-input.large-messages";
const WIDE_TOPIC: &str = "bad-input.wide-1000";
const WIDE_PARTITIONS: i32 = 1000;

/// Kafka's default `message.max.bytes` (broker): the largest record batch
/// it accepts unless configured otherwise.
const KAFKA_DEFAULT_MAX_MESSAGE: usize = 1_048_588;
/// Above the consumer's `max.partition.fetch.bytes` (1 MiB) and Kafka's
/// default limit.
const LARGE_VALUE: usize = 2 * 1024 * 1024;
/// Above the consumer's whole fetch (`fetch.max.bytes`, which librdkafka
/// caps at `queued.max.messages.kbytes`: 16 MiB in sagascope).
const HUGE_VALUE: usize = 20 * 1024 * 1024;

struct RunningIngest {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    status: std::sync::Arc<IngestStatus>,
}

fn start_ingest(
    kafka: &TestBroker,
    store: &Store,
    topics: &[&str],
    group: &str,
    batch_size: usize,
) -> RunningIngest {
    let mut config = IngestConfig::new(
        kafka.bootstrap_servers(),
        topics.iter().map(|t| t.to_string()).collect(),
        group,
    );
    config.batch_size = batch_size;
    config.batch_linger = Duration::from_millis(50);
    config.session_timeout = Duration::from_secs(6);
    let (live, _) = broadcast::channel(16);
    let ingestor = Ingestor::new(config, store.clone(), Decoder::default(), live).unwrap();
    let status = ingestor.status();
    let (stop, stop_rx) = watch::channel(false);
    RunningIngest {
        stop,
        task: tokio::spawn(ingestor.run(stop_rx)),
        status,
    }
}

impl RunningIngest {
    /// The ingest is still up: its task neither returned nor panicked.
    fn assert_alive(&self) {
        assert!(
            !self.task.is_finished(),
            "the ingest stopped by itself (panicked?): {:?}",
            self.status.view()
        );
    }

    /// Graceful stop, bounded (consumer teardown can hang on a saturated
    /// machine, rust-rdkafka issue 509); a panic of the ingest fails here.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        if let Ok(joined) = tokio::time::timeout(Duration::from_secs(20), self.task).await {
            joined.expect("the ingest task panicked");
        }
    }
}

/// A broker with `topics`, once its metadata shows all their partitions.
/// Blocking work (a runtime of its own for CreateTopics, metadata polls)
/// on the blocking pool.
async fn broker_with(broker: BrokerKind, topics: &[&str], partitions: i32) -> TestBroker {
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let kafka = TestBroker::start(broker, &topics, partitions).unwrap();
        wait_for_topics(kafka.bootstrap_servers(), &topics, partitions).unwrap();
        kafka
    })
    .await
    .unwrap()
}

fn producer(kafka: &TestBroker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("message.timeout.ms", "30000")
        // Records up to 64 MiB leave this producer; the broker decides.
        .set("message.max.bytes", "67108864")
        .create()
        .unwrap()
}

/// What one produced message must become.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// An event of this saga.
    Event { saga: String },
    /// An ingest error whose reason starts so.
    Error { reason: String },
}

/// The broker's acknowledgements, each with what it must become.
#[derive(Default)]
struct Acked {
    messages: Vec<(Coord, Expect)>,
}

impl Acked {
    fn note(&mut self, topic: &str, (partition, offset): (i32, i64), expect: Expect) {
        let coord = Coord {
            topic: topic.to_string(),
            partition,
            offset,
        };
        self.messages.push((coord, expect));
    }

    fn produced(&self) -> Produced {
        let mut produced = Produced::default();
        for (coord, _) in &self.messages {
            let end = produced
                .ends
                .entry((coord.topic.clone(), coord.partition))
                .or_default();
            *end = (*end).max(coord.offset + 1);
            produced.stored.insert(coord.clone());
        }
        produced
    }

    fn ends(&self) -> BTreeMap<(String, i32), i64> {
        self.produced().ends
    }
}

async fn send(producer: &FutureProducer, record: FutureRecord<'_, [u8], [u8]>) -> (i32, i64) {
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(|delivery| (delivery.partition, delivery.offset))
        .map_err(|(error, _)| error)
        .expect("the broker acknowledges the message")
}

fn raw(kafka: &TestBroker, topic: &str, partition: i32, record: RawRecord) -> (i32, i64) {
    let offset = tokio::task::block_in_place(|| {
        produce_raw_records(kafka.bootstrap_servers(), topic, partition, &[record])
    })
    .expect("the broker acknowledges the raw batch");
    (partition, offset)
}

fn saga_state(saga: &str, status: &str) -> Vec<u8> {
    format!(r#"{{"saga_id":"{saga}","saga_type":"bad_input","status":"{status}"}}"#).into_bytes()
}

/// Kafka's committed offsets of a group (OffsetFetch through a client that
/// never joins it) next to the offsets the store holds for it.
struct Offsets<'a> {
    store: &'a Store,
    group: &'a str,
    kafka: std::sync::Arc<BaseConsumer>,
}

impl<'a> Offsets<'a> {
    fn new(kafka: &TestBroker, store: &'a Store, group: &'a str) -> Offsets<'a> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap_servers())
            .set("group.id", group)
            .create()
            .unwrap();
        Offsets {
            store,
            group,
            kafka: std::sync::Arc::new(consumer),
        }
    }

    /// Committed (read first), then stored; a committed offset ahead of
    /// the stored one would be a commit before the store had the data.
    async fn sample(&self, partitions: &[(String, i32)]) -> (Committed, Committed) {
        let consumer = self.kafka.clone();
        let mut request = TopicPartitionList::new();
        for (topic, partition) in partitions {
            request.add_partition(topic, *partition);
        }
        let committed: Committed = tokio::task::spawn_blocking(move || {
            // A failed OffsetFetch shows nothing committed: the wait
            // below then times out, naming what is not committed.
            let answer = consumer
                .committed_offsets(request, Duration::from_secs(10))
                .unwrap_or_else(|error| {
                    eprintln!("OffsetFetch failed: {error}");
                    TopicPartitionList::new()
                });
            answer
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(next) => Some(((e.topic().to_string(), e.partition()), next)),
                    _ => None,
                })
                .collect()
        })
        .await
        .unwrap();
        let stored = stored_offsets(self.store, self.group).await;
        for (partition, committed) in &committed {
            let stored = stored.get(partition).copied().unwrap_or(0);
            assert!(
                *committed <= stored,
                "Kafka has {partition:?} committed at {committed}, the store only at {stored}"
            );
        }
        (committed, stored)
    }

    /// Polls until both the store and Kafka have `ends` for every
    /// partition; meanwhile the ingest must stay up and no commit may be
    /// ahead of the store.
    async fn wait_for(
        &self,
        ends: &Committed,
        limit: Duration,
        ingest: &RunningIngest,
    ) -> Duration {
        let partitions: Vec<(String, i32)> = ends.keys().cloned().collect();
        let started = Instant::now();
        loop {
            ingest.assert_alive();
            let (committed, stored) = self.sample(&partitions).await;
            if stored == *ends && committed == *ends {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "not stored and committed after {limit:?}: stored {}; committed {}; ingest {:?}",
                behind(&stored, ends).join(", "),
                behind(&committed, ends).join(", "),
                ingest.status.view()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

type Committed = BTreeMap<(String, i32), i64>;

/// Each acknowledged message is an event of its saga or an ingest error
/// with its reason, once; nothing else is stored; the store's offsets end
/// at each partition's end.
async fn assert_each_message_accounted_for(store: &Store, group: &str, acked: &Acked) {
    let stored = stored_coordinates(store).await;
    let offsets = stored_offsets(store, group).await;
    if let Some(difference) = exactly_once(&acked.produced(), &stored, &offsets) {
        panic!("{difference}");
    }
    let errors: Vec<IngestErrorView> = store.ingest_errors(10_000).await.unwrap();
    for (coord, expect) in &acked.messages {
        let at = |topic: &str, partition: i64, offset: i64| {
            topic == coord.topic
                && partition == i64::from(coord.partition)
                && offset == coord.offset
        };
        match expect {
            Expect::Event { saga } => {
                let detail = saga_detail(store, saga).await;
                assert!(
                    detail
                        .events
                        .iter()
                        .any(|e| at(&e.topic, e.partition, e.offset)),
                    "{coord} is not an event of {saga}: {:?}",
                    detail.events
                );
            }
            Expect::Error { reason } => {
                let error = errors
                    .iter()
                    .find(|e| at(&e.topic, e.partition, e.offset))
                    .unwrap_or_else(|| panic!("{coord} is not listed as an ingest error"));
                assert!(
                    error.reason.starts_with(reason.as_str()),
                    "{coord}: {}",
                    error.reason
                );
            }
        }
    }
}

async fn saga_detail(store: &Store, saga: &str) -> SagaDetail {
    store
        .saga_detail(saga)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("saga {saga} is not stored"))
}

fn headers(detail: &SagaDetail, offset: i64) -> Vec<(String, String)> {
    let event = detail
        .events
        .iter()
        .find(|e| e.offset == offset)
        .unwrap_or_else(|| panic!("no event at offset {offset}"));
    event
        .headers
        .iter()
        .map(|StoredHeader { key, value }| (key.clone(), value.clone()))
        .collect()
}

/// Null and empty keys and values, header values and keys that are not
/// UTF-8 (and a NUL), on two topics with dots and dashes that only a
/// pattern names, next to a topic the pattern must not take.
async fn odd_messages_are_each_an_event_or_an_ingest_error(broker: BrokerKind) {
    let kafka = broker_with(broker, &[STATE_TOPIC, OUTBOX_TOPIC, UNMATCHED_TOPIC], 2).await;
    let store = fresh_postgres_store().await;
    let producer = producer(&kafka);
    let mut acked = Acked::default();
    let event = |saga: &str| Expect::Event { saga: saga.into() };
    let error = |reason: &str| Expect::Error {
        reason: reason.into(),
    };

    let null_key = saga_state("bi-null-key", "STARTED");
    let at = send(
        &producer,
        FutureRecord::to(STATE_TOPIC)
            .partition(0)
            .payload(&null_key[..]),
    )
    .await;
    acked.note(STATE_TOPIC, at, event("bi-null-key"));
    let at = send(&producer, FutureRecord::to(STATE_TOPIC).partition(0)).await;
    acked.note(
        STATE_TOPIC,
        at,
        error("tombstone: the message has no value"),
    );
    let at = send(
        &producer,
        FutureRecord::to(STATE_TOPIC)
            .partition(0)
            .key(&b"empty-value"[..])
            .payload(&b""[..]),
    )
    .await;
    acked.note(STATE_TOPIC, at, error("value is not valid JSON"));
    let empty_key = saga_state("bi-empty-key", "STARTED");
    let at = send(
        &producer,
        FutureRecord::to(STATE_TOPIC)
            .partition(0)
            .key(&b""[..])
            .payload(&empty_key[..]),
    )
    .await;
    acked.note(STATE_TOPIC, at, event("bi-empty-key"));
    let binary_values = saga_state("bi-binary-header-values", "STARTED");
    let binary_headers = OwnedHeaders::new()
        .insert(Header {
            key: "traceparent",
            value: Some(&b"\xff\xfe00-not-utf8"[..]),
        })
        .insert(Header {
            key: "x-binary",
            value: Some(&b"\xc3\x28 \x00 \xff"[..]),
        });
    let (_, binary_values_offset) = {
        let at = send(
            &producer,
            FutureRecord::to(STATE_TOPIC)
                .partition(1)
                .key(&b"binary"[..])
                .payload(&binary_values[..])
                .headers(binary_headers),
        )
        .await;
        acked.note(STATE_TOPIC, at, event("bi-binary-header-values"));
        at
    };
    let (_, bad_key_offset) = raw(
        &kafka,
        STATE_TOPIC,
        1,
        RawRecord {
            key: Some(b"bad-header-key".to_vec()),
            value: Some(saga_state("bi-bad-header-key", "STARTED")),
            headers: vec![
                (b"\xff\xfebad-key".to_vec(), Some(b"lost".to_vec())),
                (b"x-after".to_vec(), Some(b"kept".to_vec())),
            ],
        },
    );
    acked.note(STATE_TOPIC, (1, bad_key_offset), event("bi-bad-header-key"));
    let at = raw(
        &kafka,
        STATE_TOPIC,
        1,
        RawRecord {
            key: None,
            value: Some(b"\xc3\x28 neither UTF-8 nor JSON".to_vec()),
            headers: vec![(b"\xc0".to_vec(), None)],
        },
    );
    acked.note(STATE_TOPIC, at, error("value is not valid UTF-8"));

    // A Debezium outbox event (id + type headers) whose type is not UTF-8
    // and whose id holds a NUL, which Postgres' TEXT refuses.
    let outbox_headers = OwnedHeaders::new()
        .insert(Header {
            key: "id",
            value: Some(&b"evt-\x00-nul"[..]),
        })
        .insert(Header {
            key: "type",
            value: Some(&b"Order\xffPlaced"[..]),
        })
        .insert(Header {
            key: "saga_id",
            value: Some(&b"bi-outbox"[..]),
        });
    let at = send(
        &producer,
        FutureRecord::to(OUTBOX_TOPIC)
            .partition(1)
            .key(&b"order-1"[..])
            .payload(&br#"{"order_id":"order-1"}"#[..])
            .headers(outbox_headers),
    )
    .await;
    acked.note(OUTBOX_TOPIC, at, event("bi-outbox"));
    send(
        &producer,
        FutureRecord::to(UNMATCHED_TOPIC)
            .partition(0)
            .payload(&saga_state("bi-unmatched", "STARTED")[..]),
    )
    .await;
    // Last: the ingest went on past everything above.
    let last = saga_state("bi-last", "COMPLETED");
    let at = send(
        &producer,
        FutureRecord::to(STATE_TOPIC)
            .partition(0)
            .payload(&last[..]),
    )
    .await;
    acked.note(STATE_TOPIC, at, event("bi-last"));

    let group = "bad-input-odd";
    let ingest = start_ingest(&kafka, &store, &[PATTERN], group, 2);
    let ends = acked.ends();
    let took = Offsets::new(&kafka, &store, group)
        .wait_for(&ends, Duration::from_secs(120), &ingest)
        .await;
    println!(
        "{}: odd messages stored and committed in {took:?}",
        broker.name()
    );
    assert_each_message_accounted_for(&store, group, &acked).await;

    let lossy = headers(
        &saga_detail(&store, "bi-binary-header-values").await,
        binary_values_offset,
    );
    assert_eq!(
        lossy[..2],
        [
            (
                "traceparent".to_string(),
                "\u{fffd}\u{fffd}00-not-utf8".to_string()
            ),
            (
                "x-binary".to_string(),
                "\u{fffd}( \u{0} \u{fffd}".to_string()
            ),
        ]
    );
    // The unusable traceparent is refused visibly, as any malformed one.
    assert!(
        lossy[2..]
            .iter()
            .all(|(key, _)| key == REJECTED_TRACE_HEADER)
            && lossy.len() == 3,
        "{lossy:?}"
    );
    let unreadable = headers(
        &saga_detail(&store, "bi-bad-header-key").await,
        bad_key_offset,
    );
    assert_eq!(
        unreadable,
        [
            (HEADER_KEY_NOT_UTF8.to_string(), String::new()),
            ("x-after".to_string(), "kept".to_string()),
        ]
    );
    let outbox = saga_detail(&store, "bi-outbox").await;
    assert_eq!(outbox.events[0].event_type, "Order\u{fffd}Placed");
    assert_eq!(outbox.events[0].event_id, "evt-\u{2400}-nul");
    assert!(
        stored_offsets(&store, group)
            .await
            .keys()
            .all(|(topic, _)| topic != UNMATCHED_TOPIC),
        "the pattern took {UNMATCHED_TOPIC}"
    );
    let view = ingest.status.view();
    assert_eq!(view.messages, acked.messages.len() as u64, "{view:?}");
    assert!(matches!(view.state, ConsumerState::Running), "{view:?}");
    ingest.stop().await;
    finish(store).await;
}

/// Records far above Kafka's default limit: 2 MiB (above the consumer's
/// per-partition fetch size) on partition 0, then 20 MiB (above its whole
/// fetch and its prefetch queue) on partition 1, then small ones that
/// must still arrive.
///
/// The mock cluster keeps at most 5 MiB per partition log, and appending
/// past that drops the older message sets — and, through a bug in its
/// bookkeeping (`rd_kafka_mock_msgset_new` drops the old sets before the
/// new one is in the list, so the log start moves to the end), the new one
/// too: after [2 MiB, 20 MiB, small] on one partition the log starts at
/// offset 3, its end, and the ingest read nothing in 120 s. So there the
/// 20 MiB record is the last of its partition.
async fn large_messages_are_stored_or_listed_and_the_consumer_goes_on(broker: BrokerKind) {
    let kafka = broker_with(broker, &[LARGE_TOPIC], 2).await;
    let store = fresh_postgres_store().await;
    let producer = producer(&kafka);
    let mut acked = Acked::default();
    let event = |saga: &str| Expect::Event { saga: saga.into() };

    let padding = "p".repeat(LARGE_VALUE);
    let large = format!(
        r#"{{"saga_id":"bi-large","saga_type":"bad_input","status":"STARTED","padding":"{padding}"}}"#
    );
    assert!(large.len() > KAFKA_DEFAULT_MAX_MESSAGE);
    let large_at = send(
        &producer,
        FutureRecord::to(LARGE_TOPIC)
            .partition(0)
            .key(&b"large"[..])
            .payload(large.as_bytes()),
    )
    .await;
    acked.note(LARGE_TOPIC, large_at, event("bi-large"));
    let huge = vec![b'h'; HUGE_VALUE];
    let at = send(
        &producer,
        FutureRecord::to(LARGE_TOPIC)
            .partition(1)
            .key(&b"huge"[..])
            .payload(&huge[..]),
    )
    .await;
    acked.note(
        LARGE_TOPIC,
        at,
        Expect::Error {
            reason: "value is not valid JSON".into(),
        },
    );
    let small = saga_state("bi-large", "COMPLETED");
    let at = send(
        &producer,
        FutureRecord::to(LARGE_TOPIC)
            .partition(0)
            .payload(&small[..]),
    )
    .await;
    acked.note(LARGE_TOPIC, at, event("bi-large"));
    if broker != BrokerKind::MockCluster {
        let after_huge = saga_state("bi-after-huge", "STARTED");
        let at = send(
            &producer,
            FutureRecord::to(LARGE_TOPIC)
                .partition(1)
                .payload(&after_huge[..]),
        )
        .await;
        acked.note(LARGE_TOPIC, at, event("bi-after-huge"));
    }

    let group = "bad-input-large";
    let ingest = start_ingest(&kafka, &store, &[LARGE_TOPIC], group, 100);
    let ends = acked.ends();
    let took = Offsets::new(&kafka, &store, group)
        .wait_for(&ends, Duration::from_secs(120), &ingest)
        .await;
    println!(
        "{}: large messages stored and committed in {took:?}",
        broker.name()
    );
    assert_each_message_accounted_for(&store, group, &acked).await;

    // Stored, bounded: the payload is a flagged, truncated copy.
    let detail = saga_detail(&store, "bi-large").await;
    let event = detail
        .events
        .iter()
        .find(|e| (e.partition, e.offset) == (large_at.0.into(), large_at.1))
        .unwrap();
    assert_eq!(event.payload["sagascope_truncated"], true);
    assert_eq!(event.payload["original_bytes"], large.len());
    assert!(event
        .headers
        .iter()
        .any(|h| h.key == TRUNCATED_HEADER && h.value == large.len().to_string()));
    let errors = store.ingest_errors(10).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].first_bytes, "h".repeat(256));
    ingest.stop().await;
    finish(store).await;
}

/// One topic of 1,000 partitions, a message in each (one of them
/// undecodable): all of them stored, every partition's offset stored and
/// committed, in a bounded time.
async fn a_topic_of_1000_partitions_is_ingested_whole(broker: BrokerKind) {
    let kafka = broker_with(broker, &[WIDE_TOPIC], WIDE_PARTITIONS).await;
    let store = fresh_postgres_store().await;
    let producer = producer(&kafka);
    let values: Vec<(i32, Vec<u8>)> = (0..WIDE_PARTITIONS)
        .map(|p| {
            let value = if p == 500 {
                b"{\"saga_id\": \"cut off".to_vec()
            } else {
                saga_state(&format!("bi-wide-{p}"), "STARTED")
            };
            (p, value)
        })
        .collect();
    // All enqueued before the first is awaited: the producer batches them.
    let deliveries: Vec<_> = values
        .iter()
        .map(|(partition, value)| {
            producer
                .send_result(
                    FutureRecord::<[u8], [u8]>::to(WIDE_TOPIC)
                        .partition(*partition)
                        .payload(&value[..]),
                )
                .map_err(|(error, _)| error)
                .expect("the producer takes the message")
        })
        .collect();
    let mut acked = Acked::default();
    for delivery in deliveries {
        let at = delivery
            .await
            .expect("the producer answers")
            .map_err(|(error, _)| error)
            .expect("the broker acknowledges the message");
        let at = (at.partition, at.offset);
        let expect = if at.0 == 500 {
            Expect::Error {
                reason: "value is not valid JSON".into(),
            }
        } else {
            Expect::Event {
                saga: format!("bi-wide-{}", at.0),
            }
        };
        acked.note(WIDE_TOPIC, at, expect);
    }
    assert_eq!(
        acked
            .messages
            .iter()
            .map(|(c, _)| c.partition)
            .collect::<HashSet<_>>()
            .len(),
        WIDE_PARTITIONS as usize
    );

    let group = "bad-input-wide";
    let ingest = start_ingest(&kafka, &store, &[WIDE_TOPIC], group, 1000);
    let ends = acked.ends();
    let took = Offsets::new(&kafka, &store, group)
        .wait_for(&ends, Duration::from_secs(180), &ingest)
        .await;
    println!(
        "{}: 1,000 partitions stored and committed in {took:?}",
        broker.name()
    );
    assert_each_message_accounted_for(&store, group, &acked).await;
    assert_eq!(
        ingest.status.view().assigned_partitions,
        WIDE_PARTITIONS as usize
    );
    ingest.stop().await;
    finish(store).await;
}

/// Closes the store and drops its database (kept when the test failed
/// before: the panic skips this).
async fn finish(store: Store) {
    let url = store.postgres_url().unwrap().to_string();
    store.close().await;
    drop_postgres_database(&url).await;
}

sagascope_test_brokers::on_both_brokers!(
    odd_messages_are_each_an_event_or_an_ingest_error,
    large_messages_are_stored_or_listed_and_the_consumer_goes_on,
    a_topic_of_1000_partitions_is_ingested_whole,
);
