use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::states::EmptyState;
use crate::server_fns::set_page_status;

/// Unknown URL.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    set_page_status(404);
    view! {
        <Title text="Not found"/>
        <section class="page">
            <EmptyState
                title="There is no page here".to_string()
                detail="The address may be mistyped or the page may come in a later version.".to_string()
                action=("/sagas".to_string(), "Go to sagas".to_string())
            />
        </section>
    }
    .into_any()
}
