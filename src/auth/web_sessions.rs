//! Browser sessions for the shop pages: a random token in an HttpOnly cookie, its SHA-256
//! in `web_sessions`. Server-side, so signing out (or an operator deleting the rows)
//! ends the session at once, unlike a self-contained token.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::tokens::{hash_secret_token, new_secret_token};
use super::users::{self, User, UserError};
use crate::db::schema::web_sessions;
use crate::db::{write_transaction, DbConnection};

/// A working day, and then some: a shop session does not outlive the evening.
pub const SESSION_HOURS: i64 = 12;

/// Starts a session for `user_id`; returns the token for the cookie. Each new session
/// sweeps the expired ones.
pub fn start(conn: &mut DbConnection, user_id: &str, now: DateTime<Utc>) -> QueryResult<String> {
    let (token, hash) = new_secret_token();
    write_transaction(conn, |conn| {
        diesel::delete(web_sessions::table.filter(web_sessions::expires_at.lt(now.naive_utc())))
            .execute(conn)?;
        diesel::insert_into(web_sessions::table)
            .values((
                web_sessions::token_hash.eq(&hash),
                web_sessions::user_id.eq(user_id),
                web_sessions::created_at.eq(now.naive_utc()),
                web_sessions::expires_at.eq((now + Duration::hours(SESSION_HOURS)).naive_utc()),
            ))
            .execute(conn)
    })?;
    Ok(token)
}

/// The user of a live session, if the token names one and the user is not disabled.
pub fn user_of(
    conn: &mut DbConnection,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<User>, UserError> {
    let user_id: Option<String> = web_sessions::table
        .filter(web_sessions::token_hash.eq(hash_secret_token(token)))
        .filter(web_sessions::expires_at.gt(now.naive_utc()))
        .select(web_sessions::user_id)
        .first(conn)
        .optional()
        .map_err(|e| UserError::Storage(e.into()))?;
    match user_id {
        Some(id) => Ok(users::find(conn, &id)?.filter(|u| u.disabled_at.is_none())),
        None => Ok(None),
    }
}

pub fn end(conn: &mut DbConnection, token: &str) -> QueryResult<()> {
    diesel::delete(
        web_sessions::table.filter(web_sessions::token_hash.eq(hash_secret_token(token))),
    )
    .execute(conn)?;
    Ok(())
}

/// Ends every browser session of the user but `keep` (the token of the caller's own, when
/// it goes on). The number of sessions ended.
pub fn end_all_of_user(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
) -> QueryResult<usize> {
    let mut ended = diesel::delete(web_sessions::table)
        .filter(web_sessions::user_id.eq(user_id))
        .into_boxed();
    if let Some(token) = keep {
        ended = ended.filter(web_sessions::token_hash.ne(hash_secret_token(token)));
    }
    ended.execute(conn)
}

/// The key of the session-bound CSRF tokens, derived from the server secret so every
/// process agrees on it, and kept apart from the secret's other uses.
pub struct CsrfKey(Vec<u8>);

impl CsrfKey {
    pub fn derive(secret: &[u8]) -> Self {
        Self(hmac_sha256(secret, b"rinnovo web session csrf key").to_vec())
    }

    /// The token of the session whose cookie is `session`.
    pub fn token_for(&self, session: &str) -> String {
        crate::secrets::hex(&hmac_sha256(&self.0, session.as_bytes()))
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}
