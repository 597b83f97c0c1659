//! JSON shapes of `/api/v1`. Field names are part of the public contract:
//! snake_case, never renamed without a version bump.

use crate::query_params::{
    non_empty, parse_cursor, parse_limit, parse_list, parse_time, query_string,
};
use serde::{Deserialize, Serialize};

use crate::{Phase, SagaStatus, Timestamp, WaitingOn};

/// One row of the saga list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SagaSummary {
    pub saga_id: String,
    pub saga_type: String,
    pub status: SagaStatus,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub duration_ms: Option<i64>,
    pub current_step: Option<String>,
    pub failed_step: Option<String>,
    pub failure_reason: Option<String>,
    /// The saga's trace ids, at most 32 (the smallest); search (`q`) finds
    /// the saga by any of its trace ids.
    pub trace_ids: Vec<String>,
    /// The saga's business keys, at most 32 (the smallest); search finds
    /// the saga by any of them.
    pub business_keys: Vec<String>,
    /// The saga has more trace ids than `trace_ids` lists.
    #[serde(default)]
    pub more_trace_ids: bool,
    /// The saga has more business keys than `business_keys` lists.
    #[serde(default)]
    pub more_business_keys: bool,
    pub event_count: i64,
    pub last_event_at: Timestamp,
    /// The status was inferred when the saga went quiet (a choreography
    /// whose end no rule declares), not stated by an event.
    #[serde(default)]
    pub status_inferred: bool,
    /// What inferred the status: `learned_end` (the saga stopped at an
    /// event its type's learned flow ends with), `learned_quiet` (quiet
    /// longer than its type's hops usually take), `quiet` (quiet for the
    /// flat stall timeout); None when not inferred.
    #[serde(default)]
    pub inferred_from: Option<String>,
    /// The flow node of the latest event (its type, or for saga state
    /// events its step and phase): what `/types/{saga_type}` calls it.
    #[serde(default)]
    pub last_node: Option<String>,
    /// For a running or compensating saga in a list: the event its type's
    /// flow (learned, or learned from declared instances) expects next and
    /// how long it has waited, as of the answer. None elsewhere, for
    /// finished sagas, and when the flow expects nothing.
    #[serde(default)]
    pub waiting_on: Option<WaitingOn>,
    /// "Incomplete compensation": the saga reads compensated (or ≈
    /// compensated) while these forward steps, which completed, have no
    /// compensation event. Empty when nothing is missing.
    #[serde(default)]
    pub missing_compensations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SagaPage {
    pub items: Vec<SagaSummary>,
    pub next_cursor: Option<String>,
}

/// A Kafka header as received; values that are not UTF-8 are shown lossily.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Header {
    pub key: String,
    pub value: String,
}

/// One event on a saga timeline (or a trace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEvent {
    pub event_id: String,
    pub saga_id: String,
    pub phase: Phase,
    pub step: Option<String>,
    pub event_type: String,
    pub occurred_at: Timestamp,
    pub published_at: Option<Timestamp>,
    pub ingested_at: Timestamp,
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub headers: Vec<Header>,
    pub payload: serde_json::Value,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SagaDetail {
    #[serde(flatten)]
    pub saga: SagaSummary,
    pub events: Vec<TimelineEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraceView {
    pub trace_id: String,
    pub sagas: Vec<SagaSummary>,
    pub events: Vec<TimelineEvent>,
}

/// A message that could not be decoded, kept with its Kafka coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestErrorView {
    pub id: i64,
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub reason: String,
    /// The first bytes of the value, lossily decoded; shown escaped.
    pub first_bytes: String,
    pub key: Option<String>,
    pub published_at: Option<Timestamp>,
    pub ingested_at: Timestamp,
}

