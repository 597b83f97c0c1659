//! The re-drive's flags (`sagascope serve`, `demo`): every flag is also an
//! environment variable.

use std::collections::HashMap;
use std::time::Duration;

use clap::Args;

/// How dead letters are re-driven.
#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// Re-drive the dead letters of DLQ_TOPIC to TOPIC instead of the
    /// original topic their headers name, as DLQ_TOPIC=TOPIC; repeatable
    /// (comma separated in the environment). Dead letters that name no
    /// original topic can only be re-driven through such a target.
    #[arg(long = "retry-target", env = "SAGASCOPE_RETRY_TARGETS", value_delimiter = ',', value_parser = parse_retry_target)]
    pub retry_targets: Vec<(String, String)>,
    /// A re-driven dead letter whose copy has not come back to a DLQ for
    /// this long (and whose saga did not move meanwhile) is resolved, e.g.
    /// 30s, 2m, 1h.
    #[arg(long = "retry-resolve-after", env = "SAGASCOPE_RETRY_RESOLVE_AFTER", default_value = "2m", value_parser = parse_resolve_after)]
    pub retry_resolve_after: Duration,
    /// Bootstrap servers to produce re-driven copies to; default: the
    /// ingest's --brokers.
    #[arg(long = "retry-brokers", env = "SAGASCOPE_RETRY_BROKERS")]
    pub retry_brokers: Option<String>,
}

impl Default for RetryArgs {
    fn default() -> RetryArgs {
        RetryArgs {
            retry_targets: Vec::new(),
            retry_resolve_after: DEFAULT_RESOLVE_AFTER,
            retry_brokers: None,
        }
    }
}

/// `--retry-resolve-after` when not given.
pub const DEFAULT_RESOLVE_AFTER: Duration = Duration::from_secs(120);

fn parse_retry_target(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((dlq, target)) if !dlq.trim().is_empty() && !target.trim().is_empty() => {
            Ok((dlq.trim().to_string(), target.trim().to_string()))
        }
        _ => Err(format!(
            "`{text}` is not DLQ_TOPIC=TOPIC (e.g. payments.events.DLT=payments.events)"
        )),
    }
}

fn parse_resolve_after(text: &str) -> Result<Duration, String> {
    sagascope_domain::rules::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` is not a duration such as 30s, 2m or 1h"))
}

/// Everything the re-drive service runs with.
#[derive(Debug, Clone)]
pub struct RedriveConfig {
    /// Bootstrap servers of the cluster the copies go to.
    pub brokers: String,
    /// Extra librdkafka properties of the producer (security settings and
    /// the like; the ingest's, when it shares the cluster).
    pub client_properties: Vec<(String, String)>,
    /// DLQ topic → the topic its dead letters are re-driven to.
    pub targets: HashMap<String, String>,
    pub resolve_after: Duration,
    /// How often the resolve sweep runs and idle runners look for jobs.
    pub sweep_every: Duration,
    /// A job whose runner has not renewed its lease for this long is taken
    /// over by another runner (a crashed process).
    pub lease: Duration,
    /// The producer's delivery timeout (`message.timeout.ms`): a copy not
    /// acked by then is failed, and a single retry pending for longer than
    /// twice this is known to be interrupted.
    pub delivery_timeout: Duration,
    /// How long a second request with the same idempotency key waits for
    /// the first one to finish before it is answered "still in progress".
    pub replay_wait: Duration,
    /// Dead letters per chunk of a bulk job (one claim and one record
    /// transaction each, every copy of a chunk in flight at once); None:
    /// the store's best (see [`default_chunk_size`]).
    pub chunk_size: Option<usize>,
}

/// Chunk size by backend, as measured by `sagascope bench redrive` on a
/// loaded 2-core machine: SQLite does best with 500 (its one writer
/// alternates claims and records), Postgres with 1,000 (fewer, larger
/// statements to plan: 3,600–4,000/s against 2,000–2,500/s with 500).
pub fn default_chunk_size(backend: sagascope_store::Backend) -> usize {
    match backend {
        sagascope_store::Backend::Sqlite => 500,
        sagascope_store::Backend::Postgres => sagascope_store::RETRY_CHUNK,
    }
}

impl RedriveConfig {
    pub fn new(brokers: impl Into<String>) -> RedriveConfig {
        RedriveConfig {
            brokers: brokers.into(),
            client_properties: Vec::new(),
            targets: HashMap::new(),
            resolve_after: DEFAULT_RESOLVE_AFTER,
            sweep_every: Duration::from_secs(3),
            lease: Duration::from_secs(60),
            delivery_timeout: Duration::from_secs(30),
            replay_wait: Duration::from_secs(60),
            chunk_size: None,
        }
    }

    /// The flags, with the ingest's brokers as the default cluster.
    pub fn from_args(args: &RetryArgs, ingest_brokers: &str) -> RedriveConfig {
        let mut config = RedriveConfig::new(
            args.retry_brokers
                .clone()
                .unwrap_or_else(|| ingest_brokers.to_string()),
        );
        config.targets = args.retry_targets.iter().cloned().collect();
        config.resolve_after = args.retry_resolve_after;
        config
    }

    /// Where a dead letter of `dlq_topic` goes: the configured target, else
    /// the original topic, else nowhere.
    pub fn target_for(&self, dlq_topic: &str, original_topic: Option<&str>) -> Option<String> {
        self.targets
            .get(dlq_topic)
            .cloned()
            .or_else(|| original_topic.map(str::to_string))
            .filter(|t| !t.is_empty())
    }
}

/// `2m`, `90s`, `1h30m`: the resolve window in the reason it gives.
pub fn duration_text(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let mut text = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            text.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        retry: RetryArgs,
    }

    #[test]
    fn targets_are_repeatable_and_override_the_original_topic() {
        let cli = Cli::try_parse_from([
            "x",
            "--retry-target",
            "orders.DLT=orders.retry",
            "--retry-target",
            "legacy.dlq=legacy",
            "--retry-resolve-after",
            "90s",
        ])
        .unwrap();
        let config = RedriveConfig::from_args(&cli.retry, "k:9092");
        assert_eq!(config.brokers, "k:9092");
        assert_eq!(config.resolve_after, Duration::from_secs(90));
        assert_eq!(
            config.target_for("orders.DLT", Some("orders")).as_deref(),
            Some("orders.retry")
        );
        assert_eq!(
            config
                .target_for("payments.DLT", Some("payments"))
                .as_deref(),
            Some("payments")
        );
        assert_eq!(
            config.target_for("legacy.dlq", None).as_deref(),
            Some("legacy")
        );
        assert_eq!(config.target_for("other.DLT", None), None);
        assert!(Cli::try_parse_from(["x", "--retry-target", "no-equals"]).is_err());
        assert!(Cli::try_parse_from(["x", "--retry-resolve-after", "soon"]).is_err());
    }

    #[test]
    fn durations_read_back_as_flags() {
        assert_eq!(duration_text(Duration::from_secs(120)), "2m");
        assert_eq!(duration_text(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration_text(Duration::from_secs(45)), "45s");
        assert_eq!(duration_text(Duration::from_millis(300)), "300ms");
    }
}
