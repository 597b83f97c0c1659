//! Readiness on a new cluster: the default `--dlq-topics` pattern matches no
//! topic until the first dead letter. librdkafka reports that as a client
//! error ("Subscribed topic not available: ^.*\.(DLT|dlq|DLQ)$"); it must
//! not leave the consumer degraded (a Kubernetes readiness probe would never
//! pass), but be listed as information until a matching topic appears.
//! On librdkafka's mock cluster and on Tansu.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::{
    ConsumerState, IngestConfig, IngestStatusView, Ingestor, DEFAULT_DLQ_TOPICS,
};
use sagascope_simulator::{
    DeadLetterMessage, PlannedOutcome, SagaKind, SagaPlan, Simulator, SimulatorConfig, ALL_TOPICS,
    DEMO_RULES,
};
use sagascope_store::test_support::fresh_sqlite_store;
use sagascope_store::CountedTable;
use sagascope_test_brokers::{BrokerKind, TestBroker};
use tokio::sync::{broadcast, watch};

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

fn unmatched(view: &IngestStatusView) -> Vec<&str> {
    view.unmatched_subscriptions
        .iter()
        .map(|u| u.subscription.as_str())
        .collect()
}

async fn a_dlq_pattern_matching_no_topic_keeps_the_consumer_ready(broker: BrokerKind) {
    // The saga topics exist; no dead-letter topic does.
    let kafka = TestBroker::start(broker, &ALL_TOPICS, 2).unwrap();
    let store = fresh_sqlite_store().await;
    let simulator = Simulator::new(SimulatorConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        events_per_second: 0.0,
        poison_ratio: 0.0,
        seed: 7,
    })
    .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let plan = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng);
    simulator
        .produce_plan_now(&plan, chrono::Utc::now(), &mut rng)
        .await
        .unwrap();

    let mut config = IngestConfig::new(
        kafka.bootstrap_servers(),
        vec!["saga.state".into(), "^events\\..*".into()],
        "g-readiness",
    );
    config.dlq_topics = vec![DEFAULT_DLQ_TOPICS.into()];
    config.batch_linger = Duration::from_millis(50);
    config.session_timeout = Duration::from_secs(6);
    let (live, _live_rx) = broadcast::channel(1000);
    let ingestor = Ingestor::new(
        config,
        store.clone(),
        Decoder::new(Rules::parse(DEMO_RULES).unwrap()),
        live,
    )
    .unwrap();
    let status = ingestor.status();
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(ingestor.run(stop_rx));

    wait_for("the saga's events", async || {
        store.count(CountedTable::Events).await.unwrap() == plan.event_count() as i64
    })
    .await;
    // librdkafka reports the unmatched pattern with its metadata; the
    // consumer stays running and lists it.
    wait_for("the unmatched DLQ pattern to be listed", async || {
        unmatched(&status.view()).contains(&DEFAULT_DLQ_TOPICS)
    })
    .await;
    // Over two metadata refreshes (5 s each) it stays ready.
    let until = Instant::now() + Duration::from_secs(11);
    while Instant::now() < until {
        let view = status.view();
        assert!(
            matches!(view.state, ConsumerState::Running),
            "the consumer must stay ready: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The first dead letter creates a matching topic (both brokers create
    // a topic a producer asks for, as a Kafka with
    // `auto.create.topics.enable`): no longer unmatched.
    simulator
        .produce_dead_letter(&DeadLetterMessage {
            topic: "payments.DLT".into(),
            key: "order-1".into(),
            value: Some(br#"{"orderId":"order-1"}"#.to_vec()),
            headers: vec![("kafka_dlt-exception-message".into(), b"boom".to_vec())],
            timestamp_ms: chrono::Utc::now().timestamp_millis(),
        })
        .await
        .unwrap();
    wait_for("the pattern to match the new DLT topic", async || {
        !unmatched(&status.view()).contains(&DEFAULT_DLQ_TOPICS)
    })
    .await;
    assert!(matches!(status.view().state, ConsumerState::Running));

    stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
}

sagascope_test_brokers::on_both_brokers!(a_dlq_pattern_matching_no_topic_keeps_the_consumer_ready);
