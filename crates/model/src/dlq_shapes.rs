//! JSON shapes of the dead-letter API (`/api/v1/dlq…`), shared with the
//! browser build. Field names are part of the public contract.

use crate::query_params::{
    non_empty, parse_cursor, parse_limit, parse_list, parse_time, query_string,
};
use serde::{Deserialize, Serialize};

use crate::{percent_encode, AlertLevel, ByteText, Timestamp, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// Where a dead letter stands. `new` on arrival; the re-drive moves it to
/// `retry_requested`, then `retried` once the broker acked; it ends
/// `resolved` (the saga progressed, or it did not come back within a
/// window), `failed_again` (a re-driven copy came back to a DLQ: the new
/// dead letter links to it), or `discarded` by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterState {
    New,
    RetryRequested,
    Retried,
    Resolved,
    FailedAgain,
    Discarded,
}

impl DeadLetterState {
    pub const ALL: [DeadLetterState; 6] = [
        DeadLetterState::New,
        DeadLetterState::RetryRequested,
        DeadLetterState::Retried,
        DeadLetterState::Resolved,
        DeadLetterState::FailedAgain,
        DeadLetterState::Discarded,
    ];

    /// The states that count in a DLQ's *depth*: dead letters still waiting
    /// for someone (untouched, being re-driven, or back after a re-drive).
    /// `retried`, `resolved` and `discarded` are dealt with.
    /// `failed_again` is not counted: its returned copy is a dead letter
    /// of its own (state `new`), and counting both would count one message
    /// twice.
    pub const OPEN: [DeadLetterState; 2] = [DeadLetterState::New, DeadLetterState::RetryRequested];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterState::New => "new",
            DeadLetterState::RetryRequested => "retry_requested",
            DeadLetterState::Retried => "retried",
            DeadLetterState::Resolved => "resolved",
            DeadLetterState::FailedAgain => "failed_again",
            DeadLetterState::Discarded => "discarded",
        }
    }

    pub fn parse(text: &str) -> Option<DeadLetterState> {
        DeadLetterState::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Counts in the depth (see [`DeadLetterState::OPEN`]).
    pub fn is_open(self) -> bool {
        DeadLetterState::OPEN.contains(&self)
    }
}

/// One row of the dead-letter list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterSummary {
    /// `{dlq topic}/{partition}/{offset}`: stable across redeliveries.
    pub id: String,
    pub dlq_topic: String,
    pub dlq_partition: i64,
    pub dlq_offset: i64,
    /// The DLQ message's Kafka timestamp, else when sagascope ingested it:
    /// the list's order and the age of the depth.
    pub dead_lettered_at: Timestamp,
    pub ingested_at: Timestamp,
    /// spring, kafka_connect, generic or unknown.
    pub format: String,
    pub original_topic: Option<String>,
    pub original_partition: Option<i64>,
    pub original_offset: Option<i64>,
    pub exception_class: Option<String>,
    pub exception_message: Option<String>,
    /// `{original topic}|{exception class}|{normalised message}`.
    pub failure_group: String,
    /// The saga instance the dead letter belongs to, as the saga pages name
    /// it (resolved through correlation keys); None until known.
    pub saga_id: Option<String>,
    pub saga_type: Option<String>,
    /// The saga id the message itself carried, if any.
    pub declared_saga_id: Option<String>,
    pub trace_id: Option<String>,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub state: DeadLetterState,
    pub state_changed_at: Timestamp,
    pub state_reason: Option<String>,
    /// The dead letter this one is a re-drive of (`x-retry-of`).
    pub retry_of: Option<String>,
    pub retry_count: u32,
    /// Set when `retry_of` names a stored dead letter, which is then
    /// `failed_again`.
    pub failed_again_of: Option<String>,
}

/// A Kafka header of a dead letter, value byte-exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterHeader {
    pub key: String,
    /// None for a header with a null value.
    pub value: Option<ByteText>,
}

/// `GET /api/v1/dlq/{id}`: everything, including key, headers and value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub summary: DeadLetterSummary,
    pub dlq_timestamp: Option<Timestamp>,
    pub key: Option<ByteText>,
    pub value: Option<ByteText>,
    pub headers: Vec<DeadLetterHeader>,
    pub stacktrace: Option<String>,
    pub original_timestamp: Option<Timestamp>,
    /// The consumer group that failed (Spring) or the connector (Kafka
    /// Connect).
    pub original_consumer_group: Option<String>,
    /// How many payload fields and header values were replaced by
    /// `[redacted]` for display (the `[redact]` rules); the stored bytes,
    /// which a re-drive produces, are untouched.
    #[serde(default)]
    pub redacted_values: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetterSummary>,
    pub next_cursor: Option<String>,
}

