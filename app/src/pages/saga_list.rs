//! `/sagas`: the saga list with filters (a plain GET form, so every view is
//! a shareable URL and works without JavaScript), keyset paging, and live
//! rows from the stream.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Form, hooks::use_query_map};
use sagascope_model::{SagaPage, SagaStatus, StreamMessage};

use crate::components::live_stream::{use_live_stream_with_resync, STREAM_PATH};
use crate::components::saga_table::{upsert_row, SagaRow, SagaTable, WaitingSort};
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::filters::{datetime_input_value, matches, ListParams, RANGES};
use crate::server_fns::{error_text, fetch_saga_page, fetch_saga_types};
use crate::state::{now_ms, ui_state};

#[component]
pub fn SagaListPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| query.with(ListParams::from_query));
    let page = Resource::new(move || params.get(), fetch_saga_page);
    let types = Resource::new(|| (), |_| fetch_saga_types());

    view! {
        <Title text="Sagas"/>
        <section class="page page-sagas">
            <header class="page-head">
                <h1>"Sagas"</h1>
            </header>
            <Transition fallback=|| view! { <FilterFormShell/> }>
                {move || {
                    let params = params.get();
                    Suspend::new(async move {
                        let types = types.await.unwrap_or_default();
                        view! { <FilterForm params types/> }
                    })
                }}
            </Transition>
            <Transition fallback=|| view! { <Loading what="sagas"/> }>
                {move || {
                    let params = params.get();
                    Suspend::new(async move {
                        match page.await {
                            Ok(page) => view! { <SagaListResults page params/> }.into_any(),
                            Err(error) => view! {
                                <ErrorState title="Could not load sagas".to_string() detail=error_text(&error)/>
                                <p class="actions"><a class="button" href="/sagas">"Clear filters"</a></p>
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

/// Placeholder with the form's height while saga types load.
#[component]
fn FilterFormShell() -> impl IntoView {
    view! { <div class="filters filters-loading" aria-hidden="true"></div> }
}

#[component]
fn FilterForm(params: ListParams, types: Vec<String>) -> impl IntoView {
    let f = params.filter.clone();
    let selected_type = f.saga_type.clone().unwrap_or_default();
    let selected_status = f.status.clone().unwrap_or_default();
    let selected_range = params.range.clone().unwrap_or_default();
    // A type from the URL that the store does not know (yet) stays selectable.
    let mut types = types;
    if !selected_type.is_empty() && !types.contains(&selected_type) {
        types.push(selected_type.clone());
    }
    let type_options = types
        .into_iter()
        .map(|t| {
            let selected = t == selected_type;
            view! { <option value=t.clone() selected=selected>{t.clone()}</option> }
        })
        .collect_view();
    let status_options = SagaStatus::ALL
        .into_iter()
        .map(|s| {
            let selected = s.as_str() == selected_status;
            view! {
                <option value=s.as_str() selected=selected>{format!("{} {}", s.icon(), s.label())}</option>
            }
        })
        .collect_view();
    // A list of statuses from a link (the overview's `running,compensating`)
    // stays selected, so applying other filters keeps it.
    let status_list = status_list_label(&selected_status).map(|label| {
        view! { <option value=selected_status.clone() selected=true>{label}</option> }
    });
    let range_options = RANGES
        .into_iter()
        .map(|(value, label, _)| {
            let selected = value == selected_range;
            view! { <option value=value selected=selected>{label}</option> }
        })
        .collect_view();
    let filtered = params.is_filtered();

    view! {
        <Form method="get" action="/sagas" attr:class="filters" attr:data-test="filter-form">
            <label class="field">
                <span class="field-label">"Type"</span>
                <select name="saga_type" data-test="filter-type" on:change=submit_on_change>
                    <option value="" selected=selected_type.is_empty()>"All types"</option>
                    {type_options}
                </select>
            </label>
            <label class="field">
                <span class="field-label">"Status"</span>
                <select name="status" data-test="filter-status" on:change=submit_on_change>
                    <option value="" selected=selected_status.is_empty()>"Any status"</option>
                    {status_options}
                    {status_list}
                </select>
            </label>
            <label class="field">
                <span class="field-label">"Started"</span>
                <select name="range" data-test="filter-range" on:change=submit_on_change>
                    <option value="" selected=selected_range.is_empty()>"Any time"</option>
                    {range_options}
                </select>
            </label>
            <label class="field">
                <span class="field-label">"Since (UTC)"</span>
                <input
                    type="datetime-local"
                    name="since"
                    data-test="filter-since"
                    value=datetime_input_value(f.since.as_deref())
                />
            </label>
            <label class="field">
                <span class="field-label">"Until (UTC)"</span>
                <input
                    type="datetime-local"
                    name="until"
                    data-test="filter-until"
                    value=datetime_input_value(f.until.as_deref())
                />
            </label>
            <label class="field field-grow">
                <span class="field-label">"Search"</span>
                <input
                    type="search"
                    name="q"
                    data-test="filter-q"
                    placeholder="saga id, trace id, business key"
                    value=f.q.clone().unwrap_or_default()
                />
            </label>
            <FlagFilter
                name="overdue"
                label="Overdue"
                title="Running sagas that have waited longer for their next event than their type's flow says that step usually takes (p99)"
                checked=f.overdue.as_deref() == Some("true")
                test="filter-overdue"
            />
            <FlagFilter
                name="incomplete_compensation"
                label="Incomplete compensation"
                title="Compensated sagas in which a forward step that completed has no compensation event"
                checked=f.incomplete_compensation.as_deref() == Some("true")
                test="filter-incomplete-compensation"
            />
            {f.limit.clone().map(|limit| view! { <input type="hidden" name="limit" value=limit/> })}
            {f.sort.clone().map(|sort| view! { <input type="hidden" name="sort" value=sort/> })}
            <div class="field field-actions">
                <button type="submit" class="button primary" data-test="filter-apply">"Apply"</button>
                {filtered.then(|| view! {
                    <a class="button" href="/sagas" data-test="filter-clear">"Clear"</a>
                })}
            </div>
        </Form>
    }
    .into_any()
}

/// A checkbox that sets `name=true` in the URL (unchecked: the filter is
/// off); with JavaScript it applies at once.
#[component]
fn FlagFilter(
    name: &'static str,
    label: &'static str,
    title: &'static str,
    checked: bool,
    test: &'static str,
) -> impl IntoView {
    view! {
        <label class="field field-check" title=title>
            <input
                type="checkbox"
                name=name
                value="true"
                checked=checked
                data-test=test
                on:change=submit_on_change
            />
            <span class="field-label">{label}</span>
        </label>
    }
    .into_any()
}

/// The option text of a status value that is not one status: the labels of
/// a comma-separated list ("Running or Compensating"), or the raw value
/// when it names unknown statuses (the store's error says which).
fn status_list_label(value: &str) -> Option<String> {
    if value.is_empty() || SagaStatus::parse(value).is_some() {
        return None;
    }
    let labels = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SagaStatus::parse(s).map(|s| s.label().to_string()))
        .collect::<Option<Vec<_>>>();
    Some(match labels {
        Some(labels) if !labels.is_empty() => labels.join(" or "),
        _ => value.to_string(),
    })
}

/// With JavaScript, changing a select or a checkbox applies the filters
/// at once.
fn submit_on_change(event: leptos::ev::Event) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let target = event.target();
        let form = target
            .clone()
            .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
            .and_then(|select| select.form())
            .or_else(|| {
                target
                    .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                    .and_then(|input| input.form())
            });
        if let Some(form) = form {
            let _ = form.request_submit();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = event;
}

#[component]
fn SagaListResults(page: SagaPage, params: ListParams) -> impl IntoView {
    let SagaPage { items, next_cursor } = page;
    let rows = RwSignal::new(items.into_iter().map(SagaRow::loaded).collect::<Vec<_>>());
    let first_page = params.is_first_page();
    let has_more = next_cursor.is_some();
    let live_inserts = params.live_inserts();
    let sorted_by_waiting = params.sorted_by_waiting();
    let waiting_sort = WaitingSort {
        href: params.toggle_waiting_sort_href(),
        active: sorted_by_waiting,
    };
    let ui = ui_state();

    let apply = {
        let params = params.clone();
        move |message: StreamMessage| {
            let saga = match message {
                StreamMessage::Saga { saga } => saga,
                StreamMessage::Merged { from, .. } => {
                    rows.try_update(|rows| rows.retain(|r| r.saga.saga_id != from));
                    return;
                }
                _ => return,
            };
            // The filter as the store saw it, with "now" for range presets.
            let now = ui.now_ms.try_get_untracked().unwrap_or_else(now_ms);
            let insert = first_page && live_inserts && matches(&saga, &params.resolve(now));
            rows.try_update(|rows| {
                upsert_row(rows, saga, insert, !has_more);
            });
        }
    };
    // On every (re)open of the stream, merge what was missed meanwhile.
    let resync = {
        let params = params.clone();
        let apply = apply.clone();
        move || {
            let params = params.clone();
            let apply = apply.clone();
            leptos::task::spawn_local(async move {
                if let Ok(page) = fetch_saga_page(params).await {
                    for saga in page.items.into_iter().rev() {
                        apply(StreamMessage::Saga { saga });
                    }
                }
            });
        }
    };
    use_live_stream_with_resync(STREAM_PATH.to_string(), apply, resync);

    let empty = {
        let filtered = params.is_filtered();
        move || {
            rows.with(Vec::is_empty).then(|| {
                if filtered {
                    view! {
                        <EmptyState
                            title="No sagas match these filters".to_string()
                            detail="New sagas that match appear here live.".to_string()
                            action=("/sagas".to_string(), "Clear filters".to_string())
                        />
                    }
                    .into_any()
                } else {
                    view! {
                        <EmptyState
                            title="No sagas yet".to_string()
                            detail="sagascope shows sagas as soon as their first event is ingested; they appear here live.".to_string()
                        />
                    }
                    .into_any()
                }
            })
        }
    };

    let pager = (!first_page || next_cursor.is_some()).then(|| {
        let first = (!first_page).then(|| params.first_page_href());
        let next = next_cursor.map(|c| params.next_page_href(&c));
        view! {
            <nav class="pager" aria-label="Pages">
                {first.map(|href| view! { <a class="button" href=href data-test="first-page">"← First page"</a> })}
                {next.map(|href| view! { <a class="button" href=href data-test="next-page">"Next page →"</a> })}
            </nav>
        }
    });

    view! {
        <div class="results">
            <p class="results-meta muted">
                {move || {
                    let n = rows.with(Vec::len);
                    format!("{n} saga{} shown{}", if n == 1 { "" } else { "s" }, if first_page { "" } else { " (later page)" })
                }}
                {sorted_by_waiting.then(|| view! {
                    <span data-test="sorted-by-waiting">" · running and compensating sagas only, longest waiting first"</span>
                })}
            </p>
            <SagaTable rows waiting_sort/>
            {empty}
            {pager}
        </div>
    }
    .into_any()
}
