//! Storage: one connection type that is SQLite or PostgreSQL, picked by the URL, an
//! r2d2 pool of it, and the migrations of both backends embedded in the binary.
//!
//! Everything above this module writes one diesel query for both backends. The few
//! statements whose SQL differs (locking, upserts) live here, behind a `match` on
//! [`DbConnection`].

#[macro_use]
mod macros;
mod pages;
pub mod schema;
pub mod search;
mod signals;

pub use pages::load_page;
pub use signals::{after_commit, listen, notify};

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a SQLite writer waits for the lock before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
/// Any constant works; it only has to be the same in every rinnovo process.
const MIGRATION_ADVISORY_LOCK: i64 = 0x0072_696e_6e6f_766f; // "rinnovo" in ASCII

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// Where the data lives, parsed from a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://...` or `postgresql://...`, passed to libpq as is.
    Postgres(String),
    /// `sqlite://path`, `sqlite:path` or a bare file path.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("is empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path.contains("://") {
            return Err(format!(
                "'{url}' is neither postgres://... nor sqlite://<path> nor a file path"
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// For logs: the URL without a password.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme_end), Some(at)) if at > scheme_end => {
                    let userinfo = &url[scheme_end + 3..at];
                    let user = userinfo.split(':').next().unwrap_or("");
                    let hidden = if userinfo.contains(':') { ":***" } else { "" };
                    format!("{}{user}{hidden}{}", &url[..scheme_end + 3], &url[at..])
                }
                _ => url.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// A migrated SQLite database in memory, for the unit tests of the modules that own tables.
#[cfg(test)]
pub fn migrated_in_memory() -> DbConnection {
    let mut conn = DbConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
    run_migrations(&mut conn).unwrap();
    conn
}

/// Opens connections of the backend named by the URL, with SQLite tuned for a server:
/// WAL (readers never wait for the writer), a busy timeout instead of an immediate
/// "database is locked", and foreign keys enforced (SQLite's default is off).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }

    pub fn connect(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => Ok(DbConnection::Postgres(PgConnection::establish(url)?)),
            DatabaseUrl::Sqlite(path) => {
                // SQLite opens a file it cannot write read-only, silently, and such a
                // connection would stay read-only in the pool after the file is writable
                // again (README, "Reliability"): refuse it, so the pool retries later.
                // The check is access(2), never an open: closing any descriptor of the
                // file would drop the POSIX locks the process's other SQLite connections
                // hold on it, and another process would then take itself for the last
                // user of the database and remove the WAL under them.
                if path.exists() {
                    if let Err(e) = rustix::fs::access(path, rustix::fs::Access::WRITE_OK) {
                        return Err(diesel::ConnectionError::BadConnection(format!(
                            "{} cannot be opened for writing: {}",
                            path.display(),
                            std::io::Error::from(e)
                        )));
                    }
                }
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA foreign_keys = ON;"
                ))
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        ConnectionManager::connect(self).map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        match conn {
            DbConnection::Postgres(c) => c.is_broken(),
            DbConnection::Sqlite(c) => c.is_broken(),
        }
    }
}

/// How long a pool's caller waits for a free connection, unless configured.
pub const DEFAULT_POOL_WAIT: Duration = Duration::from_secs(5);

/// Builds the pool, its callers waiting up to [`DEFAULT_POOL_WAIT`] for a connection.
pub fn build_pool(url: &DatabaseUrl, max_size: u32) -> Result<Pool, anyhow::Error> {
    build_pool_waiting(url, max_size, DEFAULT_POOL_WAIT)
}

/// Builds the pool, its callers waiting up to `wait` for a connection. The first
/// connection is opened here, so a wrong URL or an unreachable server is reported at
/// start, not on the first request.
pub fn build_pool_waiting(
    url: &DatabaseUrl,
    max_size: u32,
    wait: Duration,
) -> Result<Pool, anyhow::Error> {
    if let DatabaseUrl::Sqlite(path) = url {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                anyhow::anyhow!("cannot create the directory {}: {e}", parent.display())
            })?;
        }
    }
    let pool = r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .connection_timeout(wait)
        // No ping on checkout: it would double the round trips of every request. A
        // connection that broke (server restart) is dropped by `has_broken` on return.
        .test_on_check_out(false)
        .build(ConnectionManager::new(url.clone()))
        .map_err(|e| anyhow::anyhow!("cannot connect to {}: {e}", url.redacted()))?;
    Ok(pool)
}

