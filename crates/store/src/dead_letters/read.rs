//! The dead-letter list (filtered, keyset-paged), one dead letter in full,
//! and the dead letters of one saga.

use sagascope_model::{
    encode_dlq_cursor, DeadLetterDetail, DeadLetterPage, DeadLetterSummary, DlqQuery,
};
use sqlx::Row;

use super::rows::{detail_from_row, summary_from_row, DETAIL_COLUMNS, SUMMARY_COLUMNS};
use super::{filter_conditions, where_clause, AnyQuery, Bind, Binds};
use crate::{Result, Store};

/// Most dead letters listed on one saga's timeline.
const MAX_PER_SAGA: i64 = 1000;

impl Store {
    /// Newest first, by (dead_lettered_at, id), so pages neither skip nor
    /// repeat a row while new dead letters arrive.
    #[tracing::instrument(skip(self), err)]
    pub async fn list_dead_letters(&self, query: &DlqQuery) -> Result<DeadLetterPage> {
        let mut binds = Binds::default();
        // Several states are read one index range each (see below).
        let by_state = query.states.len() > 1;
        let filter = DlqQuery {
            states: if by_state {
                Vec::new()
            } else {
                query.states.clone()
            },
            ..query.clone()
        };
        let mut conditions = filter_conditions(&filter, &mut binds);
        if let Some((at_us, id)) = &query.cursor {
            let t = binds.push(Bind::Int(*at_us));
            let id = binds.push(Bind::Text(id.clone()));
            conditions.push(format!(
                "(dead_lettered_at_us < {t} OR (dead_lettered_at_us = {t} AND id < {id}))"
            ));
        }
        let limit = binds.push(Bind::Int(i64::from(query.limit) + 1));
        let newest = format!("ORDER BY dead_lettered_at_us DESC, id DESC LIMIT {limit}");
        let sql = if by_state {
            // `state IN (a, b)` newest first walks the time index and
            // filters: after a bulk retry of the newest 50,000 the open
            // ones lie behind all of them (160 ms at 30 M events). One
            // range of (state, time) per state, merged, reads only rows
            // that qualify.
            let branches: Vec<String> = query
                .states
                .iter()
                .enumerate()
                .map(|(i, state)| {
                    let mut branch = conditions.clone();
                    branch.push(format!("state = '{}'", state.as_str()));
                    format!(
                        "SELECT * FROM (SELECT {SUMMARY_COLUMNS} FROM dead_letters {} {newest}) AS state_{i}",
                        where_clause(&branch)
                    )
                })
                .collect();
            format!(
                "SELECT * FROM ({}) AS states {newest}",
                branches.join(" UNION ALL ")
            )
        } else {
            format!(
                "SELECT {SUMMARY_COLUMNS} FROM dead_letters {} {newest}",
                where_clause(&conditions)
            )
        };
        let statement: AnyQuery<'_> = binds.apply(sqlx::query(&sql));
        let rows = statement.fetch_all(&self.pool).await?;
        let page = query.limit as usize;
        let has_more = rows.len() > page;
        let mut items = Vec::with_capacity(rows.len().min(page));
        let mut next_cursor = None;
        for row in rows.iter().take(page) {
            items.push(summary_from_row(row)?);
            if has_more {
                let at: i64 = row.try_get("dead_lettered_at_us")?;
                let id: String = row.try_get("id")?;
                next_cursor = Some(encode_dlq_cursor(at, &id));
            }
        }
        Ok(DeadLetterPage { items, next_cursor })
    }

    /// One dead letter with key, value, headers and stack trace.
    #[tracing::instrument(skip(self), err)]
    pub async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetterDetail>> {
        let sql = format!("SELECT {DETAIL_COLUMNS} FROM dead_letters WHERE id = $1");
        sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(detail_from_row)
            .transpose()
    }

    /// The dead letters of a saga instance, oldest first (timeline order):
    /// those linked to it, and unlinked ones that name it.
    #[tracing::instrument(skip(self), err)]
    pub async fn dead_letters_of_saga(&self, saga_id: &str) -> Result<Vec<DeadLetterSummary>> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM dead_letters \
             WHERE linked_saga_id = $1 OR (linked_saga_id IS NULL AND saga_id = $1) \
             ORDER BY dead_lettered_at_us, id LIMIT $2"
        );
        sqlx::query(&sql)
            .bind(saga_id.to_string())
            .bind(MAX_PER_SAGA)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(summary_from_row)
            .collect()
    }
}
