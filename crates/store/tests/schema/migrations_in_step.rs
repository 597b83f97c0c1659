//! The two migration folders build one schema: after migrating a fresh
//! Postgres database and a fresh SQLite file, both have the same tables,
//! the same columns and the same named indexes on the same columns, in the
//! same order. The folders may differ only in dialect (types, identity
//! columns, how a primary key is changed, trigger bodies); a table, column
//! or index added to one folder and forgotten in the other fails here.

use std::collections::BTreeSet;

use sagascope_store::test_support::{fresh_postgres_store, fresh_sqlite_store};
use sagascope_store::Store;
use sqlx::Row;

/// Tables of sqlx and of the engines themselves, not of sagascope.
fn is_ours(table: &str) -> bool {
    table != "_sqlx_migrations" && !table.starts_with("sqlite_")
}

async fn columns(store: &Store, sql: &str) -> BTreeSet<String> {
    sqlx::query(sql)
        .fetch_all(store.pool())
        .await
        .expect("read the schema")
        .iter()
        .map(|row| {
            let table: String = row.get(0);
            let column: String = row.get(1);
            (table, column)
        })
        .filter(|(table, _)| is_ours(table))
        .map(|(table, column)| format!("{table}.{column}"))
        .collect()
}

/// `index ON table (col, col, …)`: expressions as `<expr>`. Primary keys
/// and unique constraints are named by each engine itself (`*_pkey` and
/// `*_key` on Postgres, `sqlite_autoindex_*` on SQLite), so only the
/// indexes the migrations name are compared; the columns of both are.
async fn indexes(store: &Store, sql: &str) -> BTreeSet<String> {
    let rows = sqlx::query(sql)
        .fetch_all(store.pool())
        .await
        .expect("read the indexes");
    let mut by_index: std::collections::BTreeMap<(String, String), Vec<(i64, String)>> =
        Default::default();
    for row in rows {
        let table: String = row.get(0);
        let index: String = row.get(1);
        let position: i64 = row.get(2);
        let column: Option<String> = row.get(3);
        by_index
            .entry((table, index))
            .or_default()
            .push((position, column.unwrap_or_else(|| "<expr>".into())));
    }
    by_index
        .into_iter()
        .filter(|((table, index), _)| {
            is_ours(table)
                && !index.starts_with("sqlite_autoindex_")
                && !index.ends_with("_pkey")
                && !index.ends_with("_key")
        })
        .map(|((table, index), mut columns)| {
            columns.sort();
            let columns: Vec<String> = columns.into_iter().map(|(_, c)| c).collect();
            format!("{index} ON {table} ({})", columns.join(", "))
        })
        .collect()
}

fn assert_same(what: &str, postgres: &BTreeSet<String>, sqlite: &BTreeSet<String>) {
    let only_postgres: Vec<&String> = postgres.difference(sqlite).collect();
    let only_sqlite: Vec<&String> = sqlite.difference(postgres).collect();
    assert!(
        only_postgres.is_empty() && only_sqlite.is_empty(),
        "the migration folders build different {what}:\n  only on Postgres: {only_postgres:#?}\n  only on SQLite: {only_sqlite:#?}"
    );
    assert!(!postgres.is_empty(), "no {what} read at all");
}

#[tokio::test]
async fn both_migration_folders_build_the_same_tables_columns_and_indexes() {
    let postgres = fresh_postgres_store().await;
    let sqlite = fresh_sqlite_store().await;

    let postgres_columns = columns(
        &postgres,
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public'",
    )
    .await;
    let sqlite_columns = columns(
        &sqlite,
        "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c \
         WHERE m.type = 'table'",
    )
    .await;
    assert_same("columns", &postgres_columns, &sqlite_columns);

    let postgres_indexes = indexes(
        &postgres,
        "SELECT t.relname::text, i.relname::text, k.n::bigint, a.attname::text \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace ns ON ns.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
         LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE ns.nspname = 'public'",
    )
    .await;
    let sqlite_indexes = indexes(
        &sqlite,
        "SELECT m.name, il.name, ii.seqno, ii.name \
         FROM sqlite_master m, pragma_index_list(m.name) il, pragma_index_xinfo(il.name) ii \
         WHERE m.type = 'table' AND ii.key = 1",
    )
    .await;
    assert_same("indexes", &postgres_indexes, &sqlite_indexes);
}
