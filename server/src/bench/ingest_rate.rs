//! `sagascope bench ingest`: how fast the real ingest path stores events
//! (consume from Kafka, decode, place, project, roll up, commit), as a
//! ratio of what the same machine does without sagascope in the way, in
//! the same run — so the figure holds on a shared machine, where an
//! absolute rate says mostly how busy the CPUs were:
//!
//! 1. the demo's traffic is rendered and produced to the mock cluster;
//! 2. decode-only: `Decoder::decode` over the same messages, no store;
//!
//! then for each store measured (Postgres, SQLite or both, one after the
//! other, from the same produced traffic and decoded events):
//!
//! 3. the raw baseline: the decoded events as rows of `events`, bulk
//!    loaded into a scratch table without indexes (Postgres: one COPY,
//!    `copy_rate.rs`; SQLite: one transaction of one prepared multi-row
//!    INSERT, `sqlite_insert_rate.rs`);
//! 4. store-only: `Store::write_batch` of the decoded events, no Kafka
//!    (then the tables are emptied again);
//! 5. the real thing: `Ingestor` from the mock cluster into the store
//!    (a consumer group of its own per store), timed until the last
//!    message is committed; the ratio is its sustained rate ÷ step 3's.
//!
//! Each phase's line ends with the load average, and the report carries
//! it per figure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use sagascope_domain::{Decoder, KafkaCoords, Rules, SagaEvent};
use sagascope_simulator::{MockKafka, ALL_TOPICS, DEMO_RULES};
use sagascope_store::Backend;

use super::load_average::{self, LoadAverage};
use super::{
    count_rows, fresh_sqlite_url, group_digits, ingest_per_store, open_store, rate_text,
    remove_files, reset_tables, sqlite_insert_rate, traffic, Report,
};

/// Which stores `bench ingest` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    Postgres,
    Sqlite,
    Both,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// postgres://… of a scratch database, or sqlite://PATH: it must hold
    /// no events (or give --reset), and is emptied between the phases.
    /// Without a sqlite:// URL, SQLite is measured in a new file in the
    /// temporary directory (removed afterwards).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The stores to measure: postgres, sqlite or both (one after the
    /// other, from the same produced traffic). Default: both when
    /// --database-url is a Postgres URL, else sqlite.
    #[arg(long, value_enum)]
    pub store: Option<StoreChoice>,
    /// Events to produce and ingest (messages that are no events, such as
    /// Debezium deletes, come on top).
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Ingest batch size (messages per store transaction).
    #[arg(long, default_value_t = 5000)]
    pub batch_size: usize,
    /// Ingest batch linger, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub batch_linger_ms: u64,
    /// Partitions per topic on the mock cluster, at least (more when a
    /// topic's messages would not fit in the mock broker's retention).
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Empty every sagascope table of the database first.
    #[arg(long)]
    pub reset: bool,
    /// Seed of the simulated traffic.
    #[arg(long, default_value_t = 4)]
    pub seed: u64,
}

/// One store to measure.
pub struct Target {
    pub backend: Backend,
    pub url: String,
    /// A temporary SQLite database's files, removed at the end.
    scratch_files: Vec<PathBuf>,
}

