//! Idempotent requests: the first successful answer to an `Idempotency-Key` is stored in
//! the same transaction as the change it reports, so a retry (a lost connection, a
//! double click) gets that answer again instead of a second order. The same key with a
//! different request is refused. Failed attempts are not stored: after "insufficient
//! funds" and a top-up, the same key may try again.
//!
//! Two concurrent requests with one key: both may do the work, but only one can store the
//! key; the other's transaction fails on the unique key, rolls back (its order with it)
//! and replays the stored answer.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sha2::{Digest, Sha256};

use crate::db::schema::idempotency_keys;
use crate::db::{write_transaction, DbConnection};
use crate::secrets::hex;
use crate::validation::Rule;

/// 1 to 255 visible ASCII characters (a UUID is typical).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the Idempotency-Key header must be 1 to 255 visible ASCII characters (e.g. a UUID)")]
pub struct IdempotencyKeyError;

impl Rule for IdempotencyKeyError {
    fn rule(&self) -> &'static str {
        "idempotency_key"
    }
}

impl IdempotencyKey {
    pub fn parse(input: &str) -> Result<Self, IdempotencyKeyError> {
        let ok = (1..=255).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(input.to_owned()))
            .ok_or(IdempotencyKeyError)
    }
}

/// A fingerprint of the request, to tell a retry from a different request.
pub fn fingerprint(canonical_request: &str) -> String {
    hex(&Sha256::digest(canonical_request.as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

#[derive(Debug)]
pub enum IdempotencyError<E> {
    /// The key was used before for a different request.
    KeyReused,
    Work(E),
}

enum Failure<E> {
    Work(E),
    Race,
}

impl<E: From<DieselError>> From<DieselError> for Failure<E> {
    fn from(error: DieselError) -> Self {
        Failure::Work(E::from(error))
    }
}

fn saved(
    conn: &mut DbConnection,
    user_id: &str,
    key: &IdempotencyKey,
) -> QueryResult<Option<(String, i32, String)>> {
    idempotency_keys::table
        .filter(idempotency_keys::user_id.eq(user_id))
        .filter(idempotency_keys::idempotency_key.eq(&key.0))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ))
        .first(conn)
        .optional()
}

fn replay<E>(
    found: (String, i32, String),
    request_hash: &str,
) -> Result<Outcome, IdempotencyError<E>> {
    let (hash, status, body) = found;
    if hash != request_hash {
        return Err(IdempotencyError::KeyReused);
    }
    Ok(Outcome {
        status: status as u16,
        body,
        replayed: true,
    })
}

/// Runs `work` (which returns status and body) once per (user, key).
pub fn run<E, F>(
    conn: &mut DbConnection,
    user_id: &str,
    key: &IdempotencyKey,
    request_hash: &str,
    now: DateTime<Utc>,
    work: F,
) -> Result<Outcome, IdempotencyError<E>>
where
    E: From<DieselError>,
    F: FnOnce(&mut DbConnection) -> Result<(u16, String), E>,
{
    let stored = |conn: &mut DbConnection| {
        saved(conn, user_id, key).map_err(|e| IdempotencyError::Work(E::from(e)))
    };
    if let Some(found) = stored(conn)? {
        return replay(found, request_hash);
    }
    let result = write_transaction(conn, |conn| -> Result<Outcome, Failure<E>> {
        let (status, body) = work(conn).map_err(Failure::Work)?;
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(user_id),
                idempotency_keys::idempotency_key.eq(&key.0),
                idempotency_keys::request_hash.eq(request_hash),
                idempotency_keys::response_status.eq(status as i32),
                idempotency_keys::response_body.eq(&body),
                idempotency_keys::created_at.eq(now.naive_utc()),
            ))
            .execute(conn);
        match inserted {
            Ok(_) => Ok(Outcome {
                status,
                body,
                replayed: false,
            }),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(Failure::Race)
            }
            Err(other) => Err(other.into()),
        }
    });
    match result {
        Ok(outcome) => Ok(outcome),
        Err(Failure::Work(e)) => Err(IdempotencyError::Work(e)),
        Err(Failure::Race) => match stored(conn)? {
            Some(found) => replay(found, request_hash),
            None => Err(IdempotencyError::Work(E::from(
                DieselError::RollbackTransaction,
            ))),
        },
    }
}
