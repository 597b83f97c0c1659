//! Saga list (filtered, keyset-paged) queries; one saga with its timeline
//! is `read_timeline.rs`.

use sagascope_domain::micros;
use sagascope_model::{encode_cursor, SagaPage, SagaQuery, SagaSort};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::rows::summary_from_row;
use crate::{Result, Store};

impl Store {
    /// Newest first, by (started_at, saga_id) so pages never skip or repeat
    /// a row while new sagas arrive; with [`SagaSort::Waiting`], the running
    /// or compensating sagas by (last_event_at, saga_id), oldest first.
    #[tracing::instrument(skip(self), err)]
    pub async fn list_sagas(&self, query: &SagaQuery) -> Result<SagaPage> {
        self.list_sagas_overdue_by(query, &[]).await
    }

    /// [`Store::list_sagas`], where `query.overdue` keeps the running or
    /// compensating sagas that match one of `overdue` (their type, last
    /// flow node, and a last event before the rule's cutoff); with no rules
    /// nothing is overdue.
    #[tracing::instrument(skip(self, overdue), err, fields(overdue_rules = overdue.len()))]
    pub async fn list_sagas_overdue_by(
        &self,
        query: &SagaQuery,
        overdue: &[OverdueRule],
    ) -> Result<SagaPage> {
        // Groups without saga meaning (entity streams) are not sagas.
        let mut conditions: Vec<String> = vec!["kind = 'saga'".to_string()];
        let mut binds: Vec<Bind> = Vec::new();
        let next = |binds: &mut Vec<Bind>, value: Bind| {
            binds.push(value);
            format!("${}", binds.len())
        };
        if let Some(saga_type) = &query.saga_type {
            let p = next(&mut binds, Bind::Text(saga_type.clone()));
            conditions.push(format!("saga_type = {p}"));
        }
        if !query.statuses.is_empty() {
            let ps: Vec<String> = query
                .statuses
                .iter()
                .map(|s| next(&mut binds, Bind::Text(s.as_str().to_string())))
                .collect();
            conditions.push(format!("status IN ({})", ps.join(", ")));
        }
        if let Some(since) = query.since {
            let p = next(&mut binds, Bind::Int(micros(since)));
            conditions.push(format!("started_at_us >= {p}"));
        }
        if let Some(until) = query.until {
            let p = next(&mut binds, Bind::Int(micros(until)));
            conditions.push(format!("started_at_us < {p}"));
        }
        if let Some(q) = &query.q {
            let p = next(&mut binds, Bind::Text(q.clone()));
            conditions.push(format!("(saga_id = {p} OR saga_id IN (SELECT saga_id FROM saga_keys WHERE search_key = {p}))"));
        }
        // Only sagas still in progress wait for anything: the waiting order
        // lists those (the active-saga indexes hold them by last event).
        if query.overdue || query.sort == SagaSort::Waiting {
            conditions.push(crate::stall_sweep::ACTIVE_SAGA.to_string());
        }
        if query.overdue {
            let mut any = Vec::with_capacity(overdue.len());
            for rule in overdue {
                let t = next(&mut binds, Bind::Text(rule.saga_type.clone()));
                let n = next(&mut binds, Bind::Text(rule.last_node.clone()));
                let c = next(&mut binds, Bind::Int(rule.cutoff_us));
                any.push(format!(
                    "(saga_type = {t} AND last_node = {n} AND last_event_at_us < {c})"
                ));
            }
            conditions.push(if any.is_empty() {
                "1 = 0".to_string()
            } else {
                format!("({})", any.join(" OR "))
            });
        }
        if query.incomplete_compensation {
            conditions.push("missing_compensations IS NOT NULL".to_string());
        }
        // The order's key column and direction; the cursor is a position in it.
        let (key, before, direction) = match query.sort {
            SagaSort::Started => ("started_at_us", "<", "DESC"),
            SagaSort::Waiting => ("last_event_at_us", ">", "ASC"),
        };
        if let Some((key_us, saga_id)) = &query.cursor {
            let t = next(&mut binds, Bind::Int(*key_us));
            let id = next(&mut binds, Bind::Text(saga_id.clone()));
            conditions.push(format!(
                "({key} {before} {t} OR ({key} = {t} AND saga_id {before} {id}))"
            ));
        }
        let limit = next(&mut binds, Bind::Int(i64::from(query.limit) + 1));
        let where_clause = format!("WHERE {}", conditions.join(" AND "));
        let sql = format!(
            "SELECT saga_id, {key} AS cursor_us, status, projection, inferred_from, missing_compensations FROM sagas {where_clause} ORDER BY {key} {direction}, saga_id {direction} LIMIT {limit}"
        );
        let mut statement: Query<'_, Any, AnyArguments<'_>> = sqlx::query(&sql);
        for bind in binds {
            statement = match bind {
                Bind::Text(text) => statement.bind(text),
                Bind::Int(n) => statement.bind(n),
            };
        }
        let rows = statement.fetch_all(&self.pool).await?;
        let has_more = rows.len() > query.limit as usize;
        let mut items = Vec::with_capacity(rows.len().min(query.limit as usize));
        let mut next_cursor = None;
        for row in rows.iter().take(query.limit as usize) {
            items.push(summary_from_row(row)?);
            if has_more {
                let key_us: i64 = row.try_get("cursor_us")?;
                let id: String = row.try_get("saga_id")?;
                next_cursor = Some(encode_cursor(key_us, &id));
            }
        }
        Ok(SagaPage { items, next_cursor })
    }

    /// Distinct saga types, for the filter drop-down.
    #[tracing::instrument(skip_all, err)]
    pub async fn saga_types(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT saga_type FROM sagas WHERE kind = 'saga' ORDER BY saga_type",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("saga_type").map_err(Into::into))
            .collect()
    }
}

/// A saga of `saga_type` whose latest event is `last_node` is overdue once
/// that event is older than `cutoff_us` (now − the p99 of the hop its
/// type's flow usually takes next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueRule {
    pub saga_type: String,
    pub last_node: String,
    pub cutoff_us: i64,
}

enum Bind {
    Text(String),
    Int(i64),
}