/// Messages on `/api/v1/stream` (SSE `data:` lines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamMessage {
    Saga {
        saga: SagaSummary,
    },
    Event {
        event: TimelineEvent,
    },
    IngestError {
        error: IngestErrorView,
    },
    /// Instance `from` turned out to share a correlation key with `into`
    /// and was merged into it: lists drop `from`, its page moves on.
    Merged {
        from: String,
        into: String,
    },
}

impl StreamMessage {
    pub fn saga_id(&self) -> Option<&str> {
        match self {
            StreamMessage::Saga { saga } => Some(&saga.saga_id),
            StreamMessage::Event { event } => Some(&event.saga_id),
            StreamMessage::IngestError { .. } => None,
            StreamMessage::Merged { from, .. } => Some(from),
        }
    }

    /// SSE event name, so browsers can listen per kind.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamMessage::Saga { .. } => "saga",
            StreamMessage::Event { .. } => "event",
            StreamMessage::IngestError { .. } => "ingest_error",
            StreamMessage::Merged { .. } => "merged",
        }
    }
}

/// The saga list filters exactly as they appear in the query string, so a
/// view is a shareable URL. Parse with [`SagaFilter::validate`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema, utoipa::IntoParams),
    into_params(parameter_in = Query)
)]
pub struct SagaFilter {
    pub saga_type: Option<String>,
    pub status: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// `true`: only running or compensating sagas that have waited longer
    /// for their next event than their type's learned flow says that hop
    /// takes (its p99).
    pub overdue: Option<String>,
    /// `started` (default): newest start first. `waiting`: only running
    /// or compensating sagas, the one that has waited longest for its next
    /// event (oldest last event) first.
    pub sort: Option<String>,
    /// `true`: only sagas flagged "incomplete compensation" (compensated
    /// while a forward step that completed has no compensation event).
    pub incomplete_compensation: Option<String>,
}

/// The order of the saga list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SagaSort {
    /// Newest start first.
    #[default]
    Started,
    /// Running or compensating sagas only, oldest last event first.
    Waiting,
}

impl SagaSort {
    pub const ALL: [SagaSort; 2] = [SagaSort::Started, SagaSort::Waiting];

    pub fn as_str(self) -> &'static str {
        match self {
            SagaSort::Started => "started",
            SagaSort::Waiting => "waiting",
        }
    }
}

/// A validated [`SagaFilter`].
#[derive(Debug, Clone, PartialEq)]
pub struct SagaQuery {
    pub saga_type: Option<String>,
    /// Any of these statuses (empty: all).
    pub statuses: Vec<SagaStatus>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub q: Option<String>,
    pub limit: u32,
    /// Keyset position: (started_at in µs, saga_id) of the last row seen.
    pub cursor: Option<(i64, String)>,
    /// Only sagas overdue by their type's learned flow.
    pub overdue: bool,
    /// The order; the cursor is a position in it (for `Waiting`, the last
    /// event's time instead of the start).
    pub sort: SagaSort,
    /// Only sagas flagged "incomplete compensation".
    pub incomplete_compensation: bool,
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

impl SagaFilter {
    pub fn validate(&self) -> Result<SagaQuery, String> {
        // One status or a comma-separated list (`running,compensating`),
        // which the overview's drill-down links use.
        let statuses = parse_list("status", &self.status, &SagaStatus::ALL, SagaStatus::as_str)?;
        let limit = parse_limit(&self.limit, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let cursor = parse_cursor(&self.cursor, decode_cursor)?;
        Ok(SagaQuery {
            saga_type: non_empty(&self.saga_type),
            statuses,
            since: parse_time("since", &self.since)?,
            until: parse_time("until", &self.until)?,
            q: non_empty(&self.q),
            limit,
            cursor,
            overdue: parse_flag("overdue", &self.overdue)?,
            incomplete_compensation: parse_flag(
                "incomplete_compensation",
                &self.incomplete_compensation,
            )?,
            sort: match non_empty(&self.sort) {
                None => SagaSort::Started,
                Some(text) => SagaSort::ALL
                    .into_iter()
                    .find(|s| s.as_str() == text)
                    .ok_or_else(|| {
                        format!("`sort` must be `started` or `waiting`, got `{text}`")
                    })?,
            },
        })
    }

    /// The query string of this filter (without `cursor`), for links.
    pub fn to_query_string(&self) -> String {
        let pairs = [
            ("saga_type", &self.saga_type),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
            ("q", &self.q),
            ("limit", &self.limit),
            ("overdue", &self.overdue),
            ("sort", &self.sort),
            ("incomplete_compensation", &self.incomplete_compensation),
        ];
        query_string(&pairs)
    }
}

/// A `true`/`false` query flag named `name` in the message; absent or
/// blank is false.
fn parse_flag(name: &str, value: &Option<String>) -> Result<bool, String> {
    match value.as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!("{name}: expected true or false, got `{other}`")),
    }
}

