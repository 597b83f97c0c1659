//! Process and broker faults around the real `sagascope` binary (issue 17):
//! the broker SIGKILLed for 30 s and restarted mid-ingest, one of two
//! replicas SIGKILLed while the other keeps running, and a bulk re-drive
//! job's process SIGKILLed mid-job. Each ends with what was produced stored
//! (or copied) exactly once.
//!
//! Ignored in the plain test run: they need `tansu` (TANSU_BIN, else PATH),
//! moto's S3 server (`python3 -m moto.server`, for a Tansu whose log
//! survives its restart) and are sized for a release binary (SAGASCOPE_BIN,
//! relative to the workspace root); scripts/test.sh runs them after the
//! crash test. SAGASCOPE_FAULT_SEED replays a run's traffic.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sagascope_auth::{hash_password, NewUser, Role};
use sagascope_model::{RetryJobState, RetryJobView, RETRY_OF_HEADER};
use sagascope_simulator::{MockKafka, ALL_TOPICS, DLT_TOPICS};
use sagascope_store::test_support::fresh_postgres_store;
use sagascope_store::{Store, NOT_PRODUCED};
use serde_json::{json, Value};
use sqlx::Row;

use sagascope_test_brokers::{
    consumed, create_topics, drop_postgres_database, exactly_once, fault_seed, produce_traffic,
    sagascope_bin, stored_coordinates, stored_offsets, wait_for_topics, Produced, S3Server,
    SagascopeProcess, TansuBroker, TansuStorage, TrafficPlan, WorkDir,
};

/// Partitions of every simulator topic.
const PARTITIONS: i32 = 3;
const GROUP: &str = "sagascope-process-faults";
/// How long a start may take to store its first batch.
const FIRST_BATCH_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the survivor may take to store everything; generous for a
/// loaded 2-core machine, never a timing assertion.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(240);
/// How long the broker stays down.
const BROKER_OUTAGE: Duration = Duration::from_secs(30);

fn the_binary() -> PathBuf {
    sagascope_bin(env!("CARGO_BIN_EXE_sagascope"))
}

/// Runs `scenario` in a work directory of logs and a fresh Postgres
/// database; on failure both are kept and named in the panic.
async fn with_store_and_logs<F>(name: &str, scenario: F)
where
    F: AsyncFnOnce(&Store, &str, &Path) -> Result<(), String>,
{
    let mut work = WorkDir::new(name);
    let store = fresh_postgres_store().await;
    let url = store.postgres_url().unwrap().to_string();
    let outcome = scenario(&store, &url, &work.path).await;
    store.close().await;
    match outcome {
        Ok(()) => drop_postgres_database(&url).await,
        Err(failure) => {
            work.keep = true;
            panic!(
                "{failure}\nthe store is kept at {url}; the logs in {}",
                work.path.display()
            );
        }
    }
}

/// The simulator's topics and dead-letter topics on `bootstrap`, once its
/// metadata shows them.
async fn simulator_topics(bootstrap: &str) {
    let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
    create_topics(bootstrap, &topics, PARTITIONS).expect("the topics are created");
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || wait_for_topics(&bootstrap, &topics, PARTITIONS))
        .await
        .unwrap()
        .expect("the broker's metadata shows the topics");
}

async fn produced_by(
    producer: tokio::task::JoinHandle<anyhow::Result<Produced>>,
) -> Result<Produced, String> {
    tokio::time::timeout(Duration::from_secs(240), producer)
        .await
        .map_err(|_| "producing took over 4 minutes".to_string())?
        .expect("the producer task does not panic")
        .map_err(|error| format!("producing failed: {error:#}"))
}

