//! Proof that a user reads their email address: the single-use links sent at sign-up and
//! to a new address, and the one rule that depends on it: codes, receipts and invoices go
//! only to a confirmed address ([`ConfirmedEmail`]), so an unconfirmed account cannot
//! order or top up.
//!
//! - Sign-up sends a link to the account's address. Until it is opened the account can
//!   sign in and look around, but not buy; [`resend`] sends a fresh link (at most
//!   [`RESENDS`] per hour), which voids the earlier one.
//! - Changing the address sends a link to the new address and a notice to the old one;
//!   `users.email` changes only when the new address confirms, and the brand's addresses
//!   are checked for the new one again at that moment. Until then everything keeps going
//!   to the old, confirmed address. At most [`CHANGE_LINKS`] changes an hour per account.
//! - A link holds 256 random bits; only their SHA-256 is stored, in `email_confirmations`
//!   (this module alone writes it). It is valid [`LINK_VALID_HOURS`] hours, once, for its
//!   own account: a signed-in user of another account (or brand) cannot spend it.
//! - Users an operator adds at the command line are confirmed at once
//!   ([`confirmed_by_operator`]): the operator vouches for the address.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::tokens::{hash_secret_token, new_secret_token};
use super::users::{self, User, UserError};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::db::schema::email_confirmations;
use crate::db::{write_transaction, DbConnection};
use crate::email_address::EmailAddress;
use crate::mail::outbox::{self, OutgoingEmail};
use crate::mail::templates::EmailKind;
use crate::rate_limit::{self, Limit};

/// How long a confirmation link works.
pub const LINK_VALID_HOURS: i64 = 48;
/// The page a link opens (`?token=...`).
pub const CONFIRMATION_PAGE: &str = "/negozio/conferma-email";

/// New sign-up links a user may ask for.
pub const RESENDS: Limit = Limit {
    bucket: "email_confirmation_resend",
    max_hits: 3,
    window: Duration::hours(1),
};

/// Address changes a user may ask for: each mails the new address and the old one.
pub const CHANGE_LINKS: Limit = Limit {
    bucket: "email_change_request",
    max_hits: 5,
    window: Duration::hours(1),
};

text_enum!(
    /// What a link confirms: the account's own address, or a new one to replace it.
    Purpose { SignUp => "sign_up", Change => "change" }
);

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum ConfirmationError {
        #[error("confirm the email address first: open the link sent to it (or ask for a new one)")]
        NotConfirmed,
        #[error("the confirmation link is not valid: unknown, already used, expired, or for another account")]
        InvalidLink,
        #[error("the email address is already confirmed")]
        AlreadyConfirmed,
        #[error("the new address already has an account in this brand")]
        EmailTaken,
        #[error("too many confirmation emails; retry in {retry_after_seconds} seconds")]
        TooManyEmails { retry_after_seconds: i64 },
        #[error(transparent)]
        User(#[from] UserError),
    }
    storage from diesel::result::Error
}

pub use crate::email_address::ConfirmedEmail;

/// The user's address, if confirmed; else what ordering and topping up answer.
pub fn confirmed_email(user: &User) -> Result<ConfirmedEmail, ConfirmationError> {
    match user.email_confirmed_at {
        Some(_) => Ok(ConfirmedEmail::proven(user.email.clone())),
        None => Err(ConfirmationError::NotConfirmed),
    }
}

impl crate::prepaid::Buyer {
    /// The user as a buyer; refused while their address is unconfirmed, since the codes,
    /// the receipt, the invoice and a transfer's instructions go to it.
    pub fn of(user: &User) -> Result<Self, ConfirmationError> {
        Ok(Self {
            user_id: user.id.clone(),
            brand_id: user.brand_id.clone(),
            name: user.name.clone(),
            email: confirmed_email(user)?,
        })
    }
}

