//! The only place that writes the `renewals` table: each move of the state machine
//! `queued` → `issuing` → `issued` → `installed`, `queued`/`issuing` → `rejected` |
//! `failed` (see [`RenewalState`]) is one named function here. Moves made by the issuance
//! worker hold only while its claim does: they match the claim token, so a worker that
//! lost its lease changes nothing.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::{Eq, Filter};
use diesel::prelude::*;
use uuid::Uuid;

use super::RenewalState;
use crate::db::schema::renewals;
use crate::db::{self, DbConnection};
use crate::registry::CertificateKind;

/// A renewal to queue, as its request was checked.
pub struct NewRenewal<'a> {
    pub brand_id: &'a str,
    pub device_id: &'a str,
    pub certificate_id: &'a str,
    pub kind: CertificateKind,
    pub coupon_id: &'a str,
    pub csr_pem: &'a str,
    /// DER SubjectPublicKeyInfo, base64: what the CA certifies.
    pub public_key: &'a str,
    pub public_key_sha256: &'a str,
}

/// Queues a renewal, due at once; returns its id. Fails with a unique violation when the
/// certificate already has an open renewal (one committed concurrently).
pub fn queue(
    conn: &mut DbConnection,
    renewal: &NewRenewal<'_>,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(renewals::table)
        .values((
            renewals::id.eq(&id),
            renewals::brand_id.eq(renewal.brand_id),
            renewals::device_id.eq(renewal.device_id),
            renewals::certificate_id.eq(renewal.certificate_id),
            renewals::kind.eq(renewal.kind.as_str()),
            renewals::coupon_id.eq(renewal.coupon_id),
            renewals::status.eq(RenewalState::Queued.as_str()),
            renewals::csr_pem.eq(renewal.csr_pem),
            renewals::public_key.eq(renewal.public_key),
            renewals::public_key_sha256.eq(renewal.public_key_sha256),
            renewals::next_attempt_at.eq(now.naive_utc()),
            renewals::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Claims up to `limit` renewals for an issuance worker, `queued` (and due) → `issuing`
/// until `lease_until`, under a fresh claim token; returns the token, or `None` when
/// nothing was due. Renewals whose
/// worker's lease ran out are claimed again, first. Run inside a write transaction: on
/// PostgreSQL the candidates are locked `FOR UPDATE SKIP LOCKED`, so concurrent workers
/// pick different rows without waiting.
pub fn claim(
    conn: &mut DbConnection,
    limit: i64,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<Option<String>> {
    let now = now.naive_utc();
    let token = Uuid::now_v7().to_string();
    let queued = RenewalState::Queued.as_str();
    let issuing = RenewalState::Issuing.as_str();
    // Queued and due, or claimed by a worker whose lease ran out.
    let claimable = renewals::status
        .eq(queued)
        .and(renewals::next_attempt_at.le(now))
        .or(renewals::status
            .eq(issuing)
            .and(renewals::claimed_until.lt(now)));
    // Two queries rather than one with OR, so each walks its index and stops at the
    // limit instead of sorting every due row: first the taken-over ones (few), then
    // the queue in order.
    let abandoned = renewals::table
        .filter(renewals::status.eq(issuing))
        .filter(renewals::claimed_until.lt(now))
        .select(renewals::id)
        .limit(limit);
    let mut ids: Vec<String> = for_update_skip_locked!(conn, abandoned, |q, c| q.load(c))?;
    let due = renewals::table
        .filter(renewals::status.eq(queued))
        .filter(renewals::next_attempt_at.le(now))
        .order((renewals::next_attempt_at.asc(), renewals::id.asc()))
        .select(renewals::id)
        .limit(limit - ids.len() as i64);
    ids.extend(for_update_skip_locked!(conn, due, |q, c| q.load::<String>(c))?);
    if ids.is_empty() {
        return Ok(None);
    }
    // Still claimable at the update, so even without the row locks no renewal is
    // claimed twice; what this worker got is what carries its token.
    diesel::update(
        renewals::table
            .filter(renewals::id.eq_any(&ids))
            .filter(claimable),
    )
    .set((
        renewals::status.eq(issuing),
        renewals::claimed_until.eq(lease_until.naive_utc()),
        renewals::claim_token.eq(&token),
        renewals::attempts.eq(renewals::attempts + 1),
    ))
    .execute(conn)?;
    Ok(Some(token))
}

/// A certificate just signed for a renewal, to store.
pub struct IssuedRenewal<'a> {
    pub id: &'a str,
    pub pem: &'a str,
    pub serial_number: &'a str,
    pub issuer: &'a str,
    pub not_before: NaiveDateTime,
    pub not_after: NaiveDateTime,
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
pub fn record_issued(
    conn: &mut DbConnection,
    claim_token: &str,
    now: DateTime<Utc>,
    issued: &[IssuedRenewal<'_>],
) -> QueryResult<Vec<String>> {
    use diesel::sql_types::{Array, Text, Timestamp};
    let now = now.naive_utc();
    let (issuing, issued_state) = (
        RenewalState::Issuing.as_str(),
        RenewalState::Issued.as_str(),
    );
    db::per_backend(
        conn,
        |pg| {
            let stored: Vec<StoredId> = diesel::sql_query(
                "UPDATE renewals AS r SET status = $9, certificate_pem = v.pem,
                     issued_serial_number = v.serial, issued_issuer = v.issuer,
                     issued_not_before = v.not_before, issued_not_after = v.not_after,
                     issued_at = $1, claimed_until = NULL, last_error = NULL
                 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],
                             $6::timestamp[], $7::timestamp[])
                     AS v(id, pem, serial, issuer, not_before, not_after)
                 WHERE r.id = v.id AND r.status = $10 AND r.claim_token = $8
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
            .bind::<Text, _>(issued_state)
            .bind::<Text, _>(issuing)
            .load(pg)?;
            Ok(stored.into_iter().map(|s| s.id).collect())
        },
        |sqlite| {
            let mut stored = Vec::with_capacity(issued.len());
            for renewal in issued {
                let updated = diesel::update(claimed(renewal.id, claim_token))
                    .set((
                        renewals::status.eq(issued_state),
                        renewals::certificate_pem.eq(renewal.pem),
                        renewals::issued_serial_number.eq(renewal.serial_number),
                        renewals::issued_issuer.eq(renewal.issuer),
                        renewals::issued_not_before.eq(renewal.not_before),
                        renewals::issued_not_after.eq(renewal.not_after),
                        renewals::issued_at.eq(now),
                        renewals::claimed_until.eq(None::<NaiveDateTime>),
                        renewals::last_error.eq(None::<String>),
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

/// The renewal with an id, while it is `issuing` under a claim token.
type ClaimedRenewal<'a> = Filter<
    Filter<Filter<renewals::table, Eq<renewals::id, &'a str>>, Eq<renewals::status, &'static str>>,
    Eq<renewals::claim_token, &'a str>,
>;

/// The renewal `renewal_id`, while it is `issuing` under `claim_token`.
fn claimed<'a>(renewal_id: &'a str, claim_token: &'a str) -> ClaimedRenewal<'a> {
    renewals::table
        .filter(renewals::id.eq(renewal_id))
        .filter(renewals::status.eq(RenewalState::Issuing.as_str()))
        .filter(renewals::claim_token.eq(claim_token))
}

/// The CA failed this time: `issuing` → `queued` again, due at `retry_at`. False if the
/// claim was lost meanwhile.
pub fn retry_later(
    conn: &mut DbConnection,
    renewal_id: &str,
    claim_token: &str,
    retry_at: DateTime<Utc>,
    error: &str,
) -> QueryResult<bool> {
    let moved = diesel::update(claimed(renewal_id, claim_token))
        .set((
            renewals::status.eq(RenewalState::Queued.as_str()),
            renewals::next_attempt_at.eq(retry_at.naive_utc()),
            renewals::claimed_until.eq(None::<NaiveDateTime>),
            renewals::last_error.eq(Some(truncate(error))),
        ))
        .execute(conn)?;
    Ok(moved == 1)
}

/// The certificate it renews is no longer active: `issuing` → `rejected`. False if the
/// claim was lost meanwhile.
pub fn reject(
    conn: &mut DbConnection,
    renewal_id: &str,
    claim_token: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    close_claimed(
        conn,
        renewal_id,
        claim_token,
        RenewalState::Rejected,
        None,
        now,
    )
}

/// The CA kept failing, the last attempt with `error`: `issuing` → `failed`. False if
/// the claim was lost meanwhile.
pub fn fail(
    conn: &mut DbConnection,
    renewal_id: &str,
    claim_token: &str,
    error: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    close_claimed(
        conn,
        renewal_id,
        claim_token,
        RenewalState::Failed,
        Some(error),
        now,
    )
}

/// `issuing` → `state`, a final one, releasing the claim; `error` (if any) is kept as
/// the last one, otherwise the last error stays as it was.
fn close_claimed(
    conn: &mut DbConnection,
    renewal_id: &str,
    claim_token: &str,
    state: RenewalState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let moved = diesel::update(claimed(renewal_id, claim_token))
        .set((
            renewals::status.eq(state.as_str()),
            renewals::closed_at.eq(Some(now.naive_utc())),
            renewals::claimed_until.eq(None::<NaiveDateTime>),
            error.map(|error| renewals::last_error.eq(Some(truncate(error)))),
        ))
        .execute(conn)?;
    Ok(moved == 1)
}

/// The CA's errors can be long; the renewal keeps their start.
fn truncate(error: &str) -> String {
    error.chars().take(1000).collect()
}

/// The agent confirmed the installation: `issued` → `installed`. False if it was not
/// `issued` (a concurrent confirmation got there first).
pub fn install(conn: &mut DbConnection, renewal_id: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    let moved = diesel::update(
        renewals::table
            .filter(renewals::id.eq(renewal_id))
            .filter(renewals::status.eq(RenewalState::Issued.as_str())),
    )
    .set((
        renewals::status.eq(RenewalState::Installed.as_str()),
        renewals::installed_at.eq(Some(now.naive_utc())),
        renewals::closed_at.eq(Some(now.naive_utc())),
    ))
    .execute(conn)?;
    Ok(moved == 1)
}

/// Records the registry's id of the certificate an installed renewal put on the device.
pub fn link_new_certificate(
    conn: &mut DbConnection,
    renewal_id: &str,
    new_certificate_id: &str,
) -> QueryResult<()> {
    diesel::update(renewals::table.filter(renewals::id.eq(renewal_id)))
        .set(renewals::new_certificate_id.eq(Some(new_certificate_id)))
        .execute(conn)?;
    Ok(())
}
