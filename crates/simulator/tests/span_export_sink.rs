//! The span export against a real HTTP sink: spans of sagas produced while
//! the endpoint is not up yet arrive once it is, in batches, with the
//! bearer token, as OTLP JSON.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sagascope_simulator::{
    spans_of_saga, MockKafka, PlannedOutcome, SagaKind, SagaPlan, Simulator, SimulatorConfig,
    SpanExport, ALL_TOPICS, MAX_BATCH_SPANS,
};
use serde_json::Value;

/// Each request's Authorization header and body.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn receive(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Ok(body) = serde_json::from_slice(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON");
    };
    received.lock().unwrap().push((authorization, body));
    (StatusCode::OK, "{}")
}

/// Spans per trace id in the received bodies.
fn spans_by_trace(received: &Received) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, body) in received.lock().unwrap().iter() {
        for resource in body["resourceSpans"].as_array().unwrap() {
            for scope in resource["scopeSpans"].as_array().unwrap() {
                for span in scope["spans"].as_array().unwrap() {
                    let trace = span["traceId"].as_str().unwrap().to_string();
                    *counts.entry(trace).or_insert(0) += 1;
                }
            }
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_endpoint_that_comes_up_late_with_the_bearer_token() {
    // A free port, closed again: nothing listens there yet.
    let addr: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let kafka = MockKafka::start(1, &ALL_TOPICS, 1).unwrap();
    let simulator = Simulator::new(SimulatorConfig {
        brokers: kafka.bootstrap_servers().to_string(),
        events_per_second: 0.0,
        poison_ratio: 0.0,
        seed: 1,
    })
    .unwrap()
    .with_span_export(SpanExport {
        endpoint: format!("http://{addr}/v1/traces"),
        bearer_token: Some("s3cret-token".into()),
    });

    // The history: every kind of saga, 30 minutes ago.
    let mut rng = StdRng::seed_from_u64(2);
    let base = Utc::now() - chrono::Duration::minutes(30);
    let mut expected = HashMap::new();
    for i in 0..40 {
        let kind = SagaKind::ALL[i % SagaKind::ALL.len()];
        let plan = SagaPlan::with_outcome(
            kind,
            if kind == SagaKind::ChatMessage {
                PlannedOutcome::CompensationFailed
            } else {
                PlannedOutcome::Completed
            },
            &mut rng,
        );
        simulator
            .produce_plan_now(&plan, base, &mut rng)
            .await
            .unwrap();
        expected.insert(plan.trace_id.clone(), spans_of_saga(&plan, base).len());
    }
    let total: usize = expected.values().sum();
    assert!(
        total > MAX_BATCH_SPANS,
        "{total} spans make several batches"
    );

    // The endpoint comes up after the exporter has failed a few times.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(simulator.span_export_stats().unwrap().failed_requests > 0);
    let received: Received = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while spans_by_trace(&received) != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "received {:?} of {total}",
            spans_by_trace(&received).values().sum::<usize>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    simulator.stop_span_export().await;

    let requests = received.lock().unwrap();
    assert!(requests.len() >= 2, "{} requests", requests.len());
    for (authorization, body) in requests.iter() {
        assert_eq!(authorization.as_deref(), Some("Bearer s3cret-token"));
        let spans: usize = body["resourceSpans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["scopeSpans"][0]["spans"].as_array().unwrap().len())
            .sum();
        assert!((1..=MAX_BATCH_SPANS).contains(&spans), "{spans}");
    }
    let stats = simulator.span_export_stats().unwrap();
    assert_eq!(stats.exported, total as u64);
    assert_eq!(stats.dropped, 0);
    server.abort();
}
