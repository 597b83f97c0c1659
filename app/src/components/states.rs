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

/// A failure to load. A store outage (the top bar's banner says since
/// when) is no error of this page: it gets [`StoreWaitingState`] instead.
#[component]
pub fn ErrorState(title: String, detail: String) -> impl IntoView {
    if sagascope_model::is_store_unavailable_message(&detail) {
        return view! { <StoreWaitingState/> }.into_any();
    }
    view! {
        <div class="state state-error" data-test="error-state" role="alert">
            <div class="state-icon" aria-hidden="true">"⚠"</div>
            <p class="state-title">{title}</p>
            <p class="state-detail mono">{detail}</p>
        </div>
    }
    .into_any()
}

/// In place of a page's data while the store does not answer: calm, since
/// nothing is wrong with the page and nothing is lost.
#[component]
pub fn StoreWaitingState() -> impl IntoView {
    view! {
        <div class="state state-empty state-waiting" data-test="store-waiting" role="status">
            <div class="state-icon" aria-hidden="true">"◌"</div>
            <p class="state-title">"Waiting for the store"</p>
            <p class="state-detail">
                "The database does not answer right now; this page reloads by itself once it does."
            </p>
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
