//! Pieces shared by the dead-letter pages: the filters as they appear in the
//! URL, links, state badges, the figures' definitions, the notice/error
//! banner the form endpoints redirect with, and the views of message bytes
//! (text, JSON, or hex and base64 for binary).

use leptos::prelude::*;
use leptos_router::params::ParamsMap;
use sagascope_model::{
    percent_encode, ByteText, DeadLetterState, DlqFilter, DISCARDABLE_STATES, RETRYABLE_STATES,
};
use serde::{Deserialize, Serialize};

use crate::components::json_view::JsonView;
use crate::filters::{normalize_time, range_ms};
use crate::time::from_millis;

/// Every figure of the DLQ pages, for `title` attributes.
pub mod defs {
    pub const DEPTH: &str = "Depth = dead letters still waiting for someone: state new or retry_requested (retried, resolved, failed_again and discarded ones are dealt with)";
    pub const TOTAL: &str = "Total = dead letters in any state (matching the filters)";
    pub const OLDEST: &str =
        "Oldest = age of the oldest waiting dead letter: now − its DLQ timestamp";
    pub const NEWEST: &str = "Newest = when the most recent dead letter arrived (any state)";
    pub const RETRIES: &str = "Retries = how often this message was re-driven before it came back (its x-retry-count header)";
    pub const TIME: &str = "When the message was dead-lettered: the DLQ message's Kafka timestamp, else when sagascope ingested it";
    pub const GROUP: &str = "Failure group = original topic + exception class + the exception message with numbers, ids and quoted values replaced by placeholders";
    pub const PREVIEW_COUNT: &str = "Exactly the dead letters in state new that match the filter now: the set a bulk retry freezes";
    pub const JOB_TOTAL: &str = "Total = size of the set frozen when the job was created";
    pub const JOB_PRODUCED: &str = "Produced = re-driven and acked by the broker";
    pub const JOB_FAILED: &str = "Failed = the broker refused them; they stay new";
    pub const JOB_SKIPPED: &str =
        "Skipped = not produced: cancelled, or no longer new when their turn came";
    pub const JOB_RATE: &str =
        "Rate = handled (produced + failed + skipped) per second since the job started";
}

