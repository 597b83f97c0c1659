//! The span side over real HTTP on a spawned app (SQLite and Postgres):
//! OTLP/HTTP exports in protobuf, JSON and gzip to `POST /v1/traces` with
//! and without the token, the refusals (400, 401, 404, 413-free sizes,
//! 415), partial success, idempotent re-sends, then the spans read back
//! through `/api/v1/traces/{id}/spans` and `/api/v1/sagas/{id}/spans` for a
//! saga whose events carry the trace id, and the second OTLP listener.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use chrono::{TimeZone, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use sagascope::auth::AuthConfig;
use sagascope::run::{self, Running};
use sagascope::span_settings::{OtlpReceiverConfig, SpanSettings};
use sagascope_domain::{KafkaCoords, SagaEvent};
use sagascope_model::{Phase, SpanKind, SpanSource, SpanStatus, TraceSpans};
use sagascope_spans::SpanConfig;
use sagascope_store::test_support::{fresh_postgres_store, fresh_sqlite_store};
use sagascope_store::{IngestBatch, Store};
use serde_json::{json, Value};

const TOKEN: &str = "otlp-test-token-7f3a";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const OTHER_TRACE: &str = "5b8efff798038103d269b633813fc60c";
const BASE_NANOS: u64 = 1_763_700_000_000_000_000;

struct TestApp {
    running: Running,
    client: reqwest::Client,
}

