//! Stalled sagas: running or compensating, with no event for longer than
//! their type's timeout. The sweep stores `stalled` in the status column (or,
//! for choreographies known only from the default rules, their inferred
//! outcome: see `SagaProjection::quiet_status`);
//! the next event of the saga recomputes the status from its projection,
//! which clears it. Such a choreography that failed, compensated or
//! completed by its events' names is already `failed`/`compensated`/
//! `completed` when written, so the sweep (running and compensating only)
//! leaves it alone.

use std::time::Duration;

use sagascope_domain::micros;
use sagascope_model::{SagaSummary, Timestamp};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use crate::rollups::RollupDelta;
use crate::rows::{projection_from_json, summary_from_row};
use crate::{placeholders, Result, Store};
use sagascope_domain::SagaFact;
use sqlx::Row;

/// How long each saga type may go without an event.
#[derive(Debug, Clone)]
pub struct StallPolicy {
    pub default_timeout: Duration,
    pub per_type: Vec<(String, Duration)>,
}

fn cutoff_us(now: Timestamp, timeout: Duration) -> i64 {
    micros(now).saturating_sub(i64::try_from(timeout.as_micros()).unwrap_or(i64::MAX))
}

/// Running or compensating sagas: the predicate of the partial indexes
/// `sagas_active_by_type_last_event` and `sagas_active_by_status_last_event`
/// (migration 0012), written as they write it so both planners use them.
pub(crate) const ACTIVE_SAGA: &str = "kind = 'saga' AND status IN ('running', 'compensating')";

/// What a saga type's learned flow decides for its undeclared instances
/// (`sagascope_domain::flow_learning`): the events that end them at once,
/// and how long they may be quiet before they are inferred finished (within
/// the flat timeout, which still applies to everything else).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnedEnd {
    pub saga_type: String,
    pub end_nodes: Vec<String>,
    pub quiet_after: Option<Duration>,
}

/// `inferred_from` of a status set because the saga stopped at a learned
/// end event, and because it was quiet longer than its type's learned time.
pub const INFERRED_FROM_LEARNED_END: &str = "learned_end";
pub const INFERRED_FROM_LEARNED_QUIET: &str = "learned_quiet";

/// One statement of the sweep and what it binds: `$1` the cutoff, then
/// `binds` in order.
pub(crate) struct StallStatement {
    /// For plans and logs: `stall <type>`, `stall default`, `learned end
    /// <type>`, `learned quiet <type>`.
    pub name: String,
    pub sql: String,
    pub cutoff_us: i64,
    pub binds: Vec<String>,
}

