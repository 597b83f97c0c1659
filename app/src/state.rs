//! Page-independent UI state shared through context: the live/paused switch,
//! the state of the live stream (for the indicator in the top bar) and a
//! ticking clock for relative times and running durations.

use leptos::prelude::*;

/// What the live stream of the current page is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStatus {
    /// No page subscribed (or no JavaScript): the page is a static snapshot.
    Off,
    Connecting,
    Live,
    /// The connection dropped; the browser is reconnecting.
    Reconnecting,
    /// The user paused live updates.
    Paused,
    /// The server refused the stream; retrying after a pause.
    Offline,
}

impl StreamStatus {
    /// Text of the live indicator; tests wait for exactly `live`.
    pub fn label(self) -> &'static str {
        match self {
            StreamStatus::Off => "static",
            StreamStatus::Connecting => "connecting",
            StreamStatus::Live => "live",
            StreamStatus::Reconnecting => "reconnecting",
            StreamStatus::Paused => "paused",
            StreamStatus::Offline => "offline",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Off => "off",
            StreamStatus::Connecting => "connecting",
            StreamStatus::Live => "live",
            StreamStatus::Reconnecting => "reconnecting",
            StreamStatus::Paused => "paused",
            StreamStatus::Offline => "offline",
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            StreamStatus::Off => "This page is a snapshot; live updates need JavaScript",
            StreamStatus::Connecting => "Connecting to the live stream",
            StreamStatus::Live => "Receiving live updates",
            StreamStatus::Reconnecting => "Live stream interrupted — reconnecting",
            StreamStatus::Paused => "Live updates paused",
            StreamStatus::Offline => "Live stream unavailable — retrying",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct UiState {
    /// Live updates wanted (the top-bar toggle); persisted in localStorage.
    pub live: RwSignal<bool>,
    /// State of the current page's stream subscription.
    pub stream: RwSignal<StreamStatus>,
    /// Wall clock in ms since the epoch; ticks every second in the browser.
    pub now_ms: RwSignal<i64>,
    /// Id of the newest subscription, so a page being torn down does not
    /// reset the indicator of the page that replaced it.
    pub subscription: RwSignal<u64>,
}

pub const LIVE_STORAGE_KEY: &str = "sagascope-live";
pub const THEME_STORAGE_KEY: &str = "sagascope-theme";

pub fn ui_state() -> UiState {
    expect_context::<UiState>()
}

/// Milliseconds since the epoch: the browser's clock in wasm, the system
/// clock on the server.
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys_now()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

#[cfg(target_arch = "wasm32")]
fn js_sys_now() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0
    }
}

pub fn provide_ui_state() {
    let state = UiState {
        live: RwSignal::new(true),
        stream: RwSignal::new(StreamStatus::Off),
        now_ms: RwSignal::new(now_ms()),
        subscription: RwSignal::new(0),
    };
    provide_context(state);

    #[cfg(feature = "hydrate")]
    browser::start(state);
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::*;
    use std::time::Duration;
    use wasm_bindgen::JsCast;

    pub(super) fn start(state: UiState) {
        // Runs once, after hydration.
        Effect::new(move |_| {
            if let Some(stored) = local_storage_get(LIVE_STORAGE_KEY) {
                state.live.set(stored != "paused");
            }
            state.now_ms.set(now_ms());
            let _ = set_interval_with_handle(
                move || state.now_ms.set(now_ms()),
                Duration::from_secs(1),
            );
            let _ = window_event_listener(leptos::ev::keydown, on_key);
        });
    }

    pub fn local_storage_get(key: &str) -> Option<String> {
        window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item(key).ok().flatten())
    }

    pub fn local_storage_set(key: &str, value: &str) {
        if let Some(storage) = window().local_storage().ok().flatten() {
            let _ = storage.set_item(key, value);
        }
    }

    fn typing_in_a_field() -> bool {
        let Some(active) = document().active_element() else {
            return false;
        };
        let tag = active.tag_name().to_ascii_uppercase();
        matches!(tag.as_str(), "INPUT" | "TEXTAREA" | "SELECT")
            || active
                .dyn_ref::<web_sys::HtmlElement>()
                .is_some_and(|e| e.is_content_editable())
    }

    /// `/` focuses the global search; `j`/`k` move between the rows of a
    /// list (saga links), `enter` opens the focused one (native).
    fn on_key(event: web_sys::KeyboardEvent) {
        if event.ctrl_key() || event.meta_key() || event.alt_key() || typing_in_a_field() {
            return;
        }
        match event.key().as_str() {
            "/" => {
                if let Some(input) = document()
                    .get_element_by_id("global-search")
                    .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
                {
                    event.prevent_default();
                    let _ = input.focus();
                    input.select();
                }
            }
            "j" | "k" => {
                let Ok(links) = document().query_selector_all("[data-test=saga-link]") else {
                    return;
                };
                let count = links.length();
                if count == 0 {
                    return;
                }
                let active = document().active_element();
                let current = (0..count).find(|i| {
                    links
                        .item(*i)
                        .zip(active.as_ref())
                        .is_some_and(|(node, active)| {
                            node.dyn_ref::<web_sys::Element>() == Some(active)
                        })
                });
                let next = match (current, event.key().as_str()) {
                    (None, _) => 0,
                    (Some(i), "j") => (i + 1).min(count - 1),
                    (Some(i), _) => i.saturating_sub(1),
                };
                if let Some(link) = links
                    .item(next)
                    .and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    event.prevent_default();
                    let _ = link.focus();
                }
            }
            _ => {}
        }
    }
}

#[cfg(feature = "hydrate")]
pub use browser::{local_storage_get, local_storage_set};

/// Flips live updates on or off and remembers the choice.
pub fn toggle_live(state: UiState) {
    let live = !state.live.get_untracked();
    state.live.set(live);
    #[cfg(feature = "hydrate")]
    local_storage_set(LIVE_STORAGE_KEY, if live { "live" } else { "paused" });
}

/// Switches between light and dark and remembers the choice. Without a
/// stored choice the page follows the OS (`prefers-color-scheme`).
pub fn toggle_theme() {
    #[cfg(feature = "hydrate")]
    {
        let Some(root) = document().document_element() else {
            return;
        };
        let current = root.get_attribute("data-theme").unwrap_or_else(|| {
            let dark = window()
                .match_media("(prefers-color-scheme: dark)")
                .ok()
                .flatten()
                .is_some_and(|m| m.matches());
            if dark { "dark" } else { "light" }.to_string()
        });
        let next = if current == "dark" { "light" } else { "dark" };
        let _ = root.set_attribute("data-theme", next);
        local_storage_set(THEME_STORAGE_KEY, next);
    }
}
