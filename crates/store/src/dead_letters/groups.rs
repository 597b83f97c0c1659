//! Depth per DLQ topic and per failure group (see the module doc of
//! `dead_letters` for the definitions), over the rows a filter selects.

use std::collections::HashMap;

use sagascope_domain::from_micros;
use sagascope_model::{
    AlertLevel, DeadLetterGroup, DeadLetterGroups, DeadLetterState, DlqQuery, DlqTopicDepth,
    Timestamp,
};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{filter_conditions, open_states_sql, where_clause, AnyQuery, Binds};
use crate::{Result, Store};

/// Most groups returned: a DLQ with more distinct failures than this needs
/// a filter, not a longer list.
const MAX_GROUPS: i64 = 1000;

/// Counts of one subject (a topic or a failure group).
struct Counts {
    subject: String,
    depth: i64,
    total: i64,
    oldest_open_at: Option<Timestamp>,
    newest_at: Option<Timestamp>,
}

fn age_ms(now: Timestamp, oldest: Option<Timestamp>) -> Option<i64> {
    oldest.map(|t| (now - t).num_milliseconds().max(0))
}

impl Store {
    /// Per DLQ topic and per failure group, deepest first.
    #[tracing::instrument(skip(self), err)]
    pub async fn dead_letter_groups(
        &self,
        query: &DlqQuery,
        now: Timestamp,
    ) -> Result<DeadLetterGroups> {
        let topics = self.topic_depths(query, now).await?;
        let mut samples = self.samples(query).await?;
        let groups = self
            .count_by("failure_group", query)
            .await?
            .into_iter()
            .map(|c| {
                let (original_topic, exception_class, normalised_message) =
                    DeadLetterGroup::split_key(&c.subject);
                let (sample_id, sample_message) = samples.remove(&c.subject).unwrap_or_default();
                DeadLetterGroup {
                    oldest_age_ms: age_ms(now, c.oldest_open_at),
                    failure_group: c.subject,
                    original_topic,
                    exception_class,
                    normalised_message,
                    depth: c.depth,
                    total: c.total,
                    oldest_open_at: c.oldest_open_at,
                    newest_at: c.newest_at,
                    sample_id,
                    sample_message,
                }
            })
            .collect();
        Ok(DeadLetterGroups {
            depth_states: DeadLetterState::OPEN.to_vec(),
            topics,
            groups,
        })
    }

    /// Depth and oldest age of every DLQ topic that has dead letters
    /// (including those whose depth is back to 0), for the overview and
    /// `/metrics`.
    #[tracing::instrument(skip(self), err)]
    pub async fn dlq_depth_by_topic(&self, now: Timestamp) -> Result<Vec<DlqTopicDepth>> {
        self.topic_depths(&DlqQuery::default(), now).await
    }

    async fn topic_depths(&self, query: &DlqQuery, now: Timestamp) -> Result<Vec<DlqTopicDepth>> {
        Ok(self
            .count_by("dlq_topic", query)
            .await?
            .into_iter()
            .map(|c| DlqTopicDepth {
                oldest_age_ms: age_ms(now, c.oldest_open_at),
                topic: c.subject,
                depth: c.depth,
                total: c.total,
                oldest_open_at: c.oldest_open_at,
                newest_at: c.newest_at,
                level: AlertLevel::Ok,
            })
            .collect())
    }

    /// `column` is a fixed column name, never user input.
    async fn count_by(&self, column: &str, query: &DlqQuery) -> Result<Vec<Counts>> {
        let mut binds = Binds::default();
        let conditions = filter_conditions(query, &mut binds);
        let open = open_states_sql();
        let sql = format!(
            "SELECT {column} AS subject, COUNT(*) AS total, COUNT(CASE WHEN {open} THEN 1 END) AS depth, \
             MIN(CASE WHEN {open} THEN dead_lettered_at_us END) AS oldest_open_us, MAX(dead_lettered_at_us) AS newest_us \
             FROM dead_letters {} GROUP BY {column} ORDER BY depth DESC, total DESC, subject LIMIT {MAX_GROUPS}",
            where_clause(&conditions)
        );
        let statement: AnyQuery<'_> = binds.apply(sqlx::query(&sql));
        statement
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(counts_from_row)
            .collect()
    }

    /// The newest dead letter of each failure group: (id, message).
    async fn samples(
        &self,
        query: &DlqQuery,
    ) -> Result<HashMap<String, (Option<String>, Option<String>)>> {
        let mut binds = Binds::default();
        let conditions = filter_conditions(query, &mut binds);
        let sql = format!(
            "SELECT failure_group, id, exception_message FROM (\
             SELECT failure_group, id, exception_message, \
             ROW_NUMBER() OVER (PARTITION BY failure_group ORDER BY dead_lettered_at_us DESC, id DESC) AS rn \
             FROM dead_letters {}) ranked WHERE rn = 1",
            where_clause(&conditions)
        );
        let statement: AnyQuery<'_> = binds.apply(sqlx::query(&sql));
        let mut samples = HashMap::new();
        for row in statement.fetch_all(&self.pool).await? {
            samples.insert(
                row.try_get("failure_group")?,
                (row.try_get("id")?, row.try_get("exception_message")?),
            );
        }
        Ok(samples)
    }
}

fn counts_from_row(row: &AnyRow) -> Result<Counts> {
    Ok(Counts {
        subject: row.try_get("subject")?,
        depth: row.try_get("depth")?,
        total: row.try_get("total")?,
        oldest_open_at: row
            .try_get::<Option<i64>, _>("oldest_open_us")?
            .map(from_micros),
        newest_at: row.try_get::<Option<i64>, _>("newest_us")?.map(from_micros),
    })
}
