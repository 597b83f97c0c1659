//! `/login`: a plain HTML form posting to `POST /api/v1/auth/login`, so
//! signing in works without JavaScript (and works the same with it). The
//! server answers with a redirect: to `next` on success, back here with
//! `?error=…` on failure.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use sagascope_model::SessionInfo;

use crate::server_fns::use_session;

/// The text for an `error` code the login endpoint redirects with.
pub fn error_message(code: &str, retry_after: Option<&str>) -> String {
    match code {
        "invalid" => "Wrong user name or password.".to_string(),
        "rate_limited" => match retry_after.and_then(|s| s.parse::<u64>().ok()) {
            Some(secs) => format!(
                "Too many failed sign-ins. Try again in {}.",
                wait_text(secs)
            ),
            None => "Too many failed sign-ins. Try again later.".to_string(),
        },
        _ => "Sign-in failed. Try again.".to_string(),
    }
}

fn wait_text(secs: u64) -> String {
    if secs < 90 {
        format!("{secs} s")
    } else {
        format!("{} min", secs.div_ceil(60))
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let session = use_session();
    // Checked like the server's redirect: `next` comes from the URL, so a
    // link to `/login?next=https://evil.example/` must not lead there.
    let next = move || sagascope_model::safe_next(query.with(|q| q.get("next")).as_deref());
    let error = move || {
        query.with(|q| {
            q.get("error")
                .map(|code| error_message(&code, q.get("retry_after").as_deref()))
        })
    };

    view! {
        <Title text="Sign in"/>
        <section class="page page-login">
            <header class="page-head">
                <h1>"Sign in to sagascope"</h1>
            </header>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let info = session.await.unwrap_or_default();
                    view! { <SignedInNote info next=next()/> }
                })}
            </Suspense>
            {move || error().map(|message| view! {
                <p class="note login-error" role="alert" data-test="login-error">
                    <span aria-hidden="true">"⚠ "</span>
                    {message}
                </p>
            })}
            <form method="post" action="/api/v1/auth/login" class="filters login-form" data-test="login-form">
                <input type="hidden" name="next" value=next/>
                <label class="field">
                    <span class="field-label">"User name"</span>
                    <input
                        type="text"
                        name="name"
                        autocomplete="username"
                        autocapitalize="none"
                        spellcheck="false"
                        required
                        autofocus
                        data-test="login-name"
                    />
                </label>
                <label class="field">
                    <span class="field-label">"Password"</span>
                    <input
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        required
                        data-test="login-password"
                    />
                </label>
                <div class="field field-actions">
                    <button type="submit" class="button primary" data-test="login-submit">"Sign in"</button>
                </div>
            </form>
            <p class="muted small">
                "Accounts are made by an administrator: "
                <code>"sagascope user add NAME --role viewer|operator|admin"</code>
            </p>
        </section>
    }
    .into_any()
}

/// Already signed in, reading anonymously, or behind an SSO proxy: say so.
#[component]
fn SignedInNote(info: SessionInfo, next: String) -> impl IntoView {
    if let Some(user) = info.user {
        let text = format!("Signed in as {} ({}).", user.name, user.role);
        return view! {
            <p class="note" data-test="login-signed-in">
                {text}" "<a href=next>"Continue"</a>
            </p>
        }
        .into_any();
    }
    if info.auth_mode == "proxy" {
        return view! {
            <p class="note">"Sign-in goes through your organisation's proxy; password sign-in is off."</p>
        }
        .into_any();
    }
    if info.anonymous_viewer {
        return view! {
            <p class="note">"Reading needs no sign-in here; sign in to retry, discard or administer."</p>
        }
        .into_any();
    }
    ().into_any()
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn error_codes_read_well() {
        assert_eq!(
            error_message("invalid", None),
            "Wrong user name or password."
        );
        assert_eq!(
            error_message("rate_limited", Some("42")),
            "Too many failed sign-ins. Try again in 42 s."
        );
        assert_eq!(
            error_message("rate_limited", Some("900")),
            "Too many failed sign-ins. Try again in 15 min."
        );
        assert_eq!(
            error_message("<script>", None),
            "Sign-in failed. Try again."
        );
    }
}
