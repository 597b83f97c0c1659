//! The top bar: product, sections, global search, live toggle, theme, and
//! the signed-in user with a sign-out button.

use leptos::prelude::*;
use leptos_router::hooks::use_location;
use sagascope_model::SessionInfo;

use crate::server_fns::use_session;
use crate::state::{toggle_live, toggle_theme, ui_state};

/// Sections of the product; `None` means not built yet (shown disabled).
const SECTIONS: [(&str, Option<&str>); 7] = [
    ("Overview", Some("/")),
    ("Sagas", Some("/sagas")),
    ("DLQ", Some("/dlq")),
    ("Lag", Some("/lag")),
    ("Ingest", Some("/ingest")),
    ("Audit", Some("/audit")),
    ("API", Some("/api")),
];

fn is_active(pathname: &str, href: &str) -> bool {
    match href {
        "/" => pathname == "/",
        _ => pathname == href || pathname.starts_with(&format!("{href}/")),
    }
}

#[component]
pub fn TopBar() -> impl IntoView {
    let ui = ui_state();
    let pathname = use_location().pathname;

    let nav = SECTIONS
        .into_iter()
        .map(|(label, href)| match href {
            Some(href) => {
                let active = move || is_active(&pathname.get(), href);
                view! {
                    <li>
                        <a
                            href=href
                            class=move || if active() { "nav-link active" } else { "nav-link" }
                            aria-current=move || active().then_some("page")
                            data-test=format!("nav-{}", label.to_lowercase())
                        >
                            {label}
                        </a>
                    </li>
                }
                .into_any()
            }
            None => view! {
                <li>
                    <span class="nav-link disabled" aria-disabled="true" title=format!("{label} — coming soon")>
                        {label}
                    </span>
                </li>
            }
            .into_any(),
        })
        .collect_view();

    let stream = ui.stream;
    let live = ui.live;
    let session = use_session();

    view! {
        <header class="topbar">
            <a class="brand" href="/" aria-label="sagascope home">
                <span class="brand-mark" aria-hidden="true">"◈"</span>
                <span class="brand-name">"sagascope"</span>
            </a>
            <nav class="nav" aria-label="Sections">
                <ul>{nav}</ul>
            </nav>
            // A plain form: `/search` is a server route that redirects to the
            // one matching saga, the trace, or the filtered list.
            <form method="get" action="/search" class="global-search" role="search">
                <label class="visually-hidden" for="global-search">"Search sagas"</label>
                <input
                    id="global-search"
                    type="search"
                    name="q"
                    placeholder="Saga id, trace id or business key"
                    autocomplete="off"
                    spellcheck="false"
                    data-test="search-input"
                />
                <kbd class="kbd-hint" aria-hidden="true" title="Press / to search">"/"</kbd>
            </form>
            <div class="topbar-tools">
                <span
                    class=move || format!("live-indicator state-{}", stream.get().as_str())
                    data-test="live-indicator"
                    data-state=move || stream.get().as_str()
                    title=move || stream.get().hint()
                    aria-live="polite"
                >
                    <span class="live-dot" aria-hidden="true"></span>
                    <span class="live-text">{move || stream.get().label()}</span>
                </span>
                <button
                    type="button"
                    class="tool-button"
                    data-test="live-toggle"
                    aria-pressed=move || if live.get() { "true" } else { "false" }
                    title=move || if live.get() { "Pause live updates" } else { "Resume live updates" }
                    on:click=move |_| toggle_live(ui)
                >
                    {move || if live.get() { "❚❚ Pause" } else { "▶ Resume" }}
                </button>
                <button
                    type="button"
                    class="tool-button"
                    data-test="theme-toggle"
                    title="Switch light/dark theme"
                    aria-label="Switch light/dark theme"
                    on:click=move |_| toggle_theme()
                >
                    <span aria-hidden="true">"◐"</span>
                </button>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let info = session.await.unwrap_or_default();
                        view! { <UserMenu info/> }
                    })}
                </Suspense>
            </div>
        </header>
    }
    .into_any()
}

/// The signed-in user and role, and a sign-out form (a plain POST with the
/// CSRF token as the `csrf_token` field, so it works without JavaScript);
/// else a sign-in link.
#[component]
fn UserMenu(info: SessionInfo) -> impl IntoView {
    let Some(user) = info.user else {
        let title = if info.anonymous_viewer {
            "Reading without sign-in; sign in to change anything"
        } else {
            "Sign in"
        };
        return view! {
            <a class="tool-button" href="/login" data-test="login-link" title=title>"Sign in"</a>
        }
        .into_any();
    };
    let title = format!(
        "Signed in as {} ({}) via {}",
        user.name, user.role, user.method
    );
    let logout = (user.method == "session").then(|| {
        let token = info.csrf_token.clone().unwrap_or_default();
        view! {
            <form method="post" action="/api/v1/auth/logout" class="logout-form">
                <input type="hidden" name="csrf_token" value=token/>
                <button type="submit" class="tool-button" data-test="logout">"Sign out"</button>
            </form>
        }
    });
    view! {
        <span
            class="current-user"
            data-test="current-user"
            data-user=user.name.clone()
            data-role=user.role.clone()
            title=title
        >
            <span class="mono">{user.name.clone()}</span>
            <span class="muted small">{format!(" · {}", user.role)}</span>
        </span>
        {logout}
    }
    .into_any()
}
