//! Dead letters over the real Kafka protocol (librdkafka's mock cluster
//! and Tansu, one body): messages of the DLQ topics become dead letters with their original
//! coordinates, never events or ingest errors; their offsets are stored
//! and committed like any other; a second consumer group re-reading them
//! changes nothing.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::{IngestConfig, Ingestor};
use sagascope_model::{DeadLetterState, DlqQuery};
use sagascope_simulator::{
    spring_dead_letter, DeadLetterMessage, FailureReason, OriginalDelivery, PlannedOutcome,
    SagaKind, SagaPlan, Simulator, SimulatorConfig, ALL_TOPICS, DEMO_RULES, DLT_TOPICS,
    PAYMENT_EVENTS_TOPIC, SHOP_OUTBOX_CDC_TOPIC,
};
use sagascope_store::test_support::fresh_sqlite_store;
use sagascope_store::{CountedTable, Store};
use sagascope_test_brokers::{BrokerKind, TestBroker};
use tokio::sync::{broadcast, watch};

const DLT: &str = "payments.events.DLT";

/// (original topic, partition, offset, format) of a stored dead letter.
type Origin<'a> = (Option<&'a str>, Option<i64>, Option<i64>, &'a str);
const PARTITIONS: i32 = 2;

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(kafka: &TestBroker, store: &Store, group: &str) -> Running {
        let mut config = IngestConfig::new(
            kafka.bootstrap_servers(),
            vec![
                "saga.state".into(),
                PAYMENT_EVENTS_TOPIC.into(),
                SHOP_OUTBOX_CDC_TOPIC.into(),
            ],
            group,
        );
        config.dlq_topics = vec!["^.*\\.DLT$".into()];
        config.batch_linger = Duration::from_millis(50);
        config.session_timeout = Duration::from_secs(6);
        let (live, _) = broadcast::channel(1000);
        let decoder = Decoder::new(Rules::parse(DEMO_RULES).unwrap());
        let ingestor = Ingestor::new(config, store.clone(), decoder, live).unwrap();
        let (stop, stop_rx) = watch::channel(false);
        Running {
            stop,
            task: tokio::spawn(ingestor.run(stop_rx)),
        }
    }

    /// Graceful stop, bounded (rust-rdkafka issue 509).
    async fn stop(self) {
        self.stop.send(true).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The group's committed offsets on the DLT, summed over its partitions
/// (= messages consumed, as every partition starts at 0).
fn committed_on_dlt(brokers: &str, group: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut request = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        request
            .add_partition_offset(DLT, partition, Offset::Invalid)
            .unwrap();
    }
    consumer
        .committed_offsets(request, Duration::from_secs(5))
        .unwrap()
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(n) => n,
            _ => 0,
        })
        .sum()
}

async fn all_dead_letters(store: &Store) -> Vec<sagascope_model::DeadLetterSummary> {
    let query = DlqQuery {
        limit: 100,
        ..DlqQuery::default()
    };
    store.list_dead_letters(&query).await.unwrap().items
}

