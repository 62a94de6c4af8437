//! Users: one brand, one role, one email per brand. Creating a buyer opens their prepaid
//! account in the same transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;
use uuid::Uuid;

use super::{NewPassword, Role};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::db::schema::users;
use crate::db::{write_transaction, DbConnection};
use crate::email_address::EmailAddress;
use crate::prepaid;
use crate::registry::CodiceFiscale;
use crate::validation::PersonName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub brand_id: String,
    pub email: EmailAddress,
    pub name: String,
    pub role: Role,
    pub codice_fiscale: Option<CodiceFiscale>,
    pub created_at: DateTime<Utc>,
    /// When the user proved to read `email` (see `auth::confirmation`); `None` until then.
    pub email_confirmed_at: Option<DateTime<Utc>>,
    /// When an operator disabled the user: no sign-in, no session, until enabled.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl User {
    /// A back-office user as an operator acting in their brand, as the domain's operator
    /// actions take them.
    pub fn acting(&self) -> crate::audit::Operator<'_> {
        crate::audit::Operator {
            id: &self.id,
            brand_id: &self.brand_id,
        }
    }
}

#[derive(Debug)]
pub struct NewUser {
    pub brand_id: String,
    pub email: EmailAddress,
    pub name: PersonName,
    pub password: NewPassword,
    pub role: Role,
    pub codice_fiscale: Option<CodiceFiscale>,
}

/// A profile edit: `None` leaves a field as it is; for the codice fiscale, `Some(None)`
/// clears it. A new password needs the current one. The email is not here: a new address
/// becomes the user's only once confirmed (`auth::confirmation`).
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub name: Option<PersonName>,
    pub codice_fiscale: Option<Option<CodiceFiscale>>,
    pub new_password: Option<NewPassword>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("an account with this email already exists for this brand")]
    EmailTaken,
    #[error("no brand '{0}'")]
    UnknownBrand(String),
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl From<DieselError> for UserError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::EmailTaken,
            other => Self::Storage(other.into()),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    id: String,
    brand_id: String,
    email: String,
    name: String,
    role: Role,
    codice_fiscale: Option<String>,
    created_at: NaiveDateTime,
    email_confirmed_at: Option<NaiveDateTime>,
    disabled_at: Option<NaiveDateTime>,
}

pub(super) fn from_row(row: UserRow) -> Result<User, UserError> {
    let UserRow {
        id,
        brand_id,
        email,
        name,
        role,
        codice_fiscale,
        created_at,
        email_confirmed_at,
        disabled_at,
    } = row;
    Ok(User {
        role,
        codice_fiscale: codice_fiscale
            .map(|cf| CodiceFiscale::parse(&cf))
            .transpose()
            .map_err(|e| anyhow::anyhow!("user {id} has an invalid codice fiscale: {e}"))?,
        email: EmailAddress::from_stored(email),
        id,
        brand_id,
        name,
        created_at: created_at.and_utc(),
        email_confirmed_at: email_confirmed_at.map(|at| at.and_utc()),
        disabled_at: disabled_at.map(|t| t.and_utc()),
    })
}

pub fn create(
    conn: &mut DbConnection,
    new: NewUser,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    let password_hash = new.password.hash();
    write_transaction(conn, |conn| {
        if brands::find(conn, &new.brand_id)?.is_none() {
            return Err(UserError::UnknownBrand(new.brand_id.clone()));
        }
        let id = Uuid::now_v7().to_string();
        diesel::insert_into(users::table)
            .values((
                users::id.eq(&id),
                users::brand_id.eq(&new.brand_id),
                users::email.eq(new.email.as_str()),
                users::name.eq(new.name.as_str()),
                users::password_hash.eq(&password_hash),
                users::role.eq(new.role.as_str()),
                users::codice_fiscale.eq(new.codice_fiscale.as_ref().map(|c| c.as_str())),
                users::created_at.eq(now.naive_utc()),
                users::updated_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        if new.role.buys() {
            prepaid::open_account(conn, &new.brand_id, &id, now)?;
        }
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&new.brand_id),
                actor,
                action: "user.created",
                subject_type: "user",
                subject_id: &id,
                details: json!({ "email": new.email.as_str(), "role": new.role.as_str() }),
            },
            now,
        )?;
        find(conn, &id)?.ok_or(UserError::NotFound)
    })
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<User>, UserError> {
    users::table
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .first::<UserRow>(conn)
        .optional()?
        .map(from_row)
        .transpose()
}

/// The user and their password hash, for sign-in.
pub fn find_for_login(
    conn: &mut DbConnection,
    brand_id: &str,
    email: &str,
) -> Result<Option<(User, String)>, UserError> {
    let found: Option<(UserRow, String)> = users::table
        .filter(users::brand_id.eq(brand_id))
        .filter(users::email.eq(email.trim().to_lowercase()))
        .select((UserRow::as_select(), users::password_hash))
        .first(conn)
        .optional()?;
    found
        .map(|(row, hash)| Ok((from_row(row)?, hash)))
        .transpose()
}