/// Applies the migrations that have not run yet. Safe to call from several processes
/// at once: on PostgreSQL they queue on an advisory lock, on SQLite on the write lock.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, anyhow::Error> {
    let applied = match conn {
        DbConnection::Postgres(c) => {
            c.batch_execute(&format!(
                "SELECT pg_advisory_lock({MIGRATION_ADVISORY_LOCK})"
            ))?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(versions);
            c.batch_execute(&format!(
                "SELECT pg_advisory_unlock({MIGRATION_ADVISORY_LOCK})"
            ))?;
            result
        }
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(versions),
    };
    applied.map_err(|e| anyhow::anyhow!("migrations failed: {e}"))
}

/// A `Timestamp` column (UTC, as every time the schema holds) read straight into a
/// `DateTime<Utc>` field with `#[diesel(deserialize_as = UtcTimestamp)]`, so a type that
/// is otherwise its row needs no separate row type only to add the time zone.
#[derive(diesel::deserialize::FromSqlRow)]
pub struct UtcTimestamp(chrono::NaiveDateTime);

impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Timestamp, DB> for UtcTimestamp
where
    DB: diesel::backend::Backend,
    chrono::NaiveDateTime: diesel::deserialize::FromSql<diesel::sql_types::Timestamp, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
        chrono::NaiveDateTime::from_sql(bytes).map(Self)
    }
}

impl From<UtcTimestamp> for chrono::DateTime<chrono::Utc> {
    fn from(time: UtcTimestamp) -> Self {
        time.0.and_utc()
    }
}

/// The count of `status` among the rows of a `GROUP BY status` count, 0 when the status
/// has no row (a group with nothing in it is not returned).
pub fn count_of<S: PartialEq>(counts: &[(S, i64)], status: S) -> i64 {
    counts
        .iter()
        .find(|(s, _)| *s == status)
        .map_or(0, |(_, n)| *n)
}

/// The loop of a periodic background worker: `round` on a pooled connection, on the
/// blocking pool (never on the async executor's threads), every `interval` until the task
/// is dropped. A round that fails is logged and simply tried again at the next interval;
/// `report` logs what a round that worked did. `what` names the worker in the logs.
pub async fn every_interval<T, R>(
    pool: Pool,
    interval: Duration,
    what: &'static str,
    round: R,
    report: fn(T),
) where
    T: Send + 'static,
    R: Fn(&mut DbConnection, chrono::DateTime<chrono::Utc>) -> anyhow::Result<T>
        + Clone
        + Send
        + 'static,
{
    loop {
        let pool = pool.clone();
        let round = round.clone();
        let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<T> {
            round(&mut *pool.get()?, chrono::Utc::now())
        })
        .await;
        match outcome {
            Ok(Ok(done)) => report(done),
            Ok(Err(error)) => tracing::warn!(error = %error, "{what}: will retry"),
            Err(error) => tracing::warn!(error = %error, "{what} task failed"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// Runs `work` in a transaction that writes. On SQLite it starts with `BEGIN IMMEDIATE`,
/// taking the write lock up front: with a plain `BEGIN`, two writers can both read and then
/// both try to upgrade, and SQLite fails one of them with "database is locked" at once,
/// without waiting for the busy timeout. PostgreSQL's `BEGIN` needs no such help.
/// Nested calls become savepoints, as with diesel's `transaction`.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if signals::in_transaction(conn) {
        return conn.transaction(work);
    }
    let result = match conn {
        DbConnection::Postgres(_) => conn.transaction(work),
        DbConnection::Sqlite(sqlite) => {
            match AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE") {
                Err(error) => Err(E::from(error)),
                Ok(()) => match work(conn) {
                    Ok(value) => {
                        <DbConnection as Connection>::TransactionManager::commit_transaction(conn)
                            .map(|()| value)
                            .map_err(E::from)
                    }
                    Err(error) => {
                        // The work's error is the one worth reporting; a failed rollback
                        // leaves the connection broken, which the pool notices and
                        // discards.
                        let _ =
                            <DbConnection as Connection>::TransactionManager::rollback_transaction(
                                conn,
                            );
                        Err(error)
                    }
                },
            }
        }
    };
    signals::transaction_ended(result.is_ok());
    result
}

