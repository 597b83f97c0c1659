//! Command line: every flag is also an environment variable. One struct per
//! subsystem, flattened into the commands that need it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "sagascope",
    version,
    about = "Observability-first saga dashboard: Kafka saga, outbox and dead-letter events as live timelines."
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume real Kafka topics into Postgres (or SQLite) and serve the UI.
    Serve(ServeArgs),
    /// Embedded default: in-process Kafka-protocol cluster, traffic simulator, SQLite.
    Demo(DemoArgs),
    /// Sample saga producer (docker-compose): the demo's traffic simulator
    /// against a real Kafka cluster, its services' spans sent to an OTLP
    /// endpoint, until SIGTERM.
    Simulate(SimulateArgs),
    /// Apply the database migrations and exit.
    Migrate(MigrateArgs),
    /// Rebuild every saga from the stored events under the (changed) rules
    /// file. Online: the UI keeps the old sagas until the rebuild commits;
    /// the ingest pauses meanwhile and loses nothing.
    Reproject(ReprojectArgs),
    /// Measure speed on this machine and print the figures against the
    /// targets: `ingest`, `load`, `api`, `live`, `redrive`, `viewers` (see docs/benchmarks.md).
    Bench(crate::bench::BenchArgs),
    /// Local accounts: add, list, disable, enable, set-password.
    User(crate::auth::admin_cli::UserArgs),
    /// API tokens for automation (`Authorization: Bearer …`).
    Token(crate::auth::admin_cli::TokenArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(
        long,
        env = "SAGASCOPE_LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
    /// Log and span filter (tracing env-filter syntax). Spans it leaves
    /// out are not exported over OTLP either; their log lines then carry
    /// the ids of the nearest enclosing span.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,sqlx=warn,rdkafka=warn",
        global = true
    )]
    pub log_filter: String,
}

#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Bootstrap servers, HOST:PORT[,HOST:PORT…].
    #[arg(long, env = "SAGASCOPE_BROKERS")]
    pub brokers: String,
    /// Topic names or librdkafka `^regex` patterns, comma separated.
    #[arg(long, env = "SAGASCOPE_TOPICS", value_delimiter = ',', required = true)]
    pub topics: Vec<String>,
    /// Dead-letter topics, consumed besides --topics: names or `^regex`
    /// patterns, comma separated; `''` for none. Their messages become dead
    /// letters (Spring Kafka, Kafka Connect or the rules' `[dead_letter]`
    /// form), never saga events.
    #[arg(long, env = "SAGASCOPE_DLQ_TOPICS", value_delimiter = ',', default_value = sagascope_ingest::DEFAULT_DLQ_TOPICS)]
    pub dlq_topics: Vec<String>,
    /// Consumer group of sagascope's own ingest.
    #[arg(long, env = "SAGASCOPE_GROUP_ID", default_value = "sagascope")]
    pub group_id: String,
    /// Consumer groups of the services whose lag (high watermark minus
    /// committed offset, per partition of the --topics they read) the
    /// overview and /metrics show, comma separated. sagascope's own
    /// --group-id is always watched too.
    #[arg(long, env = "SAGASCOPE_WATCH_GROUPS", value_delimiter = ',')]
    pub watch_groups: Vec<String>,
    /// Seconds between two polls of the watched groups' lag.
    #[arg(long, env = "SAGASCOPE_WATCH_INTERVAL_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub watch_interval_seconds: u64,
    #[command(flatten)]
    pub batch: BatchArgs,
}

