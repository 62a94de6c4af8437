//! What a back-office operator does to the users of their brand, the same through the API
//! and the pages: find them, disable and enable them, take the registration-officer role
//! back. (Granting it is deciding an application: `auth::officer_applications`.)
//!
//! Disabling ends every session of the user in the same transaction: their sign-ins
//! (refresh tokens, and the access tokens that name them) and their browser sessions. The
//! sign-in refuses a disabled user once the password matched, the refresh refuses them, and
//! an access token or a browser session is accepted only for a user who is not disabled, so
//! a session started in the instant of the disabling is no use either. Enabling restores
//! the sign-in, not the old sessions.
//!
//! An operator may disable any user of the brand, other operators too (a colleague's
//! stolen account must be stoppable at once, without a shell on the server), but never
//! themself: the last operator of a brand would lock everyone out.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::users::{self, User, UserError, UserRow};
use super::{sessions, Role};
use crate::db::schema::users as users_table;
use crate::db::search::{contains_pattern, lower};
use crate::db::{self, write_transaction, DbConnection};
use crate::paging::{Page, Paged};
use crate::validation::Reason;

pub use crate::audit::Operator;

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum ManagementError {
        #[error("no user of your brand has this id")]
        UnknownUser,
        #[error("an operator cannot disable their own account")]
        OwnAccount,
        #[error("the user is already disabled")]
        AlreadyDisabled,
        #[error("the user is not disabled")]
        NotDisabled,
        #[error("the user is not a registration officer (they are a {0})")]
        NotAnOfficer(Role),
    }
    storage from diesel::result::Error, UserError
}

text_enum!(
    /// Whether a user may sign in.
    UserStatus { Active => "active", Disabled => "disabled" }
);

impl User {
    pub fn status(&self) -> UserStatus {
        match self.disabled_at {
            Some(_) => UserStatus::Disabled,
            None => UserStatus::Active,
        }
    }
}

/// A piece of an email or a name to search for: printable, at most 200 characters.
pub type SearchText = crate::validation::Text<0, 200>;

/// What the back-office searches users by; `None` is any.
#[derive(Debug, Default, Clone)]
pub struct UserFilter {
    /// A piece of the email or of the name, any case.
    pub text: Option<SearchText>,
    pub role: Option<Role>,
    pub status: Option<UserStatus>,
}

/// The users of the brand that match, newest first.
pub fn search(
    conn: &mut DbConnection,
    brand_id: &str,
    filter: &UserFilter,
    page: Page,
) -> Result<Paged<User>, ManagementError> {
    let query = || {
        let mut query = users_table::table
            .filter(users_table::brand_id.eq(brand_id.to_owned()))
            .into_boxed();
        if let Some(text) = filter
            .text
            .as_ref()
            .map(SearchText::as_str)
            .filter(|t| !t.is_empty())
        {
            let pattern = contains_pattern(text);
            query = query.filter(
                users_table::email
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(users_table::name).like(pattern).escape('\\')),
            );
        }
        if let Some(role) = filter.role {
            query = query.filter(users_table::role.eq(role.as_str()));
        }
        query = match filter.status {
            Some(UserStatus::Active) => query.filter(users_table::disabled_at.is_null()),
            Some(UserStatus::Disabled) => query.filter(users_table::disabled_at.is_not_null()),
            None => query,
        };
        query
    };
    let rows: Paged<UserRow> = db::load_page(conn, page, query, |query| {
        query
            .order((users_table::created_at.desc(), users_table::id.desc()))
            .select(UserRow::as_select())
    })?;
    Ok(rows.try_map(users::from_row)?)
}

/// The user `id` if they are of the brand: another brand's user is as unknown as none, and
/// so is an id that is no UUID (whatever bytes a path carried never reach the database).
pub fn find_in_brand(
    conn: &mut DbConnection,
    brand_id: &str,
    id: &str,
) -> Result<User, ManagementError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ManagementError::UnknownUser);
    }
    users::find(conn, id)?
        .filter(|user| user.brand_id == brand_id)
        .ok_or(ManagementError::UnknownUser)
}

