//! Strict security response headers, including the Content-Security-Policy.
//!
//! # CSP and Leptos
//!
//! The UI is Leptos 0.8 SSR + hydration. Its `<HydrationScripts/>` emits an
//! inline `<script type="module">` that imports `/pkg/*.js` and
//! instantiates `/pkg/*.wasm`, and SSR streaming emits further inline
//! `<script>` chunks (resolved resources, out-of-order `<Suspense>`). So:
//! - `script-src 'self'` for the bundle, plus `'wasm-unsafe-eval'` so the
//!   page may compile WebAssembly (it permits no JS `eval`).
//! - Inline scripts are allowed by a per-response nonce: Leptos adds
//!   `nonce="…"` to all of its inline scripts when a
//!   `leptos::nonce::Nonce` is in context (leptos_axum's `nonce` feature
//!   provides a random one per request; `Nonce::from_value` lets the server
//!   supply ours via the additional context, which runs after leptos_axum's
//!   own, so the header and the markup agree). App-authored inline scripts
//!   need `nonce=use_nonce()` too.
//! - Without a nonce the only way to run those scripts is
//!   `'unsafe-inline'`, which also lets injected scripts run; that mode
//!   exists for a shell that cannot yet pass a nonce and should not be the
//!   production setting.
//! - Styles come from the `'self'` stylesheet. The views set `style="…"`
//!   attributes (bar widths, positions), which CSP treats as inline style;
//!   `style-src-attr 'unsafe-inline'` allows exactly those and still
//!   forbids injected `<style>` elements. Style attributes cannot run code.
//! - Everything else is `'self'` (`default-src`, `connect-src` for fetches,
//!   server functions and same-origin websockets), with `data:` images for
//!   inline SVG icons, and no plugins, no `<base>` rewriting, forms only to
//!   ourselves and no framing by anyone.

use rand::rngs::OsRng;
use rand::TryRngCore;

/// Random bytes per generated nonce (128 bits, as CSP recommends).
const NONCE_BYTES: usize = 16;

/// A CSP nonce: the value of `nonce="…"` attributes and of `'nonce-…'` in
/// the policy. Guaranteed to be a valid CSP `base64-value`, so it cannot
/// inject anything into the header or the markup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CspNonce(String);

impl CspNonce {
    /// A fresh nonce from 16 bytes of OS randomness, hex-encoded (hex is a
    /// subset of the base64 alphabet CSP requires). Use one per response.
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn generate() -> Self {
        let mut bytes = [0u8; NONCE_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .expect("operating system RNG failed");
        CspNonce(hex::encode(bytes))
    }

    /// Accepts an existing nonce (e.g. the one Leptos generated) if it is a
    /// CSP `base64-value` (`A-Z a-z 0-9 + / - _`, then at most two `=`) of
    /// 16 to 256 characters, so short enough for a header and long enough
    /// to carry real randomness.
    pub fn parse(value: &str) -> Option<Self> {
        let body = value.trim_end_matches('=');
        let padding = value.len() - body.len();
        let valid = (16..=256).contains(&value.len())
            && padding <= 2
            && !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(&b));
        valid.then(|| CspNonce(value.to_owned()))
    }

