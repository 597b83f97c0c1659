use leptos::prelude::*;
use leptos_meta::MetaTags;

use crate::App;

/// Applies the stored theme choice before the first paint, so a dark-theme
/// user never sees a white flash. Without a stored choice the CSS follows
/// `prefers-color-scheme`. Kept tiny and constant; a strict CSP needs its
/// hash (or move it to a file under `/pkg`).
pub const THEME_BOOT_SCRIPT: &str = "try{var t=localStorage.getItem('sagascope-theme');if(t==='light'||t==='dark'){document.documentElement.setAttribute('data-theme',t);}}catch(e){}";

/// The HTML document around [`App`]; the server renders it for every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <script>{THEME_BOOT_SCRIPT}</script>
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
