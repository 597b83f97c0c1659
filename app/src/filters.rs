//! The saga list's query string: parsing it into a [`SagaFilter`], the time
//! range presets, and matching live sagas against the current filters.
//!
//! Query parameters: `saga_type` (also `type`), `status`, `range` (preset:
//! `15m`, `1h`, `6h`, `24h`, `7d`), `since`/`until` (RFC 3339, or the
//! `YYYY-MM-DDTHH:MM` of a `datetime-local` input, read as UTC), `q`,
//! `limit`, `cursor`, `overdue`, `incomplete_compensation` (`true`), `sort`
//! (`waiting`).

use leptos_router::params::ParamsMap;
use sagascope_model::{SagaFilter, SagaStatus, SagaSummary};
use serde::{Deserialize, Serialize};

use crate::time::{from_millis, millis};

/// Time range presets: query value, label, length in ms.
pub const RANGES: [(&str, &str, i64); 5] = [
    ("15m", "Last 15 minutes", 15 * 60_000),
    ("1h", "Last hour", 3_600_000),
    ("6h", "Last 6 hours", 6 * 3_600_000),
    ("24h", "Last 24 hours", 24 * 3_600_000),
    ("7d", "Last 7 days", 7 * 24 * 3_600_000),
];

pub fn range_ms(range: &str) -> Option<i64> {
    RANGES
        .iter()
        .find(|(value, _, _)| *value == range)
        .map(|(_, _, ms)| *ms)
}

/// The saga list's parameters as they appear in the URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListParams {
    pub filter: SagaFilter,
    pub range: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl ListParams {
    pub fn from_query(query: &ParamsMap) -> Self {
        let get = |key: &str| non_empty(query.get(key));
        ListParams {
            filter: SagaFilter {
                saga_type: get("saga_type").or_else(|| get("type")),
                status: get("status"),
                since: get("since"),
                until: get("until"),
                q: get("q"),
                limit: get("limit"),
                cursor: get("cursor"),
                overdue: get("overdue"),
                sort: get("sort"),
                incomplete_compensation: get("incomplete_compensation"),
            },
            range: get("range"),
        }
    }

    /// True when any filter (not paging) is set.
    pub fn is_filtered(&self) -> bool {
        let f = &self.filter;
        [
            &f.saga_type,
            &f.status,
            &f.since,
            &f.until,
            &f.q,
            &f.overdue,
            &f.incomplete_compensation,
            &self.range,
        ]
        .iter()
        .any(|v| v.is_some())
    }

    /// The list is sorted by time waited (`sort=waiting`).
    pub fn sorted_by_waiting(&self) -> bool {
        self.filter.sort.as_deref() == Some("waiting")
    }

    /// Whether sagas from the stream may join the first page: not when the
    /// order is not newest-start-first, nor when a filter needs the
    /// server's judgement (overdue by the learned flows).
    pub fn live_inserts(&self) -> bool {
        !self.sorted_by_waiting() && self.filter.overdue.as_deref() != Some("true")
    }

    /// The same filters in the other order: the "Waiting on" header's
    /// sort link (first page).
    pub fn toggle_waiting_sort_href(&self) -> String {
        let mut other = self.clone();
        other.filter.cursor = None;
        other.filter.sort = if self.sorted_by_waiting() {
            None
        } else {
            Some("waiting".into())
        };
        other.first_page_href()
    }

    pub fn is_first_page(&self) -> bool {
        self.filter.cursor.is_none()
    }

    /// Query string of the filters (no cursor), for links.
    pub fn query_string(&self) -> String {
        let mut text = self.filter.to_query_string();
        if let Some(range) = &self.range {
            if !text.is_empty() {
                text.push('&');
            }
            text.push_str("range=");
            text.push_str(&sagascope_model::percent_encode(range));
        }
        text
    }

    /// Link to the page after `cursor` with the same filters.
    pub fn next_page_href(&self, cursor: &str) -> String {
        let query = self.query_string();
        let cursor = sagascope_model::percent_encode(cursor);
        if query.is_empty() {
            format!("/sagas?cursor={cursor}")
        } else {
            format!("/sagas?{query}&cursor={cursor}")
        }
    }

    /// Link to the first page with the same filters.
    pub fn first_page_href(&self) -> String {
        let query = self.query_string();
        if query.is_empty() {
            "/sagas".to_string()
        } else {
            format!("/sagas?{query}")
        }
    }

    /// The filter the store sees: times normalised to RFC 3339 and a range
    /// preset turned into `since` (when `since` is not given explicitly).
    pub fn resolve(&self, now_ms: i64) -> SagaFilter {
        let mut filter = self.filter.clone();
        filter.since = filter.since.as_deref().map(normalize_time);
        filter.until = filter.until.as_deref().map(normalize_time);
        if filter.since.is_none() {
            if let Some(ms) = self.range.as_deref().and_then(range_ms) {
                filter.since = from_millis(now_ms - ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
        }
        filter
    }
}

/// Accepts RFC 3339 as is; turns a `datetime-local` value
/// (`2026-11-21T10:00` or with seconds) into UTC RFC 3339. Anything else is
/// passed through so validation reports it.
pub fn normalize_time(text: &str) -> String {
    let text = text.trim();
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return text.to_string();
    }
    for format in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return naive
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        }
    }
    text.to_string()
}

