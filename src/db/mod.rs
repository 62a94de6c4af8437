//! Storage: one connection type that is SQLite or PostgreSQL, picked by the URL, an
//! r2d2 pool of it, and the migrations of both backends embedded in the binary.
//!
//! Everything above this module writes one diesel query for both backends. The few
//! statements whose SQL differs (locking, upserts) live here, behind a `match` on
//! [`DbConnection`].

pub mod schema;

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

/// Builds the pool. The first connection is opened here, so a wrong URL or an
/// unreachable server is reported at start, not on the first request.
pub fn build_pool(url: &DatabaseUrl, max_size: u32) -> Result<Pool, anyhow::Error> {
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
        .connection_timeout(Duration::from_secs(5))
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

/// The count of `status` among the rows of a `GROUP BY status` count, 0 when the status
/// has no row (a group with nothing in it is not returned).
pub fn count_of(counts: &[(String, i64)], status: &str) -> i64 {
    counts
        .iter()
        .find(|(s, _)| s == status)
        .map_or(0, |(_, n)| *n)
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
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(work);
    };
    let depth = AnsiTransactionManager::transaction_manager_status_mut(sqlite)
        .transaction_depth()
        .map_err(E::from)?;
    if depth.is_some() {
        return conn.transaction(work);
    }
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE").map_err(E::from)?;
    match work(conn) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(conn)
                .map_err(E::from)?;
            Ok(value)
        }
        Err(error) => {
            // The work's error is the one worth reporting; a failed rollback leaves the
            // connection broken, which the pool notices and discards.
            let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(conn);
            Err(error)
        }
    }
}

#[derive(diesel::QueryableByName)]
struct AssignedNumber {
    #[diesel(sql_type = diesel::sql_types::Text)]
    invoice_number: String,
}

#[derive(diesel::QueryableByName)]
struct LastSeq {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_seq: i64,
}

/// Gives the order the next invoice number of its brand and year,
/// `<series><year>-<seq, at least 6 digits>`, and returns it.
///
/// The counter is one upsert that creates it at 1 or increments it. It runs inside the
/// paying transaction, so the counter row stays locked until commit (PostgreSQL) or the
/// writer lock is held (SQLite): numbers are progressive, and a rolled-back payment gives
/// its number back. Callers take the number last; on PostgreSQL the increment and the
/// order's update are one statement, so the lock is held for that and the commit only.
pub fn assign_invoice_number(
    conn: &mut DbConnection,
    order_id: &str,
    brand_id: &str,
    series: &str,
    year: i32,
) -> diesel::QueryResult<String> {
    use diesel::sql_types::{Integer, Text};
    use diesel::RunQueryDsl;
    match conn {
        DbConnection::Postgres(pg) => {
            let assigned: AssignedNumber = diesel::sql_query(
                "WITH counter AS (
                     INSERT INTO invoice_counters (brand_id, year, last_seq) VALUES ($1, $2, 1)
                     ON CONFLICT (brand_id, year) DO UPDATE SET last_seq = invoice_counters.last_seq + 1
                     RETURNING last_seq)
                 UPDATE orders SET invoice_year = $2, invoice_seq = counter.last_seq,
                     invoice_number = $3 || $2::text || '-'
                         || lpad(counter.last_seq::text, greatest(6, length(counter.last_seq::text)), '0')
                 FROM counter WHERE orders.id = $4
                 RETURNING orders.invoice_number",
            )
            .bind::<Text, _>(brand_id)
            .bind::<Integer, _>(year)
            .bind::<Text, _>(series)
            .bind::<Text, _>(order_id)
            .get_result(pg)?;
            Ok(assigned.invoice_number)
        }
        DbConnection::Sqlite(sqlite) => {
            let counter: LastSeq = diesel::sql_query(
                "INSERT INTO invoice_counters (brand_id, year, last_seq) VALUES (?, ?, 1)
                 ON CONFLICT (brand_id, year) DO UPDATE SET last_seq = invoice_counters.last_seq + 1
                 RETURNING last_seq",
            )
            .bind::<Text, _>(brand_id)
            .bind::<Integer, _>(year)
            .get_result(sqlite)?;
            let number = invoice_number(series, year, counter.last_seq);
            diesel::sql_query(
                "UPDATE orders SET invoice_year = ?, invoice_seq = ?, invoice_number = ? WHERE id = ?",
            )
            .bind::<Integer, _>(year)
            .bind::<diesel::sql_types::BigInt, _>(counter.last_seq)
            .bind::<Text, _>(&number)
            .bind::<Text, _>(order_id)
            .execute(sqlite)?;
            Ok(number)
        }
    }
}