/// The store holds exactly what was produced, once each.
async fn check_exactly_once(store: &Store, produced: &Produced, what: &str) -> Result<(), String> {
    let stored = stored_coordinates(store).await;
    println!(
        "{what}: {} messages produced ({} stored as rows: {} events, {} ingest errors, {} dead letters; {} deletes and tombstones consumed, not stored)",
        produced.len(),
        produced.stored.len(),
        stored.events,
        stored.ingest_errors,
        stored.dead_letters,
        produced.ignored.len(),
    );
    if let Some(failure) = exactly_once(produced, &stored, &stored_offsets(store, GROUP).await) {
        return Err(format!("{what}: {failure}"));
    }
    if produced.malformed == 0 || produced.dead_letters == 0 || stored.ingest_errors == 0 {
        return Err(format!(
            "{what}: the traffic lacked malformed messages ({}) or dead letters ({})",
            produced.malformed, produced.dead_letters
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------
// 1. The broker SIGKILLed for 30 s and restarted, mid-ingest.

/// Messages produced before the outage (a backlog the process is still
/// reading when the broker dies) and after it.
const BEFORE_OUTAGE: usize = 30_000;
const AFTER_OUTAGE: usize = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu, moto and a release build: scripts/test.sh runs it with SAGASCOPE_BIN"]
async fn a_broker_down_30_s_mid_ingest_loses_and_duplicates_nothing() {
    with_store_and_logs("sagascope-broker-outage", async |store, url, work| {
        broker_outage(store, url, work).await
    })
    .await;
}

async fn broker_outage(store: &Store, database_url: &str, work: &Path) -> Result<(), String> {
    let seed = fault_seed("broker outage");
    let s3 = S3Server::start(work)
        .await
        .map_err(|error| format!("the S3 server for Tansu's log: {error:#}"))?;
    let mut broker = TansuBroker::start(work, TansuStorage::S3(s3.endpoint.clone()))
        .map_err(|error| format!("Tansu on S3: {error:#}"))?;
    let bootstrap = broker.bootstrap.clone();
    simulator_topics(&bootstrap).await;

    // A backlog first, so the kill finds the process reading it.
    let acked = Arc::new(AtomicUsize::new(0));
    let before = TrafficPlan {
        seed,
        messages: BEFORE_OUTAGE,
        per_second: 10_000.0,
    };
    let mut produced = produced_by(tokio::spawn(produce_traffic(
        bootstrap.clone(),
        before,
        acked.clone(),
    )))
    .await?;
    let mut sagascope = SagascopeProcess::serve_simulated(
        &the_binary(),
        &bootstrap,
        database_url,
        GROUP,
        &work.join("sagascope.log"),
        &[],
    );
    sagascope.wait_for_first_batch(FIRST_BATCH_TIMEOUT).await?;
    broker.kill();
    let at_kill = consumed(store, GROUP).await;
    println!(
        "broker outage: Tansu SIGKILLed with {at_kill} of {} messages consumed",
        produced.len()
    );
    if at_kill as usize >= produced.len() {
        return Err(format!(
            "seed {seed}: the process had consumed everything ({at_kill}) before the broker died: this run proved nothing"
        ));
    }
    // The outage itself, not a wait for a condition: the process must
    // live through it.
    tokio::time::sleep(BROKER_OUTAGE).await;
    if let Some(status) = sagascope.exited() {
        return Err(format!(
            "sagascope exited ({status}) while the broker was down\n{}",
            sagascope.log_tail()
        ));
    }
    broker
        .restart()
        .map_err(|error| format!("Tansu does not restart: {error:#}"))?;

    // More traffic after the restart: the broker's log went on where it
    // was (a broker that lost it would hand out offsets again).
    let after = TrafficPlan {
        seed: seed.wrapping_add(1),
        messages: AFTER_OUTAGE,
        per_second: 2_500.0,
    };
    let later = produced_by(tokio::spawn(produce_traffic(
        bootstrap.clone(),
        after,
        acked.clone(),
    )))
    .await?;
    let reused: Vec<String> = later
        .stored
        .iter()
        .chain(&later.ignored)
        .filter(|c| produced.stored.contains(*c) || produced.ignored.contains(*c))
        .take(10)
        .map(ToString::to_string)
        .collect();
    if !reused.is_empty() {
        return Err(format!(
            "Tansu reused offsets after its restart (its log did not survive): {}",
            reused.join(", ")
        ));
    }
    produced.extend(later);
    sagascope
        .wait_until_consumed(store, GROUP, &produced.ends, CATCH_UP_TIMEOUT)
        .await
        .map_err(|failure| format!("seed {seed}: after the broker's restart: {failure}"))?;
    sagascope.kill();
    check_exactly_once(store, &produced, &format!("seed {seed}, broker outage")).await
}

// ---------------------------------------------------------------------
// 2. Two replicas, one SIGKILLed: its partitions move to the survivor.

/// Paced so that both replicas ingest for a while, and traffic still
/// arrives after the kill while the group hands the partitions over.
const REPLICA_MESSAGES: usize = 40_000;
const REPLICA_RATE: f64 = 800.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu and a release build: scripts/test.sh runs it with SAGASCOPE_BIN"]
async fn a_sigkilled_replica_s_partitions_move_to_the_survivor() {
    with_store_and_logs("sagascope-replica-kill", async |store, url, work| {
        replica_killed(store, url, work).await
    })
    .await;
}

async fn replica_killed(store: &Store, database_url: &str, work: &Path) -> Result<(), String> {
    let seed = fault_seed("replica killed");
    let broker = TansuBroker::start(work, TansuStorage::Memory)
        .map_err(|error| format!("Tansu: {error:#}"))?;
    simulator_topics(&broker.bootstrap).await;
    let partitions = (ALL_TOPICS.len() + DLT_TOPICS.len()) * PARTITIONS as usize;

    let acked = Arc::new(AtomicUsize::new(0));
    let plan = TrafficPlan {
        seed,
        messages: REPLICA_MESSAGES,
        per_second: REPLICA_RATE,
    };
    let producer = tokio::spawn(produce_traffic(
        broker.bootstrap.clone(),
        plan,
        acked.clone(),
    ));
    let bin = the_binary();
    let replica = |name: &str| {
        SagascopeProcess::serve_simulated(
            &bin,
            &broker.bootstrap,
            database_url,
            GROUP,
            &work.join(format!("sagascope-{name}.log")),
            &[],
        )
    };
    let mut a = replica("a");
    let mut b = replica("b");
    // Both own partitions and have stored from them: the group split.
    let owns_and_stores = |body: &Value| {
        body["consumer"]["assigned_partitions"]
            .as_u64()
            .unwrap_or(0)
            > 0
            && body["consumer"]["batches"].as_u64().unwrap_or(0) > 0
    };
    a.wait_for_readyz(
        "a share of the partitions",
        FIRST_BATCH_TIMEOUT,
        owns_and_stores,
    )
    .await
    .map_err(|failure| format!("replica A: {failure}"))?;
    b.wait_for_readyz(
        "a share of the partitions",
        FIRST_BATCH_TIMEOUT,
        owns_and_stores,
    )
    .await
    .map_err(|failure| format!("replica B: {failure}"))?;
    // Once both report a share, wait for A to store one more batch, so
    // the kill lands while it ingests its share.
    let a_batches = a.batches().await.unwrap_or(0);
    let a_owned = a.readyz().await.map_or(0, |body| {
        body["consumer"]["assigned_partitions"]
            .as_u64()
            .unwrap_or(0)
    });
    a.wait_for_readyz("another stored batch", FIRST_BATCH_TIMEOUT, |body| {
        body["consumer"]["batches"].as_u64().unwrap_or(0) > a_batches
    })
    .await
    .map_err(|failure| format!("replica A: {failure}"))?;
    a.kill();
    let b_at_kill = b.batches().await.unwrap_or(0);
    println!(
        "replica killed: A (owning {a_owned} of {partitions} partitions) SIGKILLed with {} messages consumed, {} produced",
        consumed(store, GROUP).await,
        acked.load(Ordering::Relaxed)
    );
    if acked.load(Ordering::Relaxed) >= REPLICA_MESSAGES {
        return Err(format!(
            "seed {seed}: the traffic was over before the kill: this run proved nothing"
        ));
    }
    // The group gives B every partition once A's session expires.
    let partitions_u64 = partitions as u64;
    let took_over = b
        .wait_for_readyz("every partition", CATCH_UP_TIMEOUT, |body| {
            body["consumer"]["assigned_partitions"].as_u64() == Some(partitions_u64)
        })
        .await
        .map_err(|failure| format!("replica B never took A's partitions: {failure}"))?;
    println!(
        "replica killed: B owned all {partitions} partitions {:.1} s after the kill",
        took_over.as_secs_f64()
    );
    let produced = produced_by(producer).await?;
    b.wait_until_consumed(store, GROUP, &produced.ends, CATCH_UP_TIMEOUT)
        .await
        .map_err(|failure| format!("seed {seed}: the survivor: {failure}"))?;
    if b.batches().await.unwrap_or(0) <= b_at_kill {
        return Err("B stored nothing after A's kill".into());
    }
    b.kill();
    check_exactly_once(store, &produced, &format!("seed {seed}, replica killed")).await
}

// ---------------------------------------------------------------------
// 3. A bulk re-drive job's process SIGKILLed mid-job.

const ORIGINAL: &str = "payments.events";
const DLT: &str = "payments.events.DLT";
/// Dead letters in the job, and its pace: ~12 s of copies, so the kill
/// (after the first dozen) lands mid-job.
const DEAD_LETTERS: usize = 60;
const THROTTLE_PER_S: u32 = 5;
const KILL_AFTER_PRODUCED: u64 = 12;
/// How long after that the kill comes: half a throttled chunk (a second's
/// worth of copies) later, so part of the chunk in flight has reached the
/// broker, unrecorded, and part has not.
const KILL_DELAY: Duration = Duration::from_millis(500);
/// A job's lease is 60 s: the restarted process takes the job over after
/// it runs out, then needs ~10 s for the rest.
const JOB_TIMEOUT: Duration = Duration::from_secs(240);
const OPERATOR: (&str, &str) = ("otto", "otto-operator-password");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a release build: scripts/test.sh runs it with SAGASCOPE_BIN"]
async fn a_sigkilled_redrive_job_resumes_and_copies_each_dead_letter_once() {
    with_store_and_logs("sagascope-redrive-kill", async |store, url, work| {
        redrive_killed(store, url, work).await
    })
    .await;
}

async fn redrive_killed(store: &Store, database_url: &str, work: &Path) -> Result<(), String> {
    // librdkafka's mock cluster, in this process, outlives the sagascope
    // processes, and reports exact high watermarks for the read-back.
    let kafka = MockKafka::start(1, &["saga.state", ORIGINAL, DLT], 1)
        .map_err(|error| format!("the mock cluster: {error}"))?;
    let user = NewUser {
        name: OPERATOR.0.into(),
        role: Role::Operator,
        password_hash: hash_password(OPERATOR.1).unwrap(),
    };
    assert!(store.add_user(&user, chrono::Utc::now()).await.unwrap());
    let ids = produce_dead_letters(kafka.bootstrap_servers()).await;

    let bin = the_binary();
    let args: Vec<OsString> = [
        "serve",
        "--brokers",
        kafka.bootstrap_servers(),
        "--topics",
        "saga.state",
        "--dlq-topics",
        DLT,
        "--group-id",
        GROUP,
        "--database-url",
        database_url,
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let mut first = SagascopeProcess::start(&bin, &args, &work.join("sagascope-1.log"));
    wait_for_dead_letters(store, &mut first).await?;

    let session = login(&first).await?;
    let (status, job) = post(
        &first,
        &session,
        "/api/v1/dlq/retry",
        json!({
            "filter": { "topic": DLT }, "reason": "payment gateway is back",
            "expected_count": DEAD_LETTERS, "throttle_per_s": THROTTLE_PER_S,
            "idempotency_key": "process-faults-bulk"
        }),
    )
    .await?;
    if status != 202 {
        return Err(format!("the bulk retry answered {status}: {job}"));
    }
    let job_id = job["id"].as_str().unwrap().to_string();
    let at_kill = wait_for_job(store, &job_id, &mut first, "its first copies", |job| {
        job.produced >= KILL_AFTER_PRODUCED
    })
    .await?;
    tokio::time::sleep(KILL_DELAY).await;
    first.kill();
    let at_kill = store.retry_job(&job_id).await.unwrap().unwrap_or(at_kill);
    if !at_kill.state.is_active() {
        return Err(format!("the job was over before the kill: {at_kill:?}"));
    }
    // Claimed, maybe produced, not recorded: what the kill is about.
    let in_flight = store.in_flight_job_items(&job_id).await.unwrap().len();
    println!(
        "redrive killed: SIGKILLed with {} of {} copies recorded as produced, {in_flight} in flight",
        at_kill.produced, at_kill.total
    );
    if in_flight == 0 {
        return Err("no item was in flight at the kill: this run proved nothing".into());
    }

    // Nobody asks again: the restarted process resumes the job by itself.
    let mut second = SagascopeProcess::start(&bin, &args, &work.join("sagascope-2.log"));
    let done = wait_for_job(store, &job_id, &mut second, "the job's end", |job| {
        !job.state.is_active()
    })
    .await?;
    second.kill();
    let produced_again: i64 =
        sqlx::query("SELECT COUNT(*) FROM retry_attempts WHERE job_id = $1 AND error = $2")
            .bind(&job_id)
            .bind(NOT_PRODUCED)
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get(0);
    println!(
        "redrive killed: the job ended {} with {} produced, {} failed, {} skipped; of the {in_flight} in flight, {produced_again} were not on {ORIGINAL} and went again, the rest were found there",
        done.state.as_str(),
        done.produced,
        done.failed,
        done.skipped
    );

    let copies = copies_on(kafka.bootstrap_servers(), ORIGINAL).await;
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for of in &copies {
        *count.entry(of.clone()).or_default() += 1;
    }
    let missing: Vec<&String> = ids.iter().filter(|id| !count.contains_key(*id)).collect();
    let twice: Vec<(&String, &usize)> = count.iter().filter(|(_, n)| **n > 1).collect();
    let strangers: Vec<&String> = count.keys().filter(|id| !ids.contains(*id)).collect();
    if !missing.is_empty() || !twice.is_empty() || !strangers.is_empty() {
        return Err(format!(
            "{ORIGINAL} holds {} copies of {DEAD_LETTERS} dead letters: {} never copied {missing:?}; copied more than once {twice:?}; copies of unknown ids {strangers:?}; the job: {done:?}",
            copies.len(),
            missing.len(),
        ));
    }
    if done.state != RetryJobState::Completed || done.produced != DEAD_LETTERS as u64 {
        return Err(format!(
            "every copy is on {ORIGINAL} once, yet the job says otherwise: {done:?}"
        ));
    }
    Ok(())
}

/// Spring Kafka dead letters of payment events on [`DLT`], naming
/// [`ORIGINAL`] (the re-drive's target); returns their ids.
async fn produce_dead_letters(bootstrap: &str) -> HashSet<String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let mut ids = HashSet::new();
    for n in 0..DEAD_LETTERS as i64 {
        let value = format!(r#"{{"order_id":"ORD-{n}","amount":12.5}}"#);
        let key = format!("ORD-{n}");
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "type",
                value: Some("PaymentRequested"),
            })
            .insert(Header {
                key: "kafka_dlt-exception-fqcn",
                value: Some("java.net.SocketTimeoutException"),
            })
            .insert(Header {
                key: "kafka_dlt-original-topic",
                value: Some(ORIGINAL),
            })
            .insert(Header {
                key: "kafka_dlt-original-partition",
                value: Some(0_i32.to_be_bytes().as_slice()),
            })
            .insert(Header {
                key: "kafka_dlt-original-offset",
                value: Some(n.to_be_bytes().as_slice()),
            });
        let delivery = producer
            .send(
                FutureRecord::to(DLT)
                    .key(&key)
                    .payload(&value)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("the dead letter is acknowledged");
        ids.insert(format!("{DLT}/{}/{}", delivery.partition, delivery.offset));
    }
    ids
}

async fn wait_for_dead_letters(
    store: &Store,
    process: &mut SagascopeProcess,
) -> Result<(), String> {
    let deadline = Instant::now() + FIRST_BATCH_TIMEOUT;
    loop {
        let stored: i64 = sqlx::query("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get(0);
        if stored == DEAD_LETTERS as i64 {
            return Ok(());
        }
        if let Some(status) = process.exited() {
            return Err(format!(
                "sagascope exited ({status})\n{}",
                process.log_tail()
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{stored} of {DEAD_LETTERS} dead letters stored after {} s\n{}",
                FIRST_BATCH_TIMEOUT.as_secs(),
                process.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls the job in the store until `done`; the process must stay up.
async fn wait_for_job(
    store: &Store,
    id: &str,
    process: &mut SagascopeProcess,
    what: &str,
    done: impl Fn(&RetryJobView) -> bool,
) -> Result<RetryJobView, String> {
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let job = store.retry_job(id).await.unwrap().expect("the job exists");
        if done(&job) {
            return Ok(job);
        }
        if let Some(status) = process.exited() {
            return Err(format!(
                "sagascope exited ({status}) before {what}\n{}",
                process.log_tail()
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the job did not get to {what} in {} s: {job:?}\n{}",
                JOB_TIMEOUT.as_secs(),
                process.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A login session: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn login(process: &SagascopeProcess) -> Result<Session, String> {
    let response = reqwest::Client::new()
        .post(process.url("/api/v1/auth/login"))
        .header("origin", process.url(""))
        .json(&json!({ "name": OPERATOR.0, "password": OPERATOR.1 }))
        .send()
        .await
        .map_err(|error| format!("login: {error}"))?;
    if response.status() != 200 {
        return Err(format!("login answered {}", response.status()));
    }
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sagascope_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .ok_or("login set no session cookie")?;
    let body: Value = response.json().await.map_err(|error| error.to_string())?;
    Ok(Session {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap_or_default().to_string(),
    })
}

/// A same-origin POST of `session`, with its CSRF header.
async fn post(
    process: &SagascopeProcess,
    session: &Session,
    path: &str,
    body: Value,
) -> Result<(u16, Value), String> {
    let response = reqwest::Client::new()
        .post(process.url(path))
        .header("cookie", &session.cookie)
        .header("origin", process.url(""))
        .header("x-csrf-token", &session.csrf)
        .json(&body)
        .send()
        .await
        .map_err(|error| format!("POST {path}: {error}"))?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// The `x-retry-of` header of every message on `topic` (one partition),
/// read from the start up to its high watermark.
async fn copies_on(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "process-faults-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let high = {
        let bootstrap = bootstrap.to_string();
        let topic = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .create()
                .unwrap();
            client
                .fetch_watermarks(&topic, 0, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .await
        .unwrap()
    };
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut copies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = 0;
    while next < high {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out reading {topic} at {next} of {high}"
        );
        let Ok(message) = tokio::time::timeout(left, consumer.recv()).await else {
            continue;
        };
        let message = message.expect("read the topic");
        next = message.offset() + 1;
        let of = message
            .headers()
            .and_then(|headers| {
                headers
                    .iter()
                    .find(|h| h.key == RETRY_OF_HEADER)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
            .unwrap_or_else(|| format!("(no {RETRY_OF_HEADER} at offset {})", message.offset()));
        copies.push(of);
    }
    copies
}
