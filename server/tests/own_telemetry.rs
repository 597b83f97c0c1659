//! sagascope's own telemetry end to end, in its own test binary (the
//! global subscriber and providers are this test's): an in-process OTLP
//! sink (an axum server decoding OTLP/HTTP protobuf), telemetry pointed at
//! it, the spawned app with the real ingest on librdkafka's mock cluster,
//! a retry over HTTP carrying a known `traceparent`, then the flush at
//! shutdown. The sink must hold the request's server span (the caller's
//! trace and parent), the retry's producer span linked to the request,
//! the ingest batch span, and the metrics; the log lines written while
//! handling the request must carry its trace id.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sagascope::auth::AuthConfig;
use sagascope::cli::{LogArgs, LogFormat};
use sagascope::run;
use sagascope::telemetry::{self, OtelSettings};
use sagascope_auth::{hash_password, NewUser, Role};
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::IngestConfig;
use sagascope_simulator::MockKafka;
use sagascope_store::test_support::fresh_sqlite_store;
use serde_json::{json, Value};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::MakeWriter;

const PAYMENTS: &str = "payments.events";
const PAYMENTS_DLT: &str = "payments.events.DLT";
const TOPICS: [&str; 3] = ["saga.state", PAYMENTS, PAYMENTS_DLT];
/// Generous for a loaded 2-core machine; never a timing assertion.
const DEADLINE: Duration = Duration::from_secs(120);
/// The operator's browser (or a proxy) already traces the request.
const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";
/// The trace of the request that starts a bulk job.
const BULK_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// What the sink received.
#[derive(Default)]
struct Received {
    services: Vec<Option<String>>,
    spans: Vec<Span>,
    metric_names: Vec<String>,
}

type Sink = Arc<Mutex<Received>>;

async fn traces(State(sink): State<Sink>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("OTLP trace protobuf");
    let mut sink = sink.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .and_then(|r| string_attribute(&r.attributes, "service.name"));
        sink.services.push(service);
        for scope in resource.scope_spans {
            sink.spans.extend(scope.spans);
        }
    }
    ""
}

async fn metrics(State(sink): State<Sink>, body: Bytes) -> &'static str {
    let request = ExportMetricsServiceRequest::decode(body).expect("OTLP metrics protobuf");
    let mut sink = sink.lock().unwrap();
    for resource in request.resource_metrics {
        for scope in resource.scope_metrics {
            sink.metric_names
                .extend(scope.metrics.into_iter().map(|m| m.name));
        }
    }
    ""
}

async fn start_sink() -> (SocketAddr, Sink) {
    let sink = Sink::default();
    let router = Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .with_state(sink.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, sink)
}

/// The log lines, as written.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON log line"))
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        AnyValue::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        AnyValue::IntValue(n) => Some(*n),
        _ => None,
    }
}

