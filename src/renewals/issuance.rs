//! The issuance batch: claims queued renewals, re-checks that the certificate they renew
//! is still active, signs the new certificates through the CA and stores them.
//!
//! Claiming takes a lease: the rows move to `issuing` with a lease deadline and a fresh
//! claim token, in a transaction that on PostgreSQL locks the candidates with
//! `FOR UPDATE SKIP LOCKED` (concurrent workers pick different rows without waiting) and
//! on SQLite is immediate (workers take turns). A worker that dies mid-batch leaves rows
//! in `issuing`; once the lease runs out, another worker claims them again. Results are
//! stored only where the claim token still matches, so a worker that lost its lease
//! (paused past the deadline) stores nothing: each renewal gets one certificate.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::notify::{self, Notice};
use super::signing::{sign_all, Claimed, Outcome};
use super::state::{self, IssuedRenewal};
use super::{release_coupon, RenewalState};
use crate::audit::{self, Actor, AuditEntry};
use crate::ca::{CertificateAuthority, Issued, Subject};
use crate::db::schema::{certificates, devices, holders, renewals};
use crate::db::{self, write_transaction, DbConnection};
use crate::registry::{CertificateKind, CertificateStatus};

#[derive(Debug, Clone)]
pub struct IssuanceSettings {
    /// Renewals claimed at once.
    pub batch_size: i64,
    /// How long a claim lasts before another worker may take the renewal over.
    pub lease: Duration,
    /// Attempts before a renewal is given up as `failed`.
    pub max_attempts: i32,
    /// First retry delay; it doubles with each attempt.
    pub retry_base: Duration,
    /// Validity of the certificates issued.
    pub validity_days: i64,
    /// Threads signing in parallel.
    pub signers: usize,
}

impl Default for IssuanceSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            lease: Duration::minutes(5),
            max_attempts: 5,
            retry_base: Duration::minutes(1),
            validity_days: 3 * 365,
            signers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BatchReport {
    pub claimed: usize,
    pub issued: usize,
    pub rejected: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Claims, signs and stores one batch. Returns what happened; `claimed` is 0 when the
/// queue is empty.
pub fn run_batch(
    conn: &mut DbConnection,
    ca: &dyn CertificateAuthority,
    settings: &IssuanceSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<BatchReport> {
    let started = std::time::Instant::now();
    let Some((token, claimed)) = claim(conn, settings, now)? else {
        return Ok(BatchReport::default());
    };
    if claimed.is_empty() {
        return Ok(BatchReport::default());
    }
    let claimed_in = started.elapsed();
    let validity = Duration::days(settings.validity_days);
    let outcomes = sign_all(ca, &claimed, settings.signers, validity, now);
    let signed_in = started.elapsed() - claimed_in;
    let report = store(conn, &token, &claimed, outcomes, settings, now)?;
    tracing::debug!(
        claimed = claimed.len(),
        claim_ms = claimed_in.as_millis() as u64,
        sign_ms = signed_in.as_millis() as u64,
        store_ms = (started.elapsed() - claimed_in - signed_in).as_millis() as u64,
        "issuance batch timings"
    );
    Ok(report)
}

impl std::ops::AddAssign for BatchReport {
    fn add_assign(&mut self, other: Self) {
        self.claimed += other.claimed;
        self.issued += other.issued;
        self.rejected += other.rejected;
        self.retrying += other.retrying;
        self.failed += other.failed;
    }
}

/// Runs batches until the queue holds nothing due: what `rinnovo issue-batch` does. Two
/// loops run side by side on their own connections, so one signs (all cores) while the
/// other claims and stores (the database): the claims never overlap.
pub fn drain(
    pool: &crate::db::Pool,
    ca: &dyn CertificateAuthority,
    settings: &IssuanceSettings,
) -> anyhow::Result<BatchReport> {
    std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(move || -> anyhow::Result<BatchReport> {
                    let mut conn = pool.get()?;
                    let mut total = BatchReport::default();
                    loop {
                        let report = run_batch(&mut conn, ca, settings, Utc::now())?;
                        total += report;
                        if report.claimed < settings.batch_size as usize {
                            return Ok(total);
                        }
                    }
                })
            })
            .collect();
        let mut total = BatchReport::default();
        for lane in lanes {
            total += lane
                .join()
                .map_err(|_| anyhow::anyhow!("an issuance lane panicked"))??;
        }
        Ok(total)
    })
}

