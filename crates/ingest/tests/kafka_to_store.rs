//! Kafka integration: the simulator produces over the Kafka protocol, the
//! ingest consumes into a real store. Every test runs on librdkafka's mock
//! cluster and on Tansu (`mock_cluster::…`, `tansu::…`).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::{IngestConfig, Ingestor};
use sagascope_model::{CatchUpState, MetricsWindow, SagaStatus, StreamMessage};
use sagascope_simulator::{
    PlannedOutcome, SagaKind, SagaPlan, Simulator, SimulatorConfig, ALL_TOPICS, DEMO_RULES,
};
use sagascope_store::test_support::fresh_sqlite_store;
use sagascope_store::{CountedTable, Store};
use sagascope_test_brokers::{BrokerKind, TestBroker};
use tokio::sync::{broadcast, watch};

fn simulator(kafka: &TestBroker) -> Simulator {
    Simulator::new(SimulatorConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        events_per_second: 0.0,
        poison_ratio: 0.0,
        seed: 1,
    })
    .unwrap()
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start_ingest(
    kafka: &TestBroker,
    store: &Store,
    group: &str,
    batch_size: usize,
) -> (Running, broadcast::Receiver<StreamMessage>) {
    let mut config = IngestConfig::new(
        kafka.bootstrap_servers(),
        vec!["saga.state".into(), "^events\\..*".into()],
        group,
    );
    config.batch_size = batch_size;
    config.batch_linger = Duration::from_millis(50);
    config.session_timeout = Duration::from_secs(6);
    let (live, live_rx) = broadcast::channel(10_000);
    let decoder = Decoder::new(Rules::parse(DEMO_RULES).unwrap());
    let ingestor = Ingestor::new(config, store.clone(), decoder, live).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(ingestor.run(stop_rx));
    (Running { stop, task }, live_rx)
}

impl Running {
    /// Graceful stop, bounded: consumer teardown can hang on a saturated
    /// machine (rust-rdkafka issue 509).
    async fn stop(self) {
        self.stop.send(true).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    // Generous: a restarted member first waits out the crashed one's
    // session, which takes long on a loaded machine (on Tansu about 20 s).
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn expected_status(outcome: PlannedOutcome) -> SagaStatus {
    match outcome {
        PlannedOutcome::Completed => SagaStatus::Completed,
        PlannedOutcome::Failed => SagaStatus::Failed,
        PlannedOutcome::Compensated => SagaStatus::Compensated,
        PlannedOutcome::CompensationFailed => SagaStatus::CompensationFailed,
        PlannedOutcome::TimedOut => SagaStatus::TimedOut,
        // Stalling is the sweep's call, later; the projection says running.
        PlannedOutcome::Stalled => SagaStatus::Running,
    }
}

fn every_kind_of_saga(rng: &mut StdRng) -> Vec<SagaPlan> {
    vec![
        SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, rng),
        SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Compensated, rng),
        SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Failed, rng),
        SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::TimedOut, rng),
        SagaPlan::with_outcome(SagaKind::ScanReward, PlannedOutcome::Completed, rng),
        SagaPlan::with_outcome(SagaKind::ScanReward, PlannedOutcome::Compensated, rng),
        SagaPlan::with_outcome(SagaKind::ChatMessage, PlannedOutcome::Completed, rng),
        SagaPlan::with_outcome(
            SagaKind::ChatMessage,
            PlannedOutcome::CompensationFailed,
            rng,
        ),
    ]
}

