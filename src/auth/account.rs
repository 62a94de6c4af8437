//! What a signed-in user does to their own account, the same through the API and the
//! pages: change the profile (the password only after confirming the current one) and
//! sign out everywhere.
//!
//! A password change ends every *other* session of the user: the other sign-ins (refresh
//! tokens and the access tokens issued with them) and every other browser session. The
//! session that changed it goes on: whoever just proved to know the password has no reason
//! to sign in again, and a thief holding another session is out at once. Signing out
//! everywhere ends them all, the caller's too.
//!
//! Confirming the current password runs like a sign-in, in three steps so that no
//! connection is held while argon2 works: [`begin_reauthentication`] (the throttle, the
//! stored hash), [`super::password::verify`] on a blocking thread, then
//! [`update_profile`] with the outcome. Its failures count in the sign-in throttle of the
//! account: a guess is a guess, whichever form it comes through.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::throttle::{self, Attempt, Throttled};
use super::users::{self, ProfileChanges, User, UserError};
use super::{sessions, web_sessions};
use crate::audit::{self, Actor, AuditEntry};
use crate::db::{write_transaction, DbConnection};

/// The session a request comes through, which a password change leaves alive.
#[derive(Debug, Clone, Copy)]
pub enum CurrentSession<'a> {
    /// An API sign-in: the refresh-token family its access token names.
    Api { family: &'a str },
    /// A browser session: the token of its cookie.
    Page { token: &'a str },
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("too many wrong passwords; retry in {} seconds", .0.retry_after_seconds)]
    Throttled(Throttled),
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Storage(anyhow::Error),
}

storage_error_from!(AccountError: diesel::result::Error);

/// A confirmation of the current password in progress: the throttle's attempt and the
/// hash to verify against.
pub struct Reauthentication {
    attempt: Attempt,
    pub password_hash: String,
}

/// Opens a confirmation of `user_id`'s current password, or refuses it (throttled).
pub fn begin_reauthentication(
    conn: &mut DbConnection,
    user_id: &str,
    client_address: &str,
    now: DateTime<Utc>,
) -> Result<Reauthentication, AccountError> {
    let user = users::find(conn, user_id)?.ok_or(UserError::NotFound)?;
    let key = throttle::account_key(&user.brand_id, user.email.as_str());
    let attempt =
        throttle::begin(conn, &key, client_address, now)?.map_err(AccountError::Throttled)?;
    let password_hash = users::password_hash(conn, user_id)?;
    Ok(Reauthentication {
        attempt,
        password_hash,
    })
}

/// Changes the profile. A new password needs `reauthentication`, the confirmation of the
/// current one and whether it matched; with it, every other session of the user ends, in
/// the same transaction as the change.
pub fn update_profile(
    conn: &mut DbConnection,
    user_id: &str,
    changes: ProfileChanges,
    reauthentication: Option<(Reauthentication, bool)>,
    session: CurrentSession<'_>,
    now: DateTime<Utc>,
) -> Result<User, AccountError> {
    let password_changes = changes.new_password.is_some();
    if password_changes {
        match reauthentication {
            Some((confirmation, true)) => throttle::succeeded(conn, &confirmation.attempt)?,
            Some((_, false)) => {
                throttle::failed(conn, now)?;
                return Err(AccountError::WrongCurrentPassword);
            }
            None => return Err(AccountError::WrongCurrentPassword),
        }
    }
    write_transaction(conn, |conn| {
        let user = users::update_profile(conn, user_id, changes, now)?;
        if password_changes {
            let (keep_family, keep_page) = match session {
                CurrentSession::Api { family } => (Some(family), None),
                CurrentSession::Page { token } => (None, Some(token)),
            };
            let sign_ins = sessions::revoke_all_of_user(conn, user_id, keep_family, now)?;
            let pages = web_sessions::end_all_of_user(conn, user_id, keep_page)?;
            record_ended(
                conn,
                &user,
                "user.other_sessions_ended",
                sign_ins,
                pages,
                now,
            )?;
        }
        Ok(user)
    })
}

/// Ends every session of the user, the caller's too: every sign-in with its tokens, every
/// browser session.
pub fn sign_out_everywhere(
    conn: &mut DbConnection,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    write_transaction(conn, |conn| {
        let user = users::find(conn, user_id)?.ok_or(UserError::NotFound)?;
        let sign_ins = sessions::revoke_all_of_user(conn, user_id, None, now)?;
        let pages = web_sessions::end_all_of_user(conn, user_id, None)?;
        record_ended(
            conn,
            &user,
            "user.signed_out_everywhere",
            sign_ins,
            pages,
            now,
        )?;
        Ok(())
    })
}

fn record_ended(
    conn: &mut DbConnection,
    user: &User,
    action: &str,
    sign_ins: usize,
    pages: usize,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(&user.brand_id),
            actor: &Actor::User(user.id.clone()),
            action,
            subject_type: "user",
            subject_id: &user.id,
            details: json!({ "sign_ins_ended": sign_ins, "browser_sessions_ended": pages }),
        },
        now,
    )
}
