//! What the outbox senders (the email dispatcher, the SdI transmitter) share: the retry
//! policy and its backoff, database work off the async threads, and the loop that drains
//! a queue.

use std::future::Future;
use std::time::Duration;

use chrono::Duration as Delay;

use crate::db::{DbConnection, Pool};

/// Database work of a sender, on a blocking thread with a pooled connection that is given
/// back at once: no connection is held while talking to a server.
pub async fn with_conn<T: Send + 'static>(
    pool: &Pool,
    work: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> anyhow::Result<T> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<T> { Ok(work(&mut *pool.get()?)?) })
        .await?
}

/// A sender's round: claims what is due, sends it, records the outcomes; how many rows
/// it handled.
pub trait Drain: Send + 'static {
    fn drain_once(&mut self) -> impl Future<Output = anyhow::Result<usize>> + Send;

    /// Waits before the next round when the last found nothing: `idle`, unless the
    /// sender can be told of new work sooner.
    fn rest(&self, idle: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(idle)
    }
}

/// Runs `sender` round after round, until the task is dropped: after a round that found
/// work, a short `pause` (each round writes, and on SQLite requests wait for the single
/// writer lock: back-to-back rounds would keep it from them); after a round that found
/// none, `idle` or until told of new work ([`Drain::rest`]); after one that could not
/// reach the database, `idle`. `what` names the sender in the logs.
pub async fn keep_draining(
    mut sender: impl Drain,
    idle: Duration,
    pause: Duration,
    what: &'static str,
) {
    loop {
        match sender.drain_once().await {
            Ok(n) if n > 0 => tokio::time::sleep(pause).await,
            Ok(_) => sender.rest(idle).await,
            Err(error) => {
                tracing::warn!(error = %error, "{what}: will retry");
                tokio::time::sleep(idle).await;
            }
        }
    }
}

/// The pause between two batches when nothing else is configured
/// (`RINNOVO_WORKER_PAUSE_MS`).
pub const DEFAULT_BATCH_PAUSE: Duration = Duration::from_millis(100);

/// Exponential backoff: base, 2 × base, 4 × base... capped at six hours.
pub fn backoff(base: Delay, attempts: i32) -> Delay {
    let factor = 1i64 << (attempts.clamp(1, 20) - 1);
    (base * factor as i32).min(Delay::hours(6))
}

/// How often a failed send is tried again: the attempts before a row is `dead`, and the
/// first delay, doubled at each attempt (see [`backoff`]).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub base: Delay,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Delay::seconds(30);
        assert_eq!(backoff(base, 1), Delay::seconds(30));
        assert_eq!(backoff(base, 2), Delay::seconds(60));
        assert_eq!(backoff(base, 4), Delay::seconds(240));
        assert_eq!(backoff(base, 30), Delay::hours(6));
    }
}