/// A [`write_transaction`] whose commit does not wait for the disk, on PostgreSQL, when
/// it is a transaction of its own: nested in a caller's, it is part of that transaction
/// and keeps its durability. Only for bookkeeping that a crash may roll back by a fraction
/// of a second without harm, never for money: a rate limit's counts. Its locks are given
/// back as soon as the commit is written, not once it is flushed; a row that every request
/// of one client updates (its rate limit's current slot) otherwise makes them queue one
/// flush at a time. (SQLite's WAL mode with `synchronous = NORMAL` already commits so.)
pub fn write_transaction_unflushed<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let own = !signals::in_transaction(conn);
    write_transaction(conn, |conn| {
        if let (true, DbConnection::Postgres(pg)) = (own, &mut *conn) {
            use diesel::RunQueryDsl;
            diesel::sql_query("SET LOCAL synchronous_commit TO OFF")
                .execute(pg)
                .map_err(E::from)?;
        }
        work(conn)
    })
}

/// From how many rows `insert_many!` uses COPY on PostgreSQL: COPY costs one more round
/// trip than an INSERT, which pays only when the INSERT has many rows to parse.
pub const COPY_FROM_ROWS: usize = 20;

/// Bulk work on tables that grow while it runs (a statement import adds thousands of
/// payments) must not keep the plan PostgreSQL cached when the table was nearly empty:
/// after five executions it switches to a generic plan, and a sequential scan chosen
/// at 2,000 rows is still used at 100,000 (seen in benches/reconcile.sh: the duplicate
/// check grew from 1 ms to 130 ms per chunk). Plans each query for the rest of the
/// transaction; SQLite has no plan cache to speak of.
pub fn plan_each_query(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SET LOCAL plan_cache_mode = force_custom_plan").execute(pg)?;
    }
    Ok(())
}

/// Runs one of two closures, for the few statements whose SQL must differ per backend
/// beyond what the macros above cover (PostgreSQL's array parameters, for one). The
/// module that owns the table writes both versions next to each other; this only picks.
pub fn per_backend<T>(
    conn: &mut DbConnection,
    postgres: impl FnOnce(&mut PgConnection) -> T,
    sqlite: impl FnOnce(&mut SqliteConnection) -> T,
) -> T {
    match conn {
        DbConnection::Postgres(pg) => postgres(pg),
        DbConnection::Sqlite(lite) => sqlite(lite),
    }
}

/// Whether several transactions of this database write at the same time. PostgreSQL
/// does; SQLite has one writer at a time, so splitting work over connections only
/// makes them queue.
pub fn writes_in_parallel(conn: &DbConnection) -> bool {
    matches!(conn, DbConnection::Postgres(_))
}

/// Serialises whoever takes the same `key` across every process, until the transaction
/// ends. On PostgreSQL a transaction-scoped advisory lock on the key's hash; on SQLite
/// the write transaction already is one.
pub fn lock_key(conn: &mut DbConnection, key: &str) -> diesel::QueryResult<()> {
    use diesel::sql_types::Text;
    use diesel::RunQueryDsl;
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<Text, _>(key)
            .execute(pg)?;
    }
    Ok(())
}

fn versions(list: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    list.iter().map(|v| v.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://./data/x.db").unwrap(),
            DatabaseUrl::Sqlite("./data/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:x.db").unwrap(),
            DatabaseUrl::Sqlite("x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("/var/lib/rinnovo.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/rinnovo.db".into())
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db:5432/rinnovo").unwrap();
        assert_eq!(url.redacted(), "postgres://app:***@db:5432/rinnovo");
        let url = DatabaseUrl::parse("postgres://app@db/rinnovo").unwrap();
        assert_eq!(url.redacted(), "postgres://app@db/rinnovo");
    }
}
