//! Requests that create something the caller pays for (orders, top-ups) carry an
//! `Idempotency-Key`: a retry gets the first answer again instead of a second purchase.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::problem::kinds;
use super::{ApiError, State};
use crate::db::DbConnection;
use crate::idempotency::{self, IdempotencyError, IdempotencyKey};

/// The `Idempotency-Key` header, required, once: with two keys a retry could match either.
pub fn key_from(request: &HttpRequest) -> Result<IdempotencyKey, ApiError> {
    if request
        .headers()
        .get_all("Idempotency-Key")
        .nth(1)
        .is_some()
    {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "single_header",
            "send one Idempotency-Key header, not several",
        ));
    }
    let header = request
        .headers()
        .get("Idempotency-Key")
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "required",
                "send an Idempotency-Key header (e.g. a new UUID per request) so a retry cannot buy twice",
            )
        })?
        .to_str()
        .unwrap_or_default();
    IdempotencyKey::parse(header)
        .map_err(|e| ApiError::invalid_field("Idempotency-Key", "idempotency_key", e.to_string()))
}

/// A fingerprint of the request body, to tell a retry from a different request.
pub fn fingerprint(body: &impl Serialize) -> Result<String, ApiError> {
    Ok(idempotency::fingerprint(
        &serde_json::to_string(body).map_err(|e| ApiError::Unexpected(e.into()))?,
    ))
}

/// The answer of [`run`].
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

/// The response of an answer.
pub fn reply(answer: Answer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::CREATED);
    let mut response = HttpResponse::build(status);
    response.content_type("application/json");
    if answer.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    response.body(answer.body)
}

/// Runs `work` once per (user, key) and gives back what it returned (status, JSON body),
/// or the stored answer of the first request with this key; the caller may add what
/// happens after the transaction (a card payment's page) before it [`reply`]s.
pub async fn run<F>(
    state: &State,
    user_id: String,
    key: IdempotencyKey,
    fingerprint: String,
    work: F,
) -> Result<Answer, ApiError>
where
    F: FnOnce(&mut DbConnection, DateTime<Utc>) -> Result<(u16, String), ApiError> + Send + 'static,
{
    let outcome = state
        .with_conn(move |conn| {
            let now = Utc::now();
            match idempotency::run(conn, &user_id, &key, &fingerprint, now, |conn| {
                work(conn, now)
            }) {
                Ok(outcome) => Ok(outcome),
                Err(IdempotencyError::KeyReused) => Err(ApiError::refused(
                    kinds::IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was already used for a different request",
                )),
                Err(IdempotencyError::Work(e)) => Err(e),
            }
        })
        .await?;
    Ok(Answer {
        status: outcome.status,
        body: outcome.body,
        replayed: outcome.replayed,
    })
}
