//! `/dlq/bulk-retry?{filter}`: the confirmation of a bulk retry. Shows
//! exactly how many dead letters it would re-drive now (state `new`,
//! matching the filter), per original topic, with a sample; the form
//! (reason, canary, throttle) posts the previewed count, so the server
//! refuses when the set changed meanwhile. Operators only: anyone else gets
//! a 403 page without a form.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use sagascope_model::{DlqFilter, SessionInfo};

use crate::components::dead_letter::{
    dead_letter_href, defs, short_class, ActionBanner, CsrfField, DeadLetterStateBadge, DlqParams,
};
use crate::components::dead_letter_actions::BULK_RETRY_ACTION;
use crate::components::metric_cards::fmt_count;
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::time::RelativeTime;
use crate::pages::dlq_list::{coordinates, original_coordinates};
use crate::server_fns::{
    error_text, fetch_bulk_retry_preview, set_page_status, use_session, BulkRetryView,
};
use crate::time::absolute;

/// Seconds the canary is watched unless the operator says otherwise.
pub const DEFAULT_CANARY_WAIT_S: u32 = 10;

#[component]
pub fn DlqBulkRetryPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| query.with(DlqParams::from_query));
    let preview = Resource::new(move || params.get(), fetch_bulk_retry_preview);
    let session = use_session();
    let banner_query = Memo::new(move |_| query.get());

    view! {
        <Title text="Bulk retry"/>
        <section class="page page-dlq-bulk">
            <nav class="crumbs" aria-label="Breadcrumb">
                <a href="/dlq">"Dead letters"</a>
                <span aria-hidden="true">" / "</span>
                <span>"Bulk retry"</span>
            </nav>
            <header class="page-head">
                <h1>"Retry dead letters in bulk"</h1>
            </header>
            <ActionBanner query=banner_query/>
            <Transition fallback=|| view! { <Loading what="the preview"/> }>
                {move || {
                    let params = params.get();
                    Suspend::new(async move {
                        let info = session.await.unwrap_or_default();
                        let result = preview.await;
                        if !info.has_role("operator") {
                            set_page_status(403);
                            return view! { <Forbidden info params/> }.into_any();
                        }
                        match result {
                            Ok(view) => view! { <BulkPreview view params info/> }.into_any(),
                            Err(error) => view! {
                                <ErrorState title="Could not count the dead letters to retry".to_string() detail=error_text(&error)/>
                                <p class="actions"><a class="button" href=params.href("/dlq")>"Back to the list"</a></p>
                            }
                            .into_any(),
                        }
                    })
                }}
            </Transition>
        </section>
    }
    .into_any()
}

/// The 403 page: who may do this, and how to get there.
#[component]
fn Forbidden(info: SessionInfo, params: DlqParams) -> impl IntoView {
    let here = params.href("/dlq/bulk-retry");
    let (detail, action) = match &info.user {
        Some(user) => (
            format!(
                "Retrying dead letters needs the operator role; you are signed in as {} ({}).",
                user.name, user.role
            ),
            (params.href("/dlq"), "Back to the dead letters".to_string()),
        ),
        None => (
            "Retrying dead letters needs the operator role. Sign in as an operator.".to_string(),
            (
                format!("/login?next={}", sagascope_model::percent_encode(&here)),
                "Sign in".to_string(),
            ),
        ),
    };
    view! {
        <div class="forbidden" data-test="bulk-forbidden">
            <EmptyState title="403 — operators only".to_string() detail action/>
        </div>
    }
}

/// The filter in words, one fact per line.
fn filter_facts(filter: &DlqFilter) -> Vec<(&'static str, String)> {
    let mut facts = Vec::new();
    let mut add = |label: &'static str, value: &Option<String>| {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            facts.push((label, v.to_string()));
        }
    };
    add("DLQ topic", &filter.topic);
    add("Failure group", &filter.failure_group);
    add("Reason contains", &filter.reason);
    add("Saga type", &filter.saga_type);
    add("Saga", &filter.saga_id);
    add("Dead-lettered since", &filter.since);
    add("Dead-lettered before", &filter.until);
    facts
}