/// The issuance queue now (for the metrics): renewals waiting (`queued`, including those
/// waiting for a retry) and being issued, and when the oldest waiting one was requested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued: i64,
    pub issuing: i64,
    pub oldest_queued: Option<DateTime<Utc>>,
}

pub fn stats(conn: &mut DbConnection) -> QueryResult<QueueStats> {
    let (queued, issuing) = (RenewalState::Queued, RenewalState::Issuing);
    let counts: Vec<(RenewalState, i64)> = renewals::table
        .filter(renewals::status.eq_any([queued.as_str(), issuing.as_str()]))
        .group_by(renewals::status)
        .select((renewals::status, diesel::dsl::count_star()))
        .load(conn)?;
    let oldest: Option<NaiveDateTime> = renewals::table
        .filter(renewals::status.eq(queued.as_str()))
        .select(diesel::dsl::min(renewals::created_at))
        .first(conn)?;
    Ok(QueueStats {
        queued: db::count_of(&counts, queued),
        issuing: db::count_of(&counts, issuing),
        oldest_queued: oldest.map(|t| t.and_utc()),
    })
}

/// A claimed renewal with what signing it needs, read under the claim token.
#[derive(Queryable)]
struct ClaimedRow {
    id: String,
    kind: CertificateKind,
    public_key: String,
    attempts: i32,
    certificate_status: CertificateStatus,
    codice_fiscale: String,
    given_name: String,
    surname: String,
}

/// Claims a batch (see [`state::claim`]) and reads what signing it needs; `None` when
/// nothing was due.
fn claim(
    conn: &mut DbConnection,
    settings: &IssuanceSettings,
    now: DateTime<Utc>,
) -> QueryResult<Option<(String, Vec<Claimed>)>> {
    write_transaction(conn, |conn| {
        let Some(token) = state::claim(conn, settings.batch_size, now + settings.lease, now)?
        else {
            return Ok(None);
        };
        let rows: Vec<ClaimedRow> = renewals::table
            .inner_join(certificates::table.on(certificates::id.eq(renewals::certificate_id)))
            .inner_join(devices::table.inner_join(holders::table))
            .filter(renewals::claim_token.eq(&token))
            .order(renewals::id.asc())
            .select((
                renewals::id,
                renewals::kind,
                renewals::public_key,
                renewals::attempts,
                certificates::status,
                holders::codice_fiscale,
                holders::given_name,
                holders::surname,
            ))
            .load(conn)?;
        let claimed = rows
            .into_iter()
            .map(|row| Claimed {
                id: row.id,
                kind: row.kind,
                public_key: row.public_key,
                attempts: row.attempts,
                certificate_status: row.certificate_status,
                subject: Subject {
                    codice_fiscale: row.codice_fiscale,
                    given_name: row.given_name,
                    surname: row.surname,
                },
            })
            .collect();
        Ok(Some((token, claimed)))
    })
}