/// The dead-letter filters as they appear in the query string of `/dlq`
/// (and of the bulk retry page): the API's [`DlqFilter`] plus a `range`
/// preset (`15m` … `7d`) that becomes `since` when resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DlqParams {
    pub filter: DlqFilter,
    pub range: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl DlqParams {
    pub fn from_query(query: &ParamsMap) -> Self {
        let get = |key: &str| non_empty(query.get(key));
        DlqParams {
            filter: DlqFilter {
                topic: get("topic"),
                failure_group: get("failure_group"),
                reason: get("reason"),
                saga_type: get("saga_type"),
                state: get("state"),
                since: get("since"),
                until: get("until"),
                saga_id: get("saga_id"),
                limit: get("limit"),
                cursor: get("cursor"),
            },
            range: get("range"),
        }
    }

    /// True when any filter (not paging) is set.
    pub fn is_filtered(&self) -> bool {
        let f = &self.filter;
        [
            &f.topic,
            &f.failure_group,
            &f.reason,
            &f.saga_type,
            &f.state,
            &f.since,
            &f.until,
            &f.saga_id,
            &self.range,
        ]
        .iter()
        .any(|v| v.is_some())
    }

    pub fn is_first_page(&self) -> bool {
        self.filter.cursor.is_none()
    }

    /// The query string of the filters (no cursor), for links.
    pub fn query_string(&self) -> String {
        let mut text = self.filter.to_query_string();
        if let Some(range) = &self.range {
            if !text.is_empty() {
                text.push('&');
            }
            text.push_str("range=");
            text.push_str(&percent_encode(range));
        }
        text
    }

    /// `base` with these filters (no cursor).
    pub fn href(&self, base: &str) -> String {
        join_query(base, &self.query_string())
    }

    /// The list page after `cursor`, same filters.
    pub fn next_page_href(&self, cursor: &str) -> String {
        let query = self.query_string();
        let cursor = format!("cursor={}", percent_encode(cursor));
        if query.is_empty() {
            format!("/dlq?{cursor}")
        } else {
            format!("/dlq?{query}&{cursor}")
        }
    }

    /// The same filters without paging, narrowed to one failure group.
    pub fn with_group(&self, failure_group: &str) -> DlqParams {
        let mut params = self.clone();
        params.filter.failure_group = Some(failure_group.to_string());
        params.filter.cursor = None;
        params
    }

    /// The same filters with another window preset (explicit times dropped).
    pub fn with_range(&self, range: Option<&str>) -> DlqParams {
        let mut params = self.clone();
        params.range = range.map(str::to_string);
        params.filter.since = None;
        params.filter.until = None;
        params.filter.cursor = None;
        params
    }

    /// The filter of a bulk retry of what this list shows: a bulk retry
    /// only takes dead letters in state `new` and ignores paging, so
    /// `state`, `limit` and `cursor` are dropped.
    pub fn for_bulk(&self) -> DlqParams {
        let mut params = self.clone();
        params.filter.state = None;
        params.filter.limit = None;
        params.filter.cursor = None;
        params
    }

    /// The filter the store sees: times normalised to RFC 3339, a `range`
    /// preset turned into `since` (when `since` is not given explicitly).
    pub fn resolve(&self, now_ms: i64) -> DlqFilter {
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

/// `base?query`, or `base` alone for an empty query.
pub fn join_query(base: &str, query: &str) -> String {
    if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    }
}

/// A path segment: Kafka topic names (`[A-Za-z0-9._-]`) stay as they are,
/// anything else is percent-encoded.
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The detail page of a dead letter from its id (`{topic}/{partition}/{offset}`).
pub fn dead_letter_href(id: &str) -> String {
    match id.rsplitn(3, '/').collect::<Vec<_>>().as_slice() {
        [offset, partition, topic] => format!(
            "/dlq/messages/{}/{}/{}",
            path_segment(topic),
            path_segment(partition),
            path_segment(offset)
        ),
        _ => format!("/dlq/messages/{}", path_segment(id)),
    }
}

/// The bulk job page.
pub fn job_href(job_id: &str) -> String {
    format!("/dlq/jobs/{}", path_segment(job_id))
}

/// `java.net.SocketTimeoutException` → `SocketTimeoutException`.
pub fn short_class(class: &str) -> &str {
    class
        .rsplit(['.', '$'])
        .find(|part| !part.is_empty())
        .unwrap_or(class)
}

pub fn is_retryable(state: DeadLetterState) -> bool {
    RETRYABLE_STATES.contains(&state)
}

pub fn is_discardable(state: DeadLetterState) -> bool {
    DISCARDABLE_STATES.contains(&state)
}

/// Icon, label, colour class and meaning of a dead letter's state.
pub fn state_look(
    state: DeadLetterState,
) -> (&'static str, &'static str, &'static str, &'static str) {
    match state {
        DeadLetterState::New => (
            "✉",
            "new",
            "status-failed",
            "New: dead-lettered and untouched; waiting for someone",
        ),
        DeadLetterState::RetryRequested => (
            "↻",
            "retry requested",
            "status-running",
            "Retry requested: being re-driven to its original topic",
        ),
        DeadLetterState::Retried => (
            "↻",
            "retried",
            "status-running",
            "Retried: re-driven and acked by the broker; waiting to see whether the saga moves on",
        ),
        DeadLetterState::Resolved => (
            "✓",
            "resolved",
            "status-completed",
            "Resolved: re-driven, and the saga progressed (or the copy did not come back)",
        ),
        DeadLetterState::FailedAgain => (
            "⚠",
            "failed again",
            "status-compensation_failed",
            "Failed again: the re-driven copy came back to a DLQ (see the newer dead letter)",
        ),
        DeadLetterState::Discarded => (
            "⊘",
            "discarded",
            "status-discarded",
            "Discarded by an operator: will not be re-driven",
        ),
    }
}

/// A dead letter's state: icon, label and colour together.
#[component]
pub fn DeadLetterStateBadge(
    state: DeadLetterState,
    #[prop(optional)] test: Option<&'static str>,
) -> impl IntoView {
    let (icon, label, class, meaning) = state_look(state);
    view! {
        <span
            class=format!("badge dl-state {class}")
            data-state=state.as_str()
            data-test=test.unwrap_or("dlq-state")
            title=meaning
        >
            <span class="badge-icon" aria-hidden="true">{icon}</span>
            <span class="badge-label">{label}</span>
        </span>
    }
}

/// The notice or error the form endpoints redirect back with
/// (`?notice=…`, `?error=…`). Text only: Leptos escapes it.
#[component]
pub fn ActionBanner(query: Memo<ParamsMap>) -> impl IntoView {
    move || {
        query.with(|q| {
            let notice = non_empty(q.get("notice")).map(|text| {
                view! {
                    <p class="note banner banner-notice" role="status" data-test="notice">
                        <span aria-hidden="true">"✓ "</span>
                        {text}
                    </p>
                }
            });
            let error = non_empty(q.get("error")).map(|text| {
                view! {
                    <p class="note banner banner-error" role="alert" data-test="action-error">
                        <span aria-hidden="true">"⚠ "</span>
                        {text}
                    </p>
                }
            });
            (notice, error)
        })
    }
}

/// Bytes shown as lowercase hex pairs, at most `max` bytes.
pub fn hex(bytes: &[u8], max: usize) -> String {
    let mut out = bytes
        .iter()
        .take(max)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    if bytes.len() > max {
        out.push_str(" …");
    }
    out
}

/// What a few binary bytes probably mean: Spring writes partitions as a
/// Java int and offsets and timestamps as a Java long (big-endian).
pub fn number_hint(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(format!(
            "= {} (32-bit big-endian)",
            i32::from_be_bytes(bytes.try_into().ok()?)
        )),
        8 => Some(format!(
            "= {} (64-bit big-endian)",
            i64::from_be_bytes(bytes.try_into().ok()?)
        )),
        _ => None,
    }
}