/// The sweep's statements for `policy` and the `learned` ends as of `now`.
/// Each reads one index range: a type with its own timeout, and each
/// learned type, its active sagas in `(saga_type, last_event_at_us)`; the
/// default the expired sagas of any type in `(last_event_at_us)`, skipping
/// the types that have their own timeout (only those of them quiet longer
/// than the default but not yet their own timeout are read for nothing).
/// The learned statements come first and touch only undeclared sagas
/// (`quiet_status` set), so a declared saga of the same type still stalls
/// by the timeouts. Bumps `version`: the ingest's cached copy of the row is
/// stale now.
pub(crate) fn stall_statements(
    policy: &StallPolicy,
    learned: &[LearnedEnd],
    now: Timestamp,
) -> Vec<StallStatement> {
    let returning = "RETURNING status, projection, inferred_from";
    let mut statements = Vec::new();
    for end in learned {
        if !end.end_nodes.is_empty() {
            let mut binds = vec![end.saga_type.clone()];
            binds.extend(end.end_nodes.iter().cloned());
            statements.push(StallStatement {
                name: format!("learned end {}", end.saga_type),
                sql: format!(
                    "UPDATE sagas SET status = quiet_status, inferred_from = '{INFERRED_FROM_LEARNED_END}', version = version + 1 \
                     WHERE {ACTIVE_SAGA} AND last_event_at_us < $1 AND saga_type = $2 \
                     AND quiet_status IS NOT NULL AND last_node IN ({}) {returning}",
                    placeholders(2, end.end_nodes.len())
                ),
                // Whatever its age: the end event is there.
                cutoff_us: i64::MAX,
                binds,
            });
        }
        if let Some(quiet) = end.quiet_after {
            statements.push(StallStatement {
                name: format!("learned quiet {}", end.saga_type),
                sql: format!(
                    "UPDATE sagas SET status = quiet_status, inferred_from = '{INFERRED_FROM_LEARNED_QUIET}', version = version + 1 \
                     WHERE {ACTIVE_SAGA} AND last_event_at_us < $1 AND saga_type = $2 \
                     AND quiet_status IS NOT NULL {returning}"
                ),
                cutoff_us: cutoff_us(now, quiet),
                binds: vec![end.saga_type.clone()],
            });
        }
    }
    let update = format!(
        "UPDATE sagas SET status = COALESCE(quiet_status, 'stalled'), version = version + 1 \
         WHERE {ACTIVE_SAGA} AND last_event_at_us < $1"
    );
    statements.extend(
        policy
            .per_type
            .iter()
            .map(|(saga_type, timeout)| StallStatement {
                name: format!("stall {saga_type}"),
                sql: format!("{update} AND saga_type = $2 {returning}"),
                cutoff_us: cutoff_us(now, *timeout),
                binds: vec![saga_type.clone()],
            }),
    );
    let others = if policy.per_type.is_empty() {
        String::new()
    } else {
        format!(
            " AND saga_type NOT IN ({})",
            placeholders(1, policy.per_type.len())
        )
    };
    statements.push(StallStatement {
        name: "stall default".into(),
        sql: format!("{update}{others} {returning}"),
        cutoff_us: cutoff_us(now, policy.default_timeout),
        binds: policy.per_type.iter().map(|(t, _)| t.clone()).collect(),
    });
    statements
}

impl StallStatement {
    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut query = sqlx::query(&self.sql).bind(self.cutoff_us);
        for value in &self.binds {
            query = query.bind(value.clone());
        }
        query
    }
}

impl Store {
    /// Marks the sagas that have stalled as of `now` and returns them.
    pub async fn mark_stalled(
        &self,
        policy: &StallPolicy,
        now: Timestamp,
    ) -> Result<Vec<SagaSummary>> {
        self.sweep_quiet_sagas(policy, &[], now).await
    }

    /// Ends the undeclared sagas that stopped at a `learned` end event or
    /// were quiet longer than their type's learned time, then marks the
    /// sagas that have stalled, as of `now`; returns every saga changed.
    #[tracing::instrument(skip_all, err, fields(learned = learned.len()))]
    pub async fn sweep_quiet_sagas(
        &self,
        policy: &StallPolicy,
        learned: &[LearnedEnd],
        now: Timestamp,
    ) -> Result<Vec<SagaSummary>> {
        // One transaction: the statuses and their rollups change together.
        let mut tx = self.begin_write().await?;
        let mut rows = Vec::new();
        for statement in stall_statements(policy, learned, now) {
            let changed = statement.query().fetch_all(&mut *tx).await?;
            if !changed.is_empty() {
                tracing::debug!(statement = %statement.name, sagas = changed.len(), "quiet sagas swept");
            }
            rows.extend(changed);
        }
        let mut rollups = RollupDelta::default();
        for row in &rows {
            // The sweep only touches running or compensating sagas, whose
            // stored status is the projection's own.
            let projection = projection_from_json(&row.try_get::<String, _>("projection")?)?;
            let status: String = row.try_get("status")?;
            let new = sagascope_model::SagaStatus::parse(&status).unwrap_or(projection.status());
            rollups.change(
                SagaFact::of(&projection, projection.status()).as_ref(),
                SagaFact::of(&projection, new).as_ref(),
            );
        }
        let rollup_buckets = rollups.buckets();
        self.apply_rollups(&mut tx, rollups).await?;
        tx.commit().await?;
        self.rollup_cache.invalidate(&rollup_buckets);
        rows.iter().map(summary_from_row).collect()
    }
}
