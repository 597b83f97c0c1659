//! API tests on a spawned app: real mock-cluster Kafka → ingest → store
//! (SQLite and Postgres) → HTTP, exercised with a real HTTP client.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use sagascope::run::{self, Running};
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::IngestConfig;
use sagascope_simulator::{
    spring_dead_letter, FailureReason, MockKafka, OriginalDelivery, PlannedOutcome, SagaKind,
    SagaPlan, Simulator, SimulatorConfig, ALL_TOPICS, DEMO_RULES, DLT_TOPICS, PAYMENT_EVENTS_TOPIC,
};
use sagascope_store::test_support::{fresh_postgres_store, fresh_sqlite_store};
use sagascope_store::Store;
use serde_json::Value;

struct TestApp {
    running: Running,
    kafka: MockKafka,
    client: reqwest::Client,
}

impl TestApp {
    async fn spawn(store: Store) -> TestApp {
        let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
        let kafka = MockKafka::start(1, &topics, 2).unwrap();
        let mut config = IngestConfig::new(
            kafka.bootstrap_servers(),
            vec![
                "saga.state".into(),
                "^events\\..*".into(),
                PAYMENT_EVENTS_TOPIC.into(),
                "dbserver1.shop.outbox".into(),
            ],
            "api-tests",
        );
        config.dlq_topics = vec![sagascope_ingest::DEFAULT_DLQ_TOPICS.into()];
        config.batch_linger = Duration::from_millis(20);
        config.session_timeout = Duration::from_secs(6);
        let decoder = Decoder::new(Rules::parse(DEMO_RULES).unwrap());
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let running = run::start(
            store,
            Some((config, decoder)),
            listen,
            Path::new("target/site"),
            sagascope_domain::Thresholds::default(),
        )
        .await
        .unwrap();
        TestApp {
            running,
            kafka,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn simulator(&self) -> Simulator {
        Simulator::new(SimulatorConfig {
            brokers: self.kafka.bootstrap_servers().to_string(),
            events_per_second: 0.0,
            poison_ratio: 0.0,
            seed: 9,
        })
        .unwrap()
    }

    /// Until the consumer has its partitions: messages produced before
    /// that are its start-up catch-up, not consumer lag.
    async fn wait_for_assignment(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, ready) = self.get("/readyz").await;
            if ready["consumer"]["assigned_partitions"].as_u64() > Some(0) {
                return;
            }
            assert!(Instant::now() < deadline, "no partitions assigned: {ready}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_for_saga(&self, saga_id: &str, events: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.get(&format!("/api/v1/sagas/{saga_id}")).await;
            if status == 200 && body["events"].as_array().map(Vec::len) == Some(events) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "saga {saga_id} never reached {events} events: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn api_contract(store: Store) {
    let app = TestApp::spawn(store).await;
    app.wait_for_assignment().await;
    let mut rng = StdRng::seed_from_u64(11);
    let compensated =
        SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Compensated, &mut rng);
    let choreographed =
        SagaPlan::with_outcome(SagaKind::ScanReward, PlannedOutcome::Completed, &mut rng);
    let simulator = app.simulator();
    let base = chrono::Utc::now() - chrono::Duration::seconds(30);
    simulator
        .produce_plan_now(&compensated, base, &mut rng)
        .await
        .unwrap();
    simulator
        .produce_plan_now(
            &choreographed,
            base + chrono::Duration::seconds(5),
            &mut rng,
        )
        .await
        .unwrap();

    // Detail: the saga with its timeline in event-time order.
    let detail = app
        .wait_for_saga(&compensated.saga_id, compensated.event_count())
        .await;
    assert_eq!(detail["status"], "compensated");
    assert_eq!(detail["saga_type"], "order");
    assert_eq!(detail["failed_step"], "AuthorizePayment");
    assert_eq!(
        detail["failure_reason"],
        "card declined: insufficient funds"
    );
    assert_eq!(detail["trace_ids"][0], compensated.trace_id.as_str());
    let phases: Vec<&str> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"saga_started"));
    assert_eq!(phases.last(), Some(&"saga_compensated"));
    assert!(phases.contains(&"step_compensated"));
    let first = &detail["events"][0];
    for field in [
        "event_id",
        "phase",
        "step",
        "event_type",
        "occurred_at",
        "published_at",
        "ingested_at",
        "topic",
        "partition",
        "offset",
        "trace_id",
        "span_id",
        "headers",
        "payload",
        "error",
    ] {
        assert!(
            first.get(field).is_some(),
            "event field {field} missing: {first}"
        );
    }
    assert_eq!(first["topic"], "saga.state");
    app.wait_for_saga(&choreographed.saga_id, choreographed.event_count())
        .await;

