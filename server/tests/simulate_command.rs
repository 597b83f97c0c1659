//! `sagascope simulate`, the docker-compose sample producer, on
//! librdkafka's mock cluster and on Tansu: it has its topics (on Tansu it
//! creates them itself, with CreateTopics, as on a real cluster; the mock
//! cluster has no CreateTopics, so there they exist beforehand), produces
//! sagas to them, and sends its services' spans to the OTLP endpoint with
//! the bearer token; it stops when told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use sagascope::cli::SimulateArgs;
use sagascope::simulate_command::simulate_until;
use sagascope_simulator::{ALL_TOPICS, DLT_TOPICS};
use sagascope_test_brokers::{BrokerKind, TestBroker};
use serde_json::Value;

/// Each export request's Authorization header and body.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn receive(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match serde_json::from_slice(&body) {
        Ok(body) => {
            received.lock().unwrap().push((authorization, body));
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// Trace ids and saga ids of the received spans.
fn received_ids(received: &Received) -> (Vec<String>, Vec<String>) {
    let (mut traces, mut sagas) = (Vec::new(), Vec::new());
    for (_, body) in received.lock().unwrap().iter() {
        for resource in body["resourceSpans"].as_array().unwrap() {
            for span in resource["scopeSpans"][0]["spans"].as_array().unwrap() {
                traces.push(span["traceId"].as_str().unwrap().to_string());
                for attribute in span["attributes"].as_array().unwrap() {
                    if attribute["key"] == "saga.id" {
                        let id = attribute["value"]["stringValue"].as_str().unwrap();
                        sagas.push(id.to_string());
                    }
                }
            }
        }
    }
    (traces, sagas)
}

const PARTITIONS: i32 = 2;

async fn simulate_creates_its_topics_and_exports_spans_with_the_token(broker: BrokerKind) {
    let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
    let kafka = match broker {
        BrokerKind::MockCluster => TestBroker::start(broker, &topics, PARTITIONS),
        // An empty broker: simulate creates every topic.
        BrokerKind::Tansu => TestBroker::start(broker, &[], PARTITIONS),
    }
    .unwrap();
    let received: Received = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let args = SimulateArgs {
        brokers: kafka.bootstrap_servers().to_string(),
        rate: 60.0,
        partitions: PARTITIONS,
        replication_factor: 1,
        poison_ratio: 0.0,
        dead_letter_ratio: 0.0,
        otlp_endpoint: Some(endpoint),
        otlp_bearer_token: Some("compose-token".parse().unwrap()),
        seed: Some(7),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let simulator = tokio::spawn(simulate_until(args, async {
        let _ = stopped.await;
    }));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if simulator.is_finished() {
            panic!("simulate ended early: {:?}", simulator.await);
        }
        let (traces, sagas) = received_ids(&received);
        if traces.len() >= 20 && !sagas.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} spans arrived",
            traces.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), simulator)
        .await
        .expect("simulate stops when told")
        .unwrap()
        .unwrap();
    {
        let requests = received.lock().unwrap();
        assert!(requests
            .iter()
            .all(|(authorization, _)| authorization.as_deref() == Some("Bearer compose-token")));
    }
    let (traces, sagas) = received_ids(&received);
    assert!(traces.iter().all(|t| t.len() == 32));
    server.abort();

    let sagas: std::collections::HashSet<String> = sagas.into_iter().collect();
    let brokers = kafka.bootstrap_servers().to_string();
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    let messages = tokio::task::spawn_blocking(move || read_saga_topics(&brokers, &topics))
        .await
        .unwrap();
    // Every saga with spans was produced: at least one message each.
    assert!(
        messages >= sagas.len() && !sagas.is_empty(),
        "{messages} messages on the saga topics for {} sagas",
        sagas.len()
    );
}

/// Checks that every topic of the simulator is there with its partitions
/// and returns how many messages the saga topics hold (read from their
/// beginning to the end the fetch answers report).
fn read_saga_topics(brokers: &str, topics: &[String]) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "simulate-command-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for topic in topics {
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .unwrap_or_else(|| panic!("{topic} is not on the broker"));
        assert_eq!(found.partitions().len(), PARTITIONS as usize, "{topic}");
        if ALL_TOPICS.contains(&topic.as_str()) {
            for partition in 0..PARTITIONS {
                assignment
                    .add_partition_offset(topic, partition, Offset::Beginning)
                    .unwrap();
            }
        }
    }
    consumer.assign(&assignment).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut read, mut ended) = (0, 0);
    while ended < assignment.count() {
        assert!(
            std::time::Instant::now() < deadline,
            "{ended} of {} partitions read to their end",
            assignment.count()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => read += 1,
            Some(Err(KafkaError::PartitionEOF(_))) => ended += 1,
            Some(Err(error)) => panic!("cannot read the saga topics: {error}"),
            None => {}
        }
    }
    read
}

sagascope_test_brokers::on_both_brokers!(
    simulate_creates_its_topics_and_exports_spans_with_the_token
);