pub fn password_hash(conn: &mut DbConnection, id: &str) -> Result<String, UserError> {
    users::table
        .filter(users::id.eq(id))
        .select(users::password_hash)
        .first(conn)
        .optional()?
        .ok_or(UserError::NotFound)
}

pub fn update_profile(
    conn: &mut DbConnection,
    id: &str,
    changes: ProfileChanges,
    now: DateTime<Utc>,
) -> Result<User, UserError> {
    let password_hash = changes.new_password.as_ref().map(NewPassword::hash);
    write_transaction(conn, |conn| {
        let user = find(conn, id)?.ok_or(UserError::NotFound)?;
        let target = users::table.filter(users::id.eq(id));
        if let Some(name) = &changes.name {
            diesel::update(target)
                .set(users::name.eq(name.as_str()))
                .execute(conn)?;
        }
        if let Some(codice_fiscale) = &changes.codice_fiscale {
            diesel::update(target)
                .set(users::codice_fiscale.eq(codice_fiscale.as_ref().map(|c| c.as_str())))
                .execute(conn)?;
        }
        if let Some(hash) = &password_hash {
            diesel::update(target)
                .set(users::password_hash.eq(hash))
                .execute(conn)?;
        }
        diesel::update(target)
            .set(users::updated_at.eq(now.naive_utc()))
            .execute(conn)?;
        let changed: Vec<&str> = [
            changes.name.as_ref().map(|_| "name"),
            changes.codice_fiscale.as_ref().map(|_| "codice_fiscale"),
            password_hash.as_ref().map(|_| "password"),
        ]
        .into_iter()
        .flatten()
        .collect();
        audit::record_own_account(
            conn,
            &user.brand_id,
            id,
            "user.profile_changed",
            json!({ "fields": changed }),
            now,
        )?;
        find(conn, id)?.ok_or(UserError::NotFound)
    })
}

/// Disables the user (`Some(reason)`) or enables them again (`None`), if they are not
/// already so; whether it changed. The rules, the sessions and the audit are
/// `auth::management`'s.
pub fn set_disabled(
    conn: &mut DbConnection,
    id: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let target = users::table.filter(users::id.eq(id));
    let changed = match reason {
        Some(reason) => diesel::update(target.filter(users::disabled_at.is_null()))
            .set((
                users::disabled_at.eq(now.naive_utc()),
                users::disabled_reason.eq(reason),
                users::updated_at.eq(now.naive_utc()),
            ))
            .execute(conn)?,
        None => diesel::update(target.filter(users::disabled_at.is_not_null()))
            .set((
                users::disabled_at.eq(None::<NaiveDateTime>),
                users::disabled_reason.eq(None::<String>),
                users::updated_at.eq(now.naive_utc()),
            ))
            .execute(conn)?,
    };
    Ok(changed == 1)
}

/// The one way a user's role changes: from `from` to `to`, if the user still has `from`;
/// whether it changed. Between buying roles only (both have a prepaid account).
pub fn change_role(
    conn: &mut DbConnection,
    id: &str,
    from: Role,
    to: Role,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    debug_assert!(
        from.buys() && to.buys(),
        "a role change keeps the prepaid account"
    );
    let changed = diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::role.eq(from.as_str())),
    )
    .set((
        users::role.eq(to.as_str()),
        users::updated_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Replaces the password hash (recovery by email: the caller ends the sessions and
/// audits, in its transaction).
pub fn set_password(
    conn: &mut DbConnection,
    id: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    let changed = diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::password_hash.eq(password_hash),
            users::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(UserError::NotFound)
    }
}

/// The user proved to read `email`: it becomes their address (it may be new), confirmed
/// from `now`. A brand's addresses are unique, so an address another user of the brand
/// took meanwhile is refused here, whatever was checked before. Called only by
/// `auth::confirmation`, which audits it.
pub(super) fn set_confirmed_email(
    conn: &mut DbConnection,
    id: &str,
    email: &EmailAddress,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    let changed = diesel::update(users::table.filter(users::id.eq(id)))
        .set((
            users::email.eq(email.as_str()),
            users::email_confirmed_at.eq(now.naive_utc()),
            users::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Err(UserError::NotFound);
    }
    Ok(())
}

/// Whether another user of `brand_id` has the address.
pub(super) fn email_taken(
    conn: &mut DbConnection,
    brand_id: &str,
    email: &EmailAddress,
) -> Result<bool, UserError> {
    let found: i64 = users::table
        .filter(users::brand_id.eq(brand_id))
        .filter(users::email.eq(email.as_str()))
        .count()
        .get_result(conn)?;
    Ok(found > 0)
}
