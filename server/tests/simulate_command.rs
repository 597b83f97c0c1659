//! `sagascope simulate`, the docker-compose sample producer, against
//! librdkafka's mock cluster: it finds its topics there, produces sagas,
//! and sends its services' spans to the OTLP endpoint with the bearer
//! token; it stops when told. (The mock cluster has no CreateTopics, so
//! the creation of missing topics is left to a real cluster.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use sagascope::cli::SimulateArgs;
use sagascope::simulate_command::simulate_until;
use sagascope_simulator::{MockKafka, ALL_TOPICS, DLT_TOPICS};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_creates_its_topics_and_exports_spans_with_the_token() {
    let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
    let kafka = MockKafka::start(1, &topics, 2).unwrap();
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
        partitions: 2,
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
    let (traces, _) = received_ids(&received);
    assert!(traces.iter().all(|t| t.len() == 32));
    server.abort();
}
