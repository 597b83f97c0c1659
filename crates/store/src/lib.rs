//! The timeline read model. One [`Store`] over Postgres (production) and
//! SQLite (embedded default) through sqlx's `Any` driver: the queries are
//! shared, and only the migrations (identity columns) and row locking differ
//! between backends.

mod audit_log;
mod auth_records;
mod bulk_load;
mod compensation_integrity;
mod dead_letters;
mod place_events;
mod project_sagas;
mod projection_cache;
#[cfg(feature = "test-support")]
mod query_plans;
mod read_flows;
mod read_ingest;
mod read_metrics;
mod read_sagas;
mod read_timeline;
mod read_trace;
mod reproject;
mod retention;
mod retries;
mod reused_coordinates;
mod rollup_cache;
mod rollup_retention;
mod rollups;
mod rows;
mod spans;
mod stall_sweep;
mod store_availability;
#[cfg(feature = "test-support")]
pub mod test_support;
mod window_sums;
mod write_batch;

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use audit_log::NewAuditEntry;
pub use auth_records::{ApiTokenRecord, SessionRecord, UserRecord};
pub use bulk_load::{copy_text, BulkLoaded, BulkLoader};
pub use compensation_integrity::CompensatedSaga;
pub use dead_letters::dead_letter_id;
#[cfg(feature = "test-support")]
pub use query_plans::StatementPlan;
pub use read_flows::FlowSample;
pub use read_ingest::{CountedTable, PartitionProgress};
pub use read_metrics::WindowMetrics;
pub use read_sagas::OverdueRule;
pub use read_timeline::SagaTimelineJson;
pub use reproject::{ReprojectProgress, ReprojectReport};
pub use retention::SagaRetentionBatch;
pub use retries::{
    AttemptResult, CancelOutcome, ChunkClaim, ClaimedChunk, ClaimedJob, ClaimedRetry,
    DiscardOutcome, InFlightItem, InterruptedReport, JobCreation, JobItem, NewRetry, NewRetryJob,
    ResolveReport, RetryClaim, RetryPayload, RetryableSource, INTERRUPTED, NOT_PRODUCED,
    NO_ORIGINAL_TOPIC, RETRY_CHUNK, SAGA_PROGRESSED,
};
pub use reused_coordinates::{
    dead_letter_id_at_reused_coordinates, is_reused_coordinates_id, REUSED_COORDINATES_SEPARATOR,
};
pub use rollup_retention::ROLLUP_KEEP;
pub use stall_sweep::{
    LearnedEnd, StallPolicy, INFERRED_FROM_LEARNED_END, INFERRED_FROM_LEARNED_QUIET,
};
pub use store_availability::{
    is_store_unavailable, watch_store_availability, StoreAvailability, STORE_PING_EVERY,
    STORE_PING_TIMEOUT,
};
pub use write_batch::{BatchOutcome, IngestBatch, NewIngestError, PartitionOffset, SagaTransition};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url `{0}`: use postgres://… or sqlite://PATH")]
    UnsupportedUrl(String),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("saga rows kept changing under the write ({0}); the batch is retried")]
    Contended(String),
    /// The benchmark loader (`bulk_load.rs`) refused its input.
    #[error("bulk load refused: {0}")]
    BulkLoad(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// Hides the password of a database URL for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme_end], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Cheap to clone: a handle on the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL it was opened with: Postgres connections outside the pool
    /// (LISTEN), and a second handle in tests.
    url: SecretUrl,
    /// Live sagas' rows as this process last wrote them (a hint checked by
    /// compare-and-set: see `project_sagas.rs`), shared by every clone.
    cache: std::sync::Arc<projection_cache::ProjectionCache>,
    /// The overview's rollup buckets (see `rollup_cache.rs`), shared by
    /// every clone.
    rollup_cache: std::sync::Arc<rollup_cache::RollupCache>,
    /// Sums of the overview windows' closed buckets (see `window_sums.rs`),
    /// shared by every clone.
    closed_sums: std::sync::Arc<window_sums::ClosedSumsCache>,
    /// Sums of the overview windows' buckets, open ones included: the
    /// same cache type, keyed by every bucket entry of the window.
    window_sums: std::sync::Arc<window_sums::ClosedSumsCache>,
    /// Whether the database answers, as this process last saw it
    /// (`store_availability.rs`), shared by every clone.
    availability: std::sync::Arc<StoreAvailability>,
}

