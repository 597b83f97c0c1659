//! A recreated DLQ topic against a real broker process (issue 21, item 8):
//! dead letters are kept once per (topic, partition, offset), and when a
//! topic is deleted and created again its offsets start again at 0. The new
//! dead letters at reused coordinates must be stored beside the old ones,
//! not dropped as redeliveries.
//!
//! A Tansu broker runs as a child process and the app (ingest and HTTP)
//! runs in-process against it. N dead letters are produced and stored;
//! sagascope is stopped, the topic deleted and created again (Tansu 0.6
//! supports DeleteTopics), sagascope started again; M > N different dead
//! letters are produced, so they reuse every old offset and go past it;
//! all N + M must be stored, each exactly once, the derived ids must work
//! in the API's URLs and be counted in /metrics.
//!
//! sagascope is stopped across the recreation because a consumer that
//! stays subscribed crashes the process (SIGSEGV in librdkafka's
//! rd_kafka_metadata_cache_find), with Tansu deleting the topic and with a
//! fresh Tansu replacing the broker alike.
//!
//! The consumer side: the stored next offset (N) survives the recreation
//! (stored offsets never move backwards), and Tansu answers a fetch past a
//! partition's end by waiting, not with OFFSET_OUT_OF_RANGE, so
//! `auto.offset.reset = earliest` never fires. The ingest therefore starts
//! a partition that ends before its stored offset from its beginning
//! (`restart_partitions_that_end_before_their_stored_offset`); the first
//! new message is produced alone so that holds when the consumer starts.

//! Ignored in the plain test run: it needs `tansu` (TANSU_BIN, else PATH;
//! `scripts/setup.sh --tests` installs it). scripts/test.sh runs it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sagascope::run::{self, Running};
use sagascope_domain::{Decoder, Rules};
use sagascope_ingest::IngestConfig;
use sagascope_model::{DeadLetterSummary, DlqFilter};
use sagascope_store::test_support::{fresh_postgres_store, fresh_sqlite_store};
use sagascope_store::{is_reused_coordinates_id, Store};
use sqlx::Row;

use sagascope_test_brokers::{TansuBroker, TansuStorage, WorkDir};

const DLT: &str = "orders.events.DLT";
const GROUP_ID: &str = "sagascope-recreated-topic-test";
/// Dead letters before the recreation, and after it (more, so the new
/// ones reuse every old offset and go past them).
const BEFORE: usize = 20;
const AFTER: usize = 30;
const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu: scripts/test.sh runs it"]
async fn dead_letters_of_a_recreated_topic_are_all_kept_on_sqlite() {
    let store = fresh_sqlite_store().await;
    let row = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let url = format!("sqlite://{}", row.get::<String, _>(0));
    recreated_topic(store, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu: scripts/test.sh runs it"]
async fn dead_letters_of_a_recreated_topic_are_all_kept_on_postgres() {
    let store = fresh_postgres_store().await;
    let url = store.postgres_url().unwrap().to_string();
    recreated_topic(store, &url).await;
}

/// `url` is the store's: stopping the app closes its pool, so the second
/// start opens it again.
async fn recreated_topic(store: Store, url: &str) {
    let store = &store;
    let work = WorkDir::new("sagascope-recreated-topic");
    let broker =
        TansuBroker::start(&work.path, TansuStorage::Memory).expect("the Tansu broker starts");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .unwrap();
    create_topic(&admin, &broker.bootstrap).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let app = start_app(&broker.bootstrap, store).await;

    let first: Vec<String> = (0..BEFORE).map(|i| format!("first-{i}")).collect();
    let offsets = produce(&producer, &first).await;
    assert_eq!(offsets, (0..BEFORE as i64).collect::<Vec<_>>());
    wait_for_dead_letters(store, BEFORE, "the first topic's dead letters").await;

    eprintln!("{BEFORE} dead letters stored; recreating {DLT}");
    // Recreate the topic: its offsets start again at 0. sagascope is
    // stopped meanwhile and started again after: a consumer that stays
    // subscribed across the recreation crashes the process (SIGSEGV in
    // librdkafka's rd_kafka_metadata_cache_find, whether Tansu 0.6 deletes
    // and recreates the topic or a fresh Tansu replaces the broker).
    app.shutdown().await;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    for result in admin.delete_topics(&[DLT], &options).await.unwrap() {
        result.unwrap_or_else(|(topic, code)| panic!("cannot delete {topic}: {code}"));
    }
    create_topic(&admin, &broker.bootstrap).await;
    eprintln!("{DLT} recreated");
    drop(producer);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let second: Vec<String> = (0..AFTER).map(|i| format!("second-{i}")).collect();
    // The first alone: once it is stored, the consumer has left the old
    // position (BEFORE) for the new partition's start.
    let store = &Store::connect(url).await.unwrap();
    let app = start_app(&broker.bootstrap, store).await;
    let offsets = produce(&producer, &second[..1]).await;
    assert_eq!(offsets, [0], "the recreated topic starts again at 0");
    wait_for_dead_letters(store, BEFORE + 1, "the recreated topic's first dead letter").await;
    let offsets = produce(&producer, &second[1..]).await;
    assert_eq!(offsets, (1..AFTER as i64).collect::<Vec<_>>());
    wait_for_dead_letters(store, BEFORE + AFTER, "every dead letter").await;

    let stored = dead_letters(store).await;
    let mut values = BTreeSet::new();
    for letter in &stored {
        let detail = store.dead_letter(&letter.id).await.unwrap().unwrap();
        values.insert(detail.value.map(|v| v.text).unwrap_or_default());
    }
    let expected: BTreeSet<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(values, expected, "every dead letter of both topics, once");
    assert_eq!(stored.len(), BEFORE + AFTER);
    let reused = stored
        .iter()
        .filter(|l| is_reused_coordinates_id(&l.id))
        .count();
    assert_eq!(
        reused, BEFORE,
        "the recreated topic's messages at the old offsets have derived ids"
    );
    // The stored offset never moved backwards; it moved on once the new
    // topic passed it.
    let progress = store.partition_progress(GROUP_ID).await.unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].next_offset, AFTER as i64);

    let derived = stored
        .iter()
        .find(|l| is_reused_coordinates_id(&l.id) && l.dlq_offset == 3)
        .expect("offset 3 of the recreated topic");
    check_http(&app, &derived.id, "second-3").await;
    app.shutdown().await;
}