/// Reserves `count` consecutive invoice numbers of the brand and year and returns the
/// first sequence number. Same rules as [`assign_invoice_number`]: the counter row stays
/// locked until commit, a rollback gives the numbers back; callers take them last.
pub fn reserve_invoice_numbers(
    conn: &mut DbConnection,
    brand_id: &str,
    year: i32,
    count: i64,
) -> diesel::QueryResult<i64> {
    use diesel::sql_types::{BigInt, Integer, Text};
    use diesel::RunQueryDsl;
    let sql = |p: [&str; 4]| {
        format!(
            "INSERT INTO invoice_counters (brand_id, year, last_seq) VALUES ({}, {}, {})
             ON CONFLICT (brand_id, year) DO UPDATE SET last_seq = invoice_counters.last_seq + {}
             RETURNING last_seq",
            p[0], p[1], p[2], p[3]
        )
    };
    let counter: LastSeq = match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(sql(["$1", "$2", "$3", "$3"]))
            .bind::<Text, _>(brand_id)
            .bind::<Integer, _>(year)
            .bind::<BigInt, _>(count)
            .get_result(pg)?,
        DbConnection::Sqlite(sqlite) => diesel::sql_query(sql(["?1", "?2", "?3", "?3"]))
            .bind::<Text, _>(brand_id)
            .bind::<Integer, _>(year)
            .bind::<BigInt, _>(count)
            .get_result(sqlite)?,
    };
    Ok(counter.last_seq - count + 1)
}

/// The invoice number printed for a sequence number: `<series><year>-<seq, 6+ digits>`.
pub fn invoice_number(series: &str, year: i32, seq: i64) -> String {
    format!("{series}{year}-{seq:06}")
}

/// From how many rows `insert_many!` uses COPY on PostgreSQL: COPY costs one more round
/// trip than an INSERT, which pays only when the INSERT has many rows to parse.
pub const COPY_FROM_ROWS: usize = 20;

/// A paid order with the invoice number it was given.
pub struct InvoicedOrder<'a> {
    pub id: &'a str,
    pub received_cents: i64,
    pub invoice_seq: i64,
    pub invoice_number: String,
}

