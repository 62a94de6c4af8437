//! Sign-in, refresh and sign-out.
//!
//! Sign-in runs in three steps so that no database connection is held while argon2
//! works: [`start_login`] (throttle, find the user), [`super::password::verify`] on a
//! blocking thread, [`finish_login`] (close the attempt, issue tokens).
//!
//! Refresh tokens rotate: each is good for one refresh, which returns the next one of the
//! same family. A token used a second time means it was copied; the whole family is
//! revoked, and whoever holds any of its tokens must sign in again.
//!
//! A family is a sign-in: the access tokens issued with it name it (`sid`), and are
//! accepted only while it is not revoked ([`is_live`]). So ending a family (sign-out,
//! reuse, a password change, signing out everywhere) ends its access tokens at once, not
//! up to 15 minutes later.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::throttle::{self, Attempt, Throttled};
use super::users::{self, User, UserError};
use super::TokenIssuer;
use crate::db::schema::{refresh_tokens, users as users_table};
use crate::db::{write_transaction, DbConnection};

pub const REFRESH_TOKEN_DAYS: i64 = 30;

#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub expires_in_seconds: i64,
    pub refresh_token: String,
    pub user: User,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum SessionError {
        #[error("too many failed sign-ins; retry in {} seconds", .0.retry_after_seconds)]
        Throttled(Throttled),
        #[error("email or password is wrong")]
        InvalidCredentials,
        #[error("the refresh token is not valid; sign in again")]
        InvalidRefreshToken,
        /// The password was right, but an operator disabled the account. Told only after the
        /// password matched, so it tells a guesser nothing.
        #[error("this account has been disabled")]
        AccountDisabled,
    }
    storage from diesel::result::Error, UserError
}

pub struct LoginCandidate {
    attempt: Attempt,
    user: Option<User>,
    /// The stored hash, or `None` for an unknown email (verified against a dummy).
    pub password_hash: Option<String>,
}

pub fn start_login(
    conn: &mut DbConnection,
    brand: &str,
    email_as_typed: &str,
    client_address: &str,
    now: DateTime<Utc>,
) -> Result<LoginCandidate, SessionError> {
    let key = throttle::account_key(brand, email_as_typed);
    let attempt =
        throttle::begin(conn, &key, client_address, now)?.map_err(SessionError::Throttled)?;
    let found = users::find_for_login(conn, brand, email_as_typed)?;
    let (user, password_hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    Ok(LoginCandidate {
        attempt,
        user,
        password_hash,
    })
}

pub fn finish_login(
    conn: &mut DbConnection,
    tokens: &TokenIssuer,
    candidate: LoginCandidate,
    password_matches: bool,
    now: DateTime<Utc>,
) -> Result<Session, SessionError> {
    let user = close_attempt(conn, candidate, password_matches, now)?;
    let family = Uuid::now_v7().to_string();
    new_session(conn, tokens, user, &family, now)
}

/// Records the attempt's outcome for the throttle: the user if the password matched.
/// The API then issues tokens; the shop pages a browser session.
pub fn close_attempt(
    conn: &mut DbConnection,
    candidate: LoginCandidate,
    password_matches: bool,
    now: DateTime<Utc>,
) -> Result<User, SessionError> {
    match candidate.user {
        Some(user) if password_matches => {
            throttle::succeeded(conn, &candidate.attempt)?;
            match user.disabled_at {
                Some(_) => Err(SessionError::AccountDisabled),
                None => Ok(user),
            }
        }
        _ => {
            throttle::failed(conn, now)?;
            Err(SessionError::InvalidCredentials)
        }
    }
}

fn new_session(
    conn: &mut DbConnection,
    tokens: &TokenIssuer,
    user: User,
    family: &str,
    now: DateTime<Utc>,
) -> Result<Session, SessionError> {
    let (refresh_token, hash) = super::tokens::new_secret_token();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(Uuid::now_v7().to_string()),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::user_id.eq(&user.id),
            refresh_tokens::token_hash.eq(&hash),
            refresh_tokens::created_at.eq(now.naive_utc()),
            refresh_tokens::expires_at.eq((now + Duration::days(REFRESH_TOKEN_DAYS)).naive_utc()),
        ))
        .execute(conn)?;
    Ok(Session {
        access_token: tokens.issue_access(&user.id, &user.brand_id, user.role, family, now),
        expires_in_seconds: tokens.access_ttl().num_seconds(),
        refresh_token,
        user,
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshRow {
    id: String,
    family_id: String,
    user_id: String,
    expires_at: chrono::NaiveDateTime,
    used_at: Option<chrono::NaiveDateTime>,
    revoked_at: Option<chrono::NaiveDateTime>,
}

pub fn refresh(
    conn: &mut DbConnection,
    tokens: &TokenIssuer,
    refresh_token: &str,
    now: DateTime<Utc>,
) -> Result<Session, SessionError> {
    let hash = super::tokens::hash_secret_token(refresh_token);
    // The outer Result commits; the inner one is the answer. A detected reuse must
    // commit the family's revocation and still answer "invalid".
    let outcome = write_transaction(
        conn,
        |conn| -> Result<Result<Session, SessionError>, SessionError> {
            let row: Option<RefreshRow> = refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&hash))
                .select(RefreshRow::as_select())
                .first(conn)
                .optional()?;
            let Some(RefreshRow {
                id,
                family_id: family,
                user_id,
                expires_at,
                used_at,
                revoked_at,
            }) = row
            else {
                return Ok(Err(SessionError::InvalidRefreshToken));
            };
            if revoked_at.is_some() || expires_at.and_utc() <= now {
                return Ok(Err(SessionError::InvalidRefreshToken));
            }
            // Use it, unless someone already did or the family was ended meanwhile: one
            // conditional update decides (on PostgreSQL it waits for a concurrent
            // revocation and sees it).
            let claimed = used_at.is_none()
                && diesel::update(
                    refresh_tokens::table
                        .filter(refresh_tokens::id.eq(&id))
                        .filter(refresh_tokens::used_at.is_null())
                        .filter(refresh_tokens::revoked_at.is_null()),
                )
                .set(refresh_tokens::used_at.eq(now.naive_utc()))
                .execute(conn)?
                    == 1;
            if !claimed {
                revoke_family(conn, &family, now)?;
                tracing::warn!(family = %family, "refresh token reused; family revoked");
                return Ok(Err(SessionError::InvalidRefreshToken));
            }
            let Some(user) = users::find(conn, &user_id)?.filter(|u| u.disabled_at.is_none())
            else {
                return Ok(Err(SessionError::InvalidRefreshToken));
            };
            // A storage failure here rolls the whole refresh back (`?`), token unused.
            let session = new_session(conn, tokens, user, &family, now)?;
            Ok(Ok(session))
        },
    )?;
    outcome
}

