//! The audit log: who did what, when, why and with what result.
//!
//! **Append-only.** This module offers [`Store::append_audit`] and
//! [`Store::list_audit`] and nothing else: there is deliberately no method
//! that updates or deletes an audit row, so no code path of sagascope can
//! rewrite history. (Retention, if ever needed, belongs to the database
//! operator, outside the application.)

use chrono::{DateTime, Utc};
use sagascope_domain::{from_micros, micros};
use sagascope_model::{encode_audit_cursor, AuditEntryView, AuditPage, AuditQuery};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::{Result, Store, StoreError};

/// An audit entry to append. Never put secrets (passwords, tokens) in any
/// field.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    /// User name; `anonymous`; for a failed login the name that was tried.
    pub actor: String,
    pub actor_role: Option<String>,
    /// `session`, `api_token`, `proxy`, `cli` or `none`.
    pub auth_method: String,
    /// Dotted verb such as `auth.login` or `dlq.retry`.
    pub action: String,
    pub target: Option<String>,
    pub reason: Option<String>,
    /// Structured details, stored as JSON text.
    pub detail: serde_json::Value,
    /// `ok`, `denied` or `failed` (`sagascope_model::audit_result`).
    pub result: String,
    pub client_ip: Option<String>,
}

const AUDIT_COLUMNS: &str =
    "id, at_us, actor, actor_role, auth_method, action, target, reason, detail, result, client_ip";

fn audit_from_row(row: &AnyRow) -> Result<AuditEntryView> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditEntryView {
        id: row.try_get("id")?,
        at: from_micros(row.try_get("at_us")?),
        actor: row.try_get("actor")?,
        actor_role: row.try_get("actor_role")?,
        auth_method: row.try_get("auth_method")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        reason: row.try_get("reason")?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| StoreError::Corrupt(format!("audit detail: {e}")))?,
        result: row.try_get("result")?,
        client_ip: row.try_get("client_ip")?,
    })
}

enum Bind {
    Text(String),
    Int(i64),
}

impl Store {
    /// Appends one entry; returns its id. Entries are never changed; the
    /// only other write is their removal by age
    /// ([`Store::delete_audit_entries_before`]).
    #[tracing::instrument(skip_all, fields(actor = %entry.actor, action = %entry.action, result = %entry.result), err)]
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO audit_log (at_us, actor, actor_role, auth_method, action, target, reason, detail, result, client_ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(micros(entry.at))
        .bind(entry.actor.clone())
        .bind(entry.actor_role.clone())
        .bind(entry.auth_method.clone())
        .bind(entry.action.clone())
        .bind(entry.target.clone())
        .bind(entry.reason.clone())
        .bind(entry.detail.to_string())
        .bind(entry.result.clone())
        .bind(entry.client_ip.clone())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Removes up to `batch_size` audit entries older than `cutoff`, oldest
    /// first (the `audit_log_by_at` index, read backwards); returns how
    /// many. The retention loop's `--retention-audit`.
    #[tracing::instrument(skip(self), fields(backend = self.backend.name()), err)]
    pub async fn delete_audit_entries_before(
        &self,
        cutoff: sagascope_model::Timestamp,
        batch_size: u32,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query(
            "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log \
             WHERE at_us < $1 ORDER BY at_us, id LIMIT $2)",
        )
        .bind(micros(cutoff))
        .bind(i64::from(batch_size.max(1)))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    /// Newest first by (at, id), keyset-paged, filtered by exact actor and
    /// by action (exact, or a prefix when the filter ends in `.` or `*`),
    /// and by `since <= at < until`.
    #[tracing::instrument(skip(self), err)]
    pub async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        let mut conditions: Vec<String> = Vec::new();
        let mut binds: Vec<Bind> = Vec::new();
        let next = |binds: &mut Vec<Bind>, value: Bind| {
            binds.push(value);
            format!("${}", binds.len())
        };
        if let Some(actor) = &query.actor {
            let p = next(&mut binds, Bind::Text(actor.clone()));
            conditions.push(format!("actor = {p}"));
        }
        if let Some(action) = &query.action {
            match action
                .strip_suffix('*')
                .or_else(|| action.ends_with('.').then_some(action.as_str()))
            {
                Some(prefix) if !prefix.is_empty() => {
                    // A literal length keeps the SQL free of LIKE escaping
                    // and of integer parameter types (Postgres' substr
                    // takes int4).
                    let len = prefix.chars().count();
                    let p = next(&mut binds, Bind::Text(prefix.to_string()));
                    conditions.push(format!("SUBSTR(action, 1, {len}) = {p}"));
                }
                Some(_) => {}
                None => {
                    let p = next(&mut binds, Bind::Text(action.clone()));
                    conditions.push(format!("action = {p}"));
                }
            }
        }
        if let Some(since) = query.since {
            let p = next(&mut binds, Bind::Int(micros(since)));
            conditions.push(format!("at_us >= {p}"));
        }
        if let Some(until) = query.until {
            let p = next(&mut binds, Bind::Int(micros(until)));
            conditions.push(format!("at_us < {p}"));
        }
        if let Some((at_us, id)) = query.cursor {
            let t = next(&mut binds, Bind::Int(at_us));
            let i = next(&mut binds, Bind::Int(id));
            conditions.push(format!("(at_us < {t} OR (at_us = {t} AND id < {i}))"));
        }
        let limit = next(&mut binds, Bind::Int(i64::from(query.limit) + 1));
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log {where_clause} ORDER BY at_us DESC, id DESC LIMIT {limit}"
        );
        let mut statement: Query<'_, Any, AnyArguments<'_>> = sqlx::query(&sql);
        for bind in binds {
            statement = match bind {
                Bind::Text(text) => statement.bind(text),
                Bind::Int(n) => statement.bind(n),
            };
        }
        let rows = statement.fetch_all(&self.pool).await?;
        let limit = query.limit as usize;
        let items = rows
            .iter()
            .take(limit)
            .map(audit_from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if rows.len() > limit {
            items
                .last()
                .map(|last| encode_audit_cursor(micros(last.at), last.id))
        } else {
            None
        };
        Ok(AuditPage { items, next_cursor })
    }
}
