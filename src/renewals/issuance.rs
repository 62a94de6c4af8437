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

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::notify::{self, Notice};
use super::{release_coupon, RenewalState};
use crate::audit::{self, Actor, AuditEntry};
use crate::ca::{CertificateAuthority, Issued, Profile, Subject};
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

/// A renewal this worker holds the lease on.
#[derive(Debug, Clone)]
struct Claimed {
    id: String,
    kind: String,
    public_key: String,
    attempts: i32,
    /// The renewed certificate's status now: anything but active rejects the renewal.
    certificate_status: String,
    subject: Subject,
}

enum Outcome {
    Issued(Issued),
    Rejected(String),
    Error(String),
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
    let (token, claimed) = claim(conn, settings, now)?;
    if claimed.is_empty() {
        return Ok(BatchReport::default());
    }
    let claimed_in = started.elapsed();
    let outcomes = sign_all(ca, &claimed, settings, now);
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

type ClaimedRow = (String, String, String, i32, String, String, String, String);

/// The issuance queue now (for the metrics): renewals waiting (`queued`, including those
/// waiting for a retry) and being issued, and when the oldest waiting one was requested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queued: i64,
    pub issuing: i64,
    pub oldest_queued: Option<DateTime<Utc>>,
}

pub fn stats(conn: &mut DbConnection) -> QueryResult<QueueStats> {
    let queued = RenewalState::Queued.as_str();
    let issuing = RenewalState::Issuing.as_str();
    let counts: Vec<(String, i64)> = renewals::table
        .filter(renewals::status.eq_any([queued, issuing]))
        .group_by(renewals::status)
        .select((renewals::status, diesel::dsl::count_star()))
        .load(conn)?;
    let oldest: Option<NaiveDateTime> = renewals::table
        .filter(renewals::status.eq(queued))
        .select(diesel::dsl::min(renewals::created_at))
        .first(conn)?;
    Ok(QueueStats {
        queued: db::count_of(&counts, queued),
        issuing: db::count_of(&counts, issuing),
        oldest_queued: oldest.map(|t| t.and_utc()),
    })
}

fn claim(
    conn: &mut DbConnection,
    settings: &IssuanceSettings,
    now: DateTime<Utc>,
) -> QueryResult<(String, Vec<Claimed>)> {
    let now_naive = now.naive_utc();
    let token = Uuid::now_v7().to_string();
    let claimed = write_transaction(conn, |conn| {
        // Queued and due, or claimed by a worker whose lease ran out.
        let claimable = renewals::status
            .eq(RenewalState::Queued.as_str())
            .and(renewals::next_attempt_at.le(now_naive))
            .or(renewals::status
                .eq(RenewalState::Issuing.as_str())
                .and(renewals::claimed_until.lt(now_naive)));
        // Two queries rather than one with OR, so each walks its index and stops at the
        // limit instead of sorting every due row: first the taken-over ones (few), then
        // the queue in order.
        let abandoned = renewals::table
            .filter(renewals::status.eq(RenewalState::Issuing.as_str()))
            .filter(renewals::claimed_until.lt(now_naive))
            .select(renewals::id)
            .limit(settings.batch_size);
        let mut ids: Vec<String> = for_update_skip_locked!(conn, abandoned, |q, c| q.load(c))?;
        let due = renewals::table
            .filter(renewals::status.eq(RenewalState::Queued.as_str()))
            .filter(renewals::next_attempt_at.le(now_naive))
            .order((renewals::next_attempt_at.asc(), renewals::id.asc()))
            .select(renewals::id)
            .limit(settings.batch_size - ids.len() as i64);
        ids.extend(for_update_skip_locked!(conn, due, |q, c| q.load::<String>(c))?);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Still claimable at the update, so even without the row locks no renewal is
        // claimed twice; what this worker got is what carries its token.
        diesel::update(
            renewals::table
                .filter(renewals::id.eq_any(&ids))
                .filter(claimable),
        )
        .set((
            renewals::status.eq(RenewalState::Issuing.as_str()),
            renewals::claimed_until.eq((now + settings.lease).naive_utc()),
            renewals::claim_token.eq(&token),
            renewals::attempts.eq(renewals::attempts + 1),
        ))
        .execute(conn)?;
        renewals::table
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
            .load::<ClaimedRow>(conn)
    })?;
    Ok((
        token,
        claimed
            .into_iter()
            .map(
                |(id, kind, public_key, attempts, status, codice_fiscale, given_name, surname)| {
                    Claimed {
                        id,
                        kind,
                        public_key,
                        attempts,
                        certificate_status: status,
                        subject: Subject {
                            codice_fiscale,
                            given_name,
                            surname,
                        },
                    }
                },
            )
            .collect(),
    ))
}

