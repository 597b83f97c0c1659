//! The read model, not Kafka, says where each partition resumes: the
//! offsets stored in the same transaction as the data. Kafka's committed
//! offsets are advisory (kept for lag tools), so a database that lacks
//! data re-reads it, and a database that has it does not read it twice.
//! Both tests run on librdkafka's mock cluster and on Tansu.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::{IngestConfig, IngestStatus, Ingestor};
use sagascope_simulator::{
    PlannedOutcome, SagaKind, SagaPlan, Simulator, SimulatorConfig, ALL_TOPICS, DEMO_RULES,
};
use sagascope_store::test_support::fresh_sqlite_store;
use sagascope_store::{CountedTable, Store};
use sagascope_test_brokers::{BrokerKind, TestBroker};
use tokio::sync::{broadcast, watch};

const TOPICS: [&str; 2] = ["saga.state", "^events\\..*"];

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    status: Arc<IngestStatus>,
}

fn start_ingest(kafka: &TestBroker, store: &Store, group: &str) -> Running {
    let mut config = IngestConfig::new(
        kafka.bootstrap_servers(),
        TOPICS.iter().map(|t| t.to_string()).collect(),
        group,
    );
    config.batch_linger = Duration::from_millis(50);
    config.session_timeout = Duration::from_secs(6);
    let (live, _) = broadcast::channel(10_000);
    let decoder = Decoder::new(Rules::parse(DEMO_RULES).unwrap());
    let ingestor = Ingestor::new(config, store.clone(), decoder, live).unwrap();
    let status = ingestor.status();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(ingestor.run(stop_rx));
    Running { stop, task, status }
}

impl Running {
    /// Graceful stop (its last step commits the offsets to Kafka too),
    /// bounded: consumer teardown can hang on a saturated machine.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

async fn wait_for_events(store: &Store, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = store.count(CountedTable::Events).await.unwrap();
        if stored == expected as i64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out: {stored} of {expected} events stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Produces a few sagas of every kind; returns how many events they are.
async fn produce_sagas(kafka: &TestBroker, seed: u64) -> usize {
    let producer = Simulator::new(SimulatorConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        events_per_second: 0.0,
        poison_ratio: 0.0,
        seed,
    })
    .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let plans = [
        SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng),
        SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Compensated, &mut rng),
        SagaPlan::with_outcome(SagaKind::ScanReward, PlannedOutcome::Completed, &mut rng),
        SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Failed, &mut rng),
    ];
    let base = chrono::Utc::now();
    for plan in &plans {
        producer
            .produce_plan_now(plan, base, &mut rng)
            .await
            .unwrap();
    }
    plans.iter().map(SagaPlan::event_count).sum()
}

/// Commits offset 0 for every partition of the topics to `group` in
/// Kafka, as `kafka-consumer-groups --reset-offsets --to-earliest` would:
/// joins the group (the broker takes commits from members only), waits for
/// its assignment, commits, leaves.
fn rewind_kafka_offsets(kafka: &TestBroker, group: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&TOPICS).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let assignment = loop {
        // Polling drives the group join; messages are not looked at.
        let _ = consumer.poll(Duration::from_millis(100));
        let assignment = consumer.assignment().unwrap();
        if assignment.count() > 0 {
            break assignment;
        }
        assert!(Instant::now() < deadline, "no assignment to rewind");
    };
    let mut offsets = TopicPartitionList::new();
    for element in assignment.elements() {
        offsets
            .add_partition_offset(element.topic(), element.partition(), Offset::Offset(0))
            .unwrap();
    }
    consumer.commit(&offsets, CommitMode::Sync).unwrap();
}

async fn a_new_database_reads_the_topics_again_whatever_kafka_committed(broker: BrokerKind) {
    let kafka = TestBroker::start(broker, &ALL_TOPICS, 3).unwrap();
    let total = produce_sagas(&kafka, 7).await;

    let first = fresh_sqlite_store().await;
    let running = start_ingest(&kafka, &first, "g-new-database");
    wait_for_events(&first, total).await;
    running.stop().await;

    // Same group, so Kafka's committed offsets say "all read"; the new
    // database has no offsets of its own, so every partition starts over.
    let second = fresh_sqlite_store().await;
    let running = start_ingest(&kafka, &second, "g-new-database");
    wait_for_events(&second, total).await;
    assert_eq!(running.status.duplicates.load(Ordering::Relaxed), 0);
    running.stop().await;
}

async fn a_restart_resumes_at_the_stored_offsets_even_when_kafka_was_rewound(broker: BrokerKind) {
    let kafka = TestBroker::start(broker, &ALL_TOPICS, 3).unwrap();
    let first_part = produce_sagas(&kafka, 11).await;
    let store = fresh_sqlite_store().await;
    let running = start_ingest(&kafka, &store, "g-rewound");
    wait_for_events(&store, first_part).await;
    running.stop().await;

    // Kafka now says "nothing read"; the database says "all of it".
    rewind_kafka_offsets(&kafka, "g-rewound");
    let second_part = produce_sagas(&kafka, 12).await;
    let running = start_ingest(&kafka, &store, "g-rewound");
    wait_for_events(&store, first_part + second_part).await;
    // Nothing was read twice: the consumer started where the data ends.
    assert_eq!(running.status.duplicates.load(Ordering::Relaxed), 0);
    assert_eq!(
        running.status.messages.load(Ordering::Relaxed),
        second_part as u64
    );
    running.stop().await;
}

sagascope_test_brokers::on_both_brokers!(
    a_new_database_reads_the_topics_again_whatever_kafka_committed,
    a_restart_resumes_at_the_stored_offsets_even_when_kafka_was_rewound,
);
