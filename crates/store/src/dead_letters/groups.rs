//! Depth per DLQ topic and per failure group (see the module doc of
//! `dead_letters` for the definitions), over the rows a filter selects.

use std::collections::{BTreeMap, HashMap};

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
        let topics = if filter_conditions(query, &mut Binds::default()).is_empty() {
            self.dlq_depth_by_topic(now).await?
        } else {
            self.topic_depths(query, now).await?
        };
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
    /// `/metrics`: from the counters (`dead_letter_counts`, kept by
    /// triggers), with one index probe per (topic, state) for the oldest
    /// and newest time, so the cost follows the number of topics, not of
    /// dead letters. Same figures as the unfiltered [`Store::dead_letter_groups`].
    #[tracing::instrument(skip(self), err)]
    pub async fn dlq_depth_by_topic(&self, now: Timestamp) -> Result<Vec<DlqTopicDepth>> {
        // The counts and the probes come from one statement: one snapshot.
        let rows = sqlx::query(
            "SELECT c.dlq_topic, c.state, c.n, \
             (SELECT MIN(d.dead_lettered_at_us) FROM dead_letters d WHERE d.dlq_topic = c.dlq_topic AND d.state = c.state) AS oldest_us, \
             (SELECT MAX(d.dead_lettered_at_us) FROM dead_letters d WHERE d.dlq_topic = c.dlq_topic AND d.state = c.state) AS newest_us \
             FROM (SELECT dlq_topic, state, CAST(SUM(n) AS BIGINT) AS n FROM (\
             SELECT dlq_topic, state, n FROM dead_letter_counts \
             UNION ALL SELECT dlq_topic, state, delta FROM dead_letter_count_deltas) counted \
             GROUP BY dlq_topic, state) c WHERE c.n > 0",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_topic: BTreeMap<String, Counts> = BTreeMap::new();
        for row in &rows {
            let topic: String = row.try_get("dlq_topic")?;
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            let oldest = row.try_get::<Option<i64>, _>("oldest_us")?.map(from_micros);
            let newest = row.try_get::<Option<i64>, _>("newest_us")?.map(from_micros);
            let open = DeadLetterState::parse(&state).is_some_and(DeadLetterState::is_open);
            let counts = by_topic.entry(topic.clone()).or_insert_with(|| Counts {
                subject: topic,
                depth: 0,
                total: 0,
                oldest_open_at: None,
                newest_at: None,
            });
            counts.total += n;
            counts.newest_at = counts.newest_at.max(newest);
            if open {
                counts.depth += n;
                counts.oldest_open_at = match (counts.oldest_open_at, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let mut counts: Vec<Counts> = by_topic.into_values().collect();
        // The order and bound of `count_by`.
        counts.sort_by(|a, b| {
            (b.depth, b.total)
                .cmp(&(a.depth, a.total))
                .then_with(|| a.subject.cmp(&b.subject))
        });
        counts.truncate(usize::try_from(MAX_GROUPS).unwrap_or(usize::MAX));
        Ok(counts.into_iter().map(|c| topic_depth(c, now)).collect())
    }

    async fn topic_depths(&self, query: &DlqQuery, now: Timestamp) -> Result<Vec<DlqTopicDepth>> {
        Ok(self
            .count_by("dlq_topic", query)
            .await?
            .into_iter()
            .map(|c| topic_depth(c, now))
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

fn topic_depth(c: Counts, now: Timestamp) -> DlqTopicDepth {
    DlqTopicDepth {
        oldest_age_ms: age_ms(now, c.oldest_open_at),
        topic: c.subject,
        depth: c.depth,
        total: c.total,
        oldest_open_at: c.oldest_open_at,
        newest_at: c.newest_at,
        level: AlertLevel::Ok,
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