/// A Spring Kafka DLT message of a payment; returns its dead-letter id.
async fn dead_letter(producer: &FutureProducer) -> String {
    let mut headers = OwnedHeaders::new();
    for (key, value) in [
        ("id", b"evt-1".to_vec()),
        ("type", b"PaymentRequested".to_vec()),
        (
            "kafka_dlt-exception-fqcn",
            b"java.net.SocketTimeoutException".to_vec(),
        ),
        ("kafka_dlt-exception-message", b"Read timed out".to_vec()),
        ("kafka_dlt-original-topic", PAYMENTS.as_bytes().to_vec()),
        ("kafka_dlt-original-partition", 0_i32.to_be_bytes().to_vec()),
        ("kafka_dlt-original-offset", 0_i64.to_be_bytes().to_vec()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(&value),
        });
    }
    let delivery = producer
        .send(
            FutureRecord::to(PAYMENTS_DLT)
                .key("ORD-1")
                .payload(r#"{"order_id":"ORD-1","amount":12.5}"#)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    format!("{PAYMENTS_DLT}/0/{}", delivery.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_spans_metrics_and_log_trace_ids_reach_an_otlp_sink() {
    let (sink_addr, sink) = start_sink().await;
    let logs = Logs::default();
    let guard = telemetry::init_with(
        &LogArgs {
            log_format: LogFormat::Json,
            // tower_http's per-response line is at debug.
            log_filter: "info,sqlx=warn,rdkafka=warn,tower_http=debug".into(),
        },
        OtelSettings::exporting_to(format!("http://{sink_addr}")),
        BoxMakeWriter::new(logs.clone()),
    );

    let store = fresh_sqlite_store().await;
    let operator = NewUser {
        name: "otto".into(),
        role: Role::Operator,
        password_hash: hash_password("otto-operator-password").unwrap(),
    };
    assert!(store.add_user(&operator, Utc::now()).await.unwrap());
    let kafka = MockKafka::start(1, &TOPICS, 1).unwrap();
    let mut config = IngestConfig::new(
        kafka.bootstrap_servers(),
        vec!["saga.state".into()],
        "own-telemetry-tests",
    );
    config.dlq_topics = vec!["^.*\\.DLT$".into()];
    config.batch_linger = Duration::from_millis(20);
    config.session_timeout = Duration::from_secs(6);
    let mut auth = AuthConfig::anonymous_viewer();
    auth.anonymous_viewer = false;
    let running = run::start_with_auth(
        store,
        Some((config, Decoder::new(Rules::default()))),
        "127.0.0.1:0".parse().unwrap(),
        Path::new("target/site"),
        sagascope_domain::Thresholds::default(),
        auth,
    )
    .await
    .unwrap();
    let origin = format!("http://{}", running.addr);
    let client = reqwest::Client::new();

    // A dead letter comes in through the ingest.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .create()
        .unwrap();
    let id = dead_letter(&producer).await;
    let deadline = Instant::now() + DEADLINE;
    while running
        .state
        .store
        .dead_letter(&id)
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "dead letter {id} never stored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The operator logs in and retries it, inside the caller's trace.
    let login = client
        .post(format!("{origin}/api/v1/auth/login"))
        .header("origin", &origin)
        .json(&json!({ "name": "otto", "password": "otto-operator-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sagascope_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("a session cookie");
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let retry = client
        .post(format!(
            "{origin}/api/v1/dlq/{}/retry",
            sagascope_model::percent_encode(&id)
        ))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .header("x-csrf-token", &csrf)
        .header("idempotency-key", "own-telemetry-1")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({ "reason": "gateway is back" }))
        .send()
        .await
        .unwrap();
    let status = retry.status();
    let outcome: Value = retry.json().await.unwrap();
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["target_topic"], PAYMENTS);

    // A bulk job, started by a request of another trace, run by the
    // job runner in the background.
    let second = dead_letter(&producer).await;
    while running
        .state
        .store
        .dead_letter(&second)
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "dead letter {second} never stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bulk = client
        .post(format!("{origin}/api/v1/dlq/retry"))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .header("x-csrf-token", &csrf)
        .header("traceparent", format!("00-{BULK_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({
            "filter": { "topic": PAYMENTS_DLT },
            "reason": "gateway is back",
            "expected_count": 1,
        }))
        .send()
        .await
        .unwrap();
    let status = bulk.status();
    let job: Value = bulk.json().await.unwrap();
    assert_eq!(status, 202, "{job}");
    let job_url = format!(
        "{origin}/api/v1/dlq/retry-jobs/{}",
        job["id"].as_str().unwrap()
    );
    loop {
        let job: Value = client
            .get(&job_url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["state"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "the job never completed: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Stop, then flush: everything queued reaches the sink.
    running.shutdown().await;
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();

    let received = sink.lock().unwrap();
    let spans = &received.spans;
    assert!(!received.services.is_empty(), "no spans exported");
    assert!(
        received
            .services
            .iter()
            .all(|s| s.as_deref() == Some("sagascope")),
        "service.name: {:?}",
        received.services
    );

    // The request's server span continues the caller's trace.
    let route = "/api/v1/dlq/{id}/retry";
    let server = spans
        .iter()
        .find(|s| hex(&s.trace_id) == CALLER_TRACE && s.kind == SpanKind::Server as i32)
        .unwrap_or_else(|| {
            panic!(
                "no server span in the caller's trace among {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(server.name, format!("POST {route}"));
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(
        string_attribute(&server.attributes, "http.route").as_deref(),
        Some(route)
    );
    assert_eq!(
        string_attribute(&server.attributes, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        int_attribute(&server.attributes, "http.response.status_code"),
        Some(200)
    );

    // The copy's producer span links to the request (the span the retry
    // was asked in, inside the server span).
    let produce = spans
        .iter()
        .find(|s| {
            s.name == "redrive.produce"
                && string_attribute(&s.attributes, "sagascope.dead_letter.id").as_deref()
                    == Some(id.as_str())
        })
        .expect("a redrive.produce span of the single retry");
    assert_eq!(produce.kind, SpanKind::Producer as i32);
    assert_eq!(
        string_attribute(&produce.attributes, "messaging.destination.name").as_deref(),
        Some(PAYMENTS)
    );
    assert_eq!(
        string_attribute(&produce.attributes, "messaging.system").as_deref(),
        Some("kafka")
    );
    assert_eq!(
        string_attribute(&produce.attributes, "sagascope.dead_letter.id").as_deref(),
        Some(id.as_str())
    );
    let link = produce
        .links
        .iter()
        .find(|l| hex(&l.trace_id) == CALLER_TRACE)
        .expect("a link to the operator's request");
    let mut linked = spans
        .iter()
        .find(|s| s.span_id == link.span_id)
        .expect("the linked span was exported");
    // Up from the linked span to the request's server span.
    while linked.span_id != server.span_id {
        linked = spans
            .iter()
            .find(|s| s.span_id == linked.parent_span_id)
            .unwrap_or_else(|| panic!("`{}` is not inside the request span", linked.name));
    }

    // The bulk job's copy links to the request that started the job.
    let bulk_produce = spans
        .iter()
        .find(|s| {
            s.name == "redrive.produce"
                && string_attribute(&s.attributes, "sagascope.dead_letter.id").as_deref()
                    == Some(second.as_str())
        })
        .expect("a redrive.produce span of the bulk job");
    assert_eq!(bulk_produce.kind, SpanKind::Producer as i32);
    let link = bulk_produce
        .links
        .iter()
        .find(|l| hex(&l.trace_id) == BULK_TRACE)
        .expect("a link to the request that started the job");
    assert!(
        spans
            .iter()
            .any(|s| s.span_id == link.span_id && hex(&s.trace_id) == BULK_TRACE),
        "the linked span of the bulk request was exported"
    );
    let chunk = spans
        .iter()
        .find(|s| s.span_id == bulk_produce.parent_span_id)
        .expect("the produce span's parent");
    assert_eq!(chunk.name, "redrive.chunk");

    // Each ingest batch is a span with its size.
    let batch = spans
        .iter()
        .find(|s| s.name == "ingest.batch")
        .expect("an ingest.batch span");
    assert!(int_attribute(&batch.attributes, "messages").unwrap_or(0) >= 1);
    assert!(int_attribute(&batch.attributes, "partitions").unwrap_or(0) >= 1);

    // Log lines written while handling the request carry its ids.
    let lines = logs.lines();
    let finished = lines
        .iter()
        .find(|l| {
            l["target"] == "tower_http::trace::on_response"
                && l["trace_id"] == CALLER_TRACE
                && l["span"]["otel.name"] == format!("POST {route}")
        })
        .unwrap_or_else(|| panic!("no response log line in the caller's trace: {lines:#?}"));
    assert_eq!(finished["span_id"], hex(&server.span_id));
    assert!(
        lines.iter().any(|l| l.get("trace_id").is_none()),
        "lines outside any span carry no trace id"
    );

    // Metrics arrived, from the HTTP layer, the ingest and the re-drive.
    for name in [
        "sagascope_http_server_request_duration_seconds",
        "sagascope_ingest_batch_duration_seconds",
        "sagascope_retries_produced_total",
    ] {
        assert!(
            received.metric_names.iter().any(|n| n == name),
            "{name} not exported: {:?}",
            received.metric_names
        );
    }
}
