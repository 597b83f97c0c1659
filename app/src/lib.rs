//! The browser UI of sagascope: Leptos components, pages and server
//! functions. Compiled twice: with `ssr` into the server (renders every page
//! to HTML, answers the server functions from the store) and with `hydrate`
//! into the wasm bundle (makes the same pages live).
//!
//! Every page works without JavaScript: data is rendered on the server,
//! filters are plain GET forms whose fields live in the query string. With
//! JavaScript, pages subscribe to `/api/v1/stream` (SSE) and update in place.

pub mod components;
pub mod filters;
pub mod pages;
pub mod server_fns;
mod shell;
pub mod state;
pub mod time;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

pub use shell::shell;

use components::store_unavailable_banner::StoreUnavailableBanner;
use components::top_bar::TopBar;
use pages::{
    api_reference::ApiReferencePage, audit::AuditPage, dlq_bulk_retry::DlqBulkRetryPage,
    dlq_job::DlqJobPage, dlq_list::DlqListPage, dlq_message::DlqMessagePage,
    ingest_errors::IngestErrorsPage, lag::LagPage, login::LoginPage, not_found::NotFoundPage,
    overview::OverviewPage, saga_detail::SagaDetailPage, saga_list::SagaListPage,
    saga_type::SagaTypePage, trace::TracePage,
};

/// The whole application: top bar and routed pages.
///
/// Routes render with [`SsrMode::Async`]: the server waits for the data and
/// sends complete HTML, so every page is readable without JavaScript (the
/// default out-of-order streaming needs a script to swap data in) and an
/// unknown saga can answer with status 404.
/// The document title of a page. Titles carry ids from URLs and from
/// Kafka (saga, trace, dead-letter and job ids). leptos_meta writes the
/// server-rendered `<title>` text into the HTML as it is, so on the server
/// it is escaped here (an id `</title><meta http-equiv=refresh …>` once
/// redirected the page); in the browser the text is set through the DOM,
/// where it is never markup, and escaping would show `&lt;` literally.
pub fn page_title(text: String) -> String {
    let title = if text.is_empty() {
        "sagascope".to_string()
    } else {
        format!("{text} · sagascope")
    };
    if cfg!(feature = "ssr") {
        escape_html_text(&title)
    } else {
        title
    }
}

/// `&`, `<`, `>`, `"` and `'` as character references.
pub fn escape_html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    state::provide_ui_state();
    server_fns::provide_session();

    view! {
        <Title formatter=page_title/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <TopBar/>
            <StoreUnavailableBanner/>
            <main id="main" class="main">
                <Routes fallback=NotFoundPage>
                    <Route path=path!("/") view=OverviewPage ssr=SsrMode::Async/>
                    <Route path=path!("/sagas") view=SagaListPage ssr=SsrMode::Async/>
                    <Route path=path!("/sagas/:saga_id") view=SagaDetailPage ssr=SsrMode::Async/>
                    <Route path=path!("/types/:saga_type") view=SagaTypePage ssr=SsrMode::Async/>
                    <Route path=path!("/traces/:trace_id") view=TracePage ssr=SsrMode::Async/>
                    <Route path=path!("/dlq") view=DlqListPage ssr=SsrMode::Async/>
                    <Route path=path!("/dlq/messages/:topic/:partition/:offset") view=DlqMessagePage ssr=SsrMode::Async/>
                    <Route path=path!("/dlq/bulk-retry") view=DlqBulkRetryPage ssr=SsrMode::Async/>
                    <Route path=path!("/dlq/jobs/:job_id") view=DlqJobPage ssr=SsrMode::Async/>
                    <Route path=path!("/lag") view=LagPage ssr=SsrMode::Async/>
                    <Route path=path!("/ingest") view=IngestErrorsPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/api") view=ApiReferencePage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
