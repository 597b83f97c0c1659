//! The plans of the stall sweep's and retention's statements (feature
//! `test-support`), for the tests that hold them to one index range each
//! (migration 0012) instead of a walk over every saga ever stored. The
//! statements are the ones the sweeps run, with the same parameters.

use sagascope_domain::micros;
use sagascope_model::Timestamp;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::retention::{closed_dead_letters_sql, quiet_sagas_sql, OLD_INGEST_ERRORS_SQL};
use crate::spans::retention::{OLD_SPANS_SQL, UNMATCHED_SPANS_SQL};
use crate::stall_sweep::stall_statements;
use crate::{Backend, LearnedEnd, Result, StallPolicy, Store};

/// One statement's plan as the backend prints it: `EXPLAIN (COSTS OFF)`
/// lines on Postgres, `EXPLAIN QUERY PLAN` details on SQLite.
#[derive(Debug, Clone)]
pub struct StatementPlan {
    /// Which statement (`stall <type>`, `stall default`, `retention sagas`, …).
    pub statement: String,
    pub plan: String,
}

impl Store {
    /// The plan of each statement of [`Store::sweep_quiet_sagas`] for
    /// `policy` and `learned` as of `now` (the learned ones first, then the
    /// per-type ones, then the default one).
    pub async fn stall_sweep_plans(
        &self,
        policy: &StallPolicy,
        learned: &[LearnedEnd],
        now: Timestamp,
    ) -> Result<Vec<StatementPlan>> {
        let mut plans = Vec::new();
        for statement in stall_statements(policy, learned, now) {
            let sql = self.explain_prefix() + &statement.sql;
            let mut query = sqlx::query(&sql).bind(statement.cutoff_us);
            for value in &statement.binds {
                query = query.bind(value.clone());
            }
            plans.push(self.plan(statement.name.clone(), query).await?);
        }
        Ok(plans)
    }

    /// The plan of each retention statement for `cutoff` and `batch_size`:
    /// sagas, closed dead letters, ingest errors, spans by age, unmatched
    /// spans (received since `cutoff` − 1 h).
    pub async fn retention_plans(
        &self,
        cutoff: Timestamp,
        batch_size: u32,
    ) -> Result<Vec<StatementPlan>> {
        let cutoff_us = micros(cutoff);
        let limit = i64::from(batch_size);
        let explain = self.explain_prefix();
        let two = |sql: &str| explain.clone() + sql;
        let sagas = two(&quiet_sagas_sql(self.backend));
        let dead_letters = two(&closed_dead_letters_sql());
        let ingest_errors = two(OLD_INGEST_ERRORS_SQL);
        let spans = two(OLD_SPANS_SQL);
        let unmatched = two(UNMATCHED_SPANS_SQL);
        Ok(vec![
            self.plan(
                "retention sagas",
                sqlx::query(&sagas).bind(cutoff_us).bind(limit),
            )
            .await?,
            self.plan(
                "retention dead letters",
                sqlx::query(&dead_letters).bind(cutoff_us).bind(limit),
            )
            .await?,
            self.plan(
                "retention ingest errors",
                sqlx::query(&ingest_errors).bind(cutoff_us).bind(limit),
            )
            .await?,
            self.plan(
                "retention spans",
                sqlx::query(&spans).bind(cutoff_us).bind(limit),
            )
            .await?,
            self.plan(
                "unmatched spans",
                sqlx::query(&unmatched)
                    .bind(cutoff_us - 3_600_000_000)
                    .bind(cutoff_us)
                    .bind(limit),
            )
            .await?,
        ])
    }

    fn explain_prefix(&self) -> String {
        match self.backend {
            Backend::Postgres => "EXPLAIN (COSTS OFF) ".to_string(),
            Backend::Sqlite => "EXPLAIN QUERY PLAN ".to_string(),
        }
    }

    async fn plan<'q>(
        &self,
        statement: impl Into<String>,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<StatementPlan> {
        let column = match self.backend {
            Backend::Postgres => "QUERY PLAN",
            Backend::Sqlite => "detail",
        };
        let lines = query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get::<String, _>(column))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StatementPlan {
            statement: statement.into(),
            plan: lines.join("\n"),
        })
    }
}
