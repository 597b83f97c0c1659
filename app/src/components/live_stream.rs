//! Subscription to the server's live stream (`/api/v1/stream`, SSE).
//!
//! A page calls [`use_live_stream`] once; in the browser this opens an
//! `EventSource` after hydration, honours the live/paused toggle, reports
//! its state to the top-bar indicator and closes when the page goes away.
//! On the server it does nothing: the rendered page is a snapshot.

use sagascope_model::StreamMessage;

pub const STREAM_PATH: &str = "/api/v1/stream";

/// The stream of one saga only.
pub fn saga_stream_url(saga_id: &str) -> String {
    format!(
        "{STREAM_PATH}?saga_id={}",
        sagascope_model::percent_encode(saga_id)
    )
}

/// Calls `on_message` for every message of the stream at `url` while the
/// calling component is mounted and live updates are on.
pub fn use_live_stream(url: String, on_message: impl Fn(StreamMessage) + 'static) {
    use_live_stream_with_resync(url, on_message, || {});
}

/// Like [`use_live_stream`], and calls `resync` each time the stream
/// (re)opens: messages sent between the server rendering the page and the
/// stream opening (or during a reconnect) were not seen, so the page fetches
/// its data again and merges it.
pub fn use_live_stream_with_resync(
    url: String,
    on_message: impl Fn(StreamMessage) + 'static,
    resync: impl Fn() + 'static,
) {
    #[cfg(feature = "hydrate")]
    browser::subscribe(url, on_message, resync);
    #[cfg(not(feature = "hydrate"))]
    let _ = (url, on_message, resync);
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::rc::Rc;
    use std::time::Duration;

    use leptos::prelude::*;
    use sagascope_model::StreamMessage;
    use wasm_bindgen::{closure::Closure, JsCast};

    use crate::state::{ui_state, StreamStatus, UiState};

    /// An open `EventSource` and the callbacks it holds; closing on drop.
    struct Connection {
        source: web_sys::EventSource,
        _callbacks: Vec<Closure<dyn FnMut(web_sys::Event)>>,
    }

    impl Drop for Connection {
        fn drop(&mut self) {
            self.source.close();
        }
    }

    const MESSAGE_KINDS: [&str; 4] = ["saga", "event", "ingest_error", "merged"];

    pub(super) fn subscribe(
        url: String,
        on_message: impl Fn(StreamMessage) + 'static,
        resync: impl Fn() + 'static,
    ) {
        let ui = ui_state();
        let handler: Rc<dyn Fn(StreamMessage)> = Rc::new(on_message);
        let resync: Rc<dyn Fn()> = Rc::new(resync);
        let connection = StoredValue::new_local(None::<Connection>);
        // Bumped to reopen a stream the server closed.
        let retry = RwSignal::new(0u32);
        let id = ui.subscription.get_untracked() + 1;
        ui.subscription.set(id);

        Effect::new(move |_| {
            let live = ui.live.get();
            retry.track();
            // Drop (close) any previous connection first.
            connection.update_value(|c| *c = None);
            if !live {
                set_status(ui, id, StreamStatus::Paused);
                return;
            }
            set_status(ui, id, StreamStatus::Connecting);
            match open(&url, handler.clone(), resync.clone(), ui, id, retry) {
                Some(opened) => connection.update_value(|c| *c = Some(opened)),
                None => set_status(ui, id, StreamStatus::Offline),
            }
        });

        on_cleanup(move || {
            connection.try_update_value(|c| *c = None);
            if ui.subscription.try_get_untracked() == Some(id) {
                ui.stream.try_set(StreamStatus::Off);
            }
        });
    }

    fn set_status(ui: UiState, id: u64, status: StreamStatus) {
        if ui.subscription.try_get_untracked() == Some(id) {
            ui.stream.try_set(status);
        }
    }

    fn open(
        url: &str,
        handler: Rc<dyn Fn(StreamMessage)>,
        resync: Rc<dyn Fn()>,
        ui: UiState,
        id: u64,
        retry: RwSignal<u32>,
    ) -> Option<Connection> {
        let source = web_sys::EventSource::new(url).ok()?;
        let mut callbacks = Vec::new();

        let on_open = {
            let resync = resync.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                set_status(ui, id, StreamStatus::Live);
                resync();
            })
        };
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        callbacks.push(on_open);

        // The server dropped messages for this slow subscriber: refetch.
        let on_lagged = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| resync());
        let _ =
            source.add_event_listener_with_callback("lagged", on_lagged.as_ref().unchecked_ref());
        callbacks.push(on_lagged);

        let on_error = {
            let source = source.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                if source.ready_state() == web_sys::EventSource::CLOSED {
                    // The browser gave up (e.g. the server answered with an
                    // error): try again in a while.
                    set_status(ui, id, StreamStatus::Offline);
                    set_timeout(
                        move || {
                            retry.try_update(|n| *n += 1);
                        },
                        Duration::from_secs(5),
                    );
                } else {
                    set_status(ui, id, StreamStatus::Reconnecting);
                }
            })
        };
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        callbacks.push(on_error);

        for kind in MESSAGE_KINDS.into_iter().chain(["message"]) {
            let handler = handler.clone();
            let on_message =
                Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
                    let Some(data) = event
                        .dyn_ref::<web_sys::MessageEvent>()
                        .and_then(|m| m.data().as_string())
                    else {
                        return;
                    };
                    match serde_json::from_str::<StreamMessage>(&data) {
                        Ok(message) => handler(message),
                        Err(error) => {
                            leptos::logging::warn!("sagascope: ignoring stream message: {error}")
                        }
                    }
                });
            let _ =
                source.add_event_listener_with_callback(kind, on_message.as_ref().unchecked_ref());
            callbacks.push(on_message);
        }

        Some(Connection {
            source,
            _callbacks: callbacks,
        })
    }
}
