//! Rollup retention: each grain's rows are kept as long as a window that
//! reads that grain can reach them (with a margin), then deleted in
//! bounded batches, so the rollup tables hold a fixed span of time per
//! grain instead of growing with history. Unlike the sagas' retention
//! (`retention.rs`, an operator's choice of age), this one is what the
//! windows need: the overview only shows windows ending now
//! (`MetricsWindow`), 7 days at most.
//!
//! A consequence: a window ending long ago (`window_metrics` with an old
//! `now`, which only tests do) finds nothing once its rows have aged out.

use std::time::Duration;

use sagascope_domain::micros;
use sagascope_model::Timestamp;

use crate::{Result, Store};

/// (grain in seconds, how long its rows are kept): 1 min for the 15 m and
/// 1 h windows (2 h), 10 min for 6 h (12 h), 1 h for 24 h (2 days), 6 h for
/// 7 d (9 days). Every grain written (`rollups::GRAINS_S`) is listed.
pub const ROLLUP_KEEP: [(i64, Duration); 4] = [
    (60, Duration::from_secs(2 * 3600)),
    (600, Duration::from_secs(12 * 3600)),
    (3600, Duration::from_secs(2 * 86_400)),
    (6 * 3600, Duration::from_secs(9 * 86_400)),
];

/// Each rollup table with its key columns (the batch deletes by key).
const TABLES: [(&str, &str); 4] = [
    (
        "saga_rollups",
        "grain_s, bucket_start_us, saga_type, status",
    ),
    ("step_rollups", "grain_s, bucket_start_us, saga_type, step"),
    ("topic_rollups", "grain_s, bucket_start_us, topic"),
    (
        "histograms",
        "grain_s, bucket_start_us, series, subject, detail, value_ms",
    ),
];

impl Store {
    /// Deletes up to `batch_size` rollup rows that no window ending at
    /// `now` or later reads (see [`ROLLUP_KEEP`]), oldest buckets first,
    /// in one transaction; returns how many. Fewer than `batch_size` means
    /// nothing older is left. Each (table, grain) is one index range.
    #[tracing::instrument(skip(self), fields(backend = self.backend.name()), err)]
    pub async fn delete_expired_rollups(&self, now: Timestamp, batch_size: u32) -> Result<u64> {
        let mut left = i64::from(batch_size.max(1));
        let mut removed = 0u64;
        let mut tx = self.begin_write().await?;
        'tables: for (table, key) in TABLES {
            for (grain, keep) in ROLLUP_KEEP {
                let cutoff_us =
                    micros(now).saturating_sub(i64::try_from(keep.as_micros()).unwrap_or(i64::MAX));
                // Row values `IN (SELECT … LIMIT n)`: a bounded delete in
                // SQL that Postgres and SQLite (3.15+) share.
                let sql = format!(
                    "DELETE FROM {table} WHERE ({key}) IN \
                     (SELECT {key} FROM {table} WHERE grain_s = $1 AND bucket_start_us < $2 \
                      ORDER BY bucket_start_us LIMIT $3)"
                );
                let n = sqlx::query(&sql)
                    .bind(grain)
                    .bind(cutoff_us)
                    .bind(left)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                removed += n;
                left -= i64::try_from(n).unwrap_or(i64::MAX);
                if left <= 0 {
                    break 'tables;
                }
            }
        }
        tx.commit().await?;
        if removed > 0 {
            // Only buckets no current window reads went, but a window with
            // an old `now` may have cached them.
            self.rollup_cache.clear();
        }
        Ok(removed)
    }
}
