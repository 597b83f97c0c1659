//! `/audit`: the append-only audit log, newest first, filtered by actor and
//! action (a plain GET form: every view is a shareable URL), keyset-paged.
//! Operators and admins only; the server function refuses everyone else.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Form, hooks::use_query_map};
use sagascope_model::{AuditEntryView, AuditFilter, AuditPage};

use crate::components::states::{EmptyState, ErrorState, Loading};
use crate::components::time::RelativeTime;
use crate::server_fns::{error_text, fetch_audit};
use crate::time::absolute;

/// Actions sagascope records, for the action filter's suggestions.
const KNOWN_ACTIONS: [&str; 12] = [
    "auth.",
    "auth.login",
    "auth.logout",
    "token.create",
    "user.",
    "user.add",
    "user.disable",
    "user.set_password",
    "request.denied",
    "dlq.",
    "dlq.retry",
    "dlq.discard",
];

fn filter_from_query(query: &leptos_router::params::ParamsMap) -> AuditFilter {
    AuditFilter {
        actor: query.get("actor"),
        action: query.get("action"),
        since: query.get("since"),
        until: query.get("until"),
        limit: query.get("limit"),
        cursor: query.get("cursor"),
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| query.with(filter_from_query));
    let page = Resource::new(move || filter.get(), fetch_audit);

    view! {
        <Title text="Audit"/>
        <section class="page page-audit">
            <header class="page-head">
                <h1>"Audit log"</h1>
                <p class="muted">
                    "Who did what, when, why, and the result. Append-only; newest first."
                </p>
            </header>
            {move || view! { <AuditFilterForm filter=filter.get()/> }}
            <Transition fallback=|| view! { <Loading what="the audit log"/> }>
                {move || {
                    let filter = filter.get();
                    Suspend::new(async move {
                        match page.await {
                            Ok(page) => view! { <AuditResults page filter/> }.into_any(),
                            Err(error) => view! {
                                <ErrorState title="Could not load the audit log".to_string() detail=error_text(&error)/>
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

#[component]
fn AuditFilterForm(filter: AuditFilter) -> impl IntoView {
    let filtered = filter.actor.is_some() || filter.action.is_some();
    let suggestions = KNOWN_ACTIONS
        .into_iter()
        .map(|a| view! { <option value=a></option> })
        .collect_view();
    view! {
        <Form method="get" action="/audit" attr:class="filters" attr:data-test="audit-filter-form">
            <label class="field">
                <span class="field-label">"Actor"</span>
                <input
                    type="text"
                    name="actor"
                    placeholder="user name"
                    spellcheck="false"
                    data-test="audit-filter-actor"
                    value=filter.actor.clone().unwrap_or_default()
                />
            </label>
            <label class="field">
                <span class="field-label">"Action"</span>
                <input
                    type="text"
                    name="action"
                    list="audit-actions"
                    placeholder="auth.login, dlq.*"
                    spellcheck="false"
                    data-test="audit-filter-action"
                    value=filter.action.clone().unwrap_or_default()
                />
                <datalist id="audit-actions">{suggestions}</datalist>
            </label>
            {filter.since.clone().map(|v| view! { <input type="hidden" name="since" value=v/> })}
            {filter.until.clone().map(|v| view! { <input type="hidden" name="until" value=v/> })}
            {filter.limit.clone().map(|v| view! { <input type="hidden" name="limit" value=v/> })}
            <div class="field field-actions">
                <button type="submit" class="button primary" data-test="audit-filter-apply">"Apply"</button>
                {filtered.then(|| view! { <a class="button" href="/audit" data-test="audit-filter-clear">"Clear"</a> })}
            </div>
        </Form>
    }
}

#[component]
fn AuditResults(page: AuditPage, filter: AuditFilter) -> impl IntoView {
    let AuditPage { items, next_cursor } = page;
    let later_page = filter.cursor.is_some();
    let base = filter.to_query_string();
    let href = |cursor: Option<&str>| {
        let mut parts: Vec<String> = Vec::new();
        if !base.is_empty() {
            parts.push(base.clone());
        }
        if let Some(cursor) = cursor {
            parts.push(format!(
                "cursor={}",
                sagascope_model::percent_encode(cursor)
            ));
        }
        if parts.is_empty() {
            "/audit".to_string()
        } else {
            format!("/audit?{}", parts.join("&"))
        }
    };
    let pager = (later_page || next_cursor.is_some()).then(|| {
        let newest = later_page.then(|| href(None));
        let older = next_cursor.as_deref().map(|c| href(Some(c)));
        view! {
            <nav class="pager" aria-label="Pages">
                {newest.map(|h| view! { <a class="button" href=h data-test="audit-newest">"← Newest"</a> })}
                {older.map(|h| view! { <a class="button" href=h data-test="audit-older">"Older →"</a> })}
            </nav>
        }
    });
    let count = items.len();
    if items.is_empty() {
        let filtered = filter.actor.is_some() || filter.action.is_some();
        return view! {
            <EmptyState
                title=if filtered { "No audit entries match these filters".to_string() } else { "The audit log is empty".to_string() }
                detail="Sign-ins, sign-outs, API tokens, refused requests and (later) retries and discards are recorded here.".to_string()
                action=("/audit".to_string(), "Clear filters".to_string())
            />
            {pager}
        }
        .into_any();
    }
    let rows = items
        .into_iter()
        .map(|entry| view! { <AuditRow entry/> })
        .collect_view();
    view! {
        <div class="results">
            <p class="results-meta muted">
                {format!("{count} entr{}{}", if count == 1 { "y" } else { "ies" }, if later_page { " (older page)" } else { "" })}
            </p>
            <div class="table-wrap">
                <table class="grid audit" data-test="audit-table">
                    <thead>
                        <tr>
                            <th scope="col">"Time"</th>
                            <th scope="col">"Actor"</th>
                            <th scope="col">"Via"</th>
                            <th scope="col">"Action"</th>
                            <th scope="col">"Target"</th>
                            <th scope="col">"Reason"</th>
                            <th scope="col">"Result"</th>
                            <th scope="col">"Details"</th>
                            <th scope="col">"Client"</th>
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

/// Badge class and label of an audit result; colour plus text.
fn result_badge(result: &str) -> (&'static str, &'static str) {
    match result {
        "ok" => ("badge status-completed", "✓ ok"),
        "denied" => ("badge status-failed", "⛔ denied"),
        "failed" => ("badge status-compensation_failed", "⚠ failed"),
        _ => ("badge", "?"),
    }
}

#[component]
fn AuditRow(entry: AuditEntryView) -> impl IntoView {
    let (badge, label) = result_badge(&entry.result);
    let detail = match &entry.detail {
        serde_json::Value::Object(map) if map.is_empty() => String::new(),
        other => other.to_string(),
    };
    let role = entry
        .actor_role
        .clone()
        .map(|r| format!(" · {r}"))
        .unwrap_or_default();
    view! {
        <tr
            class="row"
            data-test="audit-row"
            data-id=entry.id.to_string()
            data-actor=entry.actor.clone()
            data-action=entry.action.clone()
            data-result=entry.result.clone()
        >
            <td title=absolute(&entry.at)><RelativeTime at=entry.at/></td>
            <td><span class="mono">{entry.actor.clone()}</span><span class="muted small">{role}</span></td>
            <td class="muted">{entry.auth_method.clone()}</td>
            <td class="mono">{entry.action.clone()}</td>
            <td class="mono">{entry.target.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="reason" title=entry.reason.clone().unwrap_or_default()>{entry.reason.clone().unwrap_or_else(|| "—".into())}</td>
            <td><span class=badge>{label}</span></td>
            <td><code class="bytes" title=detail.clone()>{detail.clone()}</code></td>
            <td class="mono muted">{entry.client_ip.clone().unwrap_or_else(|| "—".into())}</td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::result_badge;

    #[test]
    fn results_have_text_and_colour() {
        assert_eq!(result_badge("ok").1, "✓ ok");
        assert!(result_badge("denied").0.contains("status-failed"));
        assert_eq!(result_badge("weird").1, "?");
    }
}