#[component]
fn BulkPreview(view: BulkRetryView, params: DlqParams, info: SessionInfo) -> impl IntoView {
    let BulkRetryView {
        filter,
        filter_query,
        preview,
        idempotency_key,
        counted_at,
    } = view;
    let count = preview.count;
    // An empty filter re-drives every retryable dead letter; the server
    // takes that only as an explicit `all`, which this page (having shown
    // the whole set) sends.
    let all = (!filter.has_criteria()).then_some("true");
    let plural = if count == 1 { "" } else { "s" };
    let back = params.href("/dlq");
    let facts = filter_facts(&filter)
        .into_iter()
        .map(|(label, value)| {
            view! {
                <div>
                    <dt>{label}</dt>
                    <dd class="mono">{value}</dd>
                </div>
            }
        })
        .collect_view();
    let everything = filter_facts(&filter).len() <= 1;
    let targets = preview
        .by_topic
        .iter()
        .map(|(topic, n)| format!("{topic} ({n})"))
        .collect::<Vec<_>>()
        .join(", ");
    let by_topic = preview
        .by_topic
        .clone()
        .into_iter()
        .map(|(topic, n)| {
            view! {
                <tr data-test="bulk-topic-row" data-topic=topic.clone() data-count=n.to_string()>
                    <td class="mono">{topic.clone()}</td>
                    <td class="num">{fmt_count(n as i64)}</td>
                </tr>
            }
        })
        .collect_view();
    let sample_count = preview.sample.len();
    let sample = preview
        .sample
        .into_iter()
        .map(|letter| {
            let class_full = letter.exception_class.clone().unwrap_or_default();
            view! {
                <tr data-test="bulk-sample-row" data-id=letter.id.clone()>
                    <td title=absolute(&letter.dead_lettered_at)><RelativeTime at=letter.dead_lettered_at/></td>
                    <td class="mono"><a href=dead_letter_href(&letter.id)>{coordinates(&letter.dlq_topic, letter.dlq_partition, letter.dlq_offset)}</a></td>
                    <td class="mono muted">{original_coordinates(&letter)}</td>
                    <td class="dlq-exc-cell" title=format!("{class_full}: {}", letter.exception_message.clone().unwrap_or_default())>
                        <span class="exc-class mono">{short_class(&class_full).to_string()}</span>
                        " "
                        <span class="exc-message">{letter.exception_message.clone().unwrap_or_default()}</span>
                    </td>
                    <td><DeadLetterStateBadge state=letter.state/></td>
                </tr>
            }
            .into_any()
        })
        .collect_view();

    let summary = view! {
        <section class="panel bulk-summary" aria-labelledby="bulk-count-title">
            <header class="panel-head">
                <h2 id="bulk-count-title">"What would be retried"</h2>
                <span class="muted small" title=absolute(&counted_at)>"counted "<RelativeTime at=counted_at/></span>
            </header>
            <div class="panel-body bulk-figures">
                <p class="bulk-count">
                    <span class="bulk-number num" data-test="bulk-count" data-count=count.to_string() title=defs::PREVIEW_COUNT>
                        {fmt_count(count as i64)}
                    </span>
                    {format!(" dead letter{plural} in state new")}
                </p>
                <dl class="facts-grid bulk-filter" data-test="bulk-filter" data-filter=filter_query.clone()>
                    {facts}
                    {everything.then(|| view! {
                        <div><dt>"Filter"</dt><dd class="muted">"none: every new dead letter"</dd></div>
                    })}
                </dl>
                <p class="small"><a href=back.clone() data-test="bulk-back">"← Back to the list with this filter"</a></p>
            </div>
            {(count > 0).then(|| view! {
                <div class="bulk-tables">
                    <div class="table-wrap">
                        <table class="grid" data-test="bulk-by-topic">
                            <thead><tr><th scope="col">"Produced to (original topic)"</th><th scope="col" class="num">"Messages"</th></tr></thead>
                            <tbody>{by_topic}</tbody>
                        </table>
                    </div>
                    <div class="table-wrap">
                        <table class="grid" data-test="bulk-sample">
                            <caption class="muted small">{format!("Sample: the newest {sample_count}")}</caption>
                            <thead>
                                <tr>
                                    <th scope="col">"Time"</th>
                                    <th scope="col">"DLQ message"</th>
                                    <th scope="col">"Original"</th>
                                    <th scope="col">"Exception"</th>
                                    <th scope="col">"State"</th>
                                </tr>
                            </thead>
                            <tbody>{sample}</tbody>
                        </table>
                    </div>
                </div>
            }
            .into_any())}
        </section>
    }
    // Erased: summary, tables and rows nest deeper than rustc's limit in
    // release builds otherwise (issue 13).
    .into_any();

    if count == 0 {
        return view! {
            {summary}
            <div data-test="bulk-nothing">
                <EmptyState
                    title="Nothing to retry".to_string()
                    detail="No dead letter in state new matches this filter: they may have been retried or discarded already. Only new dead letters are retried.".to_string()
                    action=(back, "Back to the list".to_string())
                />
            </div>
        }
        .into_any();
    }

    let csrf_token = info.csrf_token.clone().unwrap_or_default();
    let button = format!("Retry {} dead letter{plural}", fmt_count(count as i64));
    let statement = format!(
        "Re-drives exactly {count} dead letter{plural} to {targets}: each produced byte-exact with x-retry-of set, in the background, at most at the throttle. The set is frozen when you confirm; if it no longer has {count} member{plural} by then (some were retried or discarded meanwhile), nothing is produced and you are told."
    );
    view! {
        {summary}
        <section class="panel" aria-labelledby="bulk-confirm-title">
            <header class="panel-head"><h2 id="bulk-confirm-title">"Confirm"</h2></header>
            <form method="post" action=BULK_RETRY_ACTION class="action-form bulk-form panel-body" data-test="bulk-form">
                <CsrfField token=csrf_token/>
                <input type="hidden" name="filter" value=filter_query data-test="bulk-filter-field"/>
                <input type="hidden" name="expected_count" value=count.to_string() data-test="bulk-expected-count"/>
                {all.map(|all| view! { <input type="hidden" name="all" value=all/> })}
                <input type="hidden" name="idempotency_key" value=idempotency_key/>
                <p class="action-statement" data-test="bulk-statement">{statement.clone()}</p>
                <label class="field field-grow">
                    <span class="field-label">"Reason (for the audit log)"</span>
                    <input
                        type="text"
                        name="reason"
                        required
                        minlength="3"
                        maxlength="500"
                        placeholder="why retry these now, e.g. stock service fixed in 2.4.1"
                        data-test="bulk-reason"
                    />
                </label>
                <div class="bulk-options">
                    <label class="check" title="Retry one message first and go on only if it does not come back to a DLQ">
                        <input type="checkbox" name="canary" value="on" data-test="bulk-canary"/>
                        " Canary first: retry one, wait, then the rest"
                    </label>
                    <label class="field">
                        <span class="field-label">"Canary wait (s)"</span>
                        <input type="number" name="canary_wait_s" min="1" max="600" value=DEFAULT_CANARY_WAIT_S.to_string() data-test="bulk-canary-wait"/>
                    </label>
                    <label class="field">
                        <span class="field-label" title="Messages per second at most; empty = as fast as the broker acks">"Throttle (msg/s)"</span>
                        <input type="number" name="throttle_per_s" min="1" max="100000" placeholder="no limit" data-test="bulk-throttle"/>
                    </label>
                </div>
                <div class="field-actions">
                    <button type="submit" class="button primary" data-test="bulk-submit" title=statement.clone()>
                        <span aria-hidden="true">"↻ "</span>
                        {button}
                    </button>
                    <a class="button" href=back>"Cancel"</a>
                </div>
            </form>
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_name_every_set_field() {
        let filter = DlqFilter {
            topic: Some("payments.DLT".into()),
            reason: Some(" ".into()),
            until: Some("2026-11-21T10:00:00Z".into()),
            ..Default::default()
        };
        let facts = filter_facts(&filter);
        assert_eq!(
            facts,
            vec![
                ("DLQ topic", "payments.DLT".to_string()),
                ("Dead-lettered before", "2026-11-21T10:00:00Z".to_string())
            ]
        );
    }
}
