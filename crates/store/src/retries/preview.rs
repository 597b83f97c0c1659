//! What a bulk retry of a filter would re-drive: the exact count now, per
//! produce target, and the newest few.

use std::collections::BTreeMap;

use sagascope_model::{BulkRetryPreview, DlqQuery, RETRYABLE_STATES};
use sqlx::Row;

use crate::dead_letters::{filter_conditions, where_clause, AnyQuery, Binds};
use crate::{Result, Store};

/// Dead letters in a preview's sample.
const SAMPLE: i64 = 10;

/// The `by_topic` label of dead letters that name no original topic (only
/// a configured `--retry-target` can re-drive them).
pub const NO_ORIGINAL_TOPIC: &str = "(no original topic)";

/// Retryable dead letters of one (DLQ topic, original topic) pair, so the
/// re-drive service can map them to its configured targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryableSource {
    pub dlq_topic: String,
    pub original_topic: Option<String>,
    pub count: u64,
}

/// The query a bulk retry runs: the filter with its states replaced by the
/// retryable ones, and no paging.
pub(crate) fn retryable(query: &DlqQuery) -> DlqQuery {
    DlqQuery {
        states: RETRYABLE_STATES.to_vec(),
        cursor: None,
        ..query.clone()
    }
}

impl Store {
    /// Count, per original topic and a sample (newest 10) of the dead
    /// letters a bulk retry of `query` would re-drive now. The query's
    /// states are ignored: only `RETRYABLE_STATES` count.
    #[tracing::instrument(skip(self), err)]
    pub async fn bulk_retry_preview(&self, query: &DlqQuery) -> Result<BulkRetryPreview> {
        let sources = self.retryable_sources(query).await?;
        let mut by_topic: BTreeMap<String, u64> = BTreeMap::new();
        for source in &sources {
            let topic = source
                .original_topic
                .clone()
                .unwrap_or_else(|| NO_ORIGINAL_TOPIC.to_string());
            *by_topic.entry(topic).or_default() += source.count;
        }
        let mut by_topic: Vec<(String, u64)> = by_topic.into_iter().collect();
        by_topic.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

        let query = retryable(query);
        let mut binds = Binds::default();
        let conditions = filter_conditions(&query, &mut binds);
        let sql = format!(
            "SELECT {} FROM dead_letters {} \
             ORDER BY dead_lettered_at_us DESC, id DESC LIMIT {SAMPLE}",
            Store::DEAD_LETTER_SUMMARY_COLUMNS,
            where_clause(&conditions)
        );
        let statement: AnyQuery<'_> = binds.apply(sqlx::query(&sql));
        let sample = statement
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Store::dead_letter_summary_of)
            .collect::<Result<Vec<_>>>()?;
        Ok(BulkRetryPreview {
            count: sources.iter().map(|s| s.count).sum(),
            by_topic,
            sample,
        })
    }

    /// Retryable dead letters of `query` per (DLQ topic, original topic).
    #[tracing::instrument(skip(self), err)]
    pub async fn retryable_sources(&self, query: &DlqQuery) -> Result<Vec<RetryableSource>> {
        let query = retryable(query);
        let mut binds = Binds::default();
        let conditions = filter_conditions(&query, &mut binds);
        let sql = format!(
            "SELECT dlq_topic, original_topic, COUNT(*) AS n FROM dead_letters {} \
             GROUP BY dlq_topic, original_topic ORDER BY dlq_topic, original_topic",
            where_clause(&conditions)
        );
        let statement: AnyQuery<'_> = binds.apply(sqlx::query(&sql));
        statement
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let n: i64 = row.try_get("n")?;
                Ok(RetryableSource {
                    dlq_topic: row.try_get("dlq_topic")?,
                    original_topic: row.try_get("original_topic")?,
                    count: u64::try_from(n).unwrap_or(0),
                })
            })
            .collect()
    }
}