async fn produced_sagas_become_rows_with_offsets_and_live_messages(broker: BrokerKind) {
    let kafka = TestBroker::start(broker, &ALL_TOPICS, 3).unwrap();
    let store = fresh_sqlite_store().await;
    let mut rng = StdRng::seed_from_u64(42);
    let plans = every_kind_of_saga(&mut rng);
    let producer = simulator(&kafka);
    let base = chrono::Utc::now();
    for plan in &plans {
        producer
            .produce_plan_now(plan, base, &mut rng)
            .await
            .unwrap();
    }
    let total: usize = plans.iter().map(|p| p.event_count()).sum();

    let (running, mut live) = start_ingest(&kafka, &store, "g-rows", 1000);
    wait_for("all events", async || {
        store.count(CountedTable::Events).await.unwrap() == total as i64
    })
    .await;

    for plan in &plans {
        let detail = store
            .saga_detail(&plan.saga_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("saga {} missing", plan.saga_id));
        assert_eq!(
            detail.saga.status,
            expected_status(plan.outcome),
            "{:?} {:?}",
            plan.kind,
            plan.outcome
        );
        assert_eq!(detail.events.len(), plan.event_count());
        assert_eq!(detail.saga.trace_ids, vec![plan.trace_id.clone()]);
        let expected_type = match plan.kind {
            SagaKind::Order => "order",
            SagaKind::ScanReward => "scan_reward",
            SagaKind::ChatMessage => "chat_message",
            SagaKind::OrderChoreography => "order_choreography",
        };
        assert_eq!(detail.saga.saga_type, expected_type);
    }
    assert_eq!(
        store.count(CountedTable::Sagas).await.unwrap(),
        plans.len() as i64
    );
    assert_eq!(store.count(CountedTable::IngestErrors).await.unwrap(), 0);

    // The store holds the next offset of every partition it consumed.
    wait_for("offsets", async || {
        let progress = store.partition_progress("g-rows").await.unwrap();
        progress.iter().map(|p| p.next_offset).sum::<i64>() == total as i64
    })
    .await;

    // Live subscribers saw saga upserts and every new event.
    let mut live_events = 0;
    while let Ok(message) = live.try_recv() {
        if matches!(message, StreamMessage::Event { .. }) {
            live_events += 1;
        }
    }
    assert_eq!(live_events, total);
    running.stop().await;
}

async fn crash_and_restart_mid_stream_loses_nothing_and_duplicates_nothing(broker: BrokerKind) {
    let kafka = TestBroker::start(broker, &ALL_TOPICS, 3).unwrap();
    let store = fresh_sqlite_store().await;
    let mut rng = StdRng::seed_from_u64(7);
    let producer = simulator(&kafka);
    let mut plans = Vec::new();
    for _ in 0..12 {
        plans.extend(every_kind_of_saga(&mut rng));
    }
    let total: usize = plans.iter().map(|p| p.event_count()).sum();
    let (first_half, second_half) = plans.split_at(plans.len() / 2);
    let base = chrono::Utc::now();
    for plan in first_half {
        producer
            .produce_plan_now(plan, base, &mut rng)
            .await
            .unwrap();
    }

    // Small batches, then a crash (task aborted, no graceful drain) part-way.
    let (running, _live) = start_ingest(&kafka, &store, "g-restart", 7);
    wait_for("some events", async || {
        store.count(CountedTable::Events).await.unwrap() > 20
    })
    .await;
    running.task.abort();
    let _ = tokio::time::timeout(Duration::from_secs(20), running.task).await;

    for plan in second_half {
        producer
            .produce_plan_now(plan, base, &mut rng)
            .await
            .unwrap();
    }
    let (running, _live) = start_ingest(&kafka, &store, "g-restart", 50);
    wait_for("all events after restart", async || {
        store.count(CountedTable::Events).await.unwrap() == total as i64
    })
    .await;
    // Nothing more arrives later either (no duplicate rows possible, no extras).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.count(CountedTable::Events).await.unwrap(),
        total as i64
    );
    for plan in &plans {
        let saga = store
            .saga_detail(&plan.saga_id)
            .await
            .unwrap()
            .unwrap()
            .saga;
        assert_eq!(
            saga.event_count,
            plan.event_count() as i64,
            "event_count counts each event once"
        );
        assert_eq!(saga.status, expected_status(plan.outcome));
    }
    running.stop().await;
}

async fn poison_messages_become_ingest_errors_and_ingest_continues(broker: BrokerKind) {
    let kafka = TestBroker::start(broker, &ALL_TOPICS, 1).unwrap();
    let store = fresh_sqlite_store().await;
    let mut rng = StdRng::seed_from_u64(3);
    let producer = simulator(&kafka);
    let before = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng);
    let after = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Compensated, &mut rng);
    let base = chrono::Utc::now();
    producer
        .produce_plan_now(&before, base, &mut rng)
        .await
        .unwrap();
    let poison = sagascope_simulator::RenderedMessage {
        topic: "saga.state",
        key: "bad-key".into(),
        value: Some(b"{\"saga_id\": \"ord-broken\", \"status\": ".to_vec()),
        headers: vec![],
    };
    producer.produce(&poison).await.unwrap();
    producer
        .produce_plan_now(&after, base, &mut rng)
        .await
        .unwrap();
    let total = before.event_count() + after.event_count();

    let (running, _live) = start_ingest(&kafka, &store, "g-poison", 1000);
    wait_for("events around the poison", async || {
        store.count(CountedTable::Events).await.unwrap() == total as i64
    })
    .await;
    let errors = store.ingest_errors(10).await.unwrap();
    assert_eq!(errors.len(), 1);
    let error = &errors[0];
    assert_eq!(
        (error.topic.as_str(), error.partition, error.offset),
        ("saga.state", 0, before.messages.len() as i64)
    );
    assert!(
        error.reason.starts_with("value is not valid JSON"),
        "{}",
        error.reason
    );
    assert_eq!(
        error.first_bytes,
        "{\"saga_id\": \"ord-broken\", \"status\": "
    );
    assert_eq!(error.key.as_deref(), Some("bad-key"));
    assert_eq!(
        store
            .saga_detail(&after.saga_id)
            .await
            .unwrap()
            .unwrap()
            .saga
            .status,
        SagaStatus::Compensated
    );
    running.stop().await;
}

