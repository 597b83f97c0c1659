//! Ingest errors and consumer progress.

use sagascope_model::IngestErrorView;
use sqlx::Row;

use crate::rows::{ingest_error_from_row, INGEST_ERROR_COLUMNS};
use crate::{Result, Store};

/// The next offset the store has for one partition of a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionProgress {
    pub group_id: String,
    pub topic: String,
    pub partition: i64,
    pub next_offset: i64,
}

impl Store {
    /// Newest first.
    #[tracing::instrument(skip(self), err)]
    pub async fn ingest_errors(&self, limit: u32) -> Result<Vec<IngestErrorView>> {
        let sql =
            format!("SELECT {INGEST_ERROR_COLUMNS} FROM ingest_errors ORDER BY id DESC LIMIT $1");
        sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(ingest_error_from_row)
            .collect()
    }

    #[tracing::instrument(skip(self), err)]
    pub async fn partition_progress(&self, group_id: &str) -> Result<Vec<PartitionProgress>> {
        let rows = sqlx::query(
            "SELECT group_id, topic, kafka_partition, next_offset FROM consumer_offsets WHERE group_id = $1 ORDER BY topic, kafka_partition",
        )
        .bind(group_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PartitionProgress {
                    group_id: r.try_get("group_id")?,
                    topic: r.try_get("topic")?,
                    partition: r.try_get("kafka_partition")?,
                    next_offset: r.try_get("next_offset")?,
                })
            })
            .collect()
    }

    /// Row counts, for tests and readiness output.
    #[tracing::instrument(skip_all, fields(table = table.name()), err)]
    pub async fn count(&self, table: CountedTable) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", table.name());
        Ok(sqlx::query(&sql)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum CountedTable {
    Events,
    Sagas,
    IngestErrors,
}

impl CountedTable {
    fn name(self) -> &'static str {
        match self {
            CountedTable::Events => "events",
            CountedTable::Sagas => "sagas",
            CountedTable::IngestErrors => "ingest_errors",
        }
    }
}