/// The stores `args` ask for, with their URLs.
fn targets(args: &IngestArgs) -> anyhow::Result<Vec<Target>> {
    let given = match args.database_url.as_deref() {
        Some(url) => Some((Backend::from_url(url)?, url)),
        None => None,
    };
    let choice = args.store.unwrap_or(match given {
        Some((Backend::Postgres, _)) => StoreChoice::Both,
        _ => StoreChoice::Sqlite,
    });
    let postgres = || match given {
        Some((Backend::Postgres, url)) => Ok(Target {
            backend: Backend::Postgres,
            url: url.to_string(),
            scratch_files: Vec::new(),
        }),
        _ => Err(anyhow::anyhow!(
            "measuring Postgres needs --database-url postgres://… (or DATABASE_URL)"
        )),
    };
    let sqlite = || match given {
        Some((Backend::Sqlite, url)) => Target {
            backend: Backend::Sqlite,
            url: url.to_string(),
            scratch_files: Vec::new(),
        },
        _ => {
            let (url, scratch_files) = fresh_sqlite_url("ingest");
            Target {
                backend: Backend::Sqlite,
                url,
                scratch_files,
            }
        }
    };
    Ok(match choice {
        StoreChoice::Postgres => vec![postgres()?],
        StoreChoice::Sqlite => vec![sqlite()],
        StoreChoice::Both => vec![postgres()?, sqlite()],
    })
}

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let targets = targets(&args)?;
    // Every store is opened and checked before minutes of rendering.
    let mut stores = Vec::with_capacity(targets.len());
    for target in &targets {
        let store = open_store(&target.url).await?;
        if args.reset {
            reset_tables(&store).await?;
        }
        let stored = count_rows(&store, "events").await?;
        anyhow::ensure!(
            stored == 0,
            "the {} database already holds {stored} events; the ingest benchmark needs an empty \
             one (give --reset to empty it, or use a scratch database)",
            target.backend.name()
        );
        stores.push(store);
    }
    let mut report = Report::default();

    // 1. Traffic, produced before the ingest starts.
    let started = Instant::now();
    let messages = traffic::history(args.events, args.seed);
    let event_messages = messages.iter().filter(|m| m.is_event).count();
    println!(
        "rendered {} messages ({} events) in {:.1} s",
        group_digits(messages.len() as u64),
        group_digits(event_messages as u64),
        started.elapsed().as_secs_f64()
    );
    let partitions = partitions_for(&messages, args.partitions);
    let kafka = MockKafka::start(1, &ALL_TOPICS, partitions)
        .context("cannot start the mock Kafka cluster")?;
    let producer = traffic::producer(kafka.bootstrap_servers(), 20)?;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(messages.len());
    for message in &messages {
        deliveries.push(traffic::send(&producer, &message.message).await?);
    }
    traffic::acked(deliveries).await?;
    let produce_elapsed = started.elapsed();
    drop(producer);
    println!(
        "produced them to the mock cluster ({partitions} partitions per topic) at {} ({})",
        rate_text(messages.len() as u64, produce_elapsed),
        load_average::now_text()
    );

    // 2. Decode only, one thread (the ingest decodes on one task too).
    let decoder = Decoder::new(Rules::parse(DEMO_RULES)?);
    let now = chrono::Utc::now();
    let mut offsets: HashMap<(&str, i32), i64> = HashMap::new();
    let raw: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let partition = i32::try_from(i).unwrap_or_default() % partitions;
            let offset = offsets.entry((m.message.topic, partition)).or_default();
            *offset += 1;
            let coords = KafkaCoords {
                topic: m.message.topic.to_string(),
                partition,
                offset: *offset - 1,
            };
            traffic::raw_message(&m.message, coords, now)
        })
        .collect();
    drop(messages);
    let started = Instant::now();
    let mut events: Vec<SagaEvent> = Vec::with_capacity(raw.len());
    let mut not_events = 0u64;
    for message in &raw {
        match decoder.decode(message, now) {
            Ok(event) => events.push(event),
            Err(_) => not_events += 1,
        }
    }
    let decode_elapsed = started.elapsed();
    let decode_load = LoadAverage::now();
    drop(raw);
    println!(
        "decode only: {} events ({} messages were no events) at {} (load {})",
        group_digits(events.len() as u64),
        not_events,
        rate_text(events.len() as u64, decode_elapsed),
        load_average::text(decode_load)
    );

    // 3–5 for each store.
    let total_messages = (events.len() as u64) + not_events;
    let shared = ingest_per_store::Shared {
        args: &args,
        events: &events,
        total_messages,
        kafka: &kafka,
    };
    crate::http::prometheus();
    let mut joins = Vec::new();
    for (target, store) in targets.iter().zip(&stores) {
        joins.push(ingest_per_store::measure(&shared, target, store, &mut report).await?);
    }

    report
        .info(
            "decode only, 1 thread (events/s)",
            rate_text(events.len() as u64, decode_elapsed),
        )
        .under(decode_load);
    report.info(
        "produce to mock cluster (msgs/s)",
        rate_text(total_messages, produce_elapsed),
    );
    report.note(format!(
        "{} messages, batch size {}, linger {} ms, {} partitions per topic; sustained = first \
         committed batch → last (the consumer-group join before it took {})",
        group_digits(total_messages),
        args.batch_size.max(1),
        args.batch_linger_ms,
        partitions,
        joins.join(", ")
    ));
    report.note(format!(
        "raw baselines: Postgres one COPY (text) into a scratch table like `events` without \
         indexes; SQLite {}",
        sqlite_insert_rate::description()
    ));
    report.note(
        "load = the load average (1/5/15 min) when the phase ended; with a 1-minute load near \
         the CPU count the rates are lower bounds, the ratios hold better",
    );
    report.print("sagascope bench ingest");
    for store in &stores {
        store.close().await;
    }
    drop(kafka);
    for target in &targets {
        remove_files(&target.scratch_files);
    }
    Ok(())
}