/// JSON objects and arrays (not bare strings or numbers) are pretty-printed.
pub fn as_json(text: &str) -> Option<serde_json::Value> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::from_str(text).ok()
}

fn size_text(size: usize) -> String {
    format!("{size} byte{}", if size == 1 { "" } else { "s" })
}

/// A short form of message bytes for tables: the text, or the hex of
/// binary bytes with their number reading.
#[component]
pub fn BytesInline(value: Option<ByteText>) -> impl IntoView {
    let Some(value) = value else {
        return view! { <span class="muted" title="null">"null"</span> }.into_any();
    };
    if !value.base64 {
        let text = value.text.clone();
        return view! { <span class="mono bytes-text" title=size_text(value.size)>{text}</span> }
            .into_any();
    }
    let bytes = value.to_bytes().unwrap_or_default();
    let hint = number_hint(&bytes);
    let title = format!(
        "{} of binary data; base64 {}",
        size_text(value.size),
        value.text
    );
    view! {
        <span class="mono bytes-binary" title=title data-binary="true">
            <span class="bytes-tag">"0x"</span>
            {hex(&bytes, 64)}
            {hint.map(|h| view! { <span class="muted">{format!(" {h}")}</span> })}
        </span>
    }
    .into_any()
}

/// Message bytes in full: pretty JSON when the text is JSON (the raw text
/// one click away), plain text otherwise, and for binary bytes a hex dump
/// and the base64. Always text nodes, so always escaped.
#[component]
pub fn BytesBlock(value: Option<ByteText>, test: &'static str) -> impl IntoView {
    let Some(value) = value else {
        return view! { <p class="muted" data-test=test data-kind="null">"null (no bytes)"</p> }
            .into_any();
    };
    let size = size_text(value.size);
    if value.base64 {
        let bytes = value.to_bytes().unwrap_or_default();
        let hint = number_hint(&bytes);
        return view! {
            <div class="bytes-block" data-test=test data-kind="binary">
                <p class="muted small">
                    {format!("Binary, {size} (not UTF-8 text)")}
                    {hint.map(|h| format!(" {h}"))}
                </p>
                <pre class="bytes-hex">{hex(&bytes, 4096)}</pre>
                <details class="bytes-alt">
                    <summary>"base64"</summary>
                    <pre class="bytes-base64">{value.text.clone()}</pre>
                </details>
            </div>
        }
        .into_any();
    }
    match as_json(&value.text) {
        Some(json) => view! {
            <div class="bytes-block" data-test=test data-kind="json">
                <p class="muted small">{format!("JSON, {size}")}</p>
                <JsonView value=json/>
                <details class="bytes-alt">
                    <summary>"raw"</summary>
                    <pre class="bytes-text-block">{value.text.clone()}</pre>
                </details>
            </div>
        }
        .into_any(),
        None => view! {
            <div class="bytes-block" data-test=test data-kind="text">
                <p class="muted small">{format!("Text, {size}")}</p>
                <pre class="bytes-text-block">{value.text.clone()}</pre>
            </div>
        }
        .into_any(),
    }
}