/// Why the user is disabled, as the operator wrote it.
pub fn disabled_reason(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<String>, ManagementError> {
    Ok(users_table::table
        .filter(users_table::id.eq(id))
        .select(users_table::disabled_reason)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// The changes an operator makes to a user of the brand, each with a reason, each audited
/// with it ([`make`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// No sign-in, and every session of theirs ends in the same transaction.
    Disable,
    /// A disabled user may sign in again; their old sessions stay ended.
    Enable,
    /// A registration officer is a customer again. Their sessions end with it: the role
    /// travels in the access token, and the customer's lower limits must apply at once,
    /// not at the next refresh.
    RemoveOfficerRole,
}

impl UserChange {
    /// The audit log's name for it.
    fn action(self) -> &'static str {
        match self {
            Self::Disable => "user.disabled",
            Self::Enable => "user.enabled",
            Self::RemoveOfficerRole => "user.role_changed",
        }
    }
}

/// Why `operator` may not make `change` to `user` as the user is now, or `None` where
/// they may: the refusal the change answers. [`make`] asks it, and asks again as it
/// writes (a concurrent change may come first); the back-office's user page offers a
/// change's form by it.
pub fn why_not(operator: Operator<'_>, user: &User, change: UserChange) -> Option<ManagementError> {
    match change {
        UserChange::Disable if user.id == operator.id => Some(ManagementError::OwnAccount),
        UserChange::Disable if user.disabled_at.is_some() => Some(ManagementError::AlreadyDisabled),
        UserChange::Enable if user.disabled_at.is_none() => Some(ManagementError::NotDisabled),
        UserChange::RemoveOfficerRole if user.role != Role::RegistrationOfficer => {
            Some(ManagementError::NotAnOfficer(user.role))
        }
        _ => None,
    }
}

/// Makes `change` to the user `user_id` of the operator's brand, in one transaction: find
/// the user (refused if not of the brand), refuse what [`why_not`] refuses, write the
/// change (refused when a concurrent change came first), audit it with the reason (and
/// how many sessions ended), and answer the user as they are now.
pub fn make(
    conn: &mut DbConnection,
    operator: Operator<'_>,
    user_id: &str,
    change: UserChange,
    reason: &Reason,
    now: DateTime<Utc>,
) -> Result<User, ManagementError> {
    write_transaction(conn, |conn| {
        let user = find_in_brand(conn, operator.brand_id, user_id)?;
        if let Some(refusal) = why_not(operator, &user, change) {
            return Err(refusal);
        }
        let because = json!({ "reason": reason.as_str() });
        let details = match change {
            UserChange::Disable => {
                if !users::set_disabled(conn, &user.id, Some(reason.as_str()), now)? {
                    return Err(ManagementError::AlreadyDisabled);
                }
                let ended = sessions::end_every_session(conn, &user.id, None, now)?;
                with_ended(because, ended)
            }
            UserChange::Enable => {
                if !users::set_disabled(conn, &user.id, None, now)? {
                    return Err(ManagementError::NotDisabled);
                }
                because
            }
            UserChange::RemoveOfficerRole => {
                let (from, to) = (Role::RegistrationOfficer, Role::Customer);
                if !users::change_role(conn, &user.id, from, to, now)? {
                    return Err(ManagementError::NotAnOfficer(user.role));
                }
                let ended = sessions::end_every_session(conn, &user.id, None, now)?;
                let details = json!({
                    "from": from.as_str(),
                    "to": to.as_str(),
                    "reason": reason.as_str(),
                });
                with_ended(details, ended)
            }
        };
        operator.record(conn, change.action(), ("user", &user.id), details, now)?;
        find_in_brand(conn, operator.brand_id, user_id)
    })
}

/// `details` followed by how many sessions ended, as every change that ends them says it.
fn with_ended(mut details: serde_json::Value, ended: sessions::Ended) -> serde_json::Value {
    if let (Some(map), serde_json::Value::Object(more)) = (details.as_object_mut(), ended.details())
    {
        map.extend(more);
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, role: Role, disabled: bool) -> User {
        User {
            id: id.into(),
            brand_id: "brand".into(),
            email: crate::email_address::EmailAddress::parse("utente@example.it").unwrap(),
            name: "Utente".into(),
            role,
            codice_fiscale: None,
            created_at: Utc::now(),
            email_confirmed_at: None,
            disabled_at: disabled.then(Utc::now),
        }
    }

    #[test]
    fn a_change_is_offered_where_the_users_state_allows_it() {
        let operator = Operator {
            id: "op",
            brand_id: "brand",
        };
        let refusal = |user: &User, change| {
            why_not(operator, user, change).map(|refused| refused.to_string())
        };
        let officer = user("u1", Role::RegistrationOfficer, false);
        assert_eq!(refusal(&officer, UserChange::Disable), None);
        assert_eq!(refusal(&officer, UserChange::RemoveOfficerRole), None);
        assert!(refusal(&officer, UserChange::Enable).is_some_and(|r| r.contains("not disabled")));

        let disabled = user("u2", Role::Customer, true);
        assert_eq!(refusal(&disabled, UserChange::Enable), None);
        assert!(refusal(&disabled, UserChange::Disable).is_some_and(|r| r.contains("already")));
        assert!(refusal(&disabled, UserChange::RemoveOfficerRole)
            .is_some_and(|r| r.contains("not a registration officer")));

        // An operator never disables their own account, whatever its state.
        let own = user("op", Role::BackOffice, false);
        assert!(refusal(&own, UserChange::Disable).is_some_and(|r| r.contains("their own")));
    }

    #[test]
    fn a_search_text_is_taken_literally() {
        assert_eq!(contains_pattern("Rossi"), "%rossi%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
