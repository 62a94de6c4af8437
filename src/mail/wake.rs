//! Waking the dispatcher when an email is queued, instead of leaving it to find the email
//! at its next poll (see `db::after_commit` and `db::notify` for why after the commit).
//!
//! A process that runs the workers (`serve` as configured by default, `worker`) wakes its
//! own dispatcher in memory once the transaction that queued the email commits. A `serve`
//! that leaves the workers to `worker` processes (`RINNOVO_RUN_WORKERS=false`, on
//! PostgreSQL) tells them with a `NOTIFY` in that transaction, which they `LISTEN` for.
//! Only that one sends it: PostgreSQL serialises the commits of transactions that notify,
//! a price the single-process default does not pay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use crate::db::{self, DatabaseUrl, DbConnection};

/// The PostgreSQL channel new emails are announced on.
const CHANNEL: &str = "rinnovo_outbox";

/// The dispatchers of this process (one, unless tests run several apps in one process):
/// each is woken on its own, so a signal never wakes one and leaves another asleep.
static DISPATCHERS: Mutex<Vec<Weak<Notify>>> = Mutex::new(Vec::new());

/// Whether the emails this process queues are sent by other processes.
static OTHERS_DISPATCH: AtomicBool = AtomicBool::new(false);

/// Said once at start: this process queues emails that `worker` processes send.
pub fn others_dispatch(yes: bool) {
    OTHERS_DISPATCH.store(yes, Ordering::Relaxed);
}

/// Called by whoever writes to the outbox, in the writing transaction.
pub(super) fn email_queued(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    if OTHERS_DISPATCH.load(Ordering::Relaxed) {
        db::notify(conn, CHANNEL)
    } else {
        db::after_commit(conn, wake_dispatchers);
        Ok(())
    }
}

/// What a dispatcher's loops wait on between polls: it holds one wake-up until a loop
/// takes it, so a signal that comes while every loop is busy is not lost.
pub(super) fn register_dispatcher() -> Arc<Notify> {
    let signal = Arc::new(Notify::new());
    let mut dispatchers = DISPATCHERS.lock().unwrap_or_else(|e| e.into_inner());
    dispatchers.retain(|d| d.strong_count() > 0);
    dispatchers.push(Arc::downgrade(&signal));
    signal
}

/// Wakes one loop of every dispatcher: one loop takes what was queued, the others sleep on.
fn wake_dispatchers() {
    let dispatchers = DISPATCHERS.lock().unwrap_or_else(|e| e.into_inner());
    for signal in dispatchers.iter().filter_map(Weak::upgrade) {
        signal.notify_one();
    }
}

/// A dispatching process hears of the emails other processes queue (PostgreSQL only).
pub fn listen_to_other_processes(url: &DatabaseUrl) {
    db::listen(url, CHANNEL, wake_dispatchers);
}