fn sign_one(
    ca: &dyn CertificateAuthority,
    renewal: &Claimed,
    settings: &IssuanceSettings,
    now: DateTime<Utc>,
) -> Outcome {
    // Revoked (or superseded by another path) since the request: never sign.
    if renewal.certificate_status != CertificateStatus::Active.as_str() {
        return Outcome::Rejected(
            if renewal.certificate_status == CertificateStatus::Revoked.as_str() {
                "il certificato da rinnovare è stato revocato"
            } else {
                "il certificato da rinnovare non è più in uso"
            }
            .to_owned(),
        );
    }
    let profile = match CertificateKind::parse(&renewal.kind) {
        Some(CertificateKind::Signature) => Profile::Signature,
        Some(CertificateKind::Authentication) => Profile::Authentication,
        None => return Outcome::Error(format!("unknown kind {}", renewal.kind)),
    };
    let public_key = match base64::engine::general_purpose::STANDARD.decode(&renewal.public_key) {
        Ok(der) => der,
        Err(e) => return Outcome::Error(format!("stored public key: {e}")),
    };
    let not_after = now + Duration::days(settings.validity_days);
    match ca.issue(&renewal.subject, &public_key, profile, now, not_after) {
        Ok(issued) => Outcome::Issued(issued),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// Signs on `settings.signers` threads: signing is the CPU work of the batch.
fn sign_all(
    ca: &dyn CertificateAuthority,
    claimed: &[Claimed],
    settings: &IssuanceSettings,
    now: DateTime<Utc>,
) -> Vec<Outcome> {
    let per_thread = claimed.len().div_ceil(settings.signers.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = claimed
            .chunks(per_thread.max(1))
            .map(|chunk| {
                let handle = scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|renewal| sign_one(ca, renewal, settings, now))
                        .collect::<Vec<_>>()
                });
                (chunk.len(), handle)
            })
            .collect();
        // One outcome per renewal, in order, whatever happens to a thread.
        handles
            .into_iter()
            .flat_map(|(len, handle)| {
                handle.join().unwrap_or_else(|_| {
                    (0..len)
                        .map(|_| Outcome::Error("the signing thread panicked".into()))
                        .collect()
                })
            })
            .collect()
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
            record_issued_renewals(conn, token, now, &rows)?
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

        for (renewal, outcome) in claimed.iter().zip(outcomes) {
            // Only while this worker's claim holds.
            let mine = || {
                renewals::table
                    .filter(renewals::id.eq(&renewal.id))
                    .filter(renewals::status.eq(RenewalState::Issuing.as_str()))
                    .filter(renewals::claim_token.eq(token))
            };
            match outcome {
                Outcome::Issued(_) => {}
                Outcome::Rejected(reason) => {
                    if close(
                        conn,
                        &renewal.id,
                        token,
                        RenewalState::Rejected,
                        &reason,
                        now,
                    )? {
                        report.rejected += 1;
                    }
                }
                Outcome::Error(error) if renewal.attempts < settings.max_attempts => {
                    let retry_at =
                        now + crate::mail::outbox::backoff(settings.retry_base, renewal.attempts);
                    let stored = diesel::update(mine())
                        .set((
                            renewals::status.eq(RenewalState::Queued.as_str()),
                            renewals::next_attempt_at.eq(retry_at.naive_utc()),
                            renewals::claimed_until.eq(None::<NaiveDateTime>),
                            renewals::last_error.eq(Some(truncate(&error))),
                        ))
                        .execute(conn)?;
                    tracing::warn!(renewal = %renewal.id, attempts = renewal.attempts, %error, "issuance failed; will retry");
                    report.retrying += stored;
                }
                Outcome::Error(error) => {
                    tracing::error!(renewal = %renewal.id, attempts = renewal.attempts, %error, "issuance failed for good");
                    let reason =
                        "l'autorità di certificazione non ha potuto emettere il certificato";
                    diesel::update(mine())
                        .set(renewals::last_error.eq(Some(truncate(&error))))
                        .execute(conn)?;
                    if close(conn, &renewal.id, token, RenewalState::Failed, reason, now)? {
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(report)
}

fn truncate(error: &str) -> String {
    error.chars().take(1000).collect()
}

/// Moves a renewal being issued under `claim_token` to `rejected` or `failed`, releases
/// the coupon and queues the email. False if the lease was lost meanwhile (another
/// worker owns the renewal now).
fn close(
    conn: &mut DbConnection,
    renewal_id: &str,
    claim_token: &str,
    state: RenewalState,
    reason: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let closed = diesel::update(
        renewals::table
            .filter(renewals::id.eq(renewal_id))
            .filter(renewals::status.eq(RenewalState::Issuing.as_str()))
            .filter(renewals::claim_token.eq(claim_token)),
    )
    .set((
        renewals::status.eq(state.as_str()),
        renewals::closed_at.eq(Some(now.naive_utc())),
        renewals::claimed_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    if closed == 0 {
        return Ok(false);
    }
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
    Ok(true)
}

/// The worker: runs a batch every `interval`, at once again while batches come back full,
/// until the task is dropped.
pub async fn run(
    pool: crate::db::Pool,
    ca: std::sync::Arc<dyn CertificateAuthority>,
    settings: IssuanceSettings,
    interval: std::time::Duration,
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
        if !full {
            tokio::time::sleep(interval).await;
        }
    }
}

/// A certificate just signed for a renewal, to store.
struct IssuedRenewal<'a> {
    id: &'a str,
    pem: &'a str,
    serial_number: &'a str,
    issuer: &'a str,
    not_before: chrono::NaiveDateTime,
    not_after: chrono::NaiveDateTime,
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
fn record_issued_renewals(
    conn: &mut DbConnection,
    claim_token: &str,
    now: chrono::DateTime<chrono::Utc>,
    issued: &[IssuedRenewal<'_>],
) -> diesel::QueryResult<Vec<String>> {
    use diesel::sql_types::{Array, Text, Timestamp};
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    let now = now.naive_utc();
    db::per_backend(
        conn,
        |pg| {
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
        },
        |sqlite| {
            use crate::db::schema::renewals as r;
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
        },
    )
}
