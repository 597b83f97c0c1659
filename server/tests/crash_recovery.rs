//! Crash recovery against a real broker process (issue 14): a Tansu broker
//! runs as a child process, over 100,000 simulated messages (every input
//! format, a few malformed ones, a few Spring dead letters) are produced to
//! it, and the real `sagascope serve` binary ingests them while this test
//! SIGKILLs it at random moments and starts it again. Afterwards the store
//! must hold every produced (topic, partition, offset) exactly once — as an
//! event, an ingest error or a dead letter — and nothing else, and its
//! stored offsets must reach each partition's end (so the Debezium deletes
//! and tombstones, which sagascope reads but does not store, were consumed
//! too).
//!
//! Ignored in the plain test run: it needs `tansu` (TANSU_BIN, else PATH;
//! `scripts/setup.sh --tests` installs it) and is sized for a release
//! binary (SAGASCOPE_BIN, relative to the workspace root; scripts/test.sh
//! runs it after the release build). SAGASCOPE_CRASH_SEED replays a run's
//! traffic and kill delays (not the offsets the kills hit: ingest speed
//! varies from run to run).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sagascope_simulator::{ALL_TOPICS, DLT_TOPICS};
use sagascope_store::test_support::{fresh_postgres_store, fresh_sqlite_store};
use sagascope_store::Store;
use sqlx::Row;

use sagascope_test_brokers::{
    consumed, create_topics, drop_postgres_database, exactly_once, produce_traffic, sagascope_bin,
    stored_coordinates, stored_offsets, wait_for_topics, SagascopeProcess, TansuBroker,
    TansuStorage, TrafficPlan, WorkDir,
};

