//! The transmitter: claims due files from the transmission outbox, hands each to the
//! channel (files or PEC), records what happened, moves the document to `transmitted`;
//! retries with backoff, `dead` after the last attempt. The same lease as the email
//! dispatcher, so transmitters in several processes on several machines share the work
//! and never take the same file at once.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use super::channel::{ChannelSettings, FileChannel, PecChannel, SdiChannel};
use super::store;
use super::transmission::{self, ClaimedFile};
use crate::db::{write_transaction, DbConnection, Pool};
use crate::workers::{keep_draining, with_conn, Drain, RetryPolicy};

#[derive(Debug, Clone)]
pub struct TransmitSettings {
    pub retry: RetryPolicy,
    pub batch: i64,
    /// How long a claimed file is ours before another transmitter may take it: longer
    /// than a batch can take (each send gives up after the SMTP timeout, 10 s).
    pub lease: Duration,
    pub idle_poll: StdDuration,
    /// The pause after a batch when there may be more (see [`keep_draining`]).
    pub batch_pause: StdDuration,
    /// Transmitting loops per process, each with its own channel (SMTP session).
    pub concurrency: usize,
}

impl Default for TransmitSettings {
    fn default() -> Self {
        Self {
            retry: RetryPolicy {
                max_attempts: 8,
                base: Duration::seconds(60),
            },
            batch: 10,
            lease: Duration::minutes(5),
            idle_poll: StdDuration::from_millis(500),
            batch_pause: crate::workers::DEFAULT_BATCH_PAUSE,
            concurrency: 2,
        }
    }
}

/// A file the channel took: the outbox row `sent`, the document `transmitted`, together.
fn record_sent(
    conn: &mut DbConnection,
    file: &ClaimedFile,
    channel: &str,
    reference: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    write_transaction(conn, |conn| {
        if transmission::mark_sent(conn, &file.id, channel, reference, now)? {
            store::mark_transmitted(conn, &file.invoice_id, &file.file_name, now)?;
        }
        Ok(())
    })
}

/// Claims one batch and sends it through `channel`. Each outcome is recorded as soon as
/// the channel answers, not at the end of the batch: a transmitter that stops mid-batch
/// leaves no file sent but unrecorded behind it except the one in flight, so files are
/// not sent twice when another transmitter takes the rest over (the SdI refuses a file
/// name it has already received). Returns how many files it handled.
pub async fn run_once<C: SdiChannel>(
    pool: &Pool,
    channel: &mut C,
    settings: &TransmitSettings,
) -> anyhow::Result<usize> {
    let (batch, lease) = (settings.batch, settings.lease);
    let claimed = with_conn(pool, move |conn| {
        transmission::claim_due(conn, batch, lease, Utc::now())
    })
    .await?;
    let handled = claimed.len();
    let name = channel.name();
    let retry = settings.retry;
    for file in claimed {
        match channel.send(&file.outgoing()).await {
            Ok(reference) => {
                tracing::debug!(file = %file.file_name, channel = name, "file sent to the SdI");
                with_conn(pool, move |conn| {
                    record_sent(conn, &file, name, &reference, Utc::now())
                })
                .await?;
            }
            Err(error) => {
                let dead = with_conn(pool, {
                    let (file, error) = (file.clone(), error.clone());
                    move |conn| {
                        transmission::mark_failed(conn, &file, name, &error, &retry, Utc::now())
                    }
                })
                .await?;
                if dead {
                    tracing::error!(file = %file.file_name, channel = name, attempt = file.attempts, %error,
                        "file not sent to the SdI after the last attempt: dead, waiting for the back-office");
                } else {
                    tracing::warn!(file = %file.file_name, channel = name, attempt = file.attempts, %error,
                        "file not sent to the SdI: will retry");
                }
            }
        }
    }
    Ok(handled)
}

/// One transmitting loop: a batch at a time through its own channel.
struct TransmitLoop<C> {
    pool: Pool,
    channel: C,
    settings: TransmitSettings,
}

impl<C: SdiChannel> Drain for TransmitLoop<C> {
    async fn drain_once(&mut self) -> anyhow::Result<usize> {
        run_once(&self.pool, &mut self.channel, &self.settings).await
    }
}

/// Runs `settings.concurrency` transmitting loops through the configured channel until
/// the task is dropped. Fails at once if the channel cannot be set up (the outbox
/// directory cannot be created).
pub fn run(
    pool: Pool,
    channel: &ChannelSettings,
    settings: TransmitSettings,
) -> anyhow::Result<impl std::future::Future<Output = ()>> {
    let mut loops = tokio::task::JoinSet::new();
    let (idle, pause) = (settings.idle_poll, settings.batch_pause);
    let what = "SdI transmitter";
    for _ in 0..settings.concurrency.max(1) {
        let (pool, settings) = (pool.clone(), settings.clone());
        match channel {
            ChannelSettings::File(dir) => {
                let channel = FileChannel::new(dir.clone())?;
                let worker = TransmitLoop {
                    pool,
                    channel,
                    settings,
                };
                loops.spawn(keep_draining(worker, idle, pause, what));
            }
            ChannelSettings::Pec { smtp, sdi_address } => {
                let channel = PecChannel::new(smtp.clone(), sdi_address.clone());
                let worker = TransmitLoop {
                    pool,
                    channel,
                    settings,
                };
                loops.spawn(keep_draining(worker, idle, pause, what));
            }
        }
    }
    Ok(async move { while loops.join_next().await.is_some() {} })
}
