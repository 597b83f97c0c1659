//! Ids: monospace, shortened in the middle, full value on hover, with a
//! copy button where the whole id matters.

use leptos::prelude::*;
use sagascope_model::{percent_encode, shorten_id};

pub fn saga_href(saga_id: &str) -> String {
    format!("/sagas/{}", percent_encode(saga_id))
}

pub fn trace_href(trace_id: &str) -> String {
    format!("/traces/{}", percent_encode(trace_id))
}

/// The learned flow of a saga type (`/types/{saga_type}`).
pub fn type_href(saga_type: &str) -> String {
    format!("/types/{}", percent_encode(saga_type))
}

/// The saga list filtered to one type (`saga_type`, see `filters.rs`).
pub fn sagas_of_type_href(saga_type: &str) -> String {
    format!("/sagas?saga_type={}", percent_encode(saga_type))
}

/// A shortened id linking somewhere, full id in `title`.
#[component]
pub fn IdLink(
    id: String,
    href: String,
    #[prop(optional)] test: Option<&'static str>,
) -> impl IntoView {
    view! {
        <a class="id mono" href=href title=id.clone() data-test=test>
            {shorten_id(&id)}
        </a>
    }
}

/// A shortened id as text, full id in `title`.
#[component]
pub fn IdText(id: String) -> impl IntoView {
    view! { <span class="id mono" title=id.clone()>{shorten_id(&id)}</span> }
}

/// Link to the trace page of `trace_id`.
#[component]
pub fn TraceLink(trace_id: String) -> impl IntoView {
    let href = trace_href(&trace_id);
    view! { <IdLink id=trace_id href=href test="trace-link"/> }
}

/// Copies `value` to the clipboard (needs JavaScript; inert without).
#[component]
pub fn CopyButton(value: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let label = format!("Copy {value}");
    let on_click = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let _ = window().navigator().clipboard().write_text(&value);
            copied.set(true);
            set_timeout(
                move || {
                    copied.try_set(false);
                },
                std::time::Duration::from_millis(1200),
            );
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &value;
    };
    view! {
        <button type="button" class="copy" title=label.clone() aria-label=label on:click=on_click>
            {move || if copied.get() { "copied" } else { "copy" }}
        </button>
    }
}
