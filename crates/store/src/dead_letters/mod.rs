//! Dead letters: the messages of the DLQ topics (`sagascope_domain::
//! DeadLetter`), stored byte-exact in the ingest batch's transaction, linked
//! to the saga instance they belong to, and read back as a filtered list,
//! per-topic and per-failure-group depths, and full detail.
//!
//! **Depth** is the number of dead letters in an open state
//! ([`DeadLetterState::OPEN`]: `new`, `retry_requested`);
//! **oldest age** is now minus the smallest `dead_lettered_at` (the DLQ
//! message's Kafka timestamp, else its ingest time) among those. Per topic
//! (the overview, `/metrics`, the unfiltered DLQ page) they come from
//! `dead_letter_counts`, which database triggers keep in the transaction of
//! every insert, state change and delete (see migration 0011), plus one
//! index probe per (topic, state) for the times; filtered views and the
//! failure groups are counted from the table (indexed by topic, group and
//! state).

mod groups;
mod link;
mod read;
mod rows;
mod state;
mod write;

pub use write::dead_letter_id;

use sagascope_domain::micros;
use sagascope_model::{DeadLetterState, DlqQuery};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

pub(crate) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// `state IN ('new', 'retry_requested')`: the depth states,
/// from the one definition in the model. The names are fixed identifiers,
/// so inlining them is safe.
pub(crate) fn open_states_sql() -> String {
    states_sql(&DeadLetterState::OPEN)
}

pub(crate) fn states_sql(states: &[DeadLetterState]) -> String {
    let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("state IN ({})", names.join(", "))
}

/// A bound value of a dynamically built query.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Positional binds collected while a WHERE clause is built.
#[derive(Debug, Default)]
pub(crate) struct Binds(Vec<Bind>);

impl Binds {
    /// Adds a value; returns its placeholder.
    pub(crate) fn push(&mut self, value: Bind) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }

    pub(crate) fn apply(self, mut query: AnyQuery<'_>) -> AnyQuery<'_> {
        for bind in self.0 {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Int(n) => query.bind(n),
            };
        }
        query
    }
}

/// `%text%` for `LIKE … ESCAPE '\'`, lower-cased, with the wildcards of the
/// text itself escaped so a reason such as `100%` matches literally.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The WHERE conditions of a query's filters (not its cursor), shared by
/// the list and the groups so both count the same rows.
pub(crate) fn filter_conditions(query: &DlqQuery, binds: &mut Binds) -> Vec<String> {
    let mut conditions = Vec::new();
    if let Some(topic) = &query.topic {
        let p = binds.push(Bind::Text(topic.clone()));
        conditions.push(format!("dlq_topic = {p}"));
    }
    if let Some(group) = &query.failure_group {
        let p = binds.push(Bind::Text(group.clone()));
        conditions.push(format!("failure_group = {p}"));
    }
    if let Some(reason) = &query.reason {
        // LOWER is ASCII-only on SQLite, Unicode on Postgres.
        let p = binds.push(Bind::Text(like_pattern(reason)));
        conditions.push(format!("LOWER(exception_message) LIKE {p} ESCAPE '\\'"));
    }
    if let Some(saga_type) = &query.saga_type {
        let p = binds.push(Bind::Text(saga_type.clone()));
        conditions.push(format!("linked_saga_type = {p}"));
    }
    if !query.states.is_empty() {
        conditions.push(states_sql(&query.states));
    }
    if let Some(since) = query.since {
        let p = binds.push(Bind::Int(micros(since)));
        conditions.push(format!("dead_lettered_at_us >= {p}"));
    }
    if let Some(until) = query.until {
        let p = binds.push(Bind::Int(micros(until)));
        conditions.push(format!("dead_lettered_at_us < {p}"));
    }
    if let Some(saga_id) = &query.saga_id {
        let p = binds.push(Bind::Text(saga_id.clone()));
        conditions.push(format!("(linked_saga_id = {p} OR saga_id = {p})"));
    }
    conditions
}

/// `WHERE a AND b`, or nothing.
pub(crate) fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_the_texts_own_wildcards() {
        assert_eq!(like_pattern("Time_Out 100%"), "%time\\_out 100\\%%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn depth_states_come_from_the_model() {
        assert_eq!(open_states_sql(), "state IN ('new', 'retry_requested')");
    }
}