async fn dlq_messages_become_dead_letters_with_their_origin_and_offsets_are_committed(
    broker: BrokerKind,
) {
    let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
    let kafka = TestBroker::start(broker, &topics, PARTITIONS).unwrap();
    let brokers = kafka.bootstrap_servers().to_string();
    let store = fresh_sqlite_store().await;
    let simulator = Simulator::new(SimulatorConfig {
        brokers: brokers.clone(),
        events_per_second: 0.0,
        poison_ratio: 0.0,
        seed: 1,
    })
    .unwrap();

    // A normal saga beside the dead letters of one of its payment events.
    let mut rng = StdRng::seed_from_u64(17);
    let plan = SagaPlan::with_outcome(
        SagaKind::OrderChoreography,
        PlannedOutcome::Completed,
        &mut rng,
    );
    let base = chrono::Utc::now() - chrono::Duration::seconds(30);
    simulator
        .produce_plan_now(&plan, base, &mut rng)
        .await
        .unwrap();
    let payment = plan
        .messages
        .iter()
        .position(|m| m.topic == PAYMENT_EVENTS_TOPIC)
        .unwrap();
    let original = plan.render(payment, base, &mut rng);
    for (offset, reason) in [
        (100, FailureReason::Deserialization),
        (101, FailureReason::StatementTimeout),
    ] {
        let delivered = OriginalDelivery {
            partition: 1,
            offset,
            timestamp_ms: base.timestamp_millis(),
        };
        let letter = spring_dead_letter(&original, &delivered, reason, base, &mut rng);
        simulator.produce_dead_letter(&letter).await.unwrap();
    }
    // No dead-letter headers at all: still a dead letter, of unknown origin.
    simulator
        .produce_dead_letter(&DeadLetterMessage {
            topic: DLT.into(),
            key: "mystery".into(),
            value: Some(b"not json".to_vec()),
            headers: vec![],
            timestamp_ms: base.timestamp_millis(),
        })
        .await
        .unwrap();

    let running = Running::start(&kafka, &store, "g-dlq");
    wait_for("the dead letters and the saga", async || {
        all_dead_letters(&store).await.len() == 3
            && store.count(CountedTable::Events).await.unwrap() == plan.event_count() as i64
    })
    .await;
    let letters = all_dead_letters(&store).await;
    let mut origins: Vec<Origin<'_>> = letters
        .iter()
        .map(|l| {
            (
                l.original_topic.as_deref(),
                l.original_partition,
                l.original_offset,
                l.format.as_str(),
            )
        })
        .collect();
    origins.sort();
    assert_eq!(
        origins,
        [
            (None, None, None, "unknown"),
            (Some(PAYMENT_EVENTS_TOPIC), Some(1), Some(100), "spring"),
            (Some(PAYMENT_EVENTS_TOPIC), Some(1), Some(101), "spring"),
        ]
    );
    assert!(letters
        .iter()
        .all(|l| l.dlq_topic == DLT && l.state == DeadLetterState::New));
    assert!(
        letters
            .iter()
            .filter(|l| l.format == "spring")
            .all(|l| l.saga_id.as_deref() == Some(plan.saga_id.as_str())),
        "linked to the saga by the trace they carry: {letters:?}"
    );
    assert_eq!(store.count(CountedTable::IngestErrors).await.unwrap(), 0);
    let detail = store
        .dead_letter(&letters[0].id)
        .await
        .unwrap()
        .expect("the detail");
    assert_eq!(
        detail.summary.id,
        format!(
            "{DLT}/{}/{}",
            detail.summary.dlq_partition, detail.summary.dlq_offset
        )
    );

    // Offsets: in the store with the batch, then committed to Kafka.
    let stored: i64 = store
        .partition_progress("g-dlq")
        .await
        .unwrap()
        .iter()
        .filter(|p| p.topic == DLT)
        .map(|p| p.next_offset)
        .sum();
    assert_eq!(stored, 3);
    wait_for("the committed DLT offsets", async || {
        let brokers = brokers.clone();
        tokio::task::spawn_blocking(move || committed_on_dlt(&brokers, "g-dlq"))
            .await
            .unwrap()
            == 3
    })
    .await;
    running.stop().await;

    // Another group reads everything again: nothing new is stored.
    let again = Running::start(&kafka, &store, "g-dlq-again");
    wait_for("the second group's offsets", async || {
        store
            .partition_progress("g-dlq-again")
            .await
            .unwrap()
            .iter()
            .filter(|p| p.topic == DLT)
            .map(|p| p.next_offset)
            .sum::<i64>()
            == 3
    })
    .await;
    assert_eq!(all_dead_letters(&store).await, letters);
    again.stop().await;
}

sagascope_test_brokers::on_both_brokers!(
    dlq_messages_become_dead_letters_with_their_origin_and_offsets_are_committed
);
