//! "Store unavailable since …": a calm line under the top bar, on every
//! page, while the database does not answer. The server knows (the ingest's
//! writes, the pages' reads and a ping every 2 s feed
//! `sagascope_store::StoreAvailability`); the page renders with it, and in
//! the browser it is asked again every few seconds, so the banner comes and
//! goes by itself. Pages whose data could not be read show a calm waiting
//! state meanwhile (`states::ErrorState`), and reload once the store is back.

use leptos::prelude::*;
use sagascope_model::StoreOutage;

use crate::time::{absolute, machine};

/// The outage in progress as this server sees it (no database involved).
#[server]
pub async fn fetch_store_outage() -> Result<Option<StoreOutage>, ServerFnError> {
    Ok(use_context::<sagascope_store::Store>().and_then(|store| store.availability().outage()))
}

/// How often the browser asks while the store is down (to clear the banner
/// soon after it is back) and, in ticks of that, while it is up.
#[cfg(feature = "hydrate")]
const POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(3);
#[cfg(feature = "hydrate")]
const POLL_TICKS_WHILE_UP: u32 = 5;

#[component]
pub fn StoreUnavailableBanner() -> impl IntoView {
    let outage = Resource::new(|| (), |_| fetch_store_outage());
    #[cfg(feature = "hydrate")]
    browser::poll(outage);
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match outage.await {
                    Ok(Some(outage)) => view! { <Banner outage/> }.into_any(),
                    // No outage, or the question itself failed (signed out,
                    // server restarting): nothing to say here.
                    _ => ().into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Banner(outage: StoreOutage) -> impl IntoView {
    let since_clock = outage.since.format("%H:%M:%S UTC").to_string();
    view! {
        <div
            class="store-banner"
            role="status"
            aria-live="polite"
            data-test="store-unavailable"
            data-since=machine(&outage.since)
        >
            <span class="store-banner-icon" aria-hidden="true">"◌"</span>
            <p class="store-banner-text">
                <strong>
                    "Store unavailable since "
                    <time datetime=machine(&outage.since) title=absolute(&outage.since)>
                        {since_clock}
                    </time>
                </strong>
                " — ingest is paused and retries by itself; nothing is lost. Pages fill in again once the database answers."
            </p>
            <span class="store-banner-error mono" title=outage.last_error.clone()>
                {outage.last_error.clone()}
            </span>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;

    /// Asks again every [`POLL_EVERY`] while the store is down and every
    /// [`POLL_TICKS_WHILE_UP`] ticks otherwise. When an outage ends on a
    /// page that could not read its data, the page reloads once.
    pub(super) fn poll(outage: Resource<Result<Option<StoreOutage>, ServerFnError>>) {
        Effect::new(move |_| {
            let ticks = std::cell::Cell::new(0u32);
            let was_down = std::cell::Cell::new(false);
            let _ = set_interval_with_handle(
                move || {
                    let down = matches!(outage.get_untracked(), Some(Ok(Some(_))));
                    if was_down.get() && !down && waiting_for_data() {
                        let _ = window().location().reload();
                        return;
                    }
                    was_down.set(down);
                    ticks.set(ticks.get() + 1);
                    if down || ticks.get().is_multiple_of(POLL_TICKS_WHILE_UP) {
                        outage.refetch();
                    }
                },
                POLL_EVERY,
            );
        });
    }

    /// A panel of this page shows the store-waiting state instead of data.
    fn waiting_for_data() -> bool {
        document()
            .query_selector("[data-test=store-waiting]")
            .ok()
            .flatten()
            .is_some()
    }
}
