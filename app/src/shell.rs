use leptos::prelude::*;
use leptos_meta::MetaTags;
use sagascope_model::SessionInfo;

use crate::App;

/// Applies the stored theme choice before the first paint, so a dark-theme
/// user never sees a white flash. Without a stored choice the CSS follows
/// `prefers-color-scheme`. Inline, so it carries the response's CSP nonce.
pub const THEME_BOOT_SCRIPT: &str = "try{var t=localStorage.getItem('sagascope-theme');if(t==='light'||t==='dark'){document.documentElement.setAttribute('data-theme',t);}}catch(e){}";

/// The HTML document around [`App`]; the server renders it for every page.
///
/// Inline scripts carry the request's CSP nonce (`use_nonce`; Leptos adds
/// it to its own hydration and resource scripts), which the server's
/// `Content-Security-Policy` header names. The `csrf-token` meta tag holds
/// the signed-in session's CSRF token for scripts that send mutations
/// (`x-csrf-token` header).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let csrf_token = use_context::<SessionInfo>().and_then(|s| s.csrf_token);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <script nonce=use_nonce()>{THEME_BOOT_SCRIPT}</script>
                {csrf_token.map(|token| view! { <meta name="csrf-token" content=token/> })}
                <link rel="stylesheet" id="leptos" href="/pkg/sagascope.css"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}