    /// The nonce text, for `nonce="…"` attributes.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The Content-Security-Policy value. With a nonce, inline scripts must
/// carry it; without, inline scripts are allowed wholesale
/// (`'unsafe-inline'`; see the module docs for why that is the weaker
/// mode).
pub fn content_security_policy(nonce: Option<&CspNonce>) -> String {
    let inline_scripts = match nonce {
        Some(nonce) => format!("'nonce-{}'", nonce.as_str()),
        None => "'unsafe-inline'".to_owned(),
    };
    [
        "default-src 'self'".to_owned(),
        format!("script-src 'self' {inline_scripts} 'wasm-unsafe-eval'"),
        "style-src 'self'".to_owned(),
        "style-src-attr 'unsafe-inline'".to_owned(),
        "img-src 'self' data:".to_owned(),
        "font-src 'self'".to_owned(),
        "connect-src 'self'".to_owned(),
        "object-src 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'self'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]
    .join("; ")
}

/// Permissions-Policy: the dashboard needs no powerful browser feature, so
/// all commonly abused ones are switched off for the page and any frame.
const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), \
     magnetometer=(), microphone=(), payment=(), usb=()";

/// HSTS for deployments behind TLS: one year, this host only (not
/// `includeSubDomains`, which would bind unrelated hosts of the operator's
/// domain).
const HSTS: &str = "max-age=31536000";

/// The security headers for every HTML response (and harmless on the
/// others), as lowercase (name, value) pairs ready for
/// `HeaderName::from_static`. `tls` adds `strict-transport-security`; set
/// it when browsers reach the server over HTTPS (also behind a proxy).
pub fn security_headers(nonce: Option<&CspNonce>, tls: bool) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("content-security-policy", content_security_policy(nonce)),
        // Never guess a content type: an uploaded or echoed payload
        // served as text/plain cannot become script.
        ("x-content-type-options", "nosniff".to_owned()),
        // Full URLs (saga ids, filters) only to ourselves; the CSRF
        // Referer fallback still works for same-origin requests.
        ("referrer-policy", "same-origin".to_owned()),
        // Legacy twin of `frame-ancestors 'none'` for old browsers.
        ("x-frame-options", "DENY".to_owned()),
        // Pages opened from ours (or opening ours) get no window handle.
        ("cross-origin-opener-policy", "same-origin".to_owned()),
        // Other sites cannot embed our responses (e.g. JSON via <script>).
        ("cross-origin-resource-policy", "same-origin".to_owned()),
        ("permissions-policy", PERMISSIONS_POLICY.to_owned()),
    ];
    if tls {
        headers.push(("strict-transport-security", HSTS.to_owned()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_with_nonce() {
        let nonce = CspNonce::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            content_security_policy(Some(&nonce)),
            "default-src 'self'; \
             script-src 'self' 'nonce-0123456789abcdef0123456789abcdef' 'wasm-unsafe-eval'; \
             style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
             font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'"
        );
    }

    #[test]
    fn csp_without_nonce() {
        assert_eq!(
            content_security_policy(None),
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
             style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
             font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'"
        );
    }

    #[test]
    fn never_unsafe_eval_or_wildcards() {
        let nonce = CspNonce::generate();
        for csp in [
            content_security_policy(None),
            content_security_policy(Some(&nonce)),
        ] {
            assert!(!csp.contains("'unsafe-eval'"), "{csp}");
            assert!(!csp.contains('*'), "{csp}");
            assert!(!csp.contains("http:") && !csp.contains("https:"), "{csp}");
        }
        assert!(
            !content_security_policy(Some(&nonce)).contains("script-src 'self' 'unsafe-inline'")
        );
    }

    #[test]
    fn nonces() {
        let a = CspNonce::generate();
        let b = CspNonce::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert_eq!(CspNonce::parse(a.as_str()), Some(a));
        // A Leptos-style base64url nonce (16 bytes, no padding) is accepted.
        assert!(CspNonce::parse("q1w2e3r4t5y6u7i8o9p0-_").is_some());
        assert!(CspNonce::parse("q1w2e3r4t5y6u7i8o9p0+/==").is_some());
        for bad in [
            "",
            "short",
            "q1w2e3r4t5y6u7i8o9p0'; script-src *",
            "q1w2e3r4t5y6u7i8o9p0 x",
            "q1w2e3r4t5y6u7i8o9p0===",
            "q1w2e3r4t5=y6u7i8o9p0",
            "================",
            &"a".repeat(257),
        ] {
            assert_eq!(CspNonce::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn header_set() {
        let headers = security_headers(None, false);
        let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "content-security-policy",
                "x-content-type-options",
                "referrer-policy",
                "x-frame-options",
                "cross-origin-opener-policy",
                "cross-origin-resource-policy",
                "permissions-policy",
            ]
        );
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(
            value("content-security-policy"),
            content_security_policy(None)
        );
        assert_eq!(value("x-content-type-options"), "nosniff");
        assert_eq!(value("referrer-policy"), "same-origin");
        assert_eq!(value("x-frame-options"), "DENY");
        assert_eq!(value("cross-origin-opener-policy"), "same-origin");
        assert_eq!(
            value("permissions-policy"),
            "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), \
             microphone=(), payment=(), usb=()"
        );
        for (name, _) in &headers {
            assert_eq!(*name, name.to_ascii_lowercase());
        }
        let nonce = CspNonce::generate();
        let tls = security_headers(Some(&nonce), true);
        assert_eq!(tls.len(), 8);
        assert_eq!(tls[0].1, content_security_policy(Some(&nonce)));
        assert_eq!(
            tls.last().unwrap(),
            &("strict-transport-security", "max-age=31536000".to_owned())
        );
    }
}