/// Moves paid orders to `status` (fulfilled) with their invoice numbers. A statement import
/// fulfils hundreds of orders per transaction: on PostgreSQL that is one UPDATE joined to
/// the arrays of values (one round trip instead of hundreds); SQLite runs in-process, where
/// one UPDATE per order costs as little.
pub fn record_invoiced_orders(
    conn: &mut DbConnection,
    status: &str,
    year: i32,
    now: chrono::DateTime<chrono::Utc>,
    orders: &[InvoicedOrder<'_>],
) -> diesel::QueryResult<()> {
    use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamp};
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    let now = now.naive_utc();
    match conn {
        DbConnection::Postgres(pg) => {
            diesel::sql_query(
                "UPDATE orders AS o SET status = $1, received_cents = v.received, paid_at = $2,
                     fulfilled_at = $2, closed_at = NULL, invoice_year = $3,
                     invoice_seq = v.seq, invoice_number = v.number
                 FROM unnest($4::text[], $5::bigint[], $6::bigint[], $7::text[])
                     AS v(id, received, seq, number)
                 WHERE o.id = v.id",
            )
            .bind::<Text, _>(status)
            .bind::<Timestamp, _>(now)
            .bind::<Integer, _>(year)
            .bind::<Array<Text>, _>(orders.iter().map(|o| o.id).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(orders.iter().map(|o| o.received_cents).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(orders.iter().map(|o| o.invoice_seq).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                orders
                    .iter()
                    .map(|o| o.invoice_number.as_str())
                    .collect::<Vec<_>>(),
            )
            .execute(pg)?;
        }
        DbConnection::Sqlite(sqlite) => {
            use schema::orders as o;
            for order in orders {
                diesel::update(o::table.filter(o::id.eq(order.id)))
                    .set((
                        o::status.eq(status),
                        o::received_cents.eq(order.received_cents),
                        o::paid_at.eq(Some(now)),
                        o::fulfilled_at.eq(Some(now)),
                        o::closed_at.eq(None::<chrono::NaiveDateTime>),
                        o::invoice_year.eq(Some(year)),
                        o::invoice_seq.eq(Some(order.invoice_seq)),
                        o::invoice_number.eq(Some(&order.invoice_number)),
                    ))
                    .execute(sqlite)?;
            }
        }
    }
    Ok(())
}

/// A certificate just signed for a renewal, to store.
pub struct IssuedRenewal<'a> {
    pub id: &'a str,
    pub pem: &'a str,
    pub serial_number: &'a str,
    pub issuer: &'a str,
    pub not_before: chrono::NaiveDateTime,
    pub not_after: chrono::NaiveDateTime,
}

#[derive(diesel::QueryableByName)]
struct StoredId {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// Stores issued certificates on their renewals, `issuing` → `issued`, but only where
/// the claim is still `claim_token`'s; returns the ids stored. An issuance batch stores
/// hundreds per transaction: on PostgreSQL that is one UPDATE joined to the arrays of
/// values; SQLite runs in-process, where one UPDATE per renewal costs as little.
pub fn record_issued_renewals(
    conn: &mut DbConnection,
    claim_token: &str,
    now: chrono::DateTime<chrono::Utc>,
    issued: &[IssuedRenewal<'_>],
) -> diesel::QueryResult<Vec<String>> {
    use diesel::sql_types::{Array, Text, Timestamp};
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    let now = now.naive_utc();
    match conn {
        DbConnection::Postgres(pg) => {
            let stored: Vec<StoredId> = diesel::sql_query(
                "UPDATE renewals AS r SET status = 'issued', certificate_pem = v.pem,
                     issued_serial_number = v.serial, issued_issuer = v.issuer,
                     issued_not_before = v.not_before, issued_not_after = v.not_after,
                     issued_at = $1, claimed_until = NULL, last_error = NULL
                 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],
                             $6::timestamp[], $7::timestamp[])
                     AS v(id, pem, serial, issuer, not_before, not_after)
                 WHERE r.id = v.id AND r.status = 'issuing' AND r.claim_token = $8
                 RETURNING r.id",
            )
            .bind::<Timestamp, _>(now)
            .bind::<Array<Text>, _>(issued.iter().map(|i| i.id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(issued.iter().map(|i| i.pem).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(issued.iter().map(|i| i.serial_number).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(issued.iter().map(|i| i.issuer).collect::<Vec<_>>())
            .bind::<Array<Timestamp>, _>(issued.iter().map(|i| i.not_before).collect::<Vec<_>>())
            .bind::<Array<Timestamp>, _>(issued.iter().map(|i| i.not_after).collect::<Vec<_>>())
            .bind::<Text, _>(claim_token)
            .load(pg)?;
            Ok(stored.into_iter().map(|s| s.id).collect())
        }
        DbConnection::Sqlite(sqlite) => {
            use schema::renewals as r;
            let mut stored = Vec::with_capacity(issued.len());
            for renewal in issued {
                let updated = diesel::update(
                    r::table
                        .filter(r::id.eq(renewal.id))
                        .filter(r::status.eq("issuing"))
                        .filter(r::claim_token.eq(claim_token)),
                )
                .set((
                    r::status.eq("issued"),
                    r::certificate_pem.eq(renewal.pem),
                    r::issued_serial_number.eq(renewal.serial_number),
                    r::issued_issuer.eq(renewal.issuer),
                    r::issued_not_before.eq(renewal.not_before),
                    r::issued_not_after.eq(renewal.not_after),
                    r::issued_at.eq(now),
                    r::claimed_until.eq(None::<chrono::NaiveDateTime>),
                    r::last_error.eq(None::<String>),
                ))
                .execute(sqlite)?;
                if updated == 1 {
                    stored.push(renewal.id.to_owned());
                }
            }
            Ok(stored)
        }
    }
}

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

/// Records that a renewal reminder was handled; `false` if another worker already did
/// (the row exists). An insert that ignores the conflict, on both backends.
pub fn record_reminder(
    conn: &mut DbConnection,
    certificate_id: &str,
    threshold_days: i32,
    now: chrono::DateTime<chrono::Utc>,
) -> diesel::QueryResult<bool> {
    use diesel::{ExpressionMethods, RunQueryDsl};
    use schema::renewal_reminders as r;
    let row = (
        r::certificate_id.eq(certificate_id),
        r::threshold_days.eq(threshold_days),
        r::sent_at.eq(now.naive_utc()),
    );
    let inserted = on_backend!(conn, |c| diesel::insert_into(r::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(inserted == 1)
}

/// Serialises the work on one lane of a brand's payments (see `payments::reconcile::LANES`)
/// across every process, for the rest of the transaction: two imports never store the
/// same entry, or decide on the same order, at once. On PostgreSQL an advisory
/// transaction lock; on SQLite the write transaction already is one.
pub fn lock_payment_lane(
    conn: &mut DbConnection,
    brand_id: &str,
    lane: usize,
) -> diesel::QueryResult<()> {
    use diesel::sql_types::Text;
    use diesel::RunQueryDsl;
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind::<Text, _>(format!("rinnovo.payments.{brand_id}.{lane}"))
            .execute(pg)?;
    }
    Ok(())
}

/// Every lane of the brand's payments, in lane order (so two holders never wait for each
/// other in a circle): for reversals and manual actions, which may touch any order.
pub fn lock_payments_of_brand(conn: &mut DbConnection, brand_id: &str) -> diesel::QueryResult<()> {
    for lane in 0..crate::payments::reconcile::LANES {
        lock_payment_lane(conn, brand_id, lane)?;
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