/// Depth of one DLQ topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DlqTopicDepth {
    pub topic: String,
    /// Dead letters in an open state ([`DeadLetterState::OPEN`]).
    pub depth: i64,
    /// Dead letters in any state.
    pub total: i64,
    /// `dead_lettered_at` of the oldest open one.
    pub oldest_open_at: Option<Timestamp>,
    /// Now minus `oldest_open_at`.
    pub oldest_age_ms: Option<i64>,
    pub newest_at: Option<Timestamp>,
    /// The `dlq_depth` threshold's verdict (overview only).
    #[serde(default)]
    pub level: AlertLevel,
}

/// Dead letters that failed for the same reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterGroup {
    pub failure_group: String,
    pub original_topic: Option<String>,
    pub exception_class: Option<String>,
    pub normalised_message: Option<String>,
    pub depth: i64,
    pub total: i64,
    pub oldest_open_at: Option<Timestamp>,
    pub oldest_age_ms: Option<i64>,
    pub newest_at: Option<Timestamp>,
    /// The newest dead letter of the group and its message, as an example.
    pub sample_id: Option<String>,
    pub sample_message: Option<String>,
}

impl DeadLetterGroup {
    /// The parts of a failure group key (`-` is absent).
    pub fn split_key(key: &str) -> (Option<String>, Option<String>, Option<String>) {
        let mut parts = key.splitn(3, '|').map(|p| {
            let p = p.trim();
            (!p.is_empty() && p != "-").then(|| p.to_string())
        });
        (
            parts.next().flatten(),
            parts.next().flatten(),
            parts.next().flatten(),
        )
    }
}

/// `GET /api/v1/dlq/groups`: per DLQ topic and per failure group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadLetterGroups {
    /// The states counted as depth, so clients need not hard-code them.
    pub depth_states: Vec<DeadLetterState>,
    pub topics: Vec<DlqTopicDepth>,
    /// Deepest first.
    pub groups: Vec<DeadLetterGroup>,
}

/// The dead-letter list filters as they appear in the query string. Parse
/// with [`DlqFilter::validate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema, utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct DlqFilter {
    /// DLQ topic.
    pub topic: Option<String>,
    pub failure_group: Option<String>,
    /// Substring of the exception message, case-insensitive.
    pub reason: Option<String>,
    pub saga_type: Option<String>,
    /// One state or several, comma-separated.
    pub state: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub saga_id: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl DlqFilter {
    /// Whether it narrows the dead letters down at all (state, limit and
    /// cursor aside, which a bulk retry ignores).
    pub fn has_criteria(&self) -> bool {
        [
            &self.topic,
            &self.failure_group,
            &self.reason,
            &self.saga_type,
            &self.since,
            &self.until,
            &self.saga_id,
        ]
        .into_iter()
        .any(|value| value.as_deref().is_some_and(|v| !v.trim().is_empty()))
    }
}

/// A validated [`DlqFilter`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DlqQuery {
    pub topic: Option<String>,
    pub failure_group: Option<String>,
    pub reason: Option<String>,
    pub saga_type: Option<String>,
    /// Any of these (empty: all).
    pub states: Vec<DeadLetterState>,
    /// On `dead_lettered_at`: since inclusive, until exclusive.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub saga_id: Option<String>,
    pub limit: u32,
    /// Keyset position: (dead_lettered_at in µs, id) of the last row seen.
    pub cursor: Option<(i64, String)>,
}

