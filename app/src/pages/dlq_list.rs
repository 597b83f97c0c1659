//! `/dlq`: dead letters. The filters (a plain GET form: every view is a
//! shareable URL), depth and oldest age per DLQ topic and per failure
//! group, the recent bulk retries, and the list, newest first and
//! keyset-paged. Operators get links to retry a group or everything the
//! filters match (the bulk page confirms first). Live: the figures and the
//! first page are fetched again every few seconds.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Form, hooks::use_query_map};
use sagascope_model::{
    DeadLetterGroup, DeadLetterGroups, DeadLetterPage, DeadLetterState, DeadLetterSummary,
    DlqTopicDepth, RetryJobView, SessionInfo,
};

use crate::components::dead_letter::{
    dead_letter_href, defs, job_href, short_class, ActionBanner, DeadLetterStateBadge, DlqParams,
};
use crate::components::dead_letter_job::{JobProgress, JobStateBadge};
use crate::components::ids::{saga_href, IdLink};
use crate::components::metric_cards::{fmt_count, fmt_ms, use_live_refresh};
use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::time::RelativeTime;
use crate::filters::{datetime_input_value, RANGES};
use crate::server_fns::{
    error_text, fetch_dead_letter_groups, fetch_dead_letters, fetch_dlq_topics, fetch_retry_jobs,
    fetch_saga_types, use_session,
};
use crate::time::absolute;

/// Most failure groups listed; a DLQ with more needs a filter.
const MAX_GROUPS_SHOWN: usize = 50;