/// The whole app in-process (ingest and HTTP), consuming only the DLQ
/// topic.
async fn start_app(bootstrap: &str, store: &Store) -> Running {
    let mut config = IngestConfig::new(bootstrap, Vec::new(), GROUP_ID);
    config.dlq_topics = vec![DLT.into()];
    config.batch_linger = Duration::from_millis(50);
    config.session_timeout = Duration::from_secs(6);
    let decoder = Decoder::new(Rules::default());
    run::start(
        store.clone(),
        Some((config, decoder)),
        "127.0.0.1:0".parse().unwrap(),
        Path::new("target/site"),
        sagascope_domain::Thresholds::default(),
    )
    .await
    .unwrap()
}

/// A derived id works in the API's URLs (percent-encoded, and as three
/// path segments), and the newcomers are counted in `/metrics`.
async fn check_http(app: &Running, id: &str, value: &str) {
    let client = reqwest::Client::new();
    let (topic_partition, offset) = id.rsplit_once('/').unwrap();
    for path in [
        format!("/api/v1/dlq/{}", id.replace('/', "%2F").replace('~', "%7E")),
        format!("/api/v1/dlq/{topic_partition}/{offset}"),
    ] {
        let url = format!("http://{}{path}", app.addr);
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        let detail: serde_json::Value = response.json().await.unwrap();
        assert_eq!(detail["id"], id, "GET {path}");
        assert_eq!(detail["value"]["text"], value, "GET {path}");
    }
    let metrics = client
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // At least this run's (the recorder is per process: `cargo test` runs
    // both stores' tests in one).
    let series = format!("sagascope_ingest_reused_coordinates_total{{topic=\"{DLT}\"}} ");
    let count: usize = metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("/metrics lacks {series}:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(count >= BEFORE, "{series}{count}");
}

/// Creates the DLQ topic (one partition) and waits until the broker's
/// metadata shows it.
async fn create_topic(admin: &AdminClient<DefaultClientContext>, bootstrap: &str) {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let topic = NewTopic::new(DLT, 1, TopicReplication::Fixed(1));
    for result in admin.create_topics(&[topic], &options).await.unwrap() {
        result.unwrap_or_else(|(topic, code)| panic!("cannot create {topic}: {code}"));
    }
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let metadata = client.fetch_metadata(None, Duration::from_secs(5)).unwrap();
            if metadata
                .topics()
                .iter()
                .any(|t| t.name() == DLT && t.error().is_none() && t.partitions().len() == 1)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{DLT} is not in the metadata after 20 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
}

/// Produces one dead letter per value (a generic one: key, value and a
/// reason header), one after another; returns their offsets.
async fn produce(producer: &FutureProducer, values: &[String]) -> Vec<i64> {
    let mut offsets = Vec::new();
    for value in values {
        let record = FutureRecord::to(DLT)
            .partition(0)
            .key(value.as_str())
            .payload(value.as_str())
            .timestamp(chrono::Utc::now().timestamp_millis());
        let delivery = producer
            .send(record, Duration::from_secs(20))
            .await
            .unwrap_or_else(|(error, _)| panic!("cannot produce {value}: {error}"));
        offsets.push(delivery.offset);
    }
    offsets
}

async fn dead_letters(store: &Store) -> Vec<DeadLetterSummary> {
    let query = DlqFilter {
        limit: Some("500".into()),
        ..DlqFilter::default()
    }
    .validate()
    .unwrap();
    store.list_dead_letters(&query).await.unwrap().items
}

async fn wait_for_dead_letters(store: &Store, count: usize, what: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let stored = dead_letters(store).await.len();
        if stored >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stored} of {count} dead letters stored after {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
