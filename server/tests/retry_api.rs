//! Re-drive over HTTP on a spawned app: a Kafka-protocol broker (librdkafka's
//! mock cluster; the bodies whose Kafka side matters also on Tansu), the
//! real ingest (dead letters come in through the DLT topics, and a copy
//! that fails again comes back the same way), the store (SQLite and
//! Postgres), login sessions with CSRF, and a consumer reading the target
//! topics back to see exactly what was produced.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::redirect::Policy;
use reqwest::{Method, Response};
use sagascope::auth::AuthConfig;
use sagascope::run::{self, Running};
use sagascope_auth::{hash_password, NewUser, Role};
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::IngestConfig;
use sagascope_model::{DeadLetterState, DlqFilter, RetryJobState};
use sagascope_store::test_support::{fresh_postgres_store, fresh_sqlite_store};
use sagascope_store::Store;
use sagascope_test_brokers::{BrokerKind, TestBroker};
use serde_json::{json, Value};
use tokio::sync::watch;

const PAYMENTS: &str = "payments.events";
const PAYMENTS_DLT: &str = "payments.events.DLT";
const ORDERS: &str = "orders.events";
const ORDERS_DLT: &str = "orders.events.DLT";
const STOCK: &str = "stock.events";
const STOCK_DLT: &str = "stock.events.DLT";
const TOPICS: [&str; 7] = [
    "saga.state",
    PAYMENTS,
    PAYMENTS_DLT,
    ORDERS,
    ORDERS_DLT,
    STOCK,
    STOCK_DLT,
];
/// Generous for a loaded 2-core machine; never a timing assertion.
const DEADLINE: Duration = Duration::from_secs(120);
const TRACEPARENT: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

type HeaderList = Vec<(String, Option<Vec<u8>>)>;

struct TestApp {
    running: Running,
    kafka: TestBroker,
    client: reqwest::Client,
    producer: FutureProducer,
}

#[derive(Debug, Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

/// One message as read back from a topic.
#[derive(Debug, Clone, PartialEq)]
struct Read {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: HeaderList,
    offset: i64,
}