/// Hidden CSRF field of the plain forms (the server checks it against the
/// session cookie).
#[component]
pub fn CsrfField(token: String) -> impl IntoView {
    view! { <input type="hidden" name="csrf_token" value=token/> }
}

/// Bumps the returned counter every `every` while `active` and live
/// updates are on (the top-bar toggle), in the browser only; a page
/// fetches its data again on each bump. Unlike the overview's refresh it
/// leaves the live indicator to the page's stream.
pub fn use_poll(every: std::time::Duration, active: Signal<bool>) -> RwSignal<u64> {
    let tick = RwSignal::new(0u64);
    #[cfg(feature = "hydrate")]
    {
        let ui = crate::state::ui_state();
        if let Ok(handle) = set_interval_with_handle(
            move || {
                let live = ui.live.try_get_untracked() == Some(true);
                if live && active.try_get_untracked() == Some(true) && !document().hidden() {
                    tick.try_update(|n| *n += 1);
                }
            },
            every,
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (every, active);
    tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_through_links() {
        let params = DlqParams {
            filter: DlqFilter {
                topic: Some("payments.DLT".into()),
                reason: Some("timed out".into()),
                state: Some("new".into()),
                cursor: Some("1.x".into()),
                ..Default::default()
            },
            range: Some("1h".into()),
        };
        assert_eq!(
            params.query_string(),
            "topic=payments%2EDLT&reason=timed%20out&state=new&range=1h"
        );
        assert!(params.is_filtered());
        assert!(!params.is_first_page());
        let bulk = params.for_bulk();
        assert_eq!(bulk.filter.state, None);
        assert_eq!(bulk.filter.cursor, None);
        assert_eq!(
            bulk.href("/dlq/bulk-retry"),
            "/dlq/bulk-retry?topic=payments%2EDLT&reason=timed%20out&range=1h"
        );
        let group = params.with_group("a|b|c");
        assert_eq!(group.filter.failure_group.as_deref(), Some("a|b|c"));
        assert_eq!(group.filter.cursor, None);
        assert!(DlqParams::default().href("/dlq") == "/dlq");
    }

    #[test]
    fn ranges_become_since_and_explicit_times_win() {
        let now = 1_800_000_000_000;
        let params = DlqParams {
            range: Some("15m".into()),
            ..Default::default()
        };
        let since = params.resolve(now).since.unwrap();
        let since = chrono::DateTime::parse_from_rfc3339(&since).unwrap();
        assert_eq!(since.timestamp_millis(), now - 15 * 60_000);
        let explicit = DlqParams {
            filter: DlqFilter {
                since: Some("2026-11-21T10:00".into()),
                ..Default::default()
            },
            range: Some("15m".into()),
        };
        assert_eq!(
            explicit.resolve(now).since.as_deref(),
            Some("2026-11-21T10:00:00Z")
        );
        assert!(explicit.resolve(now).validate().is_ok());
    }

    #[test]
    fn detail_links_keep_topic_partition_offset_as_segments() {
        assert_eq!(
            dead_letter_href("payments.events.DLT/2/117"),
            "/dlq/messages/payments.events.DLT/2/117"
        );
        assert_eq!(dead_letter_href("a b/0/1"), "/dlq/messages/a%20b/0/1");
        assert_eq!(path_segment("x/y?z"), "x%2Fy%3Fz");
    }

    #[test]
    fn classes_numbers_and_json() {
        assert_eq!(
            short_class("java.net.SocketTimeoutException"),
            "SocketTimeoutException"
        );
        assert_eq!(short_class("Outer$Inner"), "Inner");
        assert_eq!(short_class("Plain"), "Plain");
        assert_eq!(
            number_hint(&40_i64.to_be_bytes()).as_deref(),
            Some("= 40 (64-bit big-endian)")
        );
        assert_eq!(
            number_hint(&3_i32.to_be_bytes()).as_deref(),
            Some("= 3 (32-bit big-endian)")
        );
        assert_eq!(number_hint(&[1, 2]), None);
        assert_eq!(hex(&[0, 255, 16], 2), "00 ff …");
        assert!(as_json("{\"a\":1}").is_some());
        assert!(as_json("\"a\"").is_none());
        assert!(as_json("{broken").is_none());
    }

    /// Server-rendered HTML of a view.
    #[cfg(feature = "ssr")]
    fn html<V: IntoView + 'static>(view: impl FnOnce() -> V) -> String {
        let owner = Owner::new();
        owner.with(|| view().into_view().to_html())
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn message_bytes_are_escaped_text_json_or_hex() {
        let hostile = ByteText::of(b"<script>alert('x')</script>");
        let text = html(|| view! { <BytesBlock value=Some(hostile) test="p"/> });
        assert!(text.contains("&lt;script&gt;"), "{text}");
        assert!(!text.contains("<script>"), "{text}");
        assert!(text.contains("data-kind=\"text\""), "{text}");

        let json = ByteText::of(br#"{"note":"<b>hi</b>","n":1}"#);
        let text = html(|| view! { <BytesBlock value=Some(json) test="p"/> });
        assert!(text.contains("data-kind=\"json\""), "{text}");
        assert!(text.contains("&lt;b&gt;hi&lt;/b&gt;"), "{text}");
        assert!(!text.contains("<b>"), "{text}");

        let long = ByteText::of(&40_i64.to_be_bytes());
        let text = html(|| view! { <BytesInline value=Some(long)/> });
        assert!(text.contains("00 00 00 00 00 00 00 28"), "{text}");
        assert!(text.contains("= 40 (64-bit big-endian)"), "{text}");
        assert!(text.contains("data-binary=\"true\""), "{text}");

        let text = html(|| view! { <BytesBlock value=None test="p"/> });
        assert!(text.contains("data-kind=\"null\""), "{text}");
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn state_badges_have_icon_label_and_meaning() {
        let text = html(|| view! { <DeadLetterStateBadge state=DeadLetterState::FailedAgain/> });
        assert!(text.contains("data-state=\"failed_again\""), "{text}");
        assert!(text.contains("failed again"), "{text}");
        assert!(text.contains("title=\"Failed again:"), "{text}");
    }

    #[test]
    fn only_new_is_retryable_and_every_state_has_a_label() {
        assert!(is_retryable(DeadLetterState::New));
        assert!(!is_retryable(DeadLetterState::FailedAgain));
        assert!(is_discardable(DeadLetterState::FailedAgain));
        assert!(!is_discardable(DeadLetterState::Resolved));
        for state in DeadLetterState::ALL {
            assert!(!state_look(state).1.is_empty());
        }
    }
}
