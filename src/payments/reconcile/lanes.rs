//! The lanes an import's credits run in, the locks that serialise each lane across
//! processes, and the turns imports of one brand take in a process. Apart, as manual
//! actions on payments take the same locks.

use std::collections::HashMap;

use diesel::QueryResult;

use super::{ImportError, ImportReport, Run};
use crate::db::{self, DbConnection, Pool};
use crate::payments::statement::{EntrySpool, StatementEntry};

/// Lanes an import runs in parallel on PostgreSQL, each on its own connection and thread:
/// a lane is chosen by the entry's RF code (else its dedup key), so every payment for one
/// order or top-up goes through one lane, in file order, and the same entry falls in the
/// same lane in every import (the lane lock keeps two imports from storing it twice).
/// PostgreSQL runs one backend per connection: with one lane, one core does the work.
pub(super) const LANES: usize = 2;

/// Serialises the work on one lane of a brand's payments across every process, for the
/// rest of the transaction: two imports never store the same entry, or decide on the
/// same order, at once.
pub(super) fn lock_payment_lane(
    conn: &mut DbConnection,
    brand_id: &str,
    lane: usize,
) -> QueryResult<()> {
    db::lock_key(conn, &format!("rinnovo.payments.{brand_id}.{lane}"))
}

/// Every lane of the brand's payments, in lane order (so two holders never wait for each
/// other in a circle): for reversals and manual actions, which may touch any order.
pub fn lock_payments_of_brand(conn: &mut DbConnection, brand_id: &str) -> QueryResult<()> {
    (0..LANES).try_for_each(|lane| lock_payment_lane(conn, brand_id, lane))
}

pub(super) fn lane_of(entry: &StatementEntry) -> usize {
    // Without an RF code, the bank entry: the same entry reported by two files under two
    // references falls in one lane, whose lock keeps both imports from counting it.
    let key = entry
        .creditor_reference()
        .map(|r| r.as_str().to_owned())
        .or_else(|| entry.bank_entry.as_ref().map(|b| b.key.clone()))
        .unwrap_or_else(|| entry.dedup_key.clone());
    // RF codes end in random digits, dedup keys in hex or a bank reference: the last
    // byte spreads them evenly enough, and is the same in every process and version.
    key.bytes().last().map_or(0, |b| b as usize % LANES)
}

/// The credits, each in the lane of its RF code: in parallel on PostgreSQL, one after the
/// other on SQLite (one writer at a time). One report per lane.
pub(super) fn run_credit_lanes(
    pool: &Pool,
    conn: &mut DbConnection,
    run: &Run<'_>,
    by_lane: &[EntrySpool],
) -> Vec<Result<ImportReport, ImportError>> {
    let lanes = by_lane.len();
    let mut parts = Vec::new();
    std::thread::scope(|scope| {
        let mut here = Vec::new();
        let mut threads = Vec::new();
        for (lane, entries) in by_lane.iter().enumerate() {
            let lane_id = (lanes > 1).then_some(lane);
            // Lane 0 runs here; the others on connections of their own when the pool has
            // one to spare, else after it on this one.
            let own = (lane > 0)
                .then(|| pool.get_timeout(std::time::Duration::from_secs(1)).ok())
                .flatten();
            match own {
                Some(mut own) => {
                    threads.push(scope.spawn(move || run.lane(&mut own, lane_id, &[entries])))
                }
                None => here.push((lane_id, entries)),
            }
        }
        for (lane_id, entries) in here {
            parts.push(run.lane(conn, lane_id, &[entries]));
        }
        for thread in threads {
            parts.push(thread.join().unwrap_or_else(|_| {
                Err(ImportError::Storage(anyhow::anyhow!(
                    "an import lane panicked"
                )))
            }));
        }
    });
    parts
}

/// Imports of one brand take turns in a process: each holds the file's keys and a chunk
/// per lane in memory, and ten at once would hold ten times that for no gain, as their
/// lanes serialise on the same locks anyway. Other brands' imports run alongside.
/// (Across processes the lane locks keep imports correct; each process queues its own.)
static TURNS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<String, std::sync::Arc<futures_util::lock::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// The brand's turn to import (reading the file and applying it); the next one waits,
/// without holding a thread or a connection, until this is dropped.
pub async fn turn_of(brand_id: &str) -> ImportTurn {
    let queue = TURNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .entry(brand_id.to_owned())
        .or_default()
        .clone();
    ImportTurn {
        brand_id: brand_id.to_owned(),
        guard: Some(queue.lock_owned().await),
    }
}

/// An import's turn, of one brand: only [`turn_of`] makes one, and an upload is imported
/// only in its brand's turn ([`super::Importer`] holds it). When it ends the memory the
/// import used is handed back to the system: glibc keeps what a thread freed in that
/// thread's arena for reuse, and after a large import the service would otherwise stay at
/// its peak.
pub struct ImportTurn {
    brand_id: String,
    guard: Option<futures_util::lock::OwnedMutexGuard<()>>,
}

impl ImportTurn {
    /// The brand whose turn it is.
    pub fn brand_id(&self) -> &str {
        &self.brand_id
    }
}

impl Drop for ImportTurn {
    fn drop(&mut self) {
        self.guard.take();
        release_memory();
    }
}

/// Returns the heap's free memory to the system, every arena's (glibc only: other
/// allocators return it themselves, or have no such call).
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
