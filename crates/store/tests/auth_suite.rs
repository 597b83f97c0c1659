//! Users, sessions, API tokens and the audit log, against a fresh Postgres
//! database and a fresh SQLite file (the same macro as `store_suite.rs`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use sagascope_auth::{hash_token, new_token, NewApiToken, NewSession, NewUser, Role, TokenKind};
use sagascope_model::{AuditFilter, AuditQuery};
use sagascope_store::{NewAuditEntry, Store};

sagascope_store::on_both_stores!(
    users_are_added_once_updated_and_disabled,
    sessions_expire_and_end,
    api_tokens_are_capped_revoked_and_expire,
    audit_log_filters_and_pages_newest_first,
    audit_entries_go_by_age_in_batches,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// A PHC-shaped string: the store does not care what it holds, and real
/// argon2 hashing is tested in the auth crate.
fn user(name: &str, role: Role) -> NewUser {
    NewUser {
        name: name.into(),
        role,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$salt-of-{name}$hash"),
    }
}

async fn users_are_added_once_updated_and_disabled(store: &Store) {
    assert!(store
        .add_user(&user("alice", Role::Operator), t0())
        .await
        .unwrap());
    assert!(!store
        .add_user(&user("alice", Role::Admin), t0())
        .await
        .unwrap());
    assert!(store
        .add_user(&user("bob", Role::Viewer), t0())
        .await
        .unwrap());

    let alice = store.find_user("alice").await.unwrap().unwrap();
    assert_eq!(alice.role, Role::Operator, "the second add changed nothing");
    assert_eq!(alice.created_at, t0());
    assert!(!alice.disabled);
    assert!(alice.password_hash.contains("salt-of-alice"));
    assert_eq!(store.find_user("carol").await.unwrap(), None);

    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"]);

    // Role change keeps the password; a password change ends sessions.
    let (_, session) = NewSession::issue("alice", t0(), Duration::hours(1));
    store.create_session(&session).await.unwrap();
    assert!(store
        .update_user("alice", Some(Role::Admin), None)
        .await
        .unwrap());
    let found = store
        .find_session(&session.token_hash, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.role, Role::Admin, "sessions see the current role");
    assert!(store
        .update_user("alice", None, Some("$argon2id$new"))
        .await
        .unwrap());
    let alice = store.find_user("alice").await.unwrap().unwrap();
    assert_eq!(
        (alice.role, alice.password_hash.as_str()),
        (Role::Admin, "$argon2id$new")
    );
    assert_eq!(
        store.find_session(&session.token_hash, t0()).await.unwrap(),
        None
    );
    assert!(!store
        .update_user("carol", Some(Role::Admin), None)
        .await
        .unwrap());

    // Disabling ends sessions and stops tokens; enabling brings tokens back.
    let (_, session) = NewSession::issue("bob", t0(), Duration::hours(1));
    store.create_session(&session).await.unwrap();
    let (_, token) = NewApiToken::issue("ci", "bob", Role::Viewer, t0(), None);
    store.create_api_token(&token).await.unwrap();
    assert!(store.set_user_disabled("bob", true).await.unwrap());
    assert!(store.find_user("bob").await.unwrap().unwrap().disabled);
    assert_eq!(
        store.find_session(&session.token_hash, t0()).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_api_token(&token.token_hash, t0()).await.unwrap(),
        None
    );
    assert!(store.set_user_disabled("bob", false).await.unwrap());
    assert!(store
        .find_api_token(&token.token_hash, t0())
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.find_session(&session.token_hash, t0()).await.unwrap(),
        None,
        "a disabled user's sessions are gone for good"
    );
    assert!(!store.set_user_disabled("carol", true).await.unwrap());
    assert_eq!(
        store.find_user("bob").await.unwrap().unwrap().view().role,
        "viewer"
    );
}

async fn sessions_expire_and_end(store: &Store) {
    store
        .add_user(&user("alice", Role::Viewer), t0())
        .await
        .unwrap();
    let (plaintext, session) = NewSession::issue("alice", t0(), Duration::hours(12));
    assert_eq!(hash_token(&plaintext), session.token_hash);
    store.create_session(&session).await.unwrap();

    let found = store
        .find_session(&session.token_hash, t0() + Duration::minutes(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_name, "alice");
    assert_eq!(found.role, Role::Viewer);
    assert_eq!(found.expires_at, t0() + Duration::hours(12));
    assert_eq!(found.last_seen_at, t0());

    store
        .touch_session(&session.token_hash, t0() + Duration::minutes(5))
        .await
        .unwrap();
    let found = store
        .find_session(&session.token_hash, t0() + Duration::minutes(6))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.last_seen_at, t0() + Duration::minutes(5));

    // Never the plaintext, never an unknown hash.
    assert_eq!(store.find_session(&plaintext, t0()).await.unwrap(), None);
    let (_, other) = new_token(TokenKind::Session);
    assert_eq!(store.find_session(&other, t0()).await.unwrap(), None);

    // Expired: not found even before the purge.
    let at_expiry = t0() + Duration::hours(12);
    assert_eq!(
        store
            .find_session(&session.token_hash, at_expiry)
            .await
            .unwrap(),
        None
    );
    let (_, fresh) = NewSession::issue("alice", at_expiry, Duration::hours(12));
    store.create_session(&fresh).await.unwrap();
    assert_eq!(store.purge_expired_sessions(at_expiry).await.unwrap(), 1);
    assert_eq!(store.purge_expired_sessions(at_expiry).await.unwrap(), 0);
    assert!(store
        .find_session(&fresh.token_hash, at_expiry)
        .await
        .unwrap()
        .is_some());

    // Logout.
    assert!(store.delete_session(&fresh.token_hash).await.unwrap());
    assert!(!store.delete_session(&fresh.token_hash).await.unwrap());
    assert_eq!(
        store
            .find_session(&fresh.token_hash, at_expiry)
            .await
            .unwrap(),
        None
    );

    // A session needs an existing user.
    let (_, orphan) = NewSession::issue("nobody", t0(), Duration::hours(1));
    assert!(store.create_session(&orphan).await.is_err());
}

async fn api_tokens_are_capped_revoked_and_expire(store: &Store) {
    store
        .add_user(&user("ops", Role::Operator), t0())
        .await
        .unwrap();
    let (plaintext, token) = NewApiToken::issue("ci-retry-bot", "ops", Role::Operator, t0(), None);
    assert!(plaintext.starts_with("ssk_"));
    store.create_api_token(&token).await.unwrap();
    let found = store
        .find_api_token(&token.token_hash, t0() + Duration::days(400))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.label, "ci-retry-bot");
    assert_eq!(found.user_name, "ops");
    assert_eq!(found.role, Role::Operator);
    assert_eq!(found.expires_at, None);

    // Demoting the user caps the token.
    store
        .update_user("ops", Some(Role::Viewer), None)
        .await
        .unwrap();
    let found = store
        .find_api_token(&token.token_hash, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.role, Role::Viewer);

    // Expiry.
    let until = t0() + Duration::days(1);
    let (_, expiring) = NewApiToken::issue("short", "ops", Role::Viewer, t0(), Some(until));
    store.create_api_token(&expiring).await.unwrap();
    assert!(store
        .find_api_token(&expiring.token_hash, until - Duration::seconds(1))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .find_api_token(&expiring.token_hash, until)
            .await
            .unwrap(),
        None
    );

    // Revocation is once and for good.
    assert!(store
        .revoke_api_token(&token.token_hash, t0())
        .await
        .unwrap());
    assert!(!store
        .revoke_api_token(&token.token_hash, t0())
        .await
        .unwrap());
    assert_eq!(
        store.find_api_token(&token.token_hash, t0()).await.unwrap(),
        None
    );
    assert_eq!(store.find_api_token(&plaintext, t0()).await.unwrap(), None);
}