impl TestApp {
    async fn spawn(store: Store, receiver: OtlpReceiverConfig) -> TestApp {
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let spans = SpanSettings {
            service: SpanConfig {
                link_template: Some("http://localhost:16686/trace/{trace_id}".into()),
                ..SpanConfig::default()
            },
            receiver,
        };
        let running = run::start_with_spans(
            store,
            None,
            listen,
            Path::new("target/site"),
            sagascope_domain::Thresholds::default(),
            AuthConfig::anonymous_viewer(),
            None,
            spans,
        )
        .await
        .unwrap();
        TestApp {
            running,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    async fn export(
        &self,
        content_type: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.export_to(&self.url("/v1/traces"), content_type, token, body)
            .await
    }

    async fn export_to(
        &self,
        url: &str,
        content_type: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(url)
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(AnyValueKind::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn proto_span(trace: &str, n: u8, start_ms: u64) -> Span {
    Span {
        trace_id: hex_bytes(trace),
        span_id: vec![n; 8],
        parent_span_id: if n == 1 { vec![] } else { vec![1; 8] },
        name: format!("payments op {n}"),
        kind: 2,
        start_time_unix_nano: BASE_NANOS + start_ms * 1_000_000,
        end_time_unix_nano: BASE_NANOS + (start_ms + 40) * 1_000_000,
        attributes: vec![text("note", "<script>alert(1)</script>")],
        status: (n == 2).then(|| Status {
            code: 2,
            message: "card declined".into(),
        }),
        ..Default::default()
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn export_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", "payment-service")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn saga_event(saga: &str, n: i64, trace: &str) -> SagaEvent {
    SagaEvent {
        event_id: format!("{saga}-e{n}"),
        saga_id: saga.to_string(),
        explicit_saga_id: Some(saga.to_string()),
        rule_classified: false,
        correlation_rank: 0,
        correlation_keys: vec![],
        saga_type: Some("order".into()),
        step: Some("AuthorizePayment".into()),
        phase: if n == 0 {
            Phase::SagaStarted
        } else {
            Phase::StepFailed
        },
        event_type: "PaymentEvent".into(),
        trace_id: Some(trace.to_string()),
        span_id: None,
        request_id: None,
        business_keys: vec![],
        occurred_at: Utc
            .timestamp_millis_opt(1_763_700_000_000 + n * 10)
            .unwrap(),
        published_at: None,
        ingested_at: Utc.timestamp_millis_opt(1_763_700_009_000).unwrap(),
        source_type: None,
        source_id: None,
        coords: KafkaCoords {
            topic: "saga.state".into(),
            partition: 0,
            offset: n,
        },
        headers: vec![],
        payload: json!({ "n": n }),
        error: None,
    }
}

async fn spans_through_the_api(store: Store) {
    let app = TestApp::spawn(store, OtlpReceiverConfig::with_token(TOKEN)).await;
    let protobuf = export_request(vec![
        proto_span(TRACE, 3, 30),
        proto_span(TRACE, 1, 0),
        proto_span(TRACE, 2, 10),
    ])
    .encode_to_vec();

    // No token, a wrong token, an API-token-shaped bearer: 401, nothing stored.
    for token in [None, Some("wrong"), Some("sgs_not_an_api_token")] {
        let response = app
            .export("application/x-protobuf", token, protobuf.clone())
            .await;
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    assert_eq!(
        app.get(&format!("/api/v1/traces/{TRACE}/spans")).await.0,
        404
    );

    // Protobuf with the token: 200 and an empty ExportTraceServiceResponse.
    let response = app
        .export("application/x-protobuf", Some(TOKEN), protobuf.clone())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.partial_success, None);

    // Read back in waterfall order, every field, the deep link.
    let (status, body) = app.get(&format!("/api/v1/traces/{TRACE}/spans")).await;
    assert_eq!(status, 200, "{body}");
    let trace: TraceSpans = serde_json::from_value(body).unwrap();
    assert_eq!(trace.trace_id, TRACE);
    assert_eq!(trace.source, SpanSource::Otlp);
    assert!(!trace.truncated);
    assert_eq!(
        trace.external_url.as_deref(),
        Some(format!("http://localhost:16686/trace/{TRACE}").as_str())
    );
    let names: Vec<&str> = trace.spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["payments op 1", "payments op 2", "payments op 3"]);
    let failed = &trace.spans[1];
    assert_eq!(failed.service, "payment-service");
    assert_eq!(failed.kind, SpanKind::Server);
    assert_eq!(failed.status, SpanStatus::Error);
    assert_eq!(failed.status_message.as_deref(), Some("card declined"));
    assert_eq!(failed.parent_span_id.as_deref(), Some("0101010101010101"));
    assert_eq!(failed.duration_us, 40_000);
    assert_eq!(failed.attributes[0].value, "<script>alert(1)</script>");
    // Upper-case ids name the same trace.
    let (status, _) = app
        .get(&format!("/api/v1/traces/{}/spans", TRACE.to_uppercase()))
        .await;
    assert_eq!(status, 200);

    // Sent again (an exporter's retry): still three spans.
    let response = app
        .export("application/x-protobuf", Some(TOKEN), protobuf)
        .await;
    assert_eq!(response.status(), 200);
    let (_, body) = app.get(&format!("/api/v1/traces/{TRACE}/spans")).await;
    assert_eq!(body["spans"].as_array().unwrap().len(), 3);

    // JSON with one bad span: the good one is kept, partialSuccess says why.
    let json_export = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "stock-service"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": OTHER_TRACE.to_uppercase(), "spanId": "EEE19B7EC3C1B174", "parentSpanId": "",
             "name": "reserve stock", "kind": 3,
             "startTimeUnixNano": (BASE_NANOS + 5_000_000).to_string(),
             "endTimeUnixNano": (BASE_NANOS + 9_000_000).to_string(),
             "attributes": [{"key": "items", "value": {"intValue": "3"}}],
             "events": [{"timeUnixNano": (BASE_NANOS + 6_000_000).to_string(), "name": "retry"}]},
            {"traceId": OTHER_TRACE, "spanId": "EEE19B7EC3C1B175", "name": "backwards",
             "startTimeUnixNano": "2000", "endTimeUnixNano": "1000"}
        ]}]
    }]});
    let response = app
        .export(
            "application/json",
            Some(TOKEN),
            json_export.to_string().into_bytes(),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("span `backwards`: endTimeUnixNano"),
        "{message}"
    );
    let (status, body) = app
        .get(&format!("/api/v1/traces/{OTHER_TRACE}/spans"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["spans"][0]["name"], "reserve stock");
    assert_eq!(body["spans"][0]["service"], "stock-service");
    assert_eq!(body["spans"][0]["attributes"][0]["value"], "3");
    assert_eq!(body["spans"][0]["events"][0]["name"], "retry");
    assert_eq!(body["spans"].as_array().unwrap().len(), 1);

    // gzip-compressed JSON.
    let gzip_span = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": OTHER_TRACE, "spanId": "eee19b7ec3c1b176", "name": "zipped",
         "startTimeUnixNano": (BASE_NANOS + 7_000_000).to_string(),
         "endTimeUnixNano": (BASE_NANOS + 8_000_000).to_string()}
    ]}]}]});
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(gzip_span.to_string().as_bytes()).unwrap();
    let response = app
        .client
        .post(app.url("/v1/traces"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, body) = app
        .get(&format!("/api/v1/traces/{OTHER_TRACE}/spans"))
        .await;
    assert_eq!(body["spans"].as_array().unwrap().len(), 2);

    // Undecodable bodies: 400 with a message in the request's encoding.
    let response = app
        .export("application/json", Some(TOKEN), b"{not json".to_vec())
        .await;
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("not OTLP JSON"),
        "{answer}"
    );
    let response = app
        .export(
            "application/x-protobuf",
            Some(TOKEN),
            b"\x0a\xff\xff\xff\xff\x0fgarbage".to_vec(),
        )
        .await;
    assert_eq!(response.status(), 400);
    // Another content type or encoding: 415.
    let response = app
        .export("text/plain", Some(TOKEN), b"hello".to_vec())
        .await;
    assert_eq!(response.status(), 415);
    let response = app
        .client
        .post(app.url("/v1/traces"))
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    // Malformed and unknown trace ids.
    let (status, body) = app.get("/api/v1/traces/not-a-trace/spans").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("not a trace id"));
    let (status, _) = app
        .get("/api/v1/traces/0123456789abcdef0123456789abcdef/spans")
        .await;
    assert_eq!(status, 404);

    // A saga whose events carry the trace id shows its spans.
    app.running
        .state
        .store
        .write_batch(&IngestBatch {
            group_id: "g".into(),
            events: vec![saga_event("ord-1", 0, TRACE), saga_event("ord-1", 1, TRACE)],
            errors: vec![],
            dead_letters: vec![],
            offsets: vec![],
            backlog: vec![],
        })
        .await
        .unwrap();
    let (status, body) = app.get("/api/v1/sagas/ord-1/spans").await;
    assert_eq!(status, 200, "{body}");
    let traces: Vec<TraceSpans> = serde_json::from_value(body).unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].trace_id, TRACE);
    assert_eq!(traces[0].spans.len(), 3);
    let (status, _) = app.get("/api/v1/sagas/no-such-saga/spans").await;
    assert_eq!(status, 404);

    // The counters.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sagascope_spans_received_total"),
        "{metrics}"
    );
    assert!(metrics.contains("sagascope_spans_rejected_total"));

    // The receiver alone on a second listener (--otlp-listen).
    let otlp_addr = app
        .running
        .serve_otlp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("http://{otlp_addr}/v1/traces");
    let more = export_request(vec![proto_span(TRACE, 4, 50)]).encode_to_vec();
    let response = app
        .export_to(&url, "application/x-protobuf", None, more.clone())
        .await;
    assert_eq!(response.status(), 401);
    let response = app
        .export_to(&url, "application/x-protobuf", Some(TOKEN), more)
        .await;
    assert_eq!(response.status(), 200);
    let (_, body) = app.get(&format!("/api/v1/traces/{TRACE}/spans")).await;
    assert_eq!(body["spans"].as_array().unwrap().len(), 4);

    app.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_through_the_api_on_sqlite() {
    spans_through_the_api(fresh_sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_through_the_api_on_postgres() {
    spans_through_the_api(fresh_postgres_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_is_off_without_a_token() {
    let app = TestApp::spawn(fresh_sqlite_store().await, OtlpReceiverConfig::default()).await;
    let body = export_request(vec![proto_span(TRACE, 1, 0)]).encode_to_vec();
    let response = app
        .export("application/x-protobuf", Some(TOKEN), body.clone())
        .await;
    assert_eq!(response.status(), 404);
    // Anonymous exports, when allowed, need no token.
    let anonymous = TestApp::spawn(
        fresh_sqlite_store().await,
        OtlpReceiverConfig {
            allow_anonymous: true,
            ..OtlpReceiverConfig::default()
        },
    )
    .await;
    let response = anonymous.export("application/x-protobuf", None, body).await;
    assert_eq!(response.status(), 200);
    let (status, body) = anonymous
        .get(&format!("/api/v1/traces/{TRACE}/spans"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["spans"][0]["name"], "payments op 1");
    app.running.shutdown().await;
    anonymous.running.shutdown().await;
}