/// Cursor text is `<started_at µs>.<saga_id>`; opaque to clients.
pub fn encode_cursor(started_at_us: i64, saga_id: &str) -> String {
    format!("{started_at_us}.{}", percent_encode(saga_id))
}

fn decode_cursor(text: &str) -> Option<(i64, String)> {
    let (micros, id) = text.split_once('.')?;
    Some((micros.parse().ok()?, percent_decode(id)?))
}

pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_validation_reports_each_bad_field_clearly() {
        let bad_status = SagaFilter {
            status: Some("done".into()),
            ..Default::default()
        };
        assert!(bad_status
            .validate()
            .unwrap_err()
            .contains("unknown status `done`"));
        let bad_limit = SagaFilter {
            limit: Some("0".into()),
            ..Default::default()
        };
        assert!(bad_limit.validate().unwrap_err().contains("`limit`"));
        let bad_time = SagaFilter {
            since: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(bad_time.validate().unwrap_err().contains("`since`"));
        let bad_cursor = SagaFilter {
            cursor: Some("nope".into()),
            ..Default::default()
        };
        assert!(bad_cursor
            .validate()
            .unwrap_err()
            .contains("invalid cursor"));
        let bad_sort = SagaFilter {
            sort: Some("oldest".into()),
            ..Default::default()
        };
        assert!(bad_sort.validate().unwrap_err().contains("`sort`"));
        let bad_flag = SagaFilter {
            incomplete_compensation: Some("yes".into()),
            ..Default::default()
        };
        assert!(bad_flag
            .validate()
            .unwrap_err()
            .contains("incomplete_compensation: expected true or false"));
    }

    #[test]
    fn sort_defaults_to_started_and_reads_waiting() {
        let sort = |text: Option<&str>| {
            SagaFilter {
                sort: text.map(Into::into),
                ..Default::default()
            }
            .validate()
            .unwrap()
            .sort
        };
        assert_eq!(sort(None), SagaSort::Started);
        assert_eq!(sort(Some(" ")), SagaSort::Started);
        assert_eq!(sort(Some("started")), SagaSort::Started);
        assert_eq!(sort(Some("waiting")), SagaSort::Waiting);
    }

    #[test]
    fn cursor_round_trips_ids_with_separators() {
        let text = encode_cursor(1_700_000_000_000_000, "ord.42/ä");
        let filter = SagaFilter {
            cursor: Some(text),
            ..Default::default()
        };
        assert_eq!(
            filter.validate().unwrap().cursor,
            Some((1_700_000_000_000_000, "ord.42/ä".to_string()))
        );
    }

    #[test]
    fn empty_fields_mean_no_filter() {
        let filter = SagaFilter {
            saga_type: Some("  ".into()),
            status: Some(String::new()),
            ..Default::default()
        };
        let query = filter.validate().unwrap();
        assert_eq!(query.saga_type, None);
        assert_eq!(query.statuses, vec![]);
        assert_eq!(query.limit, DEFAULT_PAGE_SIZE);
    }
}
