//! Fresh, migrated stores for tests in this and other crates (feature
//! `test-support`). Postgres comes from SAGASCOPE_TEST_POSTGRES_URL
//! (default postgres://postgres@127.0.0.1:5432/postgres) and must be up:
//! each call creates a new database there.

use sqlx::{Connection, Executor};

use crate::Store;

pub async fn fresh_sqlite_store() -> Store {
    let dir =
        std::env::temp_dir().join(format!("sagascope-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    let store = Store::connect(&format!("sqlite://{}", dir.join("read-model.db").display()))
        .await
        .expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    store
}

pub async fn fresh_postgres_store() -> Store {
    let admin_url = std::env::var("SAGASCOPE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    sqlx::any::install_default_drivers();
    let name = format!("sagascope_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("Postgres must be running for these tests (scripts/test.sh starts it)");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("a database URL ends in /DATABASE");
    let store = Store::connect(&format!("{base}/{name}"))
        .await
        .expect("open Postgres");
    store.migrate().await.expect("migrate Postgres");
    store
}

/// A second handle on the same database, with its own pool and projection
/// cache: what a second replica (or process) is to the first.
pub async fn another_handle(store: &Store) -> Store {
    Store::connect(&store.url.0)
        .await
        .expect("open the same database again")
}

/// Dead letters per (DLQ topic, state) as the counters hold them (the base
/// rows plus deltas not folded in yet), zeros left out.
pub async fn dead_letter_counters(
    store: &Store,
) -> std::collections::BTreeMap<(String, String), i64> {
    counted(
        store,
        "SELECT dlq_topic, state, CAST(SUM(n) AS BIGINT) AS n FROM (\
         SELECT dlq_topic, state, n FROM dead_letter_counts \
         UNION ALL SELECT dlq_topic, state, delta FROM dead_letter_count_deltas) c GROUP BY dlq_topic, state",
    )
    .await
}

/// The same, counted from the rows of `dead_letters`.
pub async fn dead_letter_recount(
    store: &Store,
) -> std::collections::BTreeMap<(String, String), i64> {
    counted(
        store,
        "SELECT dlq_topic, state, COUNT(*) AS n FROM dead_letters GROUP BY dlq_topic, state",
    )
    .await
}

async fn counted(store: &Store, sql: &str) -> std::collections::BTreeMap<(String, String), i64> {
    use sqlx::Row;
    sqlx::query(sql)
        .fetch_all(&store.pool)
        .await
        .expect("count dead letters")
        .iter()
        .map(|row| {
            (
                (
                    row.get::<String, _>("dlq_topic"),
                    row.get::<String, _>("state"),
                ),
                row.get::<i64, _>("n"),
            )
        })
        .filter(|(_, n)| *n != 0)
        .collect()
}

/// One behaviour, two backends (quickwit's metastore test-suite pattern):
/// runs each named `async fn(&Store)` as `postgres::NAME` on a fresh
/// Postgres database and `sqlite::NAME` on a fresh SQLite file.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&$crate::test_support::fresh_postgres_store().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&$crate::test_support::fresh_sqlite_store().await).await;
                }
            )*
        }
    };
}
