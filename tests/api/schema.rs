//! Both backends' migrations must give the same tables, columns, types, nullability
//! and indexes. Runs when TEST_DATABASE_URL is set (CI's PostgreSQL pass), since it
//! needs both databases.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use rinnovo::db::{self, ConnectionManager, DatabaseUrl, DbConnection};

use crate::helpers::TestDatabase;

#[derive(QueryableByName, Debug)]
struct Column {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

#[derive(QueryableByName, Debug)]
struct Index {
    #[diesel(sql_type = Text)]
    name: String,
}

type Shape = (BTreeSet<(String, String, String, bool)>, BTreeSet<String>);

fn shape(conn: &mut DbConnection) -> Shape {
    let (columns, indexes): (Vec<Column>, Vec<Index>) = match conn {
        DbConnection::Sqlite(c) => (
            diesel::sql_query(
                "SELECT m.name AS table_name, p.name AS column_name, lower(p.type) AS data_type,
                        (p.\"notnull\" = 0 AND p.pk = 0) AS nullable
                 FROM sqlite_master m JOIN pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
                   AND m.name <> '__diesel_schema_migrations'",
            )
            .load(c)
            .unwrap(),
            diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'index'
                 AND name NOT LIKE 'sqlite_autoindex_%'",
            )
            .load(c)
            .unwrap(),
        ),
        DbConnection::Postgres(c) => (
            diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name,
                        CASE data_type WHEN 'timestamp without time zone' THEN 'timestamp'
                             ELSE data_type::text END AS data_type,
                        (is_nullable = 'YES') AS nullable
                 FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
            )
            .load(c)
            .unwrap(),
            // Primary keys and UNIQUE constraints get automatic indexes on both sides,
            // named differently; compare the ones the migrations name.
            diesel::sql_query(
                "SELECT indexname::text AS name FROM pg_indexes WHERE schemaname = 'public'
                 AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
            )
            .load(c)
            .unwrap(),
        ),
    };
    (
        columns
            .into_iter()
            .map(|c| (c.table_name, c.column_name, c.data_type, c.nullable))
            .collect(),
        indexes.into_iter().map(|i| i.name).collect(),
    )
}

fn migrated(url: &str) -> DbConnection {
    let mut conn = ConnectionManager::new(DatabaseUrl::parse(url).unwrap())
        .connect()
        .unwrap();
    db::run_migrations(&mut conn).unwrap();
    conn
}

#[test]
fn sqlite_and_postgres_have_the_same_schema() {
    let postgres = TestDatabase::create();
    if postgres.backend != db::Backend::Postgres {
        eprintln!(
            "schema parity needs TEST_DATABASE_URL (PostgreSQL); checked in CI's PostgreSQL pass"
        );
        return;
    }
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", sqlite_dir.path().join("parity.db").display());

    let (pg_columns, pg_indexes) = shape(&mut migrated(&postgres.url));
    let (sqlite_columns, sqlite_indexes) = shape(&mut migrated(&sqlite_url));

    assert!(pg_columns.len() > 10, "the schema was read: {pg_columns:?}");
    let only_pg: Vec<_> = pg_columns.difference(&sqlite_columns).collect();
    let only_sqlite: Vec<_> = sqlite_columns.difference(&pg_columns).collect();
    assert!(
        only_pg.is_empty() && only_sqlite.is_empty(),
        "columns differ\n only on PostgreSQL: {only_pg:#?}\n only on SQLite: {only_sqlite:#?}"
    );
    assert!(
        pg_indexes.contains("certificates_one_active_per_kind"),
        "{pg_indexes:?}"
    );
    assert_eq!(pg_indexes, sqlite_indexes, "indexes differ");
}

#[test]
fn migrations_can_be_reverted_and_reapplied() {
    use diesel_migrations::MigrationHarness;
    let database = TestDatabase::create();
    let mut conn = migrated(&database.url);
    match &mut conn {
        DbConnection::Sqlite(c) => {
            c.revert_all_migrations(db::SQLITE_MIGRATIONS).unwrap();
        }
        DbConnection::Postgres(c) => {
            c.revert_all_migrations(db::POSTGRES_MIGRATIONS).unwrap();
        }
    }
    let reapplied = db::run_migrations(&mut conn).unwrap();
    assert!(!reapplied.is_empty());
}

#[derive(QueryableByName, Debug)]
struct Pragma {
    #[diesel(sql_type = Text)]
    value: String,
}

#[test]
fn sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("p.db").display())).unwrap();
    let pool = db::build_pool(&url, 2).unwrap();
    let mut conn = pool.get().unwrap();
    let DbConnection::Sqlite(sqlite) = &mut *conn else {
        unreachable!("a sqlite:// URL gives a SQLite connection");
    };
    let pragma = |c: &mut diesel::SqliteConnection, name: &str| -> String {
        diesel::sql_query(format!(
            "SELECT CAST({name} AS TEXT) AS value FROM pragma_{name}"
        ))
        .get_result::<Pragma>(c)
        .unwrap()
        .value
    };
    assert_eq!(pragma(sqlite, "journal_mode"), "wal");
    assert_eq!(pragma(sqlite, "foreign_keys"), "1");
    assert_eq!(pragma(sqlite, "synchronous"), "1", "NORMAL");
    let timeout: Vec<Pragma> =
        diesel::sql_query("SELECT CAST(timeout AS TEXT) AS value FROM pragma_busy_timeout")
            .load(sqlite)
            .unwrap();
    assert_eq!(timeout[0].value, "5000");
    // Foreign keys are enforced, not just declared.
    db::run_migrations(&mut conn).unwrap();
    let orphan = diesel::sql_query(
        "INSERT INTO devices (id, holder_id, brand_id, serial_number, kind, activated_at, created_at)
         VALUES ('d', 'no-such-holder', 'visura', '1', 'smart_card', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    .execute(&mut *conn);
    assert!(orphan.is_err(), "a device of an unknown holder is refused");
}