/// Ends the sign-in: every token of this session's family, and so their access tokens.
/// Unknown tokens are ignored, so the answer tells nothing about them.
pub fn logout(
    conn: &mut DbConnection,
    refresh_token: &str,
    now: DateTime<Utc>,
) -> Result<(), SessionError> {
    let hash = super::tokens::hash_secret_token(refresh_token);
    let family: Option<String> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(&hash))
        .select(refresh_tokens::family_id)
        .first(conn)
        .optional()?;
    if let Some(family) = family {
        revoke_family(conn, &family, now)?;
    }
    Ok(())
}

fn revoke_family(conn: &mut DbConnection, family: &str, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now.naive_utc()))
    .execute(conn)
}

/// Whether the sign-in `family` of `user_id` still stands, and the user is not disabled:
/// an access token naming it is accepted only then.
pub fn is_live(conn: &mut DbConnection, user_id: &str, family: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        refresh_tokens::table
            .inner_join(users_table::table)
            .filter(refresh_tokens::family_id.eq(family))
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(users_table::disabled_at.is_null()),
    ))
    .get_result(conn)
}

/// Ends every sign-in of the user but `keep` (the caller's own, when it goes on): their
/// refresh tokens stop refreshing and their access tokens stop being accepted. The number
/// of sign-ins ended.
pub fn revoke_all_of_user(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    let live = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .into_boxed();
    let live = match keep {
        Some(family) => live.filter(refresh_tokens::family_id.ne(family)),
        None => live,
    };
    let mut families: Vec<String> = live
        .select(refresh_tokens::family_id)
        .order(refresh_tokens::family_id)
        .load(conn)?;
    families.dedup();
    let mut ended = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .into_boxed();
    if let Some(family) = keep {
        ended = ended.filter(refresh_tokens::family_id.ne(family));
    }
    ended
        .set(refresh_tokens::revoked_at.eq(now.naive_utc()))
        .execute(conn)?;
    Ok(families.len())
}

/// The session a request comes through, which a password change leaves alive.
#[derive(Debug, Clone, Copy)]
pub enum CurrentSession<'a> {
    /// An API sign-in: the refresh-token family its access token names.
    Api { family: &'a str },
    /// A browser session: the token of its cookie.
    Page { token: &'a str },
}

/// What ending a user's sessions ended, for the audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Sign-ins (refresh-token families), and with them their access tokens.
    pub sign_ins: usize,
    pub browser_sessions: usize,
}

impl Ended {
    /// As audit entries record it.
    pub fn details(self) -> serde_json::Value {
        serde_json::json!({
            "sign_ins_ended": self.sign_ins,
            "browser_sessions_ended": self.browser_sessions,
        })
    }
}

/// Ends every session of the user: each sign-in (its refresh tokens, and the access tokens
/// naming it) and each browser session, but the one `keep` names (the caller's own, when a
/// change must not sign the caller out). The one way a password change, a reset, a
/// disabling, a role change or "sign out everywhere" ends sessions.
pub fn end_every_session(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<CurrentSession<'_>>,
    now: DateTime<Utc>,
) -> QueryResult<Ended> {
    let (keep_family, keep_page) = match keep {
        Some(CurrentSession::Api { family }) => (Some(family), None),
        Some(CurrentSession::Page { token }) => (None, Some(token)),
        None => (None, None),
    };
    Ok(Ended {
        sign_ins: revoke_all_of_user(conn, user_id, keep_family, now)?,
        browser_sessions: super::web_sessions::end_all_of_user(conn, user_id, keep_page)?,
    })
}