/// The value for a `datetime-local` input (UTC) from a query value.
pub fn datetime_input_value(text: Option<&str>) -> String {
    let Some(text) = text else {
        return String::new();
    };
    match chrono::DateTime::parse_from_rfc3339(&normalize_time(text)) {
        Ok(time) => time
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M")
            .to_string(),
        Err(_) => String::new(),
    }
}

/// Whether a saga pushed by the live stream belongs on the current (first)
/// page: the same rules the store applies.
pub fn matches(saga: &SagaSummary, filter: &SagaFilter) -> bool {
    if let Some(saga_type) = &filter.saga_type {
        if &saga.saga_type != saga_type {
            return false;
        }
    }
    // One status or a comma-separated list, as the store reads it.
    if let Some(list) = filter.status.as_deref() {
        let statuses: Vec<SagaStatus> = list
            .split(',')
            .filter_map(|s| SagaStatus::parse(s.trim()))
            .collect();
        if !statuses.is_empty() && !statuses.contains(&saga.status) {
            return false;
        }
    }
    let parse = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
    };
    if let Some(since) = parse(&filter.since) {
        if millis(&saga.started_at) < since {
            return false;
        }
    }
    if let Some(until) = parse(&filter.until) {
        if millis(&saga.started_at) >= until {
            return false;
        }
    }
    if filter.incomplete_compensation.as_deref() == Some("true")
        && saga.missing_compensations.is_empty()
    {
        return false;
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        // Exact match on saga id, trace id or business key, as the store does.
        if !(saga.saga_id == q
            || saga.trace_ids.iter().any(|t| t == q)
            || saga.business_keys.iter().any(|k| k == q))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_values_become_utc_rfc3339() {
        assert_eq!(normalize_time("2026-11-21T10:00"), "2026-11-21T10:00:00Z");
        assert_eq!(
            normalize_time("2026-11-21T10:00:00Z"),
            "2026-11-21T10:00:00Z"
        );
        assert_eq!(normalize_time("yesterday"), "yesterday");
        assert_eq!(
            datetime_input_value(Some("2026-11-21T10:00:00+01:00")),
            "2026-11-21T09:00"
        );
    }

    #[test]
    fn live_sagas_match_a_status_list() {
        let saga: SagaSummary = serde_json::from_value(serde_json::json!({
            "saga_id": "s1",
            "saga_type": "order",
            "status": "compensating",
            "started_at": "2026-11-21T10:30:00Z",
            "ended_at": null,
            "duration_ms": null,
            "current_step": null,
            "failed_step": null,
            "failure_reason": null,
            "trace_ids": [],
            "business_keys": [],
            "event_count": 1,
            "last_event_at": "2026-11-21T10:30:00Z"
        }))
        .unwrap();
        let filter = |status: &str, since: &str, until: &str| SagaFilter {
            status: Some(status.into()),
            since: Some(since.into()),
            until: Some(until.into()),
            ..Default::default()
        };
        let hour = ("2026-11-21T10:00:00Z", "2026-11-21T11:00:00Z");
        assert!(matches(
            &saga,
            &filter("running,compensating", hour.0, hour.1)
        ));
        assert!(!matches(&saga, &filter("running", hour.0, hour.1)));
        assert!(!matches(&saga, &filter("completed,failed", hour.0, hour.1)));
        assert!(!matches(
            &saga,
            &filter("compensating", "2026-11-21T10:31:00Z", hour.1)
        ));
        assert!(!matches(
            &saga,
            &filter("compensating", hour.0, "2026-11-21T10:30:00Z")
        ));
    }

    #[test]
    fn range_presets_set_since() {
        let params = ListParams {
            range: Some("15m".into()),
            ..Default::default()
        };
        let now = 1_800_000_000_000;
        let since = params.resolve(now).since.unwrap();
        let since = chrono::DateTime::parse_from_rfc3339(&since).unwrap();
        assert_eq!(since.timestamp_millis(), now - 15 * 60_000);
        assert_eq!(params.query_string(), "range=15m");
        assert_eq!(
            params.next_page_href("1.a"),
            "/sagas?range=15m&cursor=1%2Ea"
        );
    }

    #[test]
    fn the_waiting_sort_link_keeps_the_filters_and_toggles_the_order() {
        let mut params = ListParams {
            range: Some("1h".into()),
            ..Default::default()
        };
        params.filter.overdue = Some("true".into());
        params.filter.cursor = Some("1.a".into());
        assert!(!params.live_inserts() && params.is_filtered());
        let sorted = params.toggle_waiting_sort_href();
        assert_eq!(sorted, "/sagas?overdue=true&sort=waiting&range=1h");
        params.filter.sort = Some("waiting".into());
        assert!(params.sorted_by_waiting());
        assert_eq!(
            params.toggle_waiting_sort_href(),
            "/sagas?overdue=true&range=1h"
        );
        assert!(ListParams::default().live_inserts());
    }
}
