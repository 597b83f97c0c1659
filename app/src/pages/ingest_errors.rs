//! `/ingest`: messages that could not be decoded, with their Kafka
//! coordinates, newest first; new ones arrive live.

use leptos::prelude::*;
use leptos_meta::Title;
use sagascope_model::{IngestErrorView, StreamMessage};

use crate::components::live_stream::{use_live_stream_with_resync, STREAM_PATH};
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::time::RelativeTime;
use crate::server_fns::{error_text, fetch_ingest_errors, INGEST_ERROR_LIMIT};
use crate::time::absolute;

#[component]
pub fn IngestErrorsPage() -> impl IntoView {
    let errors = Resource::new(|| (), |_| fetch_ingest_errors());
    view! {
        <Title text="Ingest"/>
        <section class="page page-ingest">
            <header class="page-head">
                <h1>"Ingest errors"</h1>
                <p class="muted">
                    "Messages sagascope could not decode. They are kept with their coordinates, never dropped."
                </p>
            </header>
            <Suspense fallback=|| view! { <Loading what="ingest errors"/> }>
                {move || Suspend::new(async move {
                    match errors.await {
                        Ok(items) => view! { <IngestErrorTable items/> }.into_any(),
                        Err(error) => view! {
                            <ErrorState title="Could not load ingest errors".to_string() detail=error_text(&error)/>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
    .into_any()
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    error: IngestErrorView,
    fresh: bool,
}

#[component]
fn IngestErrorTable(items: Vec<IngestErrorView>) -> impl IntoView {
    let rows = RwSignal::new(
        items
            .into_iter()
            .map(|error| Row {
                error,
                fresh: false,
            })
            .collect::<Vec<_>>(),
    );
    // Newest (highest id) first; ids already shown are ignored.
    let apply = move |message: StreamMessage| {
        if let StreamMessage::IngestError { error } = message {
            rows.try_update(|rows| {
                if rows.iter().all(|r| r.error.id != error.id) {
                    let at = rows
                        .iter()
                        .position(|r| r.error.id < error.id)
                        .unwrap_or(rows.len());
                    rows.insert(at, Row { error, fresh: true });
                    rows.truncate(INGEST_ERROR_LIMIT as usize);
                }
            });
        }
    };
    // On every (re)open of the stream, merge what was missed meanwhile.
    let resync = move || {
        leptos::task::spawn_local(async move {
            if let Ok(items) = fetch_ingest_errors().await {
                for error in items {
                    apply(StreamMessage::IngestError { error });
                }
            }
        });
    };
    use_live_stream_with_resync(STREAM_PATH.to_string(), apply, resync);

    view! {
        <div class="table-wrap">
            <table class="grid ingest" data-test="ingest-errors">
                <thead>
                    <tr>
                        <th scope="col">"Time"</th>
                        <th scope="col">"Topic"</th>
                        <th scope="col" class="num">"Partition"</th>
                        <th scope="col" class="num">"Offset"</th>
                        <th scope="col">"Reason"</th>
                        <th scope="col">"Key"</th>
                        <th scope="col">"First bytes"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || rows.get() key=|row| row.error.id let:row>
                        <IngestErrorRow row/>
                    </For>
                </tbody>
            </table>
        </div>
        {move || rows.with(Vec::is_empty).then(|| view! {
            <EmptyState
                title="No ingest errors".to_string()
                detail="Every message so far was decoded. Undecodable messages appear here live, with topic, partition and offset.".to_string()
            />
        })}
    }
    .into_any()
}

#[component]
fn IngestErrorRow(row: Row) -> impl IntoView {
    let Row { error, fresh } = row;
    let published = error
        .published_at
        .as_ref()
        .map(|t| format!("published {}", absolute(t)))
        .unwrap_or_default();
    view! {
        <tr
            class=if fresh { "row fresh" } else { "row" }
            data-test="ingest-error-row"
            data-topic=error.topic.clone()
            data-partition=error.partition.to_string()
            data-offset=error.offset.to_string()
        >
            <td title=published><RelativeTime at=error.ingested_at/></td>
            <td class="mono">{error.topic.clone()}</td>
            <td class="num mono">{error.partition}</td>
            <td class="num mono">{error.offset}</td>
            <td class="reason" title=error.reason.clone()>{error.reason.clone()}</td>
            <td class="mono key">{error.key.clone().unwrap_or_else(|| "—".into())}</td>
            <td><code class="bytes" title=error.first_bytes.clone()>{visible(&error.first_bytes)}</code></td>
        </tr>
    }
    .into_any()
}

/// Control characters of undecodable bytes made visible (`\x00`, `\n`);
/// the rest stays as is. Leptos escapes the text for HTML.
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_become_visible() {
        assert_eq!(super::visible("\u{0}a\n<b>"), "\\x00a\\n<b>");
    }
}