/// librdkafka's mock broker keeps at most 5 MiB per partition and drops
/// the oldest messages beyond that, so pre-produced traffic must be spread
/// over enough partitions to stay whole until consumed (3 MiB each, for
/// the log's own overhead).
fn partitions_for(messages: &[traffic::Simulated], at_least: i32) -> i32 {
    const PER_PARTITION: u64 = 3 * 1024 * 1024;
    let mut bytes: HashMap<&str, u64> = HashMap::new();
    for m in messages {
        let size = m.message.key.len()
            + m.message.value.as_ref().map_or(0, Vec::len)
            + m.message
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        *bytes.entry(m.message.topic).or_default() += size as u64;
    }
    let needed = bytes
        .values()
        .max()
        .copied()
        .unwrap_or(0)
        .div_ceil(PER_PARTITION);
    i32::try_from(needed)
        .unwrap_or(i32::MAX)
        .max(at_least)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(database_url: Option<&str>, store: Option<StoreChoice>) -> IngestArgs {
        IngestArgs {
            database_url: database_url.map(str::to_string),
            store,
            events: 1,
            batch_size: 1,
            batch_linger_ms: 1,
            partitions: 1,
            reset: false,
            seed: 1,
        }
    }

    fn backends(targets: &[Target]) -> Vec<Backend> {
        targets.iter().map(|t| t.backend).collect()
    }

    #[test]
    fn the_url_picks_the_stores_unless_told() {
        let pg = "postgres://postgres@127.0.0.1/bench";
        let both = targets(&args(Some(pg), None)).unwrap();
        assert_eq!(backends(&both), [Backend::Postgres, Backend::Sqlite]);
        assert_eq!(both[0].url, pg);
        assert!(both[1].url.starts_with("sqlite://"));
        assert!(!both[1].scratch_files.is_empty());

        let only_pg = targets(&args(Some(pg), Some(StoreChoice::Postgres))).unwrap();
        assert_eq!(backends(&only_pg), [Backend::Postgres]);

        let file = targets(&args(Some("sqlite:///tmp/x.db"), None)).unwrap();
        assert_eq!(backends(&file), [Backend::Sqlite]);
        assert_eq!(file[0].url, "sqlite:///tmp/x.db");
        assert!(file[0].scratch_files.is_empty());

        assert_eq!(
            backends(&targets(&args(None, None)).unwrap()),
            [Backend::Sqlite]
        );
        assert!(targets(&args(None, Some(StoreChoice::Both))).is_err());
        assert!(targets(&args(
            Some("sqlite:///tmp/x.db"),
            Some(StoreChoice::Postgres)
        ))
        .is_err());
    }
}
