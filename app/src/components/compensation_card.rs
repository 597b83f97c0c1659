//! The overview's "Incomplete compensation" card: how many sagas started
//! in the window read compensated while a forward step that completed has
//! no compensation event, linked to the list of them.

use leptos::prelude::*;
use sagascope_model::OverviewMetrics;

use crate::components::metric_cards::{fmt_count, Cohort};

const DEF: &str = "Incomplete compensation = sagas started in the window that read compensated while a forward step that completed has no compensation event (per the rules file's step ↔ compensation pairs, or those learned from the type's compensated sagas)";

#[component]
pub fn IncompleteCompensationCard(overview: OverviewMetrics) -> impl IntoView {
    let cohort = Cohort::of(&overview);
    let count = overview.incomplete_compensations;
    let href = format!(
        "/sagas?incomplete_compensation=true&since={}&until={}",
        cohort.since, cohort.until
    );
    let level = if count > 0 {
        "level-warning"
    } else {
        "level-ok"
    };
    view! {
        <article class=format!("ov-card {level}") data-test="incomplete-compensation-card">
            <h2 class="ov-card-title" title=DEF>"Incomplete compensation"</h2>
            <p class="ov-card-value">
                <a href=href.clone() data-test="incomplete-compensation-count" data-count=count.to_string()>
                    {fmt_count(i64::try_from(count).unwrap_or(i64::MAX))}
                </a>
            </p>
            <p class="ov-card-sub">
                {if count > 0 {
                    view! {
                        <span aria-hidden="true">"⚠ "</span>
                        <a href=href>"compensated sagas with a step left undone"</a>
                    }
                    .into_any()
                } else {
                    view! { <span class="muted">"Every compensated saga undid its completed steps."</span> }.into_any()
                }}
            </p>
        </article>
    }
    .into_any()
}
