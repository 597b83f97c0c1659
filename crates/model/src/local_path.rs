//! Where a sign-in may send the browser next: the login redirect (server)
//! and the signed-in "Continue" link (page) apply the same check, so a
//! `?next=https://evil.example/` can lead nowhere but this site.

/// A same-site path to return to after login: `/…` but not `//…` (another
/// host), no backslashes or control characters, not an API path. Anything
/// else is `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next.map(str::trim) {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control)
                && !next.starts_with("/api/") =>
        {
            next.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/sagas?status=failed")),
            "/sagas?status=failed"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "/api/v1/auth/logout",
            "",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