/// A new link for `purpose` to `email`, voiding the user's earlier ones for the same
/// purpose, and its email in the outbox.
fn send_link(
    conn: &mut DbConnection,
    user: &User,
    purpose: Purpose,
    email: &EmailAddress,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<(), ConfirmationError> {
    let brand = brands::existing(conn, &user.brand_id).map_err(ConfirmationError::Storage)?;
    let (token, token_hash) = new_secret_token();
    diesel::delete(
        email_confirmations::table.filter(
            email_confirmations::user_id
                .eq(&user.id)
                .and(email_confirmations::purpose.eq(purpose.as_str()))
                .or(email_confirmations::expires_at.lt(now.naive_utc())),
        ),
    )
    .execute(conn)?;
    diesel::insert_into(email_confirmations::table)
        .values((
            email_confirmations::token_hash.eq(token_hash),
            email_confirmations::user_id.eq(&user.id),
            email_confirmations::brand_id.eq(&user.brand_id),
            email_confirmations::purpose.eq(purpose.as_str()),
            email_confirmations::email.eq(email.as_str()),
            email_confirmations::created_at.eq(now.naive_utc()),
            email_confirmations::expires_at
                .eq((now + Duration::hours(LINK_VALID_HOURS)).naive_utc()),
        ))
        .execute(conn)?;
    let link = format!(
        "{}{CONFIRMATION_PAGE}?token={token}",
        public_url.trim_end_matches('/')
    );
    outbox::enqueue(
        conn,
        &OutgoingEmail {
            brand_id: brand.id.clone(),
            kind: EmailKind::EmailConfirmation,
            reference: Some(user.id.clone()),
            sender: brand.sender_address.clone(),
            recipient: email.to_string(),
            context: json!({
                "name": user.name,
                "brand": brand.name,
                "email": email.as_str(),
                "link": link,
                "hours": LINK_VALID_HOURS,
                "change": purpose == Purpose::Change,
            }),
            attachment: None,
        },
        now,
    )?;
    Ok(())
}

/// The first link, sent in the sign-up's transaction.
pub(super) fn send_sign_up_link(
    conn: &mut DbConnection,
    user: &User,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<(), ConfirmationError> {
    send_link(conn, user, Purpose::SignUp, &user.email, public_url, now)
}

/// A fresh sign-up link for a user whose address is not confirmed yet.
pub fn resend(
    conn: &mut DbConnection,
    user_id: &str,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<(), ConfirmationError> {
    write_transaction(conn, |conn| {
        let user = users::find(conn, user_id)?.ok_or(UserError::NotFound)?;
        if user.email_confirmed_at.is_some() {
            return Err(ConfirmationError::AlreadyConfirmed);
        }
        if let Err(retry_after_seconds) = rate_limit::hit(conn, RESENDS, user_id, now)? {
            return Err(ConfirmationError::TooManyEmails {
                retry_after_seconds,
            });
        }
        send_link(conn, &user, Purpose::SignUp, &user.email, public_url, now)
    })
}

/// Asks to move `user` to `new_email` (the caller checked the password): a link to the
/// new address, a notice to the old one if it was ever confirmed (an unconfirmed one
/// proved nothing, and may be someone else's), audited. Returns the pending address.
pub(super) fn request_change(
    conn: &mut DbConnection,
    user: &User,
    new_email: EmailAddress,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<EmailAddress, ConfirmationError> {
    if users::email_taken(conn, &user.brand_id, &new_email)? {
        return Err(ConfirmationError::EmailTaken);
    }
    if let Err(retry_after_seconds) = rate_limit::hit(conn, CHANGE_LINKS, &user.id, now)? {
        return Err(ConfirmationError::TooManyEmails {
            retry_after_seconds,
        });
    }
    send_link(conn, user, Purpose::Change, &new_email, public_url, now)?;
    if user.email_confirmed_at.is_some() {
        let brand = brands::existing(conn, &user.brand_id).map_err(ConfirmationError::Storage)?;
        outbox::enqueue(
            conn,
            &OutgoingEmail {
                brand_id: brand.id.clone(),
                kind: EmailKind::EmailChangeNotice,
                reference: Some(user.id.clone()),
                sender: brand.sender_address.clone(),
                recipient: user.email.to_string(),
                context: json!({
                    "name": user.name,
                    "brand": brand.name,
                    "old_email": user.email.as_str(),
                    "new_email": new_email.as_str(),
                }),
                attachment: None,
            },
            now,
        )?;
    }
    audit::record_own_account(
        conn,
        &user.brand_id,
        &user.id,
        "user.email_change_requested",
        json!({ "from": user.email.as_str(), "to": new_email.as_str() }),
        now,
    )?;
    Ok(new_email)
}

#[derive(Queryable)]
struct LinkRow {
    user_id: String,
    purpose: Purpose,
    email: String,
}

/// Spends a link: its account's address is confirmed (sign-up) or becomes the new one
/// (change). `caller` is the signed-in user who opened it, if any: a link works only for
/// its own account, and anyone else gets the same answer as for an unknown link.
pub fn confirm(
    conn: &mut DbConnection,
    token: &str,
    caller: Option<&str>,
    now: DateTime<Utc>,
) -> Result<User, ConfirmationError> {
    let token_hash = hash_secret_token(token);
    write_transaction(conn, |conn| {
        let row: LinkRow = email_confirmations::table
            .filter(email_confirmations::token_hash.eq(&token_hash))
            .filter(email_confirmations::expires_at.gt(now.naive_utc()))
            .select((
                email_confirmations::user_id,
                email_confirmations::purpose,
                email_confirmations::email,
            ))
            .first(conn)
            .optional()?
            .ok_or(ConfirmationError::InvalidLink)?;
        if caller.is_some_and(|caller| caller != row.user_id) {
            return Err(ConfirmationError::InvalidLink);
        }
        let user = users::find(conn, &row.user_id)?.ok_or(ConfirmationError::InvalidLink)?;
        let email = EmailAddress::from_stored(row.email);
        if row.purpose == Purpose::SignUp && email != user.email {
            // The address changed since (through a confirmed change): nothing to confirm.
            return Err(ConfirmationError::InvalidLink);
        }
        if row.purpose == Purpose::Change
            && email != user.email
            && users::email_taken(conn, &user.brand_id, &email)?
        {
            return Err(ConfirmationError::EmailTaken);
        }
        users::set_confirmed_email(conn, &user.id, &email, now).map_err(|e| match e {
            UserError::EmailTaken => ConfirmationError::EmailTaken,
            other => other.into(),
        })?;
        // Spent; and a confirmed change voids every other link of the account.
        let spent = email_confirmations::table.filter(email_confirmations::user_id.eq(&user.id));
        match row.purpose {
            Purpose::Change => diesel::delete(spent).execute(conn)?,
            Purpose::SignUp => {
                diesel::delete(spent.filter(email_confirmations::token_hash.eq(&token_hash)))
                    .execute(conn)?
            }
        };
        let (action, details) = match row.purpose {
            Purpose::SignUp => ("user.email_confirmed", json!({ "email": email.as_str() })),
            Purpose::Change => (
                "user.email_changed",
                json!({ "from": user.email.as_str(), "to": email.as_str() }),
            ),
        };
        audit::record_own_account(conn, &user.brand_id, &user.id, action, details, now)?;
        users::find(conn, &user.id)?.ok_or(ConfirmationError::InvalidLink)
    })
}

/// The new address waiting for its confirmation, if any.
pub fn pending_email(
    conn: &mut DbConnection,
    user_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<EmailAddress>> {
    let found: Option<String> = email_confirmations::table
        .filter(email_confirmations::user_id.eq(user_id))
        .filter(email_confirmations::purpose.eq(Purpose::Change.as_str()))
        .filter(email_confirmations::expires_at.gt(now.naive_utc()))
        .order(email_confirmations::created_at.desc())
        .select(email_confirmations::email)
        .first(conn)
        .optional()?;
    Ok(found.map(EmailAddress::from_stored))
}

/// A user an operator created at the command line: the operator vouches for the address.
pub fn confirmed_by_operator(
    conn: &mut DbConnection,
    user: &User,
    now: DateTime<Utc>,
) -> Result<(), ConfirmationError> {
    write_transaction(conn, |conn| {
        users::set_confirmed_email(conn, &user.id, &user.email, now)?;
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&user.brand_id),
                actor: &Actor::Cli,
                action: "user.email_confirmed",
                subject_type: "user",
                subject_id: &user.id,
                details: json!({ "email": user.email.as_str(), "by": "operator" }),
            },
            now,
        )?;
        Ok(())
    })
}
