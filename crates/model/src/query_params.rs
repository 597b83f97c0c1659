//! Parsing of query-string filters (`SagaFilter`, `DlqFilter`,
//! `AuditFilter`): every list endpoint reads blanks, times, page sizes,
//! cursors and comma-separated enum lists the same way and words its 400
//! messages the same way.

use crate::Timestamp;

/// The trimmed value, or None when absent or blank.
pub(crate) fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// An optional RFC 3339 time named `name` in the messages.
pub(crate) fn parse_time(name: &str, value: &Option<String>) -> Result<Option<Timestamp>, String> {
    match non_empty(value) {
        None => Ok(None),
        Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                format!(
                    "`{name}` must be an RFC 3339 time such as 2026-11-21T10:00:00Z, got `{text}`"
                )
            }),
    }
}

/// `limit`: `default` when absent, else an integer from 1 to `max`.
pub(crate) fn parse_limit(value: &Option<String>, default: u32, max: u32) -> Result<u32, String> {
    match non_empty(value) {
        None => Ok(default),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "`limit` must be an integer from 1 to {max}, got `{text}`"
            )),
        },
    }
}

/// `cursor`, decoded by `decode`.
pub(crate) fn parse_cursor<T>(
    value: &Option<String>,
    decode: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, String> {
    match non_empty(value) {
        None => Ok(None),
        Some(text) => decode(&text)
            .map(Some)
            .ok_or_else(|| format!("invalid cursor `{text}`")),
    }
}

/// One value or several, comma-separated, each one of `all` (by `name`),
/// without repeats, in the order given. `what` names a value in messages.
pub(crate) fn parse_list<T: Copy + PartialEq>(
    what: &str,
    value: &Option<String>,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<Vec<T>, String> {
    let mut items = Vec::new();
    for text in non_empty(value)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let item = all
            .iter()
            .copied()
            .find(|&candidate| name(candidate) == text)
            .ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|&c| name(c)).collect();
                format!(
                    "unknown {what} `{text}`; expected one of {} (or several, comma-separated)",
                    known.join(", ")
                )
            })?;
        if !items.contains(&item) {
            items.push(item);
        }
    }
    Ok(items)
}

/// `k=v&…` of the non-blank values, percent-encoded, for links.
pub(crate) fn query_string(pairs: &[(&str, &Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| non_empty(v).map(|v| format!("{k}={}", crate::percent_encode(&v))))
        .collect::<Vec<_>>()
        .join("&")
}
