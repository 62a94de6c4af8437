//! The statements the multi-backend connection type cannot build (multi-row inserts,
//! row locks, upserts) written once and run on whichever concrete connection a
//! [`DbConnection`](crate::db::DbConnection) holds. The match on the backend lives here,
//! so the modules that own the tables never branch on it.

/// Runs the same diesel expression on the concrete connection. Only the macros of this
/// file use it: the modules that own the tables say what they run (`upsert!`,
/// `insert_or_skip!`, `insert_many!`...), never which backend runs it.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}

/// Inserts `values` (one row or a `Vec` of rows), skipping each row that would break a
/// unique key (`ON CONFLICT DO NOTHING`); answers how many were inserted, so a caller
/// learns whether it was first.
macro_rules! insert_or_skip {
    ($conn:expr, $table:expr, $values:expr) => {
        on_backend!($conn, |c| diesel::insert_into($table)
            .values($values)
            .on_conflict_do_nothing()
            .execute(c))
    };
}

/// Inserts `values` or, where a row with the same `on` key exists, applies `set` to it
/// (`ON CONFLICT (..) DO UPDATE SET ..`), in one statement. With `returning`, answers
/// that column of the row as written.
macro_rules! upsert {
    ($conn:expr, $table:expr, $values:expr, on $target:expr, set $changes:expr) => {
        on_backend!($conn, |c| diesel::insert_into($table)
            .values($values)
            .on_conflict($target)
            .do_update()
            .set($changes)
            .execute(c))
    };
    ($conn:expr, $table:expr, $values:expr, on $target:expr, set $changes:expr, returning $column:expr) => {
        on_backend!($conn, |c| diesel::insert_into($table)
            .values($values)
            .on_conflict($target)
            .do_update()
            .set($changes)
            .returning($column)
            .get_result(c))
    };
}

/// Inserts many rows at once. On PostgreSQL, from `db::COPY_FROM_ROWS` rows on, with
/// `COPY ... FROM STDIN (FORMAT binary)`, which sends the rows without a statement to parse
/// and plan (a 500-row INSERT of 20 columns is 10,000 bind parameters, parsed and planned
/// every time); fewer rows, and SQLite, get one multi-row INSERT. `rows` is a `Vec` of
/// column tuples, as for `insert_into(..).values(..)`.
///
/// `insert_many!(conn, table, items, per_statement, |item| row)` inserts a row made of each
/// of `items`, `per_statement` rows a statement: the rows times their columns must stay
/// under the bind-parameter limit of both backends (32,766 on SQLite). The rows inserted.
macro_rules! insert_many {
    ($conn:expr, $table:expr, $items:expr, $per_statement:expr, |$item:pat_param| $row:expr) => {{
        let (mut inserted, mut failed) = (0, None);
        for chunk in $items.chunks($per_statement) {
            let rows: Vec<_> = chunk.iter().map(|$item| $row).collect();
            match insert_many!($conn, $table, rows) {
                Ok(n) => inserted += n,
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        failed.map_or(diesel::QueryResult::Ok(inserted), Err)
    }};
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
