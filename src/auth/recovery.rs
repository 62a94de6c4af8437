//! Password recovery ("Password dimenticata?"), the same through the API and the pages:
//! [`request_reset`] emails a single-use link, [`reset_password`] sets the new password
//! through it and ends every session of the user.
//!
//! - The link carries 256 random bits; `password_resets` keeps only their SHA-256, so the
//!   table resets nobody's password. A link works for [`LINK_VALID_MINUTES`] minutes, once.
//!   A newer request voids the user's unused links: at most one link per user is alive,
//!   the one in the latest email.
//! - A request is answered the same whether or not the account exists, and whether or not
//!   the account's limit let an email go, so the answer tells nothing about who is
//!   registered. Two limits keep the endpoint from flooding a mailbox or serving as an
//!   oracle at scale:
//!   - per client address, [`ADDRESS_LIMIT`] (10 an hour): refused with 429. It says
//!     something about the caller's own address only, never about an account.
//!   - per account (brand and address as typed, counted whether or not such a user exists),
//!     [`ACCOUNT_HOURLY`] (3 an hour) and [`ACCOUNT_DAILY`] (10 a day): past them the
//!     request is answered as any other and no email leaves. An owner who lost the first
//!     email can ask twice more; a stranger cannot bury a mailbox.
//! - Setting the password uses the link, sets the password, ends every sign-in (refresh
//!   tokens, and with them the access tokens that name them) and every browser session of
//!   the user, voids the user's other links, and forgives the account's failed sign-ins
//!   (they were guesses at a password that no longer exists, and the owner must not be
//!   kept waiting by them), all in one transaction, audited (`auth.password_reset`).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::password::{NewPassword, PasswordError};
use super::tokens::{hash_secret_token, new_secret_token};
use super::users::{self, User, UserError};
use super::{sessions, throttle};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::db::schema::password_resets;
use crate::db::{write_transaction, DbConnection};
use crate::mail::outbox::{self, OutgoingEmail};
use crate::mail::templates::EmailKind;
use crate::rate_limit::{self, Limit};

/// How long a link works: enough to open the mailbox and choose a password, short enough
/// that a link found later in a mailbox or a forwarded email is worth nothing.
pub const LINK_VALID_MINUTES: i64 = 30;

/// Requests from one client address, whatever the accounts.
pub const ADDRESS_LIMIT: Limit = Limit {
    bucket: "password_reset_address",
    max_hits: 10,
    window: Duration::hours(1),
};
/// Emails to one account in an hour.
pub const ACCOUNT_HOURLY: Limit = Limit {
    bucket: "password_reset_account_hour",
    max_hits: 3,
    window: Duration::hours(1),
};
/// Emails to one account in a day.
pub const ACCOUNT_DAILY: Limit = Limit {
    bucket: "password_reset_account_day",
    max_hits: 10,
    window: Duration::days(1),
};

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum RecoveryError {
        #[error("too many password reset requests from this address; retry in {retry_after_seconds} seconds")]
        TooManyRequests { retry_after_seconds: i64 },
        #[error("the password reset link is not valid: unknown, expired, already used, or replaced by a newer one")]
        LinkInvalid,
        #[error("{0}")]
        Password(PasswordError),
        #[error(transparent)]
        User(#[from] UserError),
    }
    storage from diesel::result::Error
}

/// Where the link of the email leads: the page that sets the new password.
pub fn link(public_url: &str, brand: &str, token: &str) -> String {
    format!(
        "{}/negozio/{brand}/accedi/nuova-password?token={token}",
        public_url.trim_end_matches('/')
    )
}

/// The subject of the per-account limits: a hash of brand and address as typed, so the
/// limits' table holds no address of anyone, registered or not.
fn account_subject(brand: &str, email_as_typed: &str) -> String {
    crate::secrets::hex(&Sha256::digest(
        throttle::account_key(brand, email_as_typed).as_bytes(),
    ))
}