/// A database URL whose Debug output hides the password.
#[derive(Clone)]
struct SecretUrl(std::sync::Arc<str>);

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

static INSTALL_DRIVERS: Once = Once::new();

impl Store {
    /// Connects (creating a SQLite file if it does not exist yet).
    pub async fn connect(url: &str) -> Result<Store> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite if !url.contains('?') && !url.contains(":memory:") => {
                format!("{url}?mode=rwc")
            }
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = match backend {
            Backend::Postgres => AnyPoolOptions::new().max_connections(16),
            // One writer at a time is all SQLite allows; WAL lets readers
            // proceed while the ingest writes. `synchronous = NORMAL` is
            // safe for the read model: a power cut may roll back the last
            // batches, data and offsets together, and the consumer starts
            // at the stored offsets, so it reads them again (see
            // docs/operations.md, "Durability settings"). A 16 MB page
            // cache per connection (the default is 2 MB) keeps the hot
            // index pages of a batch write in memory.
            Backend::Sqlite => AnyPoolOptions::new().max_connections(8).after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;")
                        .await?;
                    Ok(())
                })
            }),
        }
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
        Ok(Store {
            pool,
            backend,
            url: SecretUrl(url.as_str().into()),
            cache: Default::default(),
            rollup_cache: Default::default(),
            closed_sums: Default::default(),
            window_sums: Default::default(),
            availability: Default::default(),
        })
    }

    /// The Postgres URL the store was opened with (None on SQLite), for a
    /// dedicated connection such as the live relay's `LISTEN`.
    pub fn postgres_url(&self) -> Option<&str> {
        (self.backend == Backend::Postgres).then_some(&*self.url.0)
    }

    /// A transaction that will write. SQLite starts it as `BEGIN IMMEDIATE`:
    /// a deferred transaction that reads first and writes later fails at
    /// once with "database is locked" (no busy wait) when another writer
    /// committed in between; taking the write lock up front makes it wait
    /// its turn under `busy_timeout` instead.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Postgres => self.pool.begin().await?,
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
        })
    }

    /// The connection pool, for tests and benchmarks that check the tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Projection cache (hits, misses) since start, for the benchmark.
    pub fn projection_cache_counts(&self) -> (u64, u64) {
        self.cache.counts()
    }

    /// Rollup cache (hits, misses) in time buckets since start, for the
    /// benchmark and tests.
    pub fn rollup_cache_counts(&self) -> (u64, u64) {
        self.rollup_cache.counts()
    }

    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Postgres => {
                sqlx::migrate!("../../migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
            Backend::Sqlite => {
                sqlx::migrate!("../../migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Readiness probe: one round trip to the database.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `$1, $2, …` placeholders starting after `offset` bound values. sqlx's
/// SQLite driver accepts numbered `$N` parameters too, so both backends share
/// the SQL text.
pub(crate) fn placeholders(offset: usize, count: usize) -> String {
    (offset + 1..=offset + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Placeholders for a statement whose only parameters are these `count`
/// values, bound in order: `$1, $2, …` on Postgres, `?, ?, …` on SQLite.
/// Numbered parameters cost SQLite a linear search per parameter when they
/// are bound (`sqlite3_bind_parameter_name` walks the list of names), so a
/// 9,200-value insert spent ~100 ms there; positional ones cost nothing.
pub(crate) fn bulk_placeholders(conn: &sqlx::AnyConnection, count: usize) -> String {
    if conn.backend_name() == "SQLite" {
        vec!["?"; count].join(", ")
    } else {
        placeholders(0, count)
    }
}

/// `rows` parenthesised rows of `width` placeholders each, for a
/// multi-row `VALUES` whose only parameters they are (see
/// [`bulk_placeholders`]).
pub(crate) fn bulk_rows(conn: &sqlx::AnyConnection, rows: usize, width: usize) -> String {
    let sqlite = conn.backend_name() == "SQLite";
    (0..rows)
        .map(|i| {
            if sqlite {
                format!("({})", vec!["?"; width].join(", "))
            } else {
                format!("({})", placeholders(i * width, width))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend_and_hide_passwords() {
        assert_eq!(
            Backend::from_url("postgres://u:p@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("sqlite://data/x.db").unwrap(),
            Backend::Sqlite
        );
        let err = Backend::from_url("mysql://root:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql://root:***@h/db"), "{err}");
        assert!(!err.contains("secret"));
        assert_eq!(placeholders(2, 3), "$3, $4, $5");
    }
}