#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Maximum messages per ingest batch (one store transaction).
    #[arg(long, env = "SAGASCOPE_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: usize,
    /// How long a batch may wait to fill up, in milliseconds.
    #[arg(long, env = "SAGASCOPE_BATCH_LINGER_MS", default_value_t = 100)]
    pub batch_linger_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// postgres://USER[:PASSWORD]@HOST/DB or sqlite://PATH.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Address the HTTP server listens on.
    #[arg(long, env = "SAGASCOPE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Where the compiled front end (cargo-leptos `site-root`) lives.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    /// Classification rules (TOML); see rules.example.toml.
    #[arg(long, env = "SAGASCOPE_RULES")]
    pub rules: Option<PathBuf>,
    /// Payloads larger than this many bytes are stored as a truncated copy,
    /// flagged on the event.
    #[arg(long, env = "SAGASCOPE_MAX_PAYLOAD_BYTES", default_value_t = sagascope_domain::DEFAULT_MAX_PAYLOAD_BYTES)]
    pub max_payload_bytes: usize,
    /// A running saga with no event for this long is `stalled` (per-type
    /// `timeout` in the rules file wins), e.g. 30s, 5m, 1h.
    #[arg(long, env = "SAGASCOPE_STALL_AFTER", default_value = "5m", value_parser = parse_stall_after)]
    pub stall_after: std::time::Duration,
}

fn parse_stall_after(text: &str) -> Result<std::time::Duration, String> {
    sagascope_domain::rules::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration such as 30s, 5m or 1h"))
}

/// A retention age; `None` keeps everything (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionAge(pub Option<std::time::Duration>);

/// Removal of old data in bounded batches. Removing raw rows never changes
/// the overview's counts (its rollups are pruned on their own, by grain,
/// past what any window reads: 2 h of minutes … 9 days of 6 h); retry attempts and
/// jobs are kept too (the operators' history: prune them by your own
/// policy); the audit log has an age of its own, long by default; open
/// dead letters are never removed.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Remove sagas (and entity streams) that are over (ended, or stalled)
    /// and whose last event is older than this, with their events, search
    /// and correlation keys; also dead letters dead-lettered before it once
    /// closed (retried, resolved, failed_again, discarded). Running sagas
    /// and open dead letters stay whatever their age. e.g. 30d, 12h; `off`
    /// keeps everything.
    #[arg(long, env = "SAGASCOPE_RETENTION_EVENTS", default_value = "30d", value_parser = crate::retention::parse_retention_age)]
    pub retention_events: RetentionAge,
    /// Remove stored spans older than this (e.g. 7d, `off`); default: the
    /// --retention-events age.
    #[arg(long, env = "SAGASCOPE_RETENTION_SPANS", value_parser = crate::retention::parse_retention_age)]
    pub retention_spans: Option<RetentionAge>,
    /// Remove ingest errors (undecodable messages) ingested before this
    /// (e.g. 7d, `off`); their counts stay in the rollups; default: the
    /// --retention-events age.
    #[arg(long, env = "SAGASCOPE_RETENTION_INGEST_ERRORS", value_parser = crate::retention::parse_retention_age)]
    pub retention_ingest_errors: Option<RetentionAge>,
    /// Remove audit log entries older than this (e.g. 400d, `off`). Long
    /// by default: it is the operators' history; set it to what your
    /// compliance rules require.
    #[arg(long, env = "SAGASCOPE_RETENTION_AUDIT", default_value = "400d", value_parser = crate::retention::parse_retention_age)]
    pub retention_audit: RetentionAge,
    /// Rows (sagas with their events, dead letters, errors, spans) removed
    /// per transaction; a pass repeats batches until nothing older is left.
    #[arg(long, env = "SAGASCOPE_RETENTION_BATCH_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_batch_size: u32,
    /// Time between two retention passes (the first runs at start), e.g.
    /// 10m, 1h.
    #[arg(long, env = "SAGASCOPE_RETENTION_INTERVAL", default_value = "10m", value_parser = crate::retention::parse_interval)]
    pub retention_interval: std::time::Duration,
    /// Pause between two batches of a pass, in milliseconds, so the ingest
    /// commits in between.
    #[arg(
        long,
        env = "SAGASCOPE_RETENTION_BATCH_PAUSE_MS",
        default_value_t = 100
    )]
    pub retention_batch_pause_ms: u64,
}

/// Where the span waterfall's spans come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpanSourceKind {
    /// sagascope's own OTLP receiver (`POST /v1/traces`), kept in the database.
    Otlp,
    /// A Jaeger v2 query API (`/api/v3/traces/{id}`), fetched per trace and cached.
    Jaeger,
    /// A Tempo query API (`/api/traces/{id}`), fetched per trace and cached.
    Tempo,
}

