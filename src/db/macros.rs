//! The statements the multi-backend connection type cannot build (multi-row inserts,
//! row locks, upserts) written once and run on whichever concrete connection a
//! [`DbConnection`](crate::db::DbConnection) holds. The match on the backend lives here,
//! so the modules that own the tables never branch on it.

/// Runs the same diesel expression on the concrete connection:
/// `on_backend!(conn, |c| diesel::insert_into(t).values(&rows).on_conflict_do_nothing().execute(c))`.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Inserts many rows at once. On PostgreSQL, from `db::COPY_FROM_ROWS` rows on, with
/// `COPY ... FROM STDIN (FORMAT binary)`, which sends the rows without a statement to parse
/// and plan (a 500-row INSERT of 20 columns is 10,000 bind parameters, parsed and planned
/// every time); fewer rows, and SQLite, get one multi-row INSERT. `rows` is a `Vec` of
/// column tuples, as for `insert_into(..).values(..)`.
macro_rules! insert_many {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let rows = $rows;
        match $conn {
            $crate::db::DbConnection::Postgres(c) if rows.len() >= $crate::db::COPY_FROM_ROWS => {
                diesel::copy_from($table).from_insertable(rows).execute(c)
            }
            $crate::db::DbConnection::Postgres(c) => {
                diesel::insert_into($table).values(rows).execute(c)
            }
            $crate::db::DbConnection::Sqlite(c) => {
                diesel::insert_into($table).values(rows).execute(c)
            }
        }
    }};
}

/// Reads rows and locks them until the transaction ends: `SELECT ... FOR UPDATE` on
/// PostgreSQL; on SQLite the write transaction already excludes every other writer.
/// `for_update!(conn, query, |q, c| q.load::<String>(c))`.
macro_rules! for_update {
    ($conn:expr, $query:expr, |$q:ident, $c:ident| $load:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($c) => {
                let $q = $query.for_update();
                $load
            }
            $crate::db::DbConnection::Sqlite($c) => {
                let $q = $query;
                $load
            }
        }
    };
}

/// Claims rows for a worker: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers on
/// several machines take disjoint rows without waiting for each other; on SQLite the
/// write transaction is the claim.
macro_rules! for_update_skip_locked {
    ($conn:expr, $query:expr, |$q:ident, $c:ident| $load:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($c) => {
                let $q = $query.for_update().skip_locked();
                $load
            }
            $crate::db::DbConnection::Sqlite($c) => {
                let $q = $query;
                $load
            }
        }
    };
}