fn store(
    conn: &mut DbConnection,
    token: &str,
    claimed: &[Claimed],
    outcomes: Vec<Outcome>,
    settings: &IssuanceSettings,
    now: DateTime<Utc>,
) -> anyhow::Result<BatchReport> {
    let mut report = BatchReport {
        claimed: claimed.len(),
        ..BatchReport::default()
    };
    write_transaction(conn, |conn| -> anyhow::Result<()> {
        // Issued certificates, the bulk of any batch, are stored in one statement.
        let issued: Vec<(&Claimed, &Issued)> = claimed
            .iter()
            .zip(&outcomes)
            .filter_map(|(renewal, outcome)| match outcome {
                Outcome::Issued(issued) => Some((renewal, issued)),
                _ => None,
            })
            .collect();
        let rows: Vec<IssuedRenewal<'_>> = issued
            .iter()
            .map(|(renewal, issued)| IssuedRenewal {
                id: &renewal.id,
                pem: &issued.pem,
                serial_number: &issued.serial_number,
                issuer: &issued.issuer,
                not_before: issued.not_before.naive_utc(),
                not_after: issued.not_after.naive_utc(),
            })
            .collect();
        let stored: std::collections::HashSet<String> =
            state::record_issued(conn, token, now, &rows)?
                .into_iter()
                .collect();
        report.issued = stored.len();
        if stored.len() < rows.len() {
            tracing::warn!(
                lost = rows.len() - stored.len(),
                "lease lost: the certificates signed for renewals another worker took over are discarded"
            );
        }
        let entries = issued
            .iter()
            .filter(|(renewal, _)| stored.contains(&renewal.id))
            .map(|(renewal, issued)| AuditEntry {
                brand_id: None,
                actor: &Actor::System,
                action: "renewal.issued",
                subject_type: "renewal",
                subject_id: &renewal.id,
                details: json!({
                    "serial_number": issued.serial_number,
                    "issuer": issued.issuer,
                }),
            })
            .collect();
        audit::record_all(conn, entries, now)?;
        // Only the renewals this worker moved to `issued` (under its claim, in this
        // transaction): one email per issued renewal, never a second from a worker whose
        // lease was taken over.
        for (renewal, issued) in issued.iter().filter(|(r, _)| stored.contains(&r.id)) {
            notify::enqueue(
                conn,
                &renewal.id,
                Notice::Issued {
                    not_after: issued.not_after,
                },
                now,
            )?;
        }

        for (renewal, outcome) in claimed.iter().zip(outcomes) {
            match outcome {
                Outcome::Issued(_) => {}
                Outcome::Rejected(reason) => {
                    if state::reject(conn, &renewal.id, token, now)? {
                        give_up(conn, &renewal.id, RenewalState::Rejected, &reason, now)?;
                        report.rejected += 1;
                    }
                }
                Outcome::Error(error) if renewal.attempts < settings.max_attempts => {
                    let retry_at =
                        now + crate::workers::backoff(settings.retry_base, renewal.attempts);
                    let moved = state::retry_later(conn, &renewal.id, token, retry_at, &error)?;
                    tracing::warn!(renewal = %renewal.id, attempts = renewal.attempts, %error, "issuance failed; will retry");
                    report.retrying += usize::from(moved);
                }
                Outcome::Error(error) => {
                    tracing::error!(renewal = %renewal.id, attempts = renewal.attempts, %error, "issuance failed for good");
                    let reason =
                        "l'autorità di certificazione non ha potuto emettere il certificato";
                    if state::fail(conn, &renewal.id, token, &error, now)? {
                        give_up(conn, &renewal.id, RenewalState::Failed, reason, now)?;
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(report)
}

/// After a renewal moved to `rejected` or `failed`: releases the coupon and queues the
/// email.
fn give_up(
    conn: &mut DbConnection,
    renewal_id: &str,
    state: RenewalState,
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let coupon_id: String = renewals::table
        .filter(renewals::id.eq(renewal_id))
        .select(renewals::coupon_id)
        .first(conn)?;
    let coupon_released = release_coupon(conn, &coupon_id, now)?;
    audit::record(
        conn,
        AuditEntry {
            brand_id: None,
            actor: &Actor::System,
            action: if state == RenewalState::Rejected {
                "renewal.rejected"
            } else {
                "renewal.failed"
            },
            subject_type: "renewal",
            subject_id: renewal_id,
            details: json!({ "reason": reason, "coupon_released": coupon_released }),
        },
        now,
    )?;
    notify::enqueue(
        conn,
        renewal_id,
        Notice::GivenUp {
            reason,
            coupon_released,
        },
        now,
    )?;
    Ok(())
}

/// The worker: runs a batch every `interval`, again after a `pause` while batches come back full,
/// until the task is dropped.
pub async fn run(
    pool: crate::db::Pool,
    ca: std::sync::Arc<dyn CertificateAuthority>,
    settings: IssuanceSettings,
    interval: std::time::Duration,
    pause: std::time::Duration,
) {
    loop {
        let (pool, ca, batch) = (pool.clone(), ca.clone(), settings.clone());
        let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<BatchReport> {
            run_batch(&mut *pool.get()?, ca.as_ref(), &batch, Utc::now())
        })
        .await;
        let full = match outcome {
            Ok(Ok(report)) => {
                if report.claimed > 0 {
                    tracing::info!(?report, "issuance batch");
                }
                report.claimed as i64 >= settings.batch_size
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "issuance batch: will retry");
                false
            }
            Err(error) => {
                tracing::warn!(error = %error, "issuance task failed");
                false
            }
        };
        // After a full batch there is more to do: a short pause first, so that the next
        // claim does not take the database (SQLite's writer lock) straight back from
        // the requests waiting for it.
        tokio::time::sleep(if full { pause } else { interval }).await;
    }
}