impl SpanSourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanSourceKind::Otlp => "otlp",
            SpanSourceKind::Jaeger => "jaeger",
            SpanSourceKind::Tempo => "tempo",
        }
    }

    pub fn example_url(self) -> &'static str {
        match self {
            SpanSourceKind::Tempo => "http://tempo:3200",
            _ => "http://jaeger:16686",
        }
    }
}

/// Spans beside the sagas: their source, deep links, and the OTLP receiver.
#[derive(Debug, Clone, Args)]
pub struct SpanArgs {
    /// Where the span waterfall's spans come from: `otlp` (sagascope's own
    /// receiver, POST /v1/traces, stored in the database), `jaeger` or
    /// `tempo` (their query API at --spans-query-url, fetched per trace on
    /// demand and cached).
    #[arg(
        long,
        env = "SAGASCOPE_SPANS_SOURCE",
        value_enum,
        default_value = "otlp"
    )]
    pub spans_source: SpanSourceKind,
    /// Base URL of the Jaeger (v2) or Tempo query API, e.g.
    /// http://jaeger:16686 or http://tempo:3200; needed with
    /// --spans-source jaeger|tempo.
    #[arg(long, env = "SAGASCOPE_SPANS_QUERY_URL")]
    pub spans_query_url: Option<String>,
    /// Deep link to a trace in Jaeger, Tempo or Grafana, `{trace_id}`
    /// replaced, e.g. http://localhost:16686/trace/{trace_id}.
    #[arg(long, env = "SAGASCOPE_TRACE_LINK_TEMPLATE")]
    pub trace_link_template: Option<String>,
    /// Bearer token OTLP exporters send to POST /v1/traces
    /// (`Authorization: Bearer …`; OTEL_EXPORTER_OTLP_HEADERS). Without it
    /// and without --otlp-allow-anonymous the receiver is off.
    #[arg(long, env = "SAGASCOPE_OTLP_TOKEN", hide_env_values = true)]
    pub otlp_token: Option<crate::auth::Secret>,
    /// Accept OTLP exports without a token (only on a trusted network).
    #[arg(long, env = "SAGASCOPE_OTLP_ALLOW_ANONYMOUS")]
    pub otlp_allow_anonymous: bool,
    /// Also serve POST /v1/traces, and only it, on this address, e.g.
    /// 0.0.0.0:4318 (the standard OTLP/HTTP port).
    #[arg(long, env = "SAGASCOPE_OTLP_LISTEN")]
    pub otlp_listen: Option<SocketAddr>,
    /// How long spans of traces that no saga event carries are kept (the
    /// saga's events may arrive after its spans), e.g. 15m; spans of sagas
    /// stay until the retention age.
    #[arg(long, env = "SAGASCOPE_SPANS_UNMATCHED_WINDOW", default_value = "15m", value_parser = crate::auth::parse_ttl)]
    pub spans_unmatched_window: std::time::Duration,
    /// How long a trace fetched from Jaeger or Tempo is reused, e.g. 60s.
    #[arg(long, env = "SAGASCOPE_SPANS_CACHE_TTL", default_value = "60s", value_parser = crate::auth::parse_ttl)]
    pub spans_cache_ttl: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
    /// Re-drive of dead letters: targets, resolve window, cluster.
    #[command(flatten)]
    pub retry: sagascope_redrive::RetryArgs,
    /// Removal of old sagas, events, dead letters, ingest errors and spans.
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Spans beside the sagas and the OTLP receiver.
    #[command(flatten)]
    pub spans: SpanArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Sign-in and roles; the demo creates the users `operator` and
    /// `viewer` and prints their passwords.
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
    /// Re-drive of dead letters (to the in-process cluster).
    #[command(flatten)]
    pub retry: sagascope_redrive::RetryArgs,
    /// Removal of old data; the demo's history is 30 minutes old, so the
    /// 30-day default removes nothing.
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// Spans beside the sagas; the demo generates an OTLP token for its
    /// simulator unless --otlp-token is given.
    #[command(flatten)]
    pub spans: SpanArgs,
    /// Simulated messages per second across all sagas.
    #[arg(long, env = "SAGASCOPE_DEMO_RATE", default_value_t = 20.0)]
    pub rate: f64,
    /// The demo's SQLite read model; recreated at every start.
    #[arg(long, env = "SAGASCOPE_DEMO_DATABASE", default_value = "data/demo.db")]
    pub database_path: PathBuf,
    /// Sagas produced at start with event times spread over the last 30 minutes.
    #[arg(long, env = "SAGASCOPE_DEMO_HISTORY", default_value_t = 150)]
    pub history: usize,
    /// Share of saga starts that also produce a deliberately broken message.
    #[arg(long, env = "SAGASCOPE_DEMO_POISON_RATIO", default_value_t = 0.01)]
    pub poison_ratio: f64,
    /// Run without the example rules file, to see what the defaults make
    /// of the simulated traffic.
    #[arg(long, env = "SAGASCOPE_DEMO_WITHOUT_RULES", conflicts_with = "rules")]
    pub without_rules: bool,
    /// Password of the demo's `operator` user instead of a generated one
    /// (e.g. for browser tests).
    #[arg(long, env = "SAGASCOPE_DEMO_OPERATOR_PASSWORD", hide_env_values = true)]
    pub operator_password: Option<crate::auth::Secret>,
    /// Password of the demo's `viewer` user instead of a generated one.
    #[arg(long, env = "SAGASCOPE_DEMO_VIEWER_PASSWORD", hide_env_values = true)]
    pub viewer_password: Option<crate::auth::Secret>,
}