impl DlqFilter {
    pub fn validate(&self) -> Result<DlqQuery, String> {
        let states = parse_list(
            "state",
            &self.state,
            &DeadLetterState::ALL,
            DeadLetterState::as_str,
        )?;
        let limit = parse_limit(&self.limit, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let cursor = parse_cursor(&self.cursor, decode_dlq_cursor)?;
        let since = parse_time("since", &self.since)?;
        let until = parse_time("until", &self.until)?;
        if let (Some(since), Some(until)) = (since, until) {
            if since >= until {
                return Err(format!(
                    "`since` ({}) must be before `until` ({})",
                    since.to_rfc3339(),
                    until.to_rfc3339()
                ));
            }
        }
        Ok(DlqQuery {
            topic: non_empty(&self.topic),
            failure_group: non_empty(&self.failure_group),
            reason: non_empty(&self.reason),
            saga_type: non_empty(&self.saga_type),
            states,
            since,
            until,
            saga_id: non_empty(&self.saga_id),
            limit,
            cursor,
        })
    }

    /// The query string of this filter (without `cursor`), for links.
    pub fn to_query_string(&self) -> String {
        let pairs = [
            ("topic", &self.topic),
            ("failure_group", &self.failure_group),
            ("reason", &self.reason),
            ("saga_type", &self.saga_type),
            ("state", &self.state),
            ("since", &self.since),
            ("until", &self.until),
            ("saga_id", &self.saga_id),
            ("limit", &self.limit),
        ];
        query_string(&pairs)
    }
}

/// Cursor text is `<dead_lettered_at µs>.<id>`, id percent-encoded; opaque
/// to clients.
pub fn encode_dlq_cursor(dead_lettered_at_us: i64, id: &str) -> String {
    format!("{dead_lettered_at_us}.{}", percent_encode(id))
}

fn decode_dlq_cursor(text: &str) -> Option<(i64, String)> {
    let (micros, id) = text.split_once('.')?;
    Some((micros.parse().ok()?, crate::api_shapes::percent_decode(id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_depth_counts_the_open_ones() {
        for state in DeadLetterState::ALL {
            assert_eq!(DeadLetterState::parse(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.as_str().into())
            );
        }
        let open: Vec<&str> = DeadLetterState::ALL
            .into_iter()
            .filter(|s| s.is_open())
            .map(DeadLetterState::as_str)
            .collect();
        assert_eq!(open, ["new", "retry_requested"]);
    }

    #[test]
    fn filter_validation_reports_each_bad_field_clearly() {
        let cases = [
            (
                DlqFilter {
                    state: Some("new,done".into()),
                    ..Default::default()
                },
                "unknown state `done`",
            ),
            (
                DlqFilter {
                    limit: Some("501".into()),
                    ..Default::default()
                },
                "`limit`",
            ),
            (
                DlqFilter {
                    until: Some("noon".into()),
                    ..Default::default()
                },
                "`until`",
            ),
            (
                DlqFilter {
                    since: Some("2026-01-02T00:00:00Z".into()),
                    until: Some("2026-01-01T00:00:00Z".into()),
                    ..Default::default()
                },
                "must be before",
            ),
            (
                DlqFilter {
                    cursor: Some("x".into()),
                    ..Default::default()
                },
                "invalid cursor",
            ),
        ];
        for (filter, needle) in cases {
            let error = filter.validate().unwrap_err();
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn states_lists_cursors_and_blanks() {
        let filter = DlqFilter {
            state: Some(" new , failed_again,new".into()),
            topic: Some("  ".into()),
            reason: Some(" timeout ".into()),
            cursor: Some(encode_dlq_cursor(1_700_000_000_000_000, "orders.DLT/0/7")),
            ..Default::default()
        };
        let query = filter.validate().unwrap();
        assert_eq!(
            query.states,
            [DeadLetterState::New, DeadLetterState::FailedAgain]
        );
        assert_eq!(query.topic, None);
        assert_eq!(query.reason.as_deref(), Some("timeout"));
        assert_eq!(query.limit, DEFAULT_PAGE_SIZE);
        assert_eq!(
            query.cursor,
            Some((1_700_000_000_000_000, "orders.DLT/0/7".to_string()))
        );
        assert_eq!(
            filter.to_query_string(),
            "reason=timeout&state=new%20%2C%20failed_again%2Cnew"
        );
    }

    #[test]
    fn failure_group_keys_split_into_their_parts() {
        assert_eq!(
            DeadLetterGroup::split_key("payments.events|java.net.SocketTimeoutException|Read timed out after <n> ms | retry"),
            (
                Some("payments.events".into()),
                Some("java.net.SocketTimeoutException".into()),
                Some("Read timed out after <n> ms | retry".into())
            )
        );
        assert_eq!(DeadLetterGroup::split_key("-|-|-"), (None, None, None));
    }
}
