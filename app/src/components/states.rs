//! Designed empty, loading and error states: never a blank panel.

use leptos::prelude::*;

#[component]
pub fn EmptyState(
    title: String,
    #[prop(optional)] detail: Option<String>,
    /// A link that gets the user out of the empty state: (href, text).
    #[prop(optional)]
    action: Option<(String, String)>,
) -> impl IntoView {
    view! {
        <div class="state state-empty" data-test="empty-state" role="status">
            <div class="state-icon" aria-hidden="true">"∅"</div>
            <p class="state-title">{title}</p>
            {detail.map(|d| view! { <p class="state-detail">{d}</p> })}
            {action.map(|(href, text)| view! { <a class="button" href=href>{text}</a> })}
        </div>
    }
}

#[component]
pub fn ErrorState(title: String, detail: String) -> impl IntoView {
    view! {
        <div class="state state-error" data-test="error-state" role="alert">
            <div class="state-icon" aria-hidden="true">"⚠"</div>
            <p class="state-title">{title}</p>
            <p class="state-detail mono">{detail}</p>
        </div>
    }
}

#[component]
pub fn Loading(#[prop(optional)] what: Option<&'static str>) -> impl IntoView {
    view! {
        <div class="state state-loading" data-test="loading" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            {format!("Loading {}…", what.unwrap_or("data"))}
        </div>
    }
}