/// Sagas already in Kafka when the ingest starts (stamped 20 minutes ago)
/// are its catch-up: stored like any others, their ingested − Kafka time
/// goes to the catch-up, not to the consumer lag; a saga produced after
/// the start is consumer lag as before.
///
/// The catch-up's bounds are the high watermarks (ListOffsets) at the
/// start. The simulator produces one message per request, each awaited,
/// so they hold on Tansu 0.6 too, which answers "latest" with the newest
/// batch's base offset + 1 (short of the end after a batch of several).
async fn history_present_at_start_is_a_catch_up_not_consumer_lag(broker: BrokerKind) {
    let kafka = TestBroker::start(broker, &ALL_TOPICS, 3).unwrap();
    let store = fresh_sqlite_store().await;
    let mut rng = StdRng::seed_from_u64(7);
    let plans = every_kind_of_saga(&mut rng);
    let producer = simulator(&kafka);
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(20);
    for plan in &plans {
        producer
            .produce_plan_now(plan, long_ago, &mut rng)
            .await
            .unwrap();
    }
    let history: usize = plans.iter().map(|p| p.event_count()).sum();

    let mut config = IngestConfig::new(
        kafka.bootstrap_servers(),
        vec!["saga.state".into(), "^events\\..*".into()],
        "g-catch-up",
    );
    config.batch_linger = Duration::from_millis(50);
    config.session_timeout = Duration::from_secs(6);
    let (live, _live_rx) = broadcast::channel(10_000);
    let decoder = Decoder::new(Rules::parse(DEMO_RULES).unwrap());
    let ingestor = Ingestor::new(config, store.clone(), decoder, live).unwrap();
    let status = ingestor.status();
    let (stop, stop_rx) = watch::channel(false);
    let running = Running {
        stop,
        task: tokio::spawn(ingestor.run(stop_rx)),
    };
    wait_for("the history", async || {
        store.count(CountedTable::Events).await.unwrap() == history as i64
    })
    .await;
    wait_for("the end of the catch-up", async || {
        status
            .catch_up_view()
            .is_some_and(|c| c.state == CatchUpState::CaughtUp)
    })
    .await;
    let view = status.view();
    assert!(view.assigned_partitions > 0, "{view:?}");
    let catch_up = view.catchup.unwrap();
    assert_eq!(
        (catch_up.backlog, catch_up.consumed, catch_up.remaining),
        (history as i64, history as i64, 0),
        "{catch_up:?}"
    );
    assert!(
        catch_up.oldest_age_ms.unwrap() >= 20 * 60_000,
        "{catch_up:?}"
    );
    assert!(catch_up
        .summary()
        .starts_with(&format!("Caught up with {history} messages of history in ")));

    let lag_counts = async || {
        let m = store
            .window_metrics(MetricsWindow::Hour1, chrono::Utc::now())
            .await
            .unwrap();
        let consumer: i64 = m.topics.iter().map(|t| t.lag.consumer.count).sum();
        let catchup: i64 = m.topics.iter().map(|t| t.lag.catchup.count).sum();
        (consumer, catchup)
    };
    assert_eq!(lag_counts().await, (0, history as i64));

    // Produced after the start: consumer lag, as before.
    let fresh = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng);
    producer
        .produce_plan_now(&fresh, chrono::Utc::now(), &mut rng)
        .await
        .unwrap();
    let total = history + fresh.event_count();
    wait_for("the fresh saga", async || {
        store.count(CountedTable::Events).await.unwrap() == total as i64
    })
    .await;
    assert_eq!(
        lag_counts().await,
        (fresh.event_count() as i64, history as i64)
    );
    assert_eq!(status.catch_up_view().unwrap().consumed, history as i64);
    running.stop().await;
}

sagascope_test_brokers::on_both_brokers!(
    produced_sagas_become_rows_with_offsets_and_live_messages,
    crash_and_restart_mid_stream_loses_nothing_and_duplicates_nothing,
    poison_messages_become_ingest_errors_and_ingest_continues,
    history_present_at_start_is_a_catch_up_not_consumer_lag,
);