impl TestApp {
    async fn spawn(store: Store, broker: BrokerKind) -> TestApp {
        for (name, role, password) in [
            ("vera", Role::Viewer, "vera-viewer-password"),
            ("otto", Role::Operator, "otto-operator-password"),
        ] {
            let user = NewUser {
                name: name.into(),
                role,
                password_hash: hash_password(password).unwrap(),
            };
            assert!(store.add_user(&user, Utc::now()).await.unwrap());
        }
        let kafka = TestBroker::start(broker, &TOPICS, 1).unwrap();
        let mut config = IngestConfig::new(
            kafka.bootstrap_servers(),
            vec!["saga.state".into()],
            "retry-api-tests",
        );
        config.dlq_topics = vec!["^.*\\.DLT$".into()];
        config.batch_linger = Duration::from_millis(20);
        config.session_timeout = Duration::from_secs(6);
        let mut auth = AuthConfig::anonymous_viewer();
        auth.anonymous_viewer = false;
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let running = run::start_with_auth(
            store,
            Some((config, Decoder::new(Rules::default()))),
            listen,
            Path::new("target/site"),
            sagascope_domain::Thresholds::default(),
            auth,
        )
        .await
        .unwrap();
        let producer = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap_servers())
            .create()
            .unwrap();
        TestApp {
            running,
            kafka,
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            producer,
        }
    }

    fn store(&self) -> &Store {
        &self.running.state.store
    }

    fn brokers(&self) -> &str {
        self.kafka.bootstrap_servers()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    async fn login(&self, name: &str, password: &str) -> Session {
        let response = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .header("origin", self.origin())
            .json(&json!({ "name": name, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("sagascope_session="))
            .map(|v| v.split(';').next().unwrap().to_string())
            .expect("a session cookie");
        let body: Value = response.json().await.unwrap();
        Session {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    async fn operator(&self) -> Session {
        self.login("otto", "otto-operator-password").await
    }

    /// A same-origin request of `session`, with its CSRF header.
    fn as_browser(&self, method: Method, path: &str, session: &Session) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("cookie", &session.cookie)
            .header("origin", self.origin())
            .header("x-csrf-token", &session.csrf)
    }

    async fn post(&self, path: &str, session: &Session, body: Value) -> (u16, Value) {
        json_of(
            self.as_browser(Method::POST, path, session)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn get(&self, path: &str, session: &Session) -> (u16, Value) {
        json_of(
            self.as_browser(Method::GET, path, session)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A form post as the pages send it (CSRF token as a field).
    async fn form(&self, path: &str, session: &Session, fields: &[(&str, &str)]) -> Response {
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        fields.push(("csrf_token", &session.csrf));
        self.client
            .post(self.url(path))
            .header("cookie", &session.cookie)
            .header("origin", self.origin())
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    async fn produce(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &HeaderList,
    ) -> i64 {
        let mut owned = OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap()
            .offset
    }

    /// A Spring Kafka DLT message of an order payment on `original`,
    /// with a binary key, a trace and a few headers of the original
    /// message; returns its dead-letter id once the ingest stored it.
    async fn dead_letter(&self, dlt: &str, original: &str, n: i64) -> String {
        let (key, value, headers) = original_message(n);
        let mut headers = headers;
        headers.extend(spring_headers(original, n));
        let offset = self.produce(dlt, Some(&key), Some(&value), &headers).await;
        let id = format!("{dlt}/0/{offset}");
        self.wait_for_dead_letter(&id).await;
        id
    }

    async fn wait_for_dead_letter(&self, id: &str) {
        wait_for(&format!("dead letter {id}"), async || {
            self.store().dead_letter(id).await.unwrap().is_some()
        })
        .await;
    }

    async fn state(&self, id: &str) -> DeadLetterState {
        self.store()
            .dead_letter(id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .state
    }

    /// Everything on `topic` (one partition), read from its beginning to
    /// the end the fetch answers report (`enable.partition.eof`). Not by
    /// ListOffsets: Tansu 0.6 answers "latest" with the base offset of the
    /// newest batch + 1, short of the end when a batch holds several
    /// records.
    async fn read_topic(&self, topic: &str) -> Vec<Read> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("group.id", format!("reader-{}", uuid_like()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            // The end is an empty fetch: answered sooner.
            .set("fetch.wait.max.ms", "100")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let mut read = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out reading {topic}");
            let Ok(message) = tokio::time::timeout(left, consumer.recv()).await else {
                continue;
            };
            let message = match message {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(_)) => break,
                Err(error) => panic!("cannot read {topic}: {error}"),
            };
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            read.push(Read {
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers,
                offset: message.offset(),
            });
        }
        let offsets: Vec<i64> = read.iter().map(|r| r.offset).collect();
        assert_eq!(
            offsets,
            (0..read.len() as i64).collect::<Vec<_>>(),
            "{topic} read whole, from 0"
        );
        read
    }

    /// Messages on `topic` (one partition).
    async fn count(&self, topic: &str) -> i64 {
        self.read_topic(topic).await.len() as i64
    }

    async fn audit(&self, action: &str) -> Vec<Value> {
        let session = self.operator().await;
        let (status, page) = self
            .get(
                &format!("/api/v1/audit?action={action}&limit=200"),
                &session,
            )
            .await;
        assert_eq!(status, 200);
        let mut items = page["items"].as_array().unwrap().clone();
        items.reverse();
        items
    }

    async fn wait_for_job(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let session = self.operator().await;
        let deadline = Instant::now() + DEADLINE;
        loop {
            let (status, job) = self
                .get(&format!("/api/v1/dlq/retry-jobs/{id}"), &session)
                .await;
            assert_eq!(status, 200, "{job}");
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} never got there: {job}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

async fn json_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Key (not UTF-8), value and headers of an original message.
fn original_message(n: i64) -> (Vec<u8>, Vec<u8>, HeaderList) {
    let key = vec![0xff, 0x00, b'k', n as u8];
    let value = format!(r#"{{"order_id":"ORD-{n}","amount":12.5}}"#).into_bytes();
    let headers = vec![
        ("traceparent".to_string(), Some(TRACEPARENT.to_vec())),
        ("id".to_string(), Some(format!("evt-{n}").into_bytes())),
        ("type".to_string(), Some(b"PaymentRequested".to_vec())),
        ("binary".to_string(), Some(vec![0x00, 0xfe, 0x7f])),
        ("null-valued".to_string(), None),
    ];
    (key, value, headers)
}

/// What Spring's `DeadLetterPublishingRecoverer` adds.
fn spring_headers(original: &str, offset: i64) -> HeaderList {
    [
        (
            "kafka_dlt-exception-fqcn",
            b"java.net.SocketTimeoutException".to_vec(),
        ),
        (
            "kafka_dlt-exception-message",
            b"Read timed out after 30000 ms".to_vec(),
        ),
        ("kafka_dlt-original-topic", original.as_bytes().to_vec()),
        ("kafka_dlt-original-partition", 0_i32.to_be_bytes().to_vec()),
        ("kafka_dlt-original-offset", offset.to_be_bytes().to_vec()),
        (
            "kafka_dlt-original-consumer-group",
            b"payment-service".to_vec(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Some(v)))
    .collect()
}

fn retry_path(id: &str) -> String {
    format!("/api/v1/dlq/{}/retry", sagascope_model::percent_encode(id))
}

async fn a_double_submitted_retry_produces_once_with_the_original_bytes_and_headers(
    store: Store,
    broker: BrokerKind,
) {
    let app = TestApp::spawn(store, broker).await;
    let otto = app.operator().await;
    let id = app.dead_letter(PAYMENTS_DLT, PAYMENTS, 1).await;
    assert_eq!(app.count(PAYMENTS).await, 0);

    // Two submits of one form at once: one produce.
    let body = json!({ "reason": "payment gateway is back" });
    let submit = || {
        app.as_browser(Method::POST, &retry_path(&id), &otto)
            .header("Idempotency-Key", "double-click-1")
            .json(&body)
            .send()
    };
    let (first, second) = tokio::join!(submit(), submit());
    let (s1, o1) = json_of(first.unwrap()).await;
    let (s2, o2) = json_of(second.unwrap()).await;
    assert_eq!((s1, s2), (200, 200), "{o1} {o2}");
    let mut replayed = [o1["replayed"].as_bool(), o2["replayed"].as_bool()];
    replayed.sort();
    assert_eq!(replayed, [Some(false), Some(true)]);
    for field in ["attempt_id", "offset", "partition", "target_topic", "state"] {
        assert_eq!(o1[field], o2[field], "{field}");
    }
    assert_eq!(
        (
            o1["state"].as_str(),
            o1["target_topic"].as_str(),
            o1["retry_count"].as_u64()
        ),
        (Some("retried"), Some(PAYMENTS), Some(1))
    );
    assert_eq!(app.count(PAYMENTS).await, 1, "produced once");

    // Byte-exact, headers in order, DLQ headers gone, retry headers added.
    let copies = app.read_topic(PAYMENTS).await;
    let (key, value, original_headers) = original_message(1);
    let mut expected_headers = original_headers;
    expected_headers.push(("x-retry-of".into(), Some(id.clone().into_bytes())));
    expected_headers.push(("x-retry-count".into(), Some(b"1".to_vec())));
    assert_eq!(
        copies,
        [Read {
            key: Some(key),
            value: Some(value),
            headers: expected_headers,
            offset: o1["offset"].as_i64().unwrap(),
        }]
    );
    assert_eq!(app.state(&id).await, DeadLetterState::Retried);

    // The same key later: the same answer, nothing produced.
    let (status, again) = app
        .post(
            &retry_path(&id),
            &otto,
            json!({ "reason": "again", "idempotency_key": "double-click-1" }),
        )
        .await;
    assert_eq!((status, again["replayed"].as_bool()), (200, Some(true)));
    // The key for another dead letter, a new key on a retried one, an
    // unknown id, no reason, no key: refused, nothing produced.
    let other = app.dead_letter(PAYMENTS_DLT, PAYMENTS, 2).await;
    let refusals = [
        (
            retry_path(&other),
            json!({ "reason": "x", "idempotency_key": "double-click-1" }),
            409,
            "idempotency key already used",
        ),
        (
            retry_path(&id),
            json!({ "reason": "x", "idempotency_key": "k-2" }),
            409,
            "is retried",
        ),
        (
            retry_path("payments.events.DLT/0/999"),
            json!({ "reason": "x", "idempotency_key": "k-3" }),
            404,
            "no dead letter",
        ),
        (
            retry_path(&other),
            json!({ "reason": " ", "idempotency_key": "k-4" }),
            400,
            "reason is required",
        ),
        (
            retry_path(&other),
            json!({ "idempotency_key": "k-5" }),
            400,
            "reason",
        ),
        (
            retry_path(&other),
            json!({ "reason": "x" }),
            400,
            "idempotency key is required",
        ),
    ];
    for (path, body, status, needle) in refusals {
        let (got, error) = app.post(&path, &otto, body.clone()).await;
        assert_eq!(got, status, "{path} {body}: {error}");
        let message = error["error"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{message}");
    }
    assert_eq!(app.count(PAYMENTS).await, 1);

    // The three-segment path, and a dead letter with nowhere to go.
    let (status, outcome) = app
        .post(
            &format!("/api/v1/dlq/{other}/retry"),
            &otto,
            json!({ "reason": "gateway back", "idempotency_key": "k-6" }),
        )
        .await;
    assert_eq!(
        (status, outcome["offset"].as_i64()),
        (200, Some(1)),
        "{outcome}"
    );
    let nowhere = app
        .produce(PAYMENTS_DLT, Some(b"k"), Some(b"v"), &vec![])
        .await;
    let nowhere = format!("{PAYMENTS_DLT}/0/{nowhere}");
    app.wait_for_dead_letter(&nowhere).await;
    let (status, error) = app
        .post(
            &retry_path(&nowhere),
            &otto,
            json!({ "reason": "x", "idempotency_key": "k-7" }),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("no original topic"));
    assert_eq!(app.count(PAYMENTS).await, 2);

    // The audit trail: who, why, what came of it.
    let entries = app.audit("dlq.retry").await;
    let trail: Vec<(&str, &str, &str, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["result"].as_str().unwrap(),
                e["target"].as_str().unwrap_or_default(),
                e["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(trail.len(), 11, "{trail:?}");
    assert_eq!(
        &trail[..3],
        [
            ("otto", "ok", id.as_str(), Some("payment gateway is back")),
            ("otto", "ok", id.as_str(), Some("payment gateway is back")),
            ("otto", "ok", id.as_str(), Some("again")),
        ]
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["detail"]["replayed"] == json!(true))
            .count(),
        2
    );
    assert!(entries[..3]
        .iter()
        .all(|e| e["detail"]["attempt_id"] == o1["attempt_id"]));
    let failed: Vec<u64> = entries
        .iter()
        .filter(|e| e["result"] == "failed")
        .map(|e| e["detail"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [409, 409, 404, 400, 400, 400, 422]);
    assert_eq!(
        trail[9],
        ("otto", "ok", other.as_str(), Some("gateway back"))
    );
}

async fn a_copy_that_fails_again_marks_the_original_and_links_the_attempt(
    store: Store,
    broker: BrokerKind,
) {
    let app = TestApp::spawn(store, broker).await;
    let otto = app.operator().await;
    let id = app.dead_letter(PAYMENTS_DLT, PAYMENTS, 1).await;
    let (status, outcome) = app
        .post(
            &retry_path(&id),
            &otto,
            json!({ "reason": "try again", "idempotency_key": "fa-1" }),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    // The service fails on the copy again and dead-letters it, as Spring
    // does: the copy's headers (x-retry-of included) plus its own.
    let copy = app.read_topic(PAYMENTS).await.remove(0);
    let mut headers = copy.headers.clone();
    headers.extend(spring_headers(PAYMENTS, copy.offset));
    let back = app
        .produce(
            PAYMENTS_DLT,
            copy.key.as_deref(),
            copy.value.as_deref(),
            &headers,
        )
        .await;
    let back = format!("{PAYMENTS_DLT}/0/{back}");
    app.wait_for_dead_letter(&back).await;
    wait_for("the original to be failed_again", async || {
        app.state(&id).await == DeadLetterState::FailedAgain
    })
    .await;
    let returned = app
        .store()
        .dead_letter(&back)
        .await
        .unwrap()
        .unwrap()
        .summary;
    assert_eq!(
        (
            returned.retry_of.as_deref(),
            returned.retry_count,
            returned.failed_again_of.as_deref(),
            returned.state
        ),
        (
            Some(id.as_str()),
            1,
            Some(id.as_str()),
            DeadLetterState::New
        )
    );
    let attempts = app.store().retry_attempts_of(&id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].id, outcome["attempt_id"].as_str().unwrap());
    assert_eq!(attempts[0].came_back_as.as_deref(), Some(back.as_str()));
    // The original is not retried again; its returned copy is, as count 2.
    let (status, _) = app
        .post(
            &retry_path(&id),
            &otto,
            json!({ "reason": "x", "idempotency_key": "fa-2" }),
        )
        .await;
    assert_eq!(status, 409);
    let (status, second) = app
        .post(
            &retry_path(&back),
            &otto,
            json!({ "reason": "fixed for real", "idempotency_key": "fa-3" }),
        )
        .await;
    assert_eq!((status, second["retry_count"].as_u64()), (200, Some(2)));
    let copies = app.read_topic(PAYMENTS).await;
    assert_eq!(copies.len(), 2);
    let retry_headers: Vec<(&str, Option<&[u8]>)> = copies[1]
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-retry") || k.starts_with("kafka_dlt"))
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    assert_eq!(
        retry_headers,
        [
            ("x-retry-of", Some(back.as_bytes())),
            ("x-retry-count", Some(&b"2"[..]))
        ]
    );
    assert_eq!(copies[1].value, copies[0].value);
}

async fn refused_requests_produce_nothing_and_forms_redirect(store: Store, broker: BrokerKind) {
    let app = TestApp::spawn(store, broker).await;
    let id = app.dead_letter(PAYMENTS_DLT, PAYMENTS, 1).await;
    let body = json!({ "reason": "x", "idempotency_key": "refused-1" });
    let vera = app.login("vera", "vera-viewer-password").await;
    let otto = app.operator().await;
    // A viewer, no session, a session without its CSRF token.
    let (status, error) = app.post(&retry_path(&id), &vera, body.clone()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (403, Some("operator role required"))
    );
    let (status, _) = json_of(
        app.client
            .post(app.url(&retry_path(&id)))
            .header("origin", app.origin())
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, error) = json_of(
        app.client
            .post(app.url(&retry_path(&id)))
            .header("cookie", &otto.cookie)
            .header("origin", app.origin())
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (403, Some("missing or invalid CSRF token"))
    );
    let no_csrf = app
        .client
        .post(app.url("/dlq/actions/retry"))
        .header("cookie", &otto.cookie)
        .header("origin", app.origin())
        .form(&[
            ("id", id.as_str()),
            ("reason", "x"),
            ("idempotency_key", "f-0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let viewer_form = app
        .form(
            "/dlq/actions/retry",
            &vera,
            &[("id", &id), ("reason", "x"), ("idempotency_key", "f-1")],
        )
        .await;
    assert_eq!(viewer_form.status(), 403);
    let (status, _) = app
        .post(
            "/api/v1/dlq/retry",
            &vera,
            json!({ "reason": "x", "filter": {} }),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(app.count(PAYMENTS).await, 0, "nothing produced");
    assert_eq!(app.state(&id).await, DeadLetterState::New);

    // The operator's form: 303 back with a notice, then an error.
    let return_to = format!("/dlq/messages/{id}?tab=headers");
    let ok = app
        .form(
            "/dlq/actions/retry",
            &otto,
            &[
                ("id", &id),
                ("reason", "gateway back"),
                ("idempotency_key", "f-2"),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(ok.status(), 303);
    let location = ok.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{return_to}&notice=Retried%20")),
        "{location}"
    );
    assert_eq!(app.count(PAYMENTS).await, 1);
    let again = app
        .form(
            "/dlq/actions/retry",
            &otto,
            &[
                ("id", &id),
                ("reason", "x"),
                ("idempotency_key", "f-3"),
                ("return_to", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(again.status(), 303);
    let location = again.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/dlq?error="), "{location}");
    assert!(location.contains("retried"), "{location}");

    // Discard: API (three segments) and form; then neither again.
    let second = app.dead_letter(PAYMENTS_DLT, PAYMENTS, 2).await;
    let third = app.dead_letter(PAYMENTS_DLT, PAYMENTS, 3).await;
    let (status, detail) = app
        .post(
            &format!("/api/v1/dlq/{second}/discard"),
            &otto,
            json!({ "reason": "duplicate payment" }),
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(
        (detail["state"].as_str(), detail["state_reason"].as_str()),
        (
            Some("discarded"),
            Some("discarded by otto: duplicate payment")
        )
    );
    assert!(detail["headers"].is_array(), "the detail");
    let (status, error) = app
        .post(
            &format!("/api/v1/dlq/{second}/discard"),
            &otto,
            json!({ "reason": "again" }),
        )
        .await;
    assert_eq!(status, 409, "{error}");
    let (status, error) = app
        .post(
            &retry_path(&second),
            &otto,
            json!({ "reason": "x", "idempotency_key": "d-1" }),
        )
        .await;
    assert_eq!(status, 409);
    assert!(error["error"].as_str().unwrap().contains("discarded"));
    let (status, _) = app
        .post(&format!("/api/v1/dlq/{third}/discard"), &otto, json!({}))
        .await;
    assert_eq!(status, 400, "a reason is required");
    let form = app
        .form(
            "/dlq/actions/discard",
            &otto,
            &[
                ("id", &third),
                ("reason", "test message"),
                ("return_to", "/dlq?topic=payments.events.DLT"),
            ],
        )
        .await;
    assert_eq!(form.status(), 303);
    assert_eq!(
        form.headers()["location"].to_str().unwrap(),
        format!(
            "/dlq?topic=payments.events.DLT&notice={}",
            sagascope_model::percent_encode(&format!("Discarded {third}"))
        )
    );
    assert_eq!(app.state(&third).await, DeadLetterState::Discarded);
    assert_eq!(app.count(PAYMENTS).await, 1);
    let discards: Vec<(String, String)> = app
        .audit("dlq.discard")
        .await
        .iter()
        .map(|e| {
            (
                e["result"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        discards,
        [
            ("ok".to_string(), second.clone()),
            ("failed".to_string(), second.clone()),
            ("failed".to_string(), third.clone()),
            ("ok".to_string(), third.clone()),
        ]
    );
}

/// A service that is still broken: it dead-letters everything it reads
/// from `topic` back to `dlt` (headers kept, Spring's added).
fn still_broken_service(
    brokers: &str,
    topic: &'static str,
    dlt: &'static str,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-service"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = stop.changed() => return,
                message = consumer.recv() => message,
            };
            let Ok(message) = message else { continue };
            let mut headers = OwnedHeaders::new();
            if let Some(original) = message.headers() {
                for h in original.iter() {
                    headers = headers.insert(h);
                }
            }
            for (key, value) in spring_headers(topic, message.offset()) {
                headers = headers.insert(Header {
                    key: &key,
                    value: value.as_deref(),
                });
            }
            let mut record = FutureRecord::<[u8], [u8]>::to(dlt).headers(headers);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(value) = message.payload() {
                record = record.payload(value);
            }
            producer
                .send(record, Duration::from_secs(10))
                .await
                .unwrap();
        }
    })
}

async fn bulk_jobs_preview_freeze_canary_and_cancel(store: Store, broker: BrokerKind) {
    let app = TestApp::spawn(store, broker).await;
    let otto = app.operator().await;
    for n in 0..12 {
        app.dead_letter(PAYMENTS_DLT, PAYMENTS, n).await;
    }
    let filter = json!({ "topic": PAYMENTS_DLT });
    let (status, preview) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({ "filter": filter, "dry_run": true }),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["count"], 12);
    assert_eq!(preview["by_topic"], json!([[PAYMENTS, 12]]));
    assert_eq!(preview["sample"].as_array().unwrap().len(), 10);
    // The set changed since the operator looked: refused, nothing made.
    let (status, error) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({ "filter": filter, "reason": "gateway back", "expected_count": 11 }),
        )
        .await;
    assert_eq!(status, 409, "{error}");
    assert!(error["error"].as_str().unwrap().contains("12"));
    let (status, _) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({ "filter": { "topic": "nothing.DLT" }, "reason": "x", "expected_count": 0 }),
        )
        .await;
    assert_eq!(status, 400, "an empty set");
    let (status, _) = app
        .post("/api/v1/dlq/retry", &otto, json!({ "filter": filter }))
        .await;
    assert_eq!(status, 400, "a reason is required");
    // No filter re-drives everything: only with "all": true (before: an
    // empty body with a reason re-drove every retryable dead letter).
    let (status, error) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({ "reason": "everything", "expected_count": 12 }),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("\"all\": true"),
        "{error}"
    );
    // And never a set nobody previewed.
    let (status, error) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({ "filter": filter, "reason": "unseen" }),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error.to_string().contains("expected_count is required"),
        "{error}"
    );
    assert_eq!(app.count(PAYMENTS).await, 0);

    // With a canary that does not come back, then the rest.
    let (status, job) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({
                "filter": filter, "reason": "gateway back", "expected_count": 12,
                "canary": true, "canary_wait_s": 2, "idempotency_key": "bulk-1"
            }),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        (job["total"].as_u64(), job["canary"].as_bool()),
        (Some(12), Some(true))
    );
    let job_id = job["id"].as_str().unwrap().to_string();
    let done = app
        .wait_for_job(&job_id, |j| j["state"] == "completed")
        .await;
    assert_eq!(
        (
            done["produced"].as_u64(),
            done["failed"].as_u64(),
            done["skipped"].as_u64()
        ),
        (Some(12), Some(0), Some(0))
    );
    assert_eq!(app.count(PAYMENTS).await, 12);
    let canary = done["canary_id"].as_str().unwrap();
    assert_eq!(
        canary,
        format!("{PAYMENTS_DLT}/0/0"),
        "the oldest goes first"
    );
    // The same key again: the same job, nothing more produced.
    let (status, replay) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({ "filter": filter, "reason": "gateway back", "expected_count": 12, "idempotency_key": "bulk-1" }),
        )
        .await;
    assert_eq!(
        (status, replay["id"].as_str()),
        (202, Some(job_id.as_str()))
    );
    assert_eq!(app.count(PAYMENTS).await, 12);

    // A canary that comes back stops the job: nothing else produced.
    let (stop, stop_rx) = watch::channel(false);
    let broken = still_broken_service(app.brokers(), ORDERS, ORDERS_DLT, stop_rx);
    for n in 0..4 {
        app.dead_letter(ORDERS_DLT, ORDERS, n).await;
    }
    let (status, job) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({
                "filter": { "topic": ORDERS_DLT }, "reason": "is it fixed?",
                "expected_count": 4, "canary": true, "canary_wait_s": 100
            }),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let failed = app
        .wait_for_job(job["id"].as_str().unwrap(), |j| j["state"] == "failed")
        .await;
    let canary = failed["canary_id"].as_str().unwrap();
    assert_eq!(
        (failed["produced"].as_u64(), failed["skipped"].as_u64()),
        (Some(1), Some(3)),
        "{failed}"
    );
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("came back"), "{message}");
    assert!(message.contains(canary), "{message}");
    assert_eq!(app.state(canary).await, DeadLetterState::FailedAgain);
    assert_eq!(app.count(ORDERS).await, 1);
    let _ = stop.send(true);
    let _ = broken.await;

    // Throttled to 1/s: cancelled (by the form) after the first copies.
    for n in 0..10 {
        app.dead_letter(STOCK_DLT, STOCK, n).await;
    }
    let form = app
        .form(
            "/dlq/actions/bulk-retry",
            &otto,
            &[
                ("filter", &format!("topic={STOCK_DLT}&state=discarded")),
                ("reason", "slowly"),
                ("throttle_per_s", "1"),
                ("expected_count", "10"),
                ("canary_wait_s", ""),
                ("idempotency_key", "bulk-form-1"),
            ],
        )
        .await;
    assert_eq!(form.status(), 303);
    let location = form.headers()["location"].to_str().unwrap().to_string();
    let slow_id = location
        .strip_prefix("/dlq/jobs/")
        .and_then(|rest| rest.split('?').next())
        .unwrap_or_else(|| panic!("{location}"))
        .to_string();
    app.wait_for_job(&slow_id, |j| j["produced"].as_u64() >= Some(1))
        .await;
    let cancel = app
        .form("/dlq/actions/cancel-job", &otto, &[("job_id", &slow_id)])
        .await;
    assert_eq!(cancel.status(), 303);
    assert!(cancel.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with(&format!("/dlq/jobs/{slow_id}?notice=")));
    let cancelled = app
        .wait_for_job(&slow_id, |j| {
            j["produced"].as_u64().unwrap()
                + j["failed"].as_u64().unwrap()
                + j["skipped"].as_u64().unwrap()
                == 10
        })
        .await;
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["message"], "cancelled by otto");
    let produced = cancelled["produced"].as_i64().unwrap();
    assert!((1..10).contains(&produced), "{cancelled}");
    assert_eq!(app.count(STOCK).await, produced);
    let (status, _) = app
        .post(
            &format!("/api/v1/dlq/retry-jobs/{slow_id}/cancel"),
            &otto,
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "already cancelled");

    let (status, jobs) = app.get("/api/v1/dlq/retry-jobs", &otto).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        (ids[0], ids[2]),
        (slow_id.as_str(), job_id.as_str()),
        "newest first"
    );
    let bulk: Vec<(String, Value)> = app
        .audit("dlq.bulk_retry")
        .await
        .iter()
        .map(|e| {
            (
                e["result"].as_str().unwrap().to_string(),
                e["detail"].clone(),
            )
        })
        .collect();
    let results: Vec<&str> = bulk.iter().map(|(r, _)| r.as_str()).collect();
    // Refused and audited: no reason, no filter without `all`, no
    // expected count, an empty set, a changed set.
    assert_eq!(
        results,
        ["failed", "failed", "failed", "failed", "failed", "ok", "ok", "ok", "ok"]
    );
    let payments_filter = DlqFilter {
        topic: Some(PAYMENTS_DLT.into()),
        ..Default::default()
    }
    .to_query_string();
    let first = &bulk[5].1;
    assert_eq!(
        (
            first["count"].as_u64(),
            first["canary"].as_bool(),
            first["job_id"].as_str(),
            first["filter"].as_str()
        ),
        (
            Some(12),
            Some(true),
            Some(job_id.as_str()),
            Some(payments_filter.as_str())
        )
    );
    assert_eq!(bulk[6].1["replayed"], true);
    assert_eq!(bulk[8].1["throttle_per_s"], 1);
    let cancels = app.audit("dlq.bulk_retry.cancel").await;
    assert_eq!(cancels.len(), 2);
    assert_eq!(
        (cancels[0]["result"].as_str(), cancels[1]["result"].as_str()),
        (Some("ok"), Some("failed"))
    );
    assert_eq!(
        app.store()
            .retry_job(&slow_id)
            .await
            .unwrap()
            .unwrap()
            .state,
        RetryJobState::Cancelled
    );
}

/// Dead letters written straight through the ingest's batch write, with
/// a value larger than a Kafka message may be (the producer refuses it).
async fn oversized_dead_letters(
    app: &TestApp,
    dlt: &str,
    offsets: std::ops::Range<i64>,
) -> Vec<String> {
    let letters = offsets
        .clone()
        .map(|offset| {
            let raw = sagascope_domain::RawMessage {
                coords: sagascope_domain::KafkaCoords {
                    topic: dlt.to_string(),
                    partition: 0,
                    offset,
                },
                key: Some(b"big".to_vec()),
                value: Some(vec![b'x'; 2_000_000]),
                headers: spring_headers(PAYMENTS, offset),
                timestamp: Some(Utc::now()),
            };
            sagascope_domain::decode_dead_letter(&raw, &Default::default())
        })
        .collect();
    app.store()
        .write_batch(&sagascope_store::IngestBatch {
            group_id: "oversized".into(),
            dead_letters: letters,
            ..Default::default()
        })
        .await
        .unwrap();
    offsets.map(|o| format!("{dlt}/0/{o}")).collect()
}

async fn a_refused_copy_answers_502_and_its_dead_letter_stays_retryable(
    store: Store,
    broker: BrokerKind,
) {
    let app = TestApp::spawn(store, broker).await;
    let otto = app.operator().await;
    let big = oversized_dead_letters(&app, "oversized.DLT", 0..1)
        .await
        .remove(0);
    let (status, error) = app
        .post(
            &retry_path(&big),
            &otto,
            json!({ "reason": "try", "idempotency_key": "big-1" }),
        )
        .await;
    assert_eq!(status, 502, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("refused"),
        "{error}"
    );
    assert_eq!(error["outcome"]["state"], "new");
    assert_eq!(app.state(&big).await, DeadLetterState::New);
    let attempt = &app.store().retry_attempts_of(&big).await.unwrap()[0];
    assert_eq!(attempt.outcome, "failed");
    assert!(attempt.error.is_some());
    // The key was released: the same request may try again (and fails
    // again the same way), produced nothing.
    let (status, _) = app
        .post(
            &retry_path(&big),
            &otto,
            json!({ "reason": "try", "idempotency_key": "big-1" }),
        )
        .await;
    assert_eq!(status, 502);
    assert_eq!(app.count(PAYMENTS).await, 0);
    let results: Vec<String> = app
        .audit("dlq.retry")
        .await
        .iter()
        .map(|e| e["result"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        results,
        ["ok", "failed", "ok", "failed"],
        "audited, then refused"
    );

    // A bulk job whose copies are all refused stops as failed.
    oversized_dead_letters(&app, "oversized-bulk.DLT", 0..3).await;
    let (status, job) = app
        .post(
            "/api/v1/dlq/retry",
            &otto,
            json!({ "filter": { "topic": "oversized-bulk.DLT" }, "reason": "try all", "expected_count": 3 }),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let failed = app
        .wait_for_job(job["id"].as_str().unwrap(), |j| j["state"] == "failed")
        .await;
    assert_eq!(
        (failed["produced"].as_u64(), failed["failed"].as_u64()),
        (Some(0), Some(3)),
        "{failed}"
    );
    assert!(failed["message"]
        .as_str()
        .unwrap()
        .contains("refused every copy"));
    assert_eq!(app.count(PAYMENTS).await, 0);
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   super::$name(super::fresh_sqlite_store().await, super::BrokerKind::MockCluster).await;
               } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   super::$name(super::fresh_postgres_store().await, super::BrokerKind::MockCluster).await;
               } )*
        }
    };
}

on_both_stores!(
    a_double_submitted_retry_produces_once_with_the_original_bytes_and_headers,
    bulk_jobs_preview_freeze_canary_and_cancel,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_fails_again_marks_the_original_and_links_the_attempt_sqlite() {
    a_copy_that_fails_again_marks_the_original_and_links_the_attempt(
        fresh_sqlite_store().await,
        BrokerKind::MockCluster,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_produce_nothing_and_forms_redirect_sqlite() {
    refused_requests_produce_nothing_and_forms_redirect(
        fresh_sqlite_store().await,
        BrokerKind::MockCluster,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_copy_answers_502_and_its_dead_letter_stays_retryable_sqlite() {
    a_refused_copy_answers_502_and_its_dead_letter_stays_retryable(
        fresh_sqlite_store().await,
        BrokerKind::MockCluster,
    )
    .await;
}

/// The bodies whose Kafka side matters on Tansu too, an independent
/// broker: the idempotent copy producer (produced once, byte-exact key,
/// value and headers), a copy coming back through a DLT, bulk jobs with a
/// still-broken service's consumer group. On SQLite only: the stores are
/// covered above. Not here: the refusals (`refused_requests_…`,
/// `a_refused_copy_…`), whose copies never reach a broker (refused by
/// the HTTP layer, or by the producer itself for their size).
mod tansu {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_double_submitted_retry_produces_once_with_the_original_bytes_and_headers() {
        super::a_double_submitted_retry_produces_once_with_the_original_bytes_and_headers(
            fresh_sqlite_store().await,
            BrokerKind::Tansu,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_that_fails_again_marks_the_original_and_links_the_attempt() {
        super::a_copy_that_fails_again_marks_the_original_and_links_the_attempt(
            fresh_sqlite_store().await,
            BrokerKind::Tansu,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bulk_jobs_preview_freeze_canary_and_cancel() {
        super::bulk_jobs_preview_freeze_canary_and_cancel(
            fresh_sqlite_store().await,
            BrokerKind::Tansu,
        )
        .await;
    }
}