/// Messages produced to the saga topics (dead letters come on top).
const MESSAGES: usize = 100_000;
/// Partitions of every topic, so the consumer has many to track and commit.
const PARTITIONS: i32 = 3;
/// Production is paced (100,000 in 40 s) so that the first kills hit a
/// process that consumes while new messages arrive, the later ones a
/// process catching up on the backlog that piled up while it was down.
const PRODUCE_RATE_PER_SECOND: f64 = 2_500.0;
/// SIGKILLs, each at a random delay after a start.
const KILLS: usize = 5;
const KILL_DELAY_MS: std::ops::RangeInclusive<u64> = 200..=3_000;
/// How long the last start may take to store everything.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(150);
const GROUP_ID: &str = "sagascope-crash-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu and a release build: scripts/test.sh runs it with SAGASCOPE_BIN"]
async fn sigkilled_ingest_loses_and_duplicates_nothing_on_sqlite() {
    let store = fresh_sqlite_store().await;
    let file = sqlite_file(&store).await;
    let url = format!("sqlite://{}", file.display());
    let outcome = crash_test(&store, &url, "SQLite").await;
    store.close().await;
    if outcome.is_ok() {
        // fresh_sqlite_store made a directory of its own for the file.
        if let Some(dir) = file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    outcome.unwrap_or_else(|failure| panic!("{failure}\nthe store is kept at {url}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs tansu and a release build: scripts/test.sh runs it with SAGASCOPE_BIN"]
async fn sigkilled_ingest_loses_and_duplicates_nothing_on_postgres() {
    let store = fresh_postgres_store().await;
    let url = store.postgres_url().unwrap().to_string();
    let outcome = crash_test(&store, &url, "Postgres").await;
    store.close().await;
    if outcome.is_ok() {
        drop_postgres_database(&url).await;
    }
    outcome.unwrap_or_else(|failure| panic!("{failure}\nthe store is kept at {url}"));
}

/// The whole scenario on one store; `Err` describes what went wrong (with
/// the seed), so the caller can keep the store for inspection.
async fn crash_test(store: &Store, database_url: &str, store_name: &str) -> Result<(), String> {
    let seed = crash_seed();
    println!("{store_name}: crash test seed {seed} (replay with SAGASCOPE_CRASH_SEED={seed})");
    let mut work = WorkDir::new(&format!("sagascope-crash-{seed}"));
    let outcome = scenario(store, database_url, store_name, seed, &work.path).await;
    if outcome.is_err() {
        work.keep = true;
    }
    outcome.map_err(|failure| {
        format!(
            "{failure}\nthe broker's and each sagascope's logs are kept in {}",
            work.path.display()
        )
    })
}

async fn scenario(
    store: &Store,
    database_url: &str,
    store_name: &str,
    seed: u64,
    work: &Path,
) -> Result<(), String> {
    let started = Instant::now();
    let broker = TansuBroker::start(work, TansuStorage::Memory).expect("the Tansu broker starts");
    let topics: Vec<&str> = ALL_TOPICS.iter().chain(&DLT_TOPICS).copied().collect();
    create_topics(&broker.bootstrap, &topics, PARTITIONS).expect("the topics are created on Tansu");
    let bootstrap = broker.bootstrap.clone();
    let all = topics.clone();
    tokio::task::spawn_blocking(move || wait_for_topics(&bootstrap, &all, PARTITIONS))
        .await
        .unwrap()
        .expect("Tansu's metadata shows the topics");

    let acked = Arc::new(AtomicUsize::new(0));
    let plan = TrafficPlan {
        seed,
        messages: MESSAGES,
        per_second: PRODUCE_RATE_PER_SECOND,
    };
    let producer = tokio::spawn(produce_traffic(
        broker.bootstrap.clone(),
        plan,
        acked.clone(),
    ));
    let sagascope = sagascope_bin(env!("CARGO_BIN_EXE_sagascope"));
    let start = |run: usize| {
        SagascopeProcess::serve_simulated(
            &sagascope,
            &broker.bootstrap,
            database_url,
            GROUP_ID,
            &work.join(format!("sagascope-{run}.log")),
            &[],
        )
    };

    // Each start is SIGKILLed at a random delay after its first stored
    // batch, so every kill interrupts ingest (a kill before that, during
    // start-up or the group join, has nothing to lose), while the producer
    // keeps adding messages.
    let mut kill_delays = StdRng::seed_from_u64(seed ^ 0x6b69_6c6c);
    let mut kills_mid_ingest = 0;
    for kill in 1..=KILLS {
        let before = consumed(store, GROUP_ID).await;
        let mut process = start(kill);
        let first_batch = process
            .wait_for_first_batch(FIRST_BATCH_TIMEOUT)
            .await
            .map_err(|failure| format!("seed {seed}, start {kill}: {failure}"))?;
        let delay = Duration::from_millis(kill_delays.random_range(KILL_DELAY_MS));
        tokio::time::sleep(delay).await;
        if let Some(status) = process.exited() {
            return Err(format!(
                "seed {seed}: sagascope exited by itself ({status}) before kill {kill}\n{}",
                process.log_tail()
            ));
        }
        process.kill();
        let killed_at = consumed(store, GROUP_ID).await;
        let produced = acked.load(Ordering::Relaxed);
        // Not all that was produced had been consumed: the process had
        // work in hand (rather than idling at the end of the topics).
        let mid_ingest = (killed_at as usize) < produced;
        kills_mid_ingest += usize::from(mid_ingest);
        println!(
            "{store_name}: start {kill} stored its first batch after {} ms, SIGKILLed {} ms later: {killed_at} messages consumed (+{} since its start), {produced} produced{}",
            first_batch.as_millis(),
            delay.as_millis(),
            killed_at - before,
            if mid_ingest { ", killed mid-ingest" } else { "" }
        );
    }
    let mut last = start(KILLS + 1);
    let restarted_at = Instant::now();

    let produced = tokio::time::timeout(Duration::from_secs(120), producer)
        .await
        .map_err(|_| format!("seed {seed}: producing took over 2 minutes"))?
        .expect("the producer task does not panic")
        .map_err(|error| format!("seed {seed}: producing failed: {error:#}"))?;
    last.wait_until_consumed(store, GROUP_ID, &produced.ends, CATCH_UP_TIMEOUT)
        .await
        .map_err(|failure| format!("seed {seed}: the last start: {failure}"))?;
    let caught_up = restarted_at.elapsed();
    last.kill();

    let stored = stored_coordinates(store).await;
    let report = exactly_once(&produced, &stored, &stored_offsets(store, GROUP_ID).await);
    let elapsed = started.elapsed();
    println!(
        "{store_name}: {} messages produced ({} stored as rows: {} events, {} ingest errors, {} dead letters; {} deletes and tombstones consumed, not stored)",
        produced.stored.len() + produced.ignored.len(),
        produced.stored.len(),
        stored.events,
        stored.ingest_errors,
        stored.dead_letters,
        produced.ignored.len(),
    );
    println!(
        "{store_name}: {KILLS} SIGKILLs ({kills_mid_ingest} mid-ingest), {} starts; the last start stored the rest in {:.1} s; {:.1} s in all",
        KILLS + 1,
        caught_up.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    if let Some(failure) = report {
        return Err(format!("seed {seed}, {store_name}: {failure}"));
    }
    // Sanity of the scenario itself: the traffic had each kind of row, and
    // at least one kill found the process with work in hand.
    if produced.malformed == 0 || produced.dead_letters == 0 || stored.ingest_errors == 0 {
        return Err(format!(
            "seed {seed}: the traffic lacked malformed messages ({}) or dead letters ({})",
            produced.malformed, produced.dead_letters
        ));
    }
    if kills_mid_ingest == 0 {
        return Err(format!(
            "seed {seed}: every kill found the process idle: this run proved nothing"
        ));
    }
    Ok(())
}

/// How long a start may take to store its first batch (connect, join
/// the group, get partitions assigned, read and write a batch).
const FIRST_BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// SAGASCOPE_CRASH_SEED, else a fresh one.
fn crash_seed() -> u64 {
    match std::env::var("SAGASCOPE_CRASH_SEED") {
        Ok(seed) => seed
            .trim()
            .parse()
            .expect("SAGASCOPE_CRASH_SEED is an unsigned integer"),
        Err(_) => rand::rng().random(),
    }
}

/// The file of the SQLite store (fresh_sqlite_store picks a temporary one).
async fn sqlite_file(store: &Store) -> std::path::PathBuf {
    let row = sqlx::query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .fetch_one(store.pool())
        .await
        .expect("SQLite names its database file");
    std::path::PathBuf::from(row.get::<String, _>(0))
}