#[derive(Debug, Args)]
pub struct ReprojectArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Events read and placed per step.
    #[arg(long, env = "SAGASCOPE_REPROJECT_PAGE_SIZE", default_value_t = 2000)]
    pub page_size: usize,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Bootstrap servers of the Kafka cluster to produce to,
    /// HOST:PORT[,HOST:PORT…].
    #[arg(long, env = "SAGASCOPE_SIMULATE_BROKERS")]
    pub brokers: String,
    /// Simulated messages per second across all sagas.
    #[arg(long, env = "SAGASCOPE_SIMULATE_RATE", default_value_t = 20.0)]
    pub rate: f64,
    /// Partitions of each topic the simulator creates when the cluster
    /// does not have it yet (existing topics are left as they are).
    #[arg(long, env = "SAGASCOPE_SIMULATE_PARTITIONS", default_value_t = 3)]
    pub partitions: i32,
    /// Replication factor of the topics the simulator creates.
    #[arg(
        long,
        env = "SAGASCOPE_SIMULATE_REPLICATION_FACTOR",
        default_value_t = 1
    )]
    pub replication_factor: i32,
    /// Share of saga starts that also produce a deliberately broken message.
    #[arg(long, env = "SAGASCOPE_SIMULATE_POISON_RATIO", default_value_t = 0.01)]
    pub poison_ratio: f64,
    /// Share of payment and stock events their consuming service
    /// dead-letters to `<topic>.DLT` (the saga waits for a re-drive).
    #[arg(
        long,
        env = "SAGASCOPE_SIMULATE_DEAD_LETTER_RATIO",
        default_value_t = 0.02
    )]
    pub dead_letter_ratio: f64,
    /// OTLP/HTTP traces endpoint the simulated services' spans are sent to
    /// as JSON, the full URL, e.g. http://otel-collector:4318/v1/traces;
    /// without it no spans are made.
    #[arg(long, env = "SAGASCOPE_SIMULATE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Bearer token sent with the spans (`Authorization: Bearer …`), e.g.
    /// sagascope's --otlp-token when exporting to it directly.
    #[arg(
        long,
        env = "SAGASCOPE_SIMULATE_OTLP_BEARER_TOKEN",
        hide_env_values = true
    )]
    pub otlp_bearer_token: Option<crate::auth::Secret>,
    /// Seed of the simulated traffic; random when absent.
    #[arg(long, env = "SAGASCOPE_SIMULATE_SEED")]
    pub seed: Option<u64>,
}