fn entry(minute: i64, actor: &str, action: &str, result: &str) -> NewAuditEntry {
    NewAuditEntry {
        at: t0() + Duration::minutes(minute),
        actor: actor.into(),
        actor_role: Some("operator".into()),
        auth_method: "session".into(),
        action: action.into(),
        target: Some(format!("target-{minute}")),
        reason: (action == "dlq.retry").then(|| "customer asked <b>twice</b>".into()),
        detail: serde_json::json!({ "minute": minute, "note": "it's \"quoted\"" }),
        result: result.into(),
        client_ip: Some("127.0.0.1".into()),
    }
}

async fn audit_entries_go_by_age_in_batches(store: &Store) {
    for minute in 0..5 {
        store
            .append_audit(&entry(minute, "alice", "auth.login", "ok"))
            .await
            .unwrap();
    }
    let cutoff = t0() + Duration::minutes(3);
    // Oldest first, at most the batch size, never the newer ones.
    assert_eq!(
        store.delete_audit_entries_before(cutoff, 2).await.unwrap(),
        2
    );
    assert_eq!(
        store.delete_audit_entries_before(cutoff, 2).await.unwrap(),
        1
    );
    assert_eq!(
        store.delete_audit_entries_before(cutoff, 2).await.unwrap(),
        0
    );
    let left = store.list_audit(&AuditQuery::default()).await.unwrap();
    let minutes: Vec<_> = left.items.iter().map(|e| e.at).collect();
    assert_eq!(
        minutes,
        vec![t0() + Duration::minutes(4), t0() + Duration::minutes(3)]
    );
}

