//! What a user does to their own account, the same through the API and the pages: sign
//! up (which mails the confirmation link), change the profile (the password and the email
//! address only after confirming the current password; a new address only once it is
//! confirmed, see [`super::confirmation`]) and sign out everywhere.
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

use super::confirmation::{self, ConfirmationError};
use super::sessions;
use super::throttle::{self, Attempt, Throttled};
use super::users::{self, NewUser, ProfileChanges, User, UserError};
use crate::audit::{self, Actor};
use crate::db::{write_transaction, DbConnection};
use crate::email_address::EmailAddress;

pub use super::sessions::CurrentSession;

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum AccountError {
        #[error("too many wrong passwords; retry in {} seconds", .0.retry_after_seconds)]
        Throttled(Throttled),
        #[error("the current password is wrong")]
        WrongCurrentPassword,
        #[error(transparent)]
        User(#[from] UserError),
        #[error(transparent)]
        Confirmation(#[from] ConfirmationError),
    }
    storage from diesel::result::Error
}

/// A customer's own sign-up: the account (and its prepaid account), and the link that
/// confirms its address, in one transaction. The account cannot buy until the link is
/// opened.
pub fn sign_up(
    conn: &mut DbConnection,
    new: NewUser,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    write_transaction(conn, |conn| {
        let user = users::create(conn, new, &Actor::System, now)?;
        confirmation::send_sign_up_link(conn, &user, public_url, now).map_err(|e| match e {
            ConfirmationError::User(e) => e,
            other => UserError::Storage(anyhow::anyhow!(other)),
        })?;
        Ok(user)
    })
}

/// Whether the changes need the current password: a new password, or a new address
/// (coupon codes go to it).
pub fn needs_current_password(
    user: &User,
    new_password: bool,
    new_email: Option<&EmailAddress>,
) -> bool {
    new_password || new_email.is_some_and(|email| *email != user.email)
}

/// The profile after a change, and the new address waiting for its confirmation.
#[derive(Debug)]
pub struct ProfileUpdate {
    pub user: User,
    pub pending_email: Option<EmailAddress>,
}

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

/// Changes the profile. A new password or a new address needs `reauthentication`, the
/// confirmation of the current password and whether it matched. With a new password every
/// other session of the user ends, in the same transaction as the change. A new address
/// (`new_email`, when it differs from the current one) is not set here: a link goes to it
/// and a notice to the current one, and it becomes the user's when the link is opened.
#[allow(clippy::too_many_arguments)]
pub fn update_profile(
    conn: &mut DbConnection,
    user_id: &str,
    changes: ProfileChanges,
    new_email: Option<EmailAddress>,
    reauthentication: Option<(Reauthentication, bool)>,
    session: CurrentSession<'_>,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<ProfileUpdate, AccountError> {
    let current = users::find(conn, user_id)?.ok_or(UserError::NotFound)?;
    let new_email = new_email.filter(|email| *email != current.email);
    let password_changes = changes.new_password.is_some();
    if needs_current_password(&current, password_changes, new_email.as_ref()) {
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
            let ended = sessions::end_every_session(conn, user_id, Some(session), now)?;
            record_ended(conn, &user, "user.other_sessions_ended", ended, now)?;
        }
        let pending_email = match new_email {
            Some(email) => Some(confirmation::request_change(
                conn, &user, email, public_url, now,
            )?),
            None => confirmation::pending_email(conn, user_id, now)?,
        };
        Ok(ProfileUpdate {
            user,
            pending_email,
        })
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
        let ended = sessions::end_every_session(conn, user_id, None, now)?;
        record_ended(conn, &user, "user.signed_out_everywhere", ended, now)?;
        Ok(())
    })
}

fn record_ended(
    conn: &mut DbConnection,
    user: &User,
    action: &str,
    ended: sessions::Ended,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    audit::record_own_account(conn, &user.brand_id, &user.id, action, ended.details(), now)
}
