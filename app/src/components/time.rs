//! Relative times and running durations that tick in the browser.

use leptos::prelude::*;
use sagascope_model::{format_duration_ms, Timestamp};

use crate::state::ui_state;
use crate::time::{absolute, machine, millis, relative};

/// "3 min ago", with the absolute UTC time on hover.
#[component]
pub fn RelativeTime(at: Timestamp) -> impl IntoView {
    let now = ui_state().now_ms;
    view! {
        <time class="reltime" datetime=machine(&at) title=absolute(&at)>
            {move || relative(now.get(), &at)}
        </time>
    }
    // Erased: used inside large tables and panels, whose nested view types
    // otherwise grow past rustc's depth limit in release builds.
    .into_any()
}

/// A saga's duration: final when it ended, elapsed (ticking) while running.
#[component]
pub fn SagaDuration(
    started_at: Timestamp,
    duration_ms: Option<i64>,
    finished: bool,
) -> impl IntoView {
    if finished {
        return match duration_ms {
            Some(ms) => {
                view! { <span class="duration num">{format_duration_ms(ms)}</span> }.into_any()
            }
            None => view! { <span class="duration num muted">"—"</span> }.into_any(),
        };
    }
    // Still running: count from the start, never below what the store
    // already measured.
    let now = ui_state().now_ms;
    let start = millis(&started_at);
    let floor = duration_ms.unwrap_or(0);
    view! {
        <span class="duration num running" title="Running — elapsed so far">
            {move || format_duration_ms((now.get() - start).max(floor))}
        </span>
    }
    .into_any()
}