/// "Password dimenticata?": if `email_as_typed` names a user of `brand` and the limits
/// allow, voids the user's unused links and emails a new one. `Ok` whatever the account;
/// only an unknown brand or the address's limit is refused.
pub fn request_reset(
    conn: &mut DbConnection,
    brand_id: &str,
    email_as_typed: &str,
    client_address: &str,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<(), RecoveryError> {
    let brand = brands::find(conn, brand_id)?
        .ok_or_else(|| UserError::UnknownBrand(brand_id.to_owned()))?;
    if let Err(retry_after_seconds) = rate_limit::hit(conn, ADDRESS_LIMIT, client_address, now)? {
        return Err(RecoveryError::TooManyRequests {
            retry_after_seconds,
        });
    }
    let account = account_subject(brand_id, email_as_typed);
    let per_account = [
        (ACCOUNT_HOURLY, account.as_str()),
        (ACCOUNT_DAILY, &account),
    ];
    if rate_limit::hit_all(conn, &per_account, now)?.is_err() {
        tracing::info!(
            brand = brand_id,
            "password reset over the account's limit; no email"
        );
        return Ok(());
    }
    let Some((user, _)) = users::find_for_login(conn, brand_id, email_as_typed)? else {
        return Ok(());
    };
    // A disabled account gets nothing either (and the same answer): a new password
    // would not let it in, and the mailbox may be the very thing that was compromised.
    if user.disabled_at.is_some() {
        return Ok(());
    }
    let (token, token_hash) = new_secret_token();
    write_transaction(conn, |conn| {
        sweep(conn, now)?;
        let voided = diesel::delete(
            password_resets::table
                .filter(password_resets::user_id.eq(&user.id))
                .filter(password_resets::used_at.is_null()),
        )
        .execute(conn)?;
        diesel::insert_into(password_resets::table)
            .values((
                password_resets::id.eq(Uuid::now_v7().to_string()),
                password_resets::user_id.eq(&user.id),
                password_resets::token_hash.eq(&token_hash),
                password_resets::created_at.eq(now.naive_utc()),
                password_resets::expires_at
                    .eq((now + Duration::minutes(LINK_VALID_MINUTES)).naive_utc()),
            ))
            .execute(conn)?;
        let email = OutgoingEmail {
            brand_id: brand.id.clone(),
            kind: EmailKind::PasswordReset,
            reference: None,
            sender: brand.sender_address.clone(),
            recipient: user.email.to_string(),
            context: json!({
                "name": user.name,
                "brand": brand.name,
                "link": link(public_url, &brand.id, &token),
                "minutes": LINK_VALID_MINUTES,
            }),
            attachment: None,
        };
        outbox::enqueue(conn, &email, now)?;
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&brand.id),
                actor: &Actor::System,
                action: "auth.password_reset_requested",
                subject_type: "user",
                subject_id: &user.id,
                details: json!({ "client_address": client_address, "links_voided": voided }),
            },
            now,
        )?;
        Ok(())
    })
}

/// The link of `token`, if it still works: its id and user.
fn live_link(
    conn: &mut DbConnection,
    token: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<(String, String)>> {
    // Every token made here is 64 hex digits; anything else needs no query.
    let token = token.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    password_resets::table
        .filter(password_resets::token_hash.eq(hash_secret_token(token)))
        .filter(password_resets::used_at.is_null())
        .filter(password_resets::expires_at.gt(now.naive_utc()))
        .select((password_resets::id, password_resets::user_id))
        .first(conn)
        .optional()
}

/// Whether the link of `token` still works (the page checks before asking for a password).
pub fn check_link(
    conn: &mut DbConnection,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(), RecoveryError> {
    live_link(conn, token, now)?
        .map(|_| ())
        .ok_or(RecoveryError::LinkInvalid)
}

/// Sets the new password through the link of `token`, and ends every session of the
/// user; the user, who signs in again with it.
pub fn reset_password(
    conn: &mut DbConnection,
    token: &str,
    new_password: &str,
    now: DateTime<Utc>,
) -> Result<User, RecoveryError> {
    let (link_id, user_id) = live_link(conn, token, now)?.ok_or(RecoveryError::LinkInvalid)?;
    let user = users::find(conn, &user_id)?.ok_or(RecoveryError::LinkInvalid)?;
    let password =
        NewPassword::parse(new_password, Some(&user.email)).map_err(RecoveryError::Password)?;
    // Slow on purpose (argon2), so before the transaction: no write lock held meanwhile.
    let password_hash = password.hash();
    write_transaction(conn, |conn| {
        // One conditional update decides, so two uses of one link at once set one password.
        let used = diesel::update(
            password_resets::table
                .filter(password_resets::id.eq(&link_id))
                .filter(password_resets::used_at.is_null())
                .filter(password_resets::expires_at.gt(now.naive_utc())),
        )
        .set(password_resets::used_at.eq(now.naive_utc()))
        .execute(conn)?;
        if used != 1 {
            return Err(RecoveryError::LinkInvalid);
        }
        diesel::delete(
            password_resets::table
                .filter(password_resets::user_id.eq(&user.id))
                .filter(password_resets::used_at.is_null()),
        )
        .execute(conn)?;
        users::set_password(conn, &user.id, &password_hash, now)?;
        let ended = sessions::end_every_session(conn, &user.id, None, now)?;
        throttle::forgive_account(
            conn,
            &throttle::account_key(&user.brand_id, user.email.as_str()),
        )?;
        audit::record_own_account(
            conn,
            &user.brand_id,
            &user.id,
            "auth.password_reset",
            ended.details(),
            now,
        )?;
        Ok(user)
    })
}

/// Links that ended more than a day ago go, used or not: the table stays small without a
/// separate job.
fn sweep(conn: &mut DbConnection, now: DateTime<Utc>) -> QueryResult<usize> {
    diesel::delete(
        password_resets::table
            .filter(password_resets::expires_at.lt((now - Duration::days(1)).naive_utc())),
    )
    .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_leads_to_the_page_of_the_brand() {
        assert_eq!(
            link("https://rinnovo.example/", "visura", "ab12"),
            "https://rinnovo.example/negozio/visura/accedi/nuova-password?token=ab12"
        );
    }

    #[test]
    fn the_account_subject_holds_no_address() {
        let subject = account_subject("visura", " Mario@Example.it ");
        assert_eq!(subject, account_subject("visura", "mario@example.it"));
        assert_ne!(subject, account_subject("lextel", "mario@example.it"));
        assert!(!subject.contains("mario"));
        assert_eq!(subject.len(), 64);
    }
}