#[component]
pub fn DlqListPage() -> impl IntoView {
    let query = use_query_map();
    let params = Memo::new(move |_| query.with(DlqParams::from_query));
    let refresh = use_live_refresh();
    let list = Resource::new(
        move || (params.get(), refresh.get()),
        |(params, _)| fetch_dead_letters(params),
    );
    let groups = Resource::new(
        move || (params.get(), refresh.get()),
        |(params, _)| fetch_dead_letter_groups(params),
    );
    let jobs = Resource::new(move || refresh.get(), |_| fetch_retry_jobs());
    let topics = Resource::new(|| (), |_| fetch_dlq_topics());
    let types = Resource::new(|| (), |_| fetch_saga_types());
    let session = use_session();
    let banner_query = Memo::new(move |_| query.get());

    view! {
        <Title text="Dead letters"/>
        <section class="page page-dlq">
            <header class="page-head">
                <h1>"Dead letters"</h1>
                {move || view! { <RangePicker params=params.get()/> }}
                <p class="muted">
                    "Messages a consumer gave up on, grouped by failure. Open one to see its bytes; operators can retry or discard."
                </p>
            </header>
            <ActionBanner query=banner_query/>
            <Transition fallback=|| view! { <div class="filters filters-loading" aria-hidden="true"></div> }>
                {move || {
                    let params = params.get();
                    Suspend::new(async move {
                        let topics = topics.await.unwrap_or_default();
                        let types = types.await.unwrap_or_default();
                        view! { <DlqFilterForm params topics types/> }
                    })
                }}
            </Transition>
            <Transition fallback=|| view! { <Loading what="DLQ depth"/> }>
                {move || {
                    let params = params.get();
                    Suspend::new(async move {
                        let info = session.await.unwrap_or_default();
                        match groups.await {
                            Ok(groups) => view! { <DepthPanels groups params info/> }.into_any(),
                            Err(error) => view! {
                                <ErrorState title="Could not load the DLQ depth".to_string() detail=error_text(&error)/>
                            }
                            .into_any(),
                        }
                    })
                }}
            </Transition>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    jobs.await.ok().filter(|jobs| !jobs.is_empty()).map(|jobs| view! { <RecentJobs jobs/> })
                })}
            </Transition>
            <Transition fallback=|| view! { <Loading what="dead letters"/> }>
                {move || {
                    let params = params.get();
                    Suspend::new(async move {
                        let info = session.await.unwrap_or_default();
                        match list.await {
                            Ok(page) => view! { <DeadLetterResults page params info/> }.into_any(),
                            Err(error) => view! {
                                <ErrorState title="Could not load dead letters".to_string() detail=error_text(&error)/>
                                <p class="actions"><a class="button" href="/dlq">"Clear filters"</a></p>
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

/// `all 15m 1h 6h 24h 7d`: plain links that keep the other filters.
#[component]
fn RangePicker(params: DlqParams) -> impl IntoView {
    let current = if params.filter.since.is_some() || params.filter.until.is_some() {
        None
    } else {
        Some(params.range.clone().unwrap_or_default())
    };
    let link = |value: &'static str, label: &'static str, title: String| {
        let active = current.as_deref() == Some(value);
        let href = params
            .with_range((!value.is_empty()).then_some(value))
            .href("/dlq");
        view! {
            <a
                href=href
                class={if active { "window-link active" } else { "window-link" }}
                aria-current=active.then_some("page")
                data-test=format!("dlq-window-{}", if value.is_empty() { "all" } else { value })
                title=title
            >
                {label}
            </a>
        }
    };
    let presets = RANGES
        .into_iter()
        .map(|(value, _, _)| link(value, value, format!("Dead-lettered in the last {value}")))
        .collect_view();
    view! {
        <nav class="window-picker" aria-label="Time window" data-test="dlq-window-picker">
            <span class="window-picker-label">"Window"</span>
            {link("", "all", "Every dead letter, whenever it arrived".to_string())}
            {presets}
        </nav>
    }
}

/// State filter choices: one state, or the open ones together.
const STATE_CHOICES: [(&str, &str); 8] = [
    ("new,retry_requested", "Waiting (new, retry requested)"),
    ("new", "✉ new"),
    ("retry_requested", "↻ retry requested"),
    ("retried", "↻ retried"),
    ("resolved", "✓ resolved"),
    ("failed_again", "⚠ failed again"),
    ("discarded", "⊘ discarded"),
    ("retried,resolved", "Retried or resolved"),
];

#[component]
fn DlqFilterForm(params: DlqParams, topics: Vec<String>, types: Vec<String>) -> impl IntoView {
    let f = params.filter.clone();
    let option_list = |mut values: Vec<String>, selected: &str| {
        if !selected.is_empty() && !values.iter().any(|v| v == selected) {
            values.push(selected.to_string());
        }
        values
            .into_iter()
            .map(|v| {
                let is = v == selected;
                view! { <option value=v.clone() selected=is>{v.clone()}</option> }
            })
            .collect_view()
    };
    let selected_topic = f.topic.clone().unwrap_or_default();
    let selected_type = f.saga_type.clone().unwrap_or_default();
    let selected_state = f.state.clone().unwrap_or_default();
    let selected_range = params.range.clone().unwrap_or_default();
    let topic_options = option_list(topics, &selected_topic);
    let type_options = option_list(types, &selected_type);
    let known_state = STATE_CHOICES.iter().any(|(v, _)| *v == selected_state);
    let state_options = STATE_CHOICES
        .into_iter()
        .map(|(value, label)| {
            let is = value == selected_state;
            view! { <option value=value selected=is>{label}</option> }
        })
        .collect_view();
    let other_state = (!selected_state.is_empty() && !known_state).then(|| {
        view! { <option value=selected_state.clone() selected=true>{selected_state.clone()}</option> }
    });
    let range_options = RANGES
        .into_iter()
        .map(|(value, label, _)| {
            let is = value == selected_range;
            view! { <option value=value selected=is>{label}</option> }
        })
        .collect_view();
    let group_chip = f.failure_group.clone().map(|group| {
        let without = DlqParams {
            filter: sagascope_model::DlqFilter {
                failure_group: None,
                cursor: None,
                ..params.filter.clone()
            },
            range: params.range.clone(),
        }
        .href("/dlq");
        view! {
            <div class="field field-chip">
                <span class="field-label" title=defs::GROUP>"Failure group"</span>
                <span class="chip mono" data-test="dlq-filter-group" title=group.clone()>
                    {group.clone()}
                    <a href=without class="chip-clear" title="Remove this filter" aria-label="Remove the failure group filter">"×"</a>
                </span>
                <input type="hidden" name="failure_group" value=group/>
            </div>
        }
    });
    let saga_chip = f.saga_id.clone().map(|saga_id| {
        view! {
            <div class="field field-chip">
                <span class="field-label">"Saga"</span>
                <span class="chip mono" data-test="dlq-filter-saga">{saga_id.clone()}</span>
                <input type="hidden" name="saga_id" value=saga_id/>
            </div>
        }
    });
    let filtered = params.is_filtered();

    view! {
        <Form method="get" action="/dlq" attr:class="filters" attr:data-test="dlq-filter-form">
            <label class="field">
                <span class="field-label">"DLQ topic"</span>
                <select name="topic" data-test="dlq-filter-topic">
                    <option value="" selected=selected_topic.is_empty()>"All topics"</option>
                    {topic_options}
                </select>
            </label>
            <label class="field field-grow">
                <span class="field-label" title="A part of the exception message, any case">"Reason"</span>
                <input
                    type="search"
                    name="reason"
                    placeholder="exception message contains…"
                    spellcheck="false"
                    data-test="dlq-filter-reason"
                    value=f.reason.clone().unwrap_or_default()
                />
            </label>
            <label class="field">
                <span class="field-label">"Saga type"</span>
                <select name="saga_type" data-test="dlq-filter-saga-type">
                    <option value="" selected=selected_type.is_empty()>"All types"</option>
                    {type_options}
                </select>
            </label>
            <label class="field">
                <span class="field-label">"State"</span>
                <select name="state" data-test="dlq-filter-state">
                    <option value="" selected=selected_state.is_empty()>"Any state"</option>
                    {state_options}
                    {other_state}
                </select>
            </label>
            <label class="field">
                <span class="field-label">"Dead-lettered"</span>
                <select name="range" data-test="dlq-filter-range">
                    <option value="" selected=selected_range.is_empty()>"Any time"</option>
                    {range_options}
                </select>
            </label>
            <label class="field">
                <span class="field-label">"Since (UTC)"</span>
                <input type="datetime-local" name="since" data-test="dlq-filter-since" value=datetime_input_value(f.since.as_deref())/>
            </label>
            <label class="field">
                <span class="field-label">"Until (UTC)"</span>
                <input type="datetime-local" name="until" data-test="dlq-filter-until" value=datetime_input_value(f.until.as_deref())/>
            </label>
            {group_chip}
            {saga_chip}
            {f.limit.clone().map(|limit| view! { <input type="hidden" name="limit" value=limit/> })}
            <div class="field field-actions">
                <button type="submit" class="button primary" data-test="dlq-filter-apply">"Apply"</button>
                {filtered.then(|| view! { <a class="button" href="/dlq" data-test="dlq-filter-clear">"Clear"</a> })}
            </div>
        </Form>
    }
    .into_any()
}

/// Depth per DLQ topic and per failure group, side by side.
#[component]
fn DepthPanels(groups: DeadLetterGroups, params: DlqParams, info: SessionInfo) -> impl IntoView {
    let depth_def = format!(
        "{} (counted here: {})",
        defs::DEPTH,
        groups
            .depth_states
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let operator = info.has_role("operator");
    view! {
        <div class="dlq-depth">
            <section class="panel" aria-labelledby="dlq-topics-title">
                <header class="panel-head">
                    <h2 id="dlq-topics-title">"By DLQ topic"</h2>
                    <span class="muted small">{format!("{} topic{}", groups.topics.len(), if groups.topics.len() == 1 { "" } else { "s" })}</span>
                </header>
                <TopicTable topics=groups.topics.clone() params=params.clone() depth_def=depth_def.clone()/>
            </section>
            <section class="panel" aria-labelledby="dlq-groups-title">
                <header class="panel-head">
                    <h2 id="dlq-groups-title" title=defs::GROUP>"By failure group"</h2>
                    <span class="muted small">"deepest first"</span>
                </header>
                <GroupTable groups=groups.groups params depth_def operator/>
            </section>
        </div>
    }
    .into_any()
}

#[component]
fn TopicTable(topics: Vec<DlqTopicDepth>, params: DlqParams, depth_def: String) -> impl IntoView {
    if topics.is_empty() {
        return view! {
            <EmptyState title="No dead letters here".to_string() detail="No DLQ topic holds a dead letter that matches these filters.".to_string()/>
        }
        .into_any();
    }
    let rows = topics
        .into_iter()
        .map(|t| {
            let mut narrowed = params.clone();
            narrowed.filter.topic = Some(t.topic.clone());
            narrowed.filter.cursor = None;
            let href = narrowed.href("/dlq");
            let newest = t.newest_at;
            view! {
                <tr data-test="dlq-topic-row" data-topic=t.topic.clone() data-depth=t.depth.to_string()>
                    <td class="mono"><a href=href title=format!("Show the dead letters of {}", t.topic)>{t.topic.clone()}</a></td>
                    <td class="num strong" data-test="dlq-topic-depth" title=depth_def.clone()>{fmt_count(t.depth)}</td>
                    <td class="num" title=defs::TOTAL>{fmt_count(t.total)}</td>
                    <td class="num" data-test="dlq-topic-oldest" title=defs::OLDEST>{fmt_ms(t.oldest_age_ms)}</td>
                    <td title=defs::NEWEST>{newest.map(|at| view! { <RelativeTime at/> })}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="grid dlq-topics" data-test="dlq-topics">
                <thead>
                    <tr>
                        <th scope="col">"Topic"</th>
                        <th scope="col" class="num" title=depth_def.clone()>"Depth"</th>
                        <th scope="col" class="num" title=defs::TOTAL>"Total"</th>
                        <th scope="col" class="num" title=defs::OLDEST>"Oldest"</th>
                        <th scope="col" title=defs::NEWEST>"Newest"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn GroupTable(
    groups: Vec<DeadLetterGroup>,
    params: DlqParams,
    depth_def: String,
    operator: bool,
) -> impl IntoView {
    if groups.is_empty() {
        return view! {
            <EmptyState title="No failure groups".to_string() detail="Nothing matching these filters failed.".to_string()/>
        }
        .into_any();
    }
    let hidden = groups.len().saturating_sub(MAX_GROUPS_SHOWN);
    let rows = groups
        .into_iter()
        .take(MAX_GROUPS_SHOWN)
        .map(|g| {
            let show = params.with_group(&g.failure_group).href("/dlq");
            let retry = (operator && g.depth > 0).then(|| {
                let href = params
                    .with_group(&g.failure_group)
                    .for_bulk()
                    .href("/dlq/bulk-retry");
                view! {
                    <a class="button small-button" href=href data-test="dlq-group-retry" title="Preview and confirm a retry of this group's new dead letters">
                        "Retry group…"
                    </a>
                }
            });
            let class_full = g.exception_class.clone().unwrap_or_else(|| "unknown exception".into());
            let class_short = short_class(&class_full).to_string();
            let message = g
                .normalised_message
                .clone()
                .unwrap_or_else(|| "(no message)".into());
            let sample = g.sample_message.clone();
            let sample_title = sample.clone().unwrap_or_default();
            let row_class = if g.depth > 0 { "row" } else { "row drained" };
            let sample_link = g.sample_id.clone().map(|id| {
                view! { <a href=dead_letter_href(&id) class="small" data-test="dlq-group-sample">"sample"</a> }
            });
            view! {
                <tr
                    data-test="dlq-group-row"
                    data-group=g.failure_group.clone()
                    data-depth=g.depth.to_string()
                    class=row_class
                >
                    <td class="dlq-exc">
                        <span class="exc-class mono" title=class_full>{class_short}</span>
                        <span class="muted mono small exc-topic" title="Original topic">
                            {g.original_topic.clone().unwrap_or_else(|| "—".into())}
                        </span>
                    </td>
                    <td class="dlq-message" title=sample_title>
                        <span class="exc-message">{message}</span>
                        {sample.map(|s| view! { <span class="muted small sample-message" data-test="dlq-group-sample-message">{s}</span> })}
                    </td>
                    <td class="num strong" data-test="dlq-group-depth" title=depth_def.clone()>{fmt_count(g.depth)}</td>
                    <td class="num" title=defs::TOTAL>{fmt_count(g.total)}</td>
                    <td class="num" title=defs::OLDEST>{fmt_ms(g.oldest_age_ms)}</td>
                    <td class="dlq-actions">
                        <a class="button small-button" href=show data-test="dlq-group-show" title="List this group's dead letters">"show"</a>
                        {sample_link}
                        {retry}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="grid dlq-groups" data-test="dlq-groups">
                <thead>
                    <tr>
                        <th scope="col" title=defs::GROUP>"Exception · original topic"</th>
                        <th scope="col">"Message (normalised) · sample"</th>
                        <th scope="col" class="num" title=depth_def.clone()>"Depth"</th>
                        <th scope="col" class="num" title=defs::TOTAL>"Total"</th>
                        <th scope="col" class="num" title=defs::OLDEST>"Oldest"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        {(hidden > 0).then(|| view! {
            <p class="muted small panel-foot">{format!("{hidden} smaller groups not shown: narrow the filters to see them.")}</p>
        })}
    }
    .into_any()
}

#[component]
fn RecentJobs(jobs: Vec<RetryJobView>) -> impl IntoView {
    let rows = jobs
        .into_iter()
        .map(|job| {
            let href = job_href(&job.id);
            let filter_href = crate::components::dead_letter::join_query("/dlq", &job.filter);
            view! {
                <tr data-test="dlq-job-row" data-job-id=job.id.clone() data-state=job.state.as_str()>
                    <td><a class="mono" href=href data-test="dlq-job-link" title=job.id.clone()>{sagascope_model::shorten_id(&job.id)}</a></td>
                    <td><JobStateBadge state=job.state/></td>
                    <td class="job-progress-cell"><JobProgress job=job.clone() compact=true/></td>
                    <td class="mono">{job.actor.clone()}</td>
                    <td class="reason-text" title=job.reason.clone()>{job.reason.clone()}</td>
                    <td class="mono small"><a href=filter_href title="The filter of this job">{if job.filter.is_empty() { "(everything)".to_string() } else { job.filter.clone() }}</a></td>
                    <td title=absolute(&job.created_at)><RelativeTime at=job.created_at/></td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="panel" aria-labelledby="dlq-jobs-title">
            <header class="panel-head">
                <h2 id="dlq-jobs-title">"Recent bulk retries"</h2>
            </header>
            <div class="table-wrap">
                <table class="grid dlq-jobs" data-test="dlq-jobs">
                    <thead>
                        <tr>
                            <th scope="col">"Job"</th>
                            <th scope="col">"State"</th>
                            <th scope="col" title=format!("{} · {}", defs::JOB_PRODUCED, defs::JOB_TOTAL)>"Progress"</th>
                            <th scope="col">"By"</th>
                            <th scope="col">"Reason"</th>
                            <th scope="col">"Filter"</th>
                            <th scope="col">"Created"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn DeadLetterResults(page: DeadLetterPage, params: DlqParams, info: SessionInfo) -> impl IntoView {
    let DeadLetterPage { items, next_cursor } = page;
    let first_page = params.is_first_page();
    let count = items.len();
    let operator = info.has_role("operator");
    let retry_all = operator.then(|| {
        let href = params.for_bulk().href("/dlq/bulk-retry");
        view! {
            <a class="button" href=href data-test="dlq-retry-all" title="Preview exactly what would be retried, then confirm">
                "Retry all matching…"
            </a>
        }
    });
    let pager = (!first_page || next_cursor.is_some()).then(|| {
        let newest = (!first_page).then(|| params.href("/dlq"));
        let older = next_cursor.as_deref().map(|c| params.next_page_href(c));
        view! {
            <nav class="pager" aria-label="Pages">
                {newest.map(|h| view! { <a class="button" href=h data-test="dlq-first-page">"← Newest"</a> })}
                {older.map(|h| view! { <a class="button" href=h data-test="dlq-next-page">"Older →"</a> })}
            </nav>
        }
    });
    if items.is_empty() {
        let (title, detail) = if params.is_filtered() {
            (
                "No dead letters match these filters",
                "Clear the filters, or pick a longer window.",
            )
        } else {
            (
                "No dead letters",
                "Nothing has been dead-lettered yet. Messages that land in a DLQ topic appear here with their failure.",
            )
        };
        return view! {
            <EmptyState title=title.to_string() detail=detail.to_string() action=("/dlq".to_string(), "Clear filters".to_string())/>
            {pager}
        }
        .into_any();
    }
    let rows = items
        .into_iter()
        .map(|letter| view! { <DeadLetterRow letter/> })
        .collect_view();
    view! {
        <div class="results">
            <div class="results-bar">
                <p class="results-meta muted" data-test="dlq-count">
                    {format!("{count} dead letter{} shown{}", if count == 1 { "" } else { "s" }, if first_page { ", newest first" } else { " (older page)" })}
                </p>
                {retry_all}
            </div>
            <div class="table-wrap">
                <table class="grid dlq-list" data-test="dlq-table">
                    <thead>
                        <tr>
                            <th scope="col" title=defs::TIME>"Time"</th>
                            <th scope="col">"DLQ message"</th>
                            <th scope="col" title="Where the message was consumed from when it failed">"Original"</th>
                            <th scope="col">"Exception"</th>
                            <th scope="col">"Saga"</th>
                            <th scope="col">"State"</th>
                            <th scope="col" class="num" title=defs::RETRIES>"Retries"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
            {pager}
        </div>
    }
    .into_any()
}

/// `topic [partition] @offset`.
pub fn coordinates(topic: &str, partition: i64, offset: i64) -> String {
    format!("{topic} [{partition}] @{offset}")
}

/// The original coordinates, `—` when the DLQ did not record them.
pub fn original_coordinates(letter: &DeadLetterSummary) -> String {
    match (
        &letter.original_topic,
        letter.original_partition,
        letter.original_offset,
    ) {
        (Some(topic), Some(p), Some(o)) => coordinates(topic, p, o),
        (Some(topic), p, _) => match p {
            Some(p) => format!("{topic} [{p}]"),
            None => topic.clone(),
        },
        (None, _, _) => "—".to_string(),
    }
}

#[component]
fn DeadLetterRow(letter: DeadLetterSummary) -> impl IntoView {
    let href = dead_letter_href(&letter.id);
    let dlq = coordinates(&letter.dlq_topic, letter.dlq_partition, letter.dlq_offset);
    let original = original_coordinates(&letter);
    let class_full = letter.exception_class.clone().unwrap_or_default();
    let class_short = short_class(&class_full).to_string();
    let message = letter.exception_message.clone().unwrap_or_default();
    let saga = letter.saga_id.clone().map(|id| {
        view! { <IdLink id=id.clone() href=saga_href(&id) test="dlq-saga-link"/> }
    });
    let saga_type = letter.saga_type.clone();
    let state_title = letter
        .state_reason
        .clone()
        .map(|r| format!("{} — {r}", absolute(&letter.state_changed_at)))
        .unwrap_or_else(|| absolute(&letter.state_changed_at));
    view! {
        <tr
            class={if letter.state == DeadLetterState::New { "row" } else { "row handled" }}
            data-test="dlq-row"
            data-id=letter.id.clone()
            data-state=letter.state.as_str()
            data-saga-id=letter.saga_id.clone()
            data-group=letter.failure_group.clone()
        >
            <td title=absolute(&letter.dead_lettered_at)><RelativeTime at=letter.dead_lettered_at/></td>
            <td class="mono"><a href=href data-test="dlq-detail-link" title=format!("Open dead letter {}", letter.id)>{dlq}</a></td>
            <td class="mono muted" title=original.clone()>{original.clone()}</td>
            <td class="dlq-exc-cell" title=format!("{class_full}: {message}")>
                <span class="exc-class mono">{class_short}</span>
                " "
                <span class="exc-message" data-test="dlq-message">{message.clone()}</span>
            </td>
            <td>
                {saga}
                {saga_type.map(|t| view! { <span class="muted small">{format!(" {t}")}</span> })}
                {letter.saga_id.is_none().then(|| view! { <span class="muted" title="Not linked to a saga (yet)">"—"</span> })}
            </td>
            <td title=state_title><DeadLetterStateBadge state=letter.state/></td>
            <td class="num" title=defs::RETRIES>{letter.retry_count}</td>
        </tr>
    }
    .into_any()
}
