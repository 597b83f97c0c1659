//! `/lag`: outbox relay lag and consumer lag per topic (figures and charts
//! of p50, p95 and max over the window) and the watched consumer groups.
//! The same figures as the overview's lag section, with larger charts.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::metric_cards::{
    defs, use_live_refresh, GroupLagTable, TopicLagCharts, TopicLagTable, WindowCaption,
    WindowPicker,
};
use crate::components::states::{ErrorState, Loading};
use crate::server_fns::{error_text, fetch_overview};

#[component]
pub fn LagPage() -> impl IntoView {
    let query = use_query_map();
    let window = Memo::new(move |_| query.with(|q| q.get("window").unwrap_or_default()));
    let refresh = use_live_refresh();
    let overview = Resource::new(
        move || (window.get(), refresh.get()),
        |(window, _)| fetch_overview(window),
    );

    view! {
        <Title text="Lag"/>
        <section class="page page-lag">
            <header class="page-head ov-head">
                <h1>"Lag"</h1>
                <WindowPicker base="/lag" current=window/>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        overview.await.ok().map(|overview| view! { <WindowCaption overview events=true/> })
                    })}
                </Transition>
            </header>
            <Transition fallback=|| view! { <Loading what="lag figures"/> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(overview) => {
                            let point_seconds = overview.point_seconds;
                            view! {
                                <section class="ov-section" aria-labelledby="lag-title">
                                    <header class="ov-section-head">
                                        <h2 id="lag-title">"Outbox and consumer lag per topic"</h2>
                                        <p class="muted small">
                                            <span title=defs::RELAY_LAG>"Relay: Kafka timestamp − outbox created_at"</span>
                                            " · "
                                            <span title=defs::CONSUMER_LAG>"consumer: ingested − Kafka timestamp"</span>
                                        </p>
                                    </header>
                                    <TopicLagTable topics=overview.topics.clone() point_seconds/>
                                    <TopicLagCharts topics=overview.topics.clone() point_seconds/>
                                </section>
                                <section class="ov-section" id="group-lag" aria-labelledby="groups-title">
                                    <header class="ov-section-head">
                                        <h2 id="groups-title" title=defs::GROUP_LAG>"Consumer-group lag"</h2>
                                        <p class="muted small">"High watermark − committed offset, per partition, of the groups in --watch-groups."</p>
                                    </header>
                                    <GroupLagTable groups=overview.groups/>
                                </section>
                            }
                            .into_any()
                        }
                        Err(error) => view! {
                            <ErrorState title="Could not load lag figures".to_string() detail=error_text(&error)/>
                            <p class="actions"><a class="button" href="/lag">"Back to the last hour"</a></p>
                        }
                        .into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}
