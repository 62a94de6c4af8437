//! Telling a worker that there is new work, the moment the work is committed.
//!
//! A worker that only polls finds a row on average half an interval after it was
//! committed, and while requests saturate the machine a short interval costs queries that
//! mostly find nothing. So whoever queues work also signals it:
//!
//! - **in this process**, by a hook that runs after the outermost transaction commits
//!   ([`after_commit`]): a worker woken before the commit would look, find nothing yet,
//!   and go back to sleep;
//! - **to other processes** (the `worker` processes beside `serve` on PostgreSQL), by
//!   PostgreSQL's `NOTIFY`, which the server delivers only when the transaction that
//!   sent it commits, and not at all if it rolls back ([`notify`], [`listen`]).
//!
//! Signals are a shortcut, never the only way: workers still poll, so a lost signal
//! (a listener reconnecting, a hook on a transaction opened by other means) delays the
//! work by one interval and loses nothing.

use std::cell::RefCell;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::{Connection, PgConnection, RunQueryDsl};

use super::{DatabaseUrl, DbConnection};

type Hook = Box<dyn FnOnce()>;

thread_local! {
    /// The hooks of the transaction open on this thread: diesel runs a transaction on
    /// the thread that opened it, so the thread is the transaction.
    static AFTER_COMMIT: RefCell<Vec<Hook>> = const { RefCell::new(Vec::new()) };
}

/// Runs `hook` once the transaction open on `conn` commits, or now if none is open.
/// A transaction that rolls back drops its hooks.
pub fn after_commit(conn: &mut DbConnection, hook: impl FnOnce() + 'static) {
    if in_transaction(conn) {
        AFTER_COMMIT.with(|hooks| hooks.borrow_mut().push(Box::new(hook)));
    } else {
        hook();
    }
}

/// Whether a transaction is open on `conn`. A connection whose transaction state is
/// broken counts as in one: its hooks wait for the next commit rather than run early.
pub(super) fn in_transaction(conn: &mut DbConnection) -> bool {
    let depth = match conn {
        DbConnection::Postgres(pg) => {
            AnsiTransactionManager::transaction_manager_status_mut(pg).transaction_depth()
        }
        DbConnection::Sqlite(lite) => {
            AnsiTransactionManager::transaction_manager_status_mut(lite).transaction_depth()
        }
    };
    !matches!(depth, Ok(None))
}

/// After the outermost transaction on this thread ended: its hooks run if it committed,
/// and are dropped if not.
pub(super) fn transaction_ended(committed: bool) {
    let hooks = AFTER_COMMIT.with(|hooks| std::mem::take(&mut *hooks.borrow_mut()));
    if committed {
        hooks.into_iter().for_each(|hook| hook());
    }
}

/// Sends a notification on `channel` to every process listening, when the transaction
/// open on `conn` commits. PostgreSQL folds the same notification sent several times in
/// one transaction into one. Nothing on SQLite: one process owns the file, and
/// [`after_commit`] reaches its workers.
pub fn notify(conn: &mut DbConnection, channel: &'static str) -> diesel::QueryResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(format!("NOTIFY {channel}")).execute(pg)?;
    }
    Ok(())
}

/// How often the listener reads its connection: a notification waits at most this
/// long. Reading a socket with nothing on it costs a system call.
const LISTEN_POLL: Duration = Duration::from_millis(10);
/// How long the listener waits before connecting again after losing the server.
const LISTEN_RECONNECT: Duration = Duration::from_secs(1);

/// On PostgreSQL, calls `on_notification` for every notification sent on `channel` by
/// any process, on a thread of its own with a connection of its own, for as long as the
/// process runs (reconnecting when the server goes away). Nothing on SQLite.
pub fn listen(
    url: &DatabaseUrl,
    channel: &'static str,
    on_notification: impl Fn() + Send + 'static,
) {
    let DatabaseUrl::Postgres(url) = url else {
        return;
    };
    let url = url.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("listen-{channel}"))
        .spawn(move || loop {
            match PgConnection::establish(&url) {
                Ok(mut conn) => {
                    if let Err(error) = listen_on(&mut conn, channel, &on_notification) {
                        tracing::warn!(%error, channel, "listener lost the database; reconnecting");
                    }
                }
                Err(error) => tracing::warn!(%error, channel, "listener cannot connect; retrying"),
            }
            std::thread::sleep(LISTEN_RECONNECT);
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, channel, "cannot start the listener; workers will poll");
    }
}

fn listen_on(
    conn: &mut PgConnection,
    channel: &str,
    on_notification: &impl Fn(),
) -> diesel::QueryResult<()> {
    diesel::sql_query(format!("LISTEN {channel}")).execute(conn)?;
    // Whatever was queued while we were not listening.
    on_notification();
    loop {
        let mut any = false;
        for notification in conn.notifications_iter() {
            notification?;
            any = true;
        }
        if any {
            on_notification();
        }
        std::thread::sleep(LISTEN_POLL);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use diesel::{Connection, SqliteConnection};

    use super::*;
    use crate::db::write_transaction;

    /// A hook that counts its runs in `runs`.
    fn counting(runs: &Rc<Cell<u32>>) -> impl FnOnce() + 'static {
        let runs = runs.clone();
        move || runs.set(runs.get() + 1)
    }

    #[test]
    fn hooks_run_after_the_outermost_commit_and_never_after_a_rollback() {
        let mut conn = DbConnection::Sqlite(SqliteConnection::establish(":memory:").unwrap());
        let runs = Rc::new(Cell::new(0));
        let hook = || counting(&runs);

        after_commit(&mut conn, hook());
        assert_eq!(runs.get(), 1, "no transaction open: at once");

        write_transaction(&mut conn, |conn| {
            after_commit(conn, hook());
            write_transaction(conn, |conn| {
                after_commit(conn, hook());
                Ok::<_, diesel::result::Error>(())
            })?;
            assert_eq!(runs.get(), 1, "not before the outermost commit");
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
        assert_eq!(runs.get(), 3);

        let failed = write_transaction(&mut conn, |conn| {
            after_commit(conn, hook());
            Err::<(), _>(diesel::result::Error::RollbackTransaction)
        });
        assert!(failed.is_err());
        write_transaction(&mut conn, |_| Ok::<_, diesel::result::Error>(())).unwrap();
        assert_eq!(runs.get(), 3, "a rolled-back transaction's hook is dropped");
    }
}