    // List: filters and search by saga id, trace id and business key.
    let (status, list) = app.get("/api/v1/sagas").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        list["items"][0]["saga_id"],
        choreographed.saga_id.as_str(),
        "newest first"
    );
    for field in [
        "saga_id",
        "saga_type",
        "status",
        "started_at",
        "ended_at",
        "duration_ms",
        "current_step",
        "failed_step",
        "failure_reason",
        "trace_ids",
        "event_count",
    ] {
        assert!(
            list["items"][0].get(field).is_some(),
            "list field {field} missing"
        );
    }
    let (_, filtered) = app.get("/api/v1/sagas?status=compensated").await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let (_, by_type) = app.get("/api/v1/sagas?saga_type=scan_reward").await;
    assert_eq!(
        by_type["items"][0]["saga_id"],
        choreographed.saga_id.as_str()
    );
    let order_id = detail["events"][0]["payload"]["context_data"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    for q in [
        compensated.saga_id.clone(),
        compensated.trace_id.clone(),
        order_id,
    ] {
        let (_, found) = app.get(&format!("/api/v1/sagas?q={q}")).await;
        assert_eq!(found["items"].as_array().unwrap().len(), 1, "q={q}");
        assert_eq!(found["items"][0]["saga_id"], compensated.saga_id.as_str());
    }
    let (_, paged) = app.get("/api/v1/sagas?limit=1").await;
    let cursor = paged["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, second) = app
        .get(&format!("/api/v1/sagas?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(second["items"][0]["saga_id"], compensated.saga_id.as_str());
    assert!(second["next_cursor"].is_null());

    // Trace: every saga and event with that trace id.
    let (status, trace) = app
        .get(&format!("/api/v1/traces/{}", choreographed.trace_id))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        trace["events"].as_array().unwrap().len(),
        choreographed.event_count()
    );
    assert_eq!(trace["sagas"][0]["saga_type"], "scan_reward");

    // Bad input: 4xx with a message.
    for (path, code, needle) in [
        ("/api/v1/sagas?status=done", 400, "unknown status"),
        ("/api/v1/sagas?limit=100000", 400, "limit"),
        ("/api/v1/sagas?since=yesterday", 400, "since"),
        ("/api/v1/sagas?cursor=garbage", 400, "cursor"),
        (
            "/api/v1/sagas?sort=oldest",
            400,
            "`sort` must be `started` or `waiting`",
        ),
        (
            "/api/v1/sagas?incomplete_compensation=yes",
            400,
            "incomplete_compensation: expected true or false",
        ),
        ("/api/v1/ingest/errors?limit=-1", 400, "limit"),
        ("/api/v1/sagas/does-not-exist", 404, "no saga"),
        ("/api/v1/traces/does-not-exist", 404, "no events"),
        ("/api/v1/metrics/overview?window=2h", 400, "unknown window"),
        ("/api/v1/metrics/lag?at=noon", 400, "`at`"),
        ("/api/v1/alerts?window=1d", 400, "unknown window"),
        (
            "/api/v1/metrics/saga-types/nope?window=15m",
            404,
            "no saga of type",
        ),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, code, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }

    // Health.
    let (status, health) = app.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["consumer"]["state"], "running");
    assert!(ready["consumer"]["events"].as_u64().unwrap() >= 10);

    // Prometheus: the same traffic as counters and histograms.
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    for needle in [
        "# HELP sagascope_ingest_events_total",
        "# TYPE sagascope_ingest_events_total counter",
        "sagascope_saga_outcomes_total{saga_type=\"order\",status=\"compensated\"}",
        "sagascope_saga_outcomes_total{saga_type=\"scan_reward\",status=\"completed\"}",
        "sagascope_sagas_started_total{saga_type=\"order\"}",
        "sagascope_saga_compensations_total{saga_type=\"order\"}",
        "sagascope_saga_duration_seconds_bucket{saga_type=\"order\",status=\"compensated\",le=\"1\"}",
        "sagascope_outbox_relay_lag_seconds_count{topic=\"saga.state\"}",
        "sagascope_consumer_lag_seconds_count{topic=\"events.image\"}",
        "sagascope_ingest_batch_duration_seconds_bucket{le=\"+Inf\"}",
        "sagascope_saga_step_duration_seconds_count{saga_type=\"order\",step=\"AuthorizePayment\"}",
        "sagascope_saga_step_failures_total{saga_type=\"order\",step=\"AuthorizePayment\"}",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }
    let events: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sagascope_ingest_events_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("events counter");
    assert!(events >= 10.0, "{events}");

    // The overview's figures: one compensated order, one completed
    // scan_reward, both started 30 s ago.
    let (status, overview) = app.get("/api/v1/metrics/overview?window=15m").await;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(overview["window"], "15m");
    let order = overview["saga_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["saga_type"] == "order")
        .expect("order in the overview");
    assert_eq!(order["counts"]["started"], 1);
    assert_eq!(order["counts"]["compensated"], 1);
    assert_eq!(order["counts"]["finished"], 1);
    assert_eq!(order["failure_rate"], 0.0);
    assert_eq!(order["compensation_rate"], 1.0);
    assert_eq!(order["duration"]["count"], 1);
    assert_eq!(order["series"].as_array().unwrap().len(), 15);
    assert_eq!(overview["totals"]["started"], 2);
    assert_eq!(overview["dlq"]["available"], true);
    assert_eq!(overview["dlq"]["depth"], 0);
    // Its compensation released the stock: nothing is incomplete.
    assert_eq!(overview["incomplete_compensations"], 0);
    assert_eq!(overview["ingest"]["state"], "running");
    // It started on empty topics: nothing to catch up with.
    assert!(overview["ingest"]["catchup"].is_null(), "{overview}");
    assert!(overview["ingest"]["events"].as_i64().unwrap() >= 10);
    let (status, order) = app.get("/api/v1/metrics/saga-types/order?window=1h").await;
    assert_eq!(status, 200, "{order}");
    let payment = order["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "AuthorizePayment")
        .expect("the payment step");
    assert_eq!(
        (payment["executions"].as_i64(), payment["failures"].as_i64()),
        (Some(1), Some(1))
    );
    let (status, lag) = app.get("/api/v1/metrics/lag?window=15m").await;
    assert_eq!(status, 200, "{lag}");
    let saga_state = lag["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "saga.state")
        .expect("saga.state lag");
    // Produced after the assignment: consumer lag, no catch-up.
    assert_eq!(saga_state["lag"]["consumer"]["count"], saga_state["events"]);
    assert!(saga_state["lag"]["consumer"]["p95_ms"].as_i64().is_some());
    assert_eq!(saga_state["lag"]["catchup"]["count"], 0);
    let (status, alerts) = app.get("/api/v1/alerts").await;
    assert_eq!(status, 200, "{alerts}");
    assert_eq!(alerts["window"], "15m");
    assert!(alerts["alerts"].is_array());

    // Poison → ingest errors API.
    simulator
        .produce(&sagascope_simulator::RenderedMessage {
            topic: "saga.state",
            key: "bad".into(),
            value: Some(b"\xff\xfe".to_vec()),
            headers: vec![],
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, errors) = app.get("/api/v1/ingest/errors").await;
        if let Some(first) = errors["items"].as_array().and_then(|a| a.first()) {
            assert_eq!(first["topic"], "saga.state");
            assert!(first["reason"].as_str().unwrap().contains("UTF-8"));
            break;
        }
        assert!(Instant::now() < deadline, "ingest error never listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Global search jumps to the one match, or to the filtered list.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (q, target) in [
        (
            compensated.trace_id.clone(),
            format!("/sagas/{}", compensated.saga_id),
        ),
        (
            compensated.saga_id.clone(),
            format!("/sagas/{}", compensated.saga_id),
        ),
        (
            "nothing-matches".to_string(),
            "/sagas?q=nothing-matches".to_string(),
        ),
        (String::new(), "/sagas".to_string()),
    ] {
        let response = no_redirects
            .get(app.url(&format!("/search?q={q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303, "search {q}");
        assert_eq!(
            response.headers()["location"],
            target.as_str(),
            "search {q}"
        );
    }

    // Pages render server-side with the data (no JS needed to read).
    let page = app
        .client
        .get(app.url(&format!("/sagas/{}", compensated.saga_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("ReleaseStock") && html.contains("card declined"),
        "detail page lacks the timeline"
    );
    app.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contract_on_sqlite() {
    api_contract(fresh_sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_contract_on_postgres() {
    api_contract(fresh_postgres_store().await).await;
}

/// `GET /api/v1/sagas/{id}` answers with a strong ETag; the same ETag in
/// `If-None-Match` gives 304 without a body, and a new event of the saga
/// changes the ETag (the stale one gets the full timeline again).
async fn saga_timeline_etag(store: Store) {
    let app = TestApp::spawn(store).await;
    app.wait_for_assignment().await;
    let mut rng = StdRng::seed_from_u64(23);
    let plan = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng);
    let mut first = plan.clone();
    first.messages.truncate(2);
    let mut rest = plan.clone();
    rest.messages.drain(..2);
    assert!(first.event_count() > 0 && rest.event_count() > 0);
    let simulator = app.simulator();
    let base = chrono::Utc::now() - chrono::Duration::seconds(30);
    simulator
        .produce_plan_now(&first, base, &mut rng)
        .await
        .unwrap();
    let before = app.wait_for_saga(&plan.saga_id, first.event_count()).await;

    let url = app.url(&format!("/api/v1/sagas/{}", plan.saga_id));
    let ok = app.client.get(&url).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "application/json");
    assert_eq!(ok.headers()["cache-control"], "no-cache");
    let etag = ok.headers()["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag}"
    );
    assert_eq!(ok.json::<Value>().await.unwrap(), before);

    let unchanged = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], etag.as_str());
    assert!(unchanged.bytes().await.unwrap().is_empty());
    // In a list, or weak: still a match (If-None-Match compares weakly).
    let listed = app
        .client
        .get(&url)
        .header("if-none-match", format!("\"other\", W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 304);
    let other = app
        .client
        .get(&url)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(other.headers()["etag"], etag.as_str());
    let missing = app
        .client
        .get(app.url("/api/v1/sagas/does-not-exist"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    simulator
        .produce_plan_now(&rest, base, &mut rng)
        .await
        .unwrap();
    let after = app.wait_for_saga(&plan.saga_id, plan.event_count()).await;
    let changed = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let new_etag = changed.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);
    assert_eq!(changed.json::<Value>().await.unwrap(), after);
    let now_unchanged = app
        .client
        .get(&url)
        .header("if-none-match", &new_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(now_unchanged.status(), 304);
    app.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saga_timeline_etag_on_sqlite() {
    saga_timeline_etag(fresh_sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saga_timeline_etag_on_postgres() {
    saga_timeline_etag(fresh_postgres_store().await).await;
}

/// Reads SSE frames until one contains `needle`.
async fn read_sse_until(response: &mut reqwest::Response, needle: &str) -> String {
    read_sse_until_all(response, &[needle]).await
}

/// Reads until every needle has been seen; one chunk may carry several
/// messages (the server sends what one ingest batch committed at once).
async fn read_sse_until_all(response: &mut reqwest::Response, needles: &[&str]) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if needles.iter().all(|needle| seen.contains(needle)) {
                    return seen;
                }
            }
            Ok(Ok(None)) => panic!("stream ended: {seen}"),
            Ok(Err(error)) => panic!("stream failed: {error}"),
            Err(_) => {}
        }
    }
    panic!("never saw all of {needles:?} in {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_pushes_saga_upserts_and_events_filtered_by_saga_id() {
    let app = TestApp::spawn(fresh_sqlite_store().await).await;
    let mut rng = StdRng::seed_from_u64(5);
    let watched =
        SagaPlan::with_outcome(SagaKind::ChatMessage, PlannedOutcome::Completed, &mut rng);
    let other = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng);

    let mut all = app
        .client
        .get(app.url("/api/v1/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(all.headers()["content-type"], "text/event-stream");
    let mut filtered = app
        .client
        .get(app.url(&format!("/api/v1/stream?saga_id={}", watched.saga_id)))
        .send()
        .await
        .unwrap();
    read_sse_until(&mut all, "event: hello").await;
    read_sse_until(&mut filtered, "event: hello").await;

    let simulator = app.simulator();
    simulator
        .produce_plan_now(&other, chrono::Utc::now(), &mut rng)
        .await
        .unwrap();
    simulator
        .produce_plan_now(&watched, chrono::Utc::now(), &mut rng)
        .await
        .unwrap();

    read_sse_until_all(
        &mut all,
        &[
            &format!("\"saga_id\":\"{}\"", watched.saga_id),
            "event: saga",
        ],
    )
    .await;
    let only_watched = read_sse_until_all(
        &mut filtered,
        &["\"phase\":\"saga_completed\"", "\"status\":\"completed\""],
    )
    .await;
    assert!(only_watched.contains("event: event") && only_watched.contains("event: saga"));
    assert!(
        !only_watched.contains(&other.saga_id),
        "filtered stream leaked another saga"
    );
    drop(all);
    drop(filtered);
    app.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_sagas_are_swept_to_stalled_and_pushed_live() {
    let app = TestApp::spawn(fresh_sqlite_store().await).await;
    app.running.sweep_stalls(sagascope_store::StallPolicy {
        default_timeout: Duration::from_secs(60),
        per_type: vec![("scan_reward".into(), Duration::from_secs(2))],
    });
    let mut stream = app
        .client
        .get(app.url("/api/v1/stream"))
        .send()
        .await
        .unwrap();
    read_sse_until(&mut stream, "event: hello").await;

    let mut rng = StdRng::seed_from_u64(21);
    let quiet = SagaPlan::with_outcome(SagaKind::ScanReward, PlannedOutcome::Stalled, &mut rng);
    let busy = SagaPlan::with_outcome(SagaKind::Order, PlannedOutcome::Completed, &mut rng);
    let simulator = app.simulator();
    let long_ago = chrono::Utc::now() - chrono::Duration::seconds(30);
    simulator
        .produce_plan_now(&quiet, long_ago, &mut rng)
        .await
        .unwrap();
    simulator
        .produce_plan_now(&busy, long_ago, &mut rng)
        .await
        .unwrap();

    // Pushed live as a saga upsert with the stalled status…
    read_sse_until(
        &mut stream,
        &format!(
            "\"saga_id\":\"{}\",\"saga_type\":\"scan_reward\",\"status\":\"stalled\"",
            quiet.saga_id
        ),
    )
    .await;
    // …and listed under the stalled filter; the finished saga is not.
    let (_, stalled) = app.get("/api/v1/sagas?status=stalled").await;
    let ids: Vec<&str> = stalled["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["saga_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [quiet.saga_id.as_str()]);
    let (_, detail) = app.get(&format!("/api/v1/sagas/{}", quiet.saga_id)).await;
    assert_eq!(detail["status"], "stalled");
    drop(stream);
    app.running.shutdown().await;
}

/// Spring Kafka dead letters of a choreographed saga's payment events,
/// produced to `payments.events.DLT`, read back through the DLQ API: list
/// and filters, groups with depth, detail with exact bytes, saga link, the
/// overview card and the Prometheus gauge.
async fn dead_letters_through_the_api(store: Store) {
    let app = TestApp::spawn(store).await;
    let mut rng = StdRng::seed_from_u64(31);
    let plan = SagaPlan::with_outcome(
        SagaKind::OrderChoreography,
        PlannedOutcome::Completed,
        &mut rng,
    );
    let simulator = app.simulator();
    let base = chrono::Utc::now() - chrono::Duration::seconds(60);
    simulator
        .produce_plan_now(&plan, base, &mut rng)
        .await
        .unwrap();
    let payment = plan
        .messages
        .iter()
        .position(|m| m.topic == PAYMENT_EVENTS_TOPIC)
        .expect("a payment event");
    let original = plan.render(payment, base, &mut rng);
    let reasons = [
        FailureReason::Deserialization,
        FailureReason::Deserialization,
        FailureReason::StatementTimeout,
    ];
    for (n, reason) in reasons.into_iter().enumerate() {
        let delivered = OriginalDelivery {
            partition: 1,
            offset: 40 + n as i64,
            timestamp_ms: base.timestamp_millis(),
        };
        let failed_at = base + chrono::Duration::seconds(10 * n as i64 + 5);
        let mut letter = spring_dead_letter(&original, &delivered, reason, failed_at, &mut rng);
        if n == 1 {
            // Avro bytes on a JSON topic: kept and shown as base64.
            letter.value = Some(vec![0x00, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xde, 0xad]);
        }
        simulator.produce_dead_letter(&letter).await.unwrap();
    }

    // Listed once the ingest has them, linked to the saga (by trace id).
    let deadline = Instant::now() + Duration::from_secs(60);
    let list = loop {
        let (status, list) = app.get("/api/v1/dlq").await;
        assert_eq!(status, 200, "{list}");
        let items = list["items"].as_array().unwrap();
        if items.len() == 3 && items.iter().all(|i| i["saga_id"] == plan.saga_id.as_str()) {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "dead letters never listed: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let newest = &list["items"][0];
    assert_eq!(newest["dlq_topic"], "payments.events.DLT");
    assert_eq!(newest["original_topic"], PAYMENT_EVENTS_TOPIC);
    assert_eq!(
        (
            newest["original_partition"].as_i64(),
            newest["original_offset"].as_i64()
        ),
        (Some(1), Some(42)),
        "newest first"
    );
    assert_eq!(
        newest["exception_class"],
        "org.springframework.dao.QueryTimeoutException"
    );
    assert_eq!(newest["saga_type"], "order_choreography");
    assert_eq!(newest["trace_id"], plan.trace_id.as_str());
    assert_eq!(newest["state"], "new");
    assert_eq!(newest["format"], "spring");

    // Filters and paging.
    for (query, count) in [
        ("reason=FAILED%20TO%20DESERIALIZE", 2),
        ("state=new,failed_again", 3),
        ("state=retried", 0),
        ("topic=payments.events.DLT&saga_type=order_choreography", 3),
        ("topic=other.DLT", 0),
        (&format!("saga_id={}", plan.saga_id), 3),
    ] {
        let (status, found) = app.get(&format!("/api/v1/dlq?{query}")).await;
        assert_eq!(status, 200, "{query}: {found}");
        assert_eq!(found["items"].as_array().unwrap().len(), count, "{query}");
    }
    let (_, first) = app.get("/api/v1/dlq?limit=2").await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let (_, second) = app
        .get(&format!("/api/v1/dlq?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["original_offset"], 40);

    // Groups: one topic, two failure groups, with depth.
    let (status, groups) = app.get("/api/v1/dlq/groups").await;
    assert_eq!(status, 200, "{groups}");
    assert_eq!(
        groups["depth_states"],
        serde_json::json!(["new", "retry_requested"])
    );
    assert_eq!(groups["topics"][0]["topic"], "payments.events.DLT");
    assert_eq!(groups["topics"][0]["depth"], 3);
    assert!(groups["topics"][0]["oldest_age_ms"].as_i64().unwrap() >= 50_000);
    let depths: Vec<(i64, &str)> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["depth"].as_i64().unwrap(),
                g["exception_class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        depths,
        [
            (
                2,
                "org.springframework.kafka.support.serializer.DeserializationException"
            ),
            (1, "org.springframework.dao.QueryTimeoutException"),
        ]
    );
    assert!(groups["groups"][0]["normalised_message"]
        .as_str()
        .unwrap()
        .contains("from String '<s>'"));

    // Detail, by encoded id and by path segments: the exact bytes.
    let id = list["items"][2]["id"].as_str().unwrap().to_string();
    let (status, detail) = app
        .get(&format!("/api/v1/dlq/{}", id.replace('/', "%2F")))
        .await;
    assert_eq!(status, 200, "{detail}");
    let (_, same) = app.get(&format!("/api/v1/dlq/{id}")).await;
    assert_eq!(same, detail);
    assert_eq!(detail["original_offset"], 40);
    assert_eq!(detail["original_consumer_group"], "shop-order-service");
    let value = String::from_utf8(original.value.clone().unwrap()).unwrap();
    assert_eq!(detail["value"]["text"], value.as_str());
    assert_eq!(detail["value"]["base64"], false);
    assert_eq!(detail["key"]["text"], original.key.as_str());
    assert!(detail["stacktrace"]
        .as_str()
        .unwrap()
        .contains("ErrorHandlingDeserializer"));
    let header = |name: &str| {
        detail["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == name)
            .unwrap_or_else(|| panic!("header {name} missing: {detail}"))
            .clone()
    };
    let traceparent = &original
        .headers
        .iter()
        .find(|(k, _)| k == "traceparent")
        .unwrap()
        .1;
    assert_eq!(header("traceparent")["value"]["text"], traceparent.as_str());
    let offset = header("kafka_dlt-original-offset");
    assert_eq!(offset["value"]["base64"], true, "a Java long");
    assert_eq!(offset["value"]["text"], "AAAAAAAAACg=");
    let binary_id = list["items"][1]["id"].as_str().unwrap();
    let (_, binary) = app.get(&format!("/api/v1/dlq/{binary_id}")).await;
    assert_eq!(binary["value"]["base64"], true);
    assert_eq!(binary["value"]["text"], "AAAAACr/3q0=");

    for (path, code, needle) in [
        ("/api/v1/dlq/nope.DLT%2F0%2F1", 404, "no dead letter"),
        ("/api/v1/dlq/nope.DLT/0/1", 404, "no dead letter"),
        ("/api/v1/dlq?state=done", 400, "unknown state"),
        ("/api/v1/dlq/groups?since=noon", 400, "`since`"),
        ("/api/v1/dlq?cursor=x", 400, "cursor"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, code, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }

    // The overview card and the Prometheus gauge.
    let (_, overview) = app.get("/api/v1/metrics/overview?window=15m").await;
    let dlq = &overview["dlq"];
    assert_eq!(
        (dlq["available"].as_bool(), dlq["depth"].as_i64()),
        (Some(true), Some(3))
    );
    assert_eq!(dlq["topics"][0]["level"], "ok");
    assert!(dlq["oldest_age_ms"].as_i64().unwrap() >= 50_000);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let depth: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sagascope_dlq_depth{topic=\"payments.events.DLT\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no DLQ depth gauge:\n{text}"));
    assert_eq!(depth, 3.0);
    assert!(text.contains("sagascope_ingest_dead_letters_total{topic=\"payments.events.DLT\"}"));
    app.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_through_the_api_on_sqlite() {
    dead_letters_through_the_api(fresh_sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_through_the_api_on_postgres() {
    dead_letters_through_the_api(fresh_postgres_store().await).await;
}