async fn audit_log_filters_and_pages_newest_first(store: &Store) {
    let mut ids = Vec::new();
    for (minute, actor, action, result) in [
        (0, "alice", "auth.login", "ok"),
        (1, "mallory", "auth.login", "denied"),
        (2, "alice", "dlq.retry", "ok"),
        (2, "bob", "auth.logout", "ok"),
        (3, "alice", "token.create", "ok"),
        (4, "bob", "auth.login", "ok"),
    ] {
        ids.push(
            store
                .append_audit(&entry(minute, actor, action, result))
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let all = store.list_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.next_cursor, None);
    let order: Vec<i64> = all.items.iter().map(|e| e.id).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(order, newest_first);
    let retry = all.items.iter().find(|e| e.action == "dlq.retry").unwrap();
    assert_eq!(retry.actor, "alice");
    assert_eq!(retry.actor_role.as_deref(), Some("operator"));
    assert_eq!(retry.auth_method, "session");
    assert_eq!(retry.target.as_deref(), Some("target-2"));
    assert_eq!(retry.reason.as_deref(), Some("customer asked <b>twice</b>"));
    assert_eq!(retry.detail["note"], "it's \"quoted\"");
    assert_eq!(retry.result, "ok");
    assert_eq!(retry.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(retry.at, t0() + Duration::minutes(2));

    let query = |filter: AuditFilter| filter.validate().unwrap();
    let actions = |page: &sagascope_model::AuditPage| -> Vec<String> {
        page.items.iter().map(|e| e.action.clone()).collect()
    };

    let alice = store
        .list_audit(&query(AuditFilter {
            actor: Some("alice".into()),
            ..AuditFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(actions(&alice), ["token.create", "dlq.retry", "auth.login"]);

    let logins = store
        .list_audit(&query(AuditFilter {
            action: Some("auth.login".into()),
            ..AuditFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(logins.items.len(), 3);
    for prefix in ["auth.", "auth*"] {
        let auth = store
            .list_audit(&query(AuditFilter {
                action: Some(prefix.into()),
                ..AuditFilter::default()
            }))
            .await
            .unwrap();
        assert_eq!(auth.items.len(), 4, "{prefix}");
    }

    let window = store
        .list_audit(&query(AuditFilter {
            since: Some("2026-03-01T12:01:00Z".into()),
            until: Some("2026-03-01T12:03:00Z".into()),
            ..AuditFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(window.items.len(), 3);

    // Keyset paging, including the tie at minute 2.
    let mut filter = AuditFilter {
        limit: Some("2".into()),
        ..AuditFilter::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.list_audit(&query(filter.clone())).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|e| e.id));
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
}
