//! One handle over the two brokers.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use sagascope_simulator::MockKafka;

use crate::tansu::{TansuBroker, TansuStorage, WorkDir};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// librdkafka's mock cluster, in this process.
    MockCluster,
    /// Tansu 0.6 (memory engine) as a child process: `tansu` from
    /// TANSU_BIN, else PATH (`scripts/setup.sh --tests` installs it).
    Tansu,
}

impl BrokerKind {
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::MockCluster => "mock cluster",
            BrokerKind::Tansu => "tansu",
        }
    }
}

// Held for their `Drop`s (they stop the broker), never read.
#[allow(dead_code)]
enum Running {
    Mock(MockKafka),
    // Field order: the broker is killed before its log directory goes.
    Tansu(TansuBroker, WorkDir),
}

/// A running broker with the test's topics; stopped when dropped.
pub struct TestBroker {
    kind: BrokerKind,
    bootstrap: String,
    running: Running,
}

impl TestBroker {
    /// Starts a broker of `kind` with `topics`, each of `partitions`.
    pub fn start(kind: BrokerKind, topics: &[&str], partitions: i32) -> anyhow::Result<TestBroker> {
        let broker = match kind {
            BrokerKind::MockCluster => {
                let mock = MockKafka::start(1, topics, partitions)
                    .context("the mock cluster does not start")?;
                TestBroker {
                    kind,
                    bootstrap: mock.bootstrap_servers().to_string(),
                    running: Running::Mock(mock),
                }
            }
            BrokerKind::Tansu => {
                let work = WorkDir::new("sagascope-tansu");
                let tansu = TansuBroker::start(&work.path, TansuStorage::Memory)?;
                TestBroker {
                    kind,
                    bootstrap: tansu.bootstrap.clone(),
                    running: Running::Tansu(tansu, work),
                }
            }
        };
        if kind == BrokerKind::Tansu {
            create_topics(&broker.bootstrap, topics, partitions)?;
        }
        Ok(broker)
    }

    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// More topics, after the start, by CreateTopics: on Tansu only.
    /// librdkafka's mock cluster has no CreateTopics (librdkafka 2.12's
    /// mock handlers lack it); it, like Tansu, creates a topic with 4
    /// partitions when a producer first asks for it.
    pub fn create_topics(&self, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
        create_topics(&self.bootstrap, topics, partitions)
    }

    /// Tansu's process, to stop or restart it in a fault test.
    pub fn tansu(&mut self) -> Option<&mut TansuBroker> {
        match &mut self.running {
            Running::Tansu(tansu, _) => Some(tansu),
            Running::Mock(_) => None,
        }
    }
}

/// CreateTopics through the admin API; a topic that exists is fine.
pub fn create_topics(bootstrap: &str, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
    if topics.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("cannot create the admin client")?;
    let new_topics: Vec<NewTopic> = topics
        .iter()
        .map(|topic| NewTopic::new(topic, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    // A thread and runtime of their own, the runtime also dropped there:
    // callers may be inside a runtime already, where dropping one panics.
    let results = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                anyhow::Ok(runtime.block_on(admin.create_topics(&new_topics, &options)))
            })
            .join()
            .expect("the create-topics thread")
    })?
    .context("CreateTopics failed")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// Waits (at most 20 s) until the broker's metadata shows each of `topics`
/// with `partitions` partitions: a broker may answer CreateTopics before
/// its metadata has them. Blocking: call it from a blocking thread.
pub fn wait_for_topics(bootstrap: &str, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metadata = client.fetch_metadata(None, Duration::from_secs(5))?;
        let complete = topics.iter().all(|name| {
            metadata.topics().iter().any(|t| {
                t.name() == *name
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
            })
        });
        if complete {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the broker's metadata lacks some of {topics:?} after 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
