//! `GET/PATCH /api/v1/me`: the signed-in user's profile (its email is where coupons go,
//! once confirmed); `POST /api/v1/me/email/confirmation`: a new confirmation link;
//! `POST /api/v1/me/sessions/revoke`: sign out everywhere.

use actix_web::{get, patch, post};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::extract::{Buyer, CurrentUser};
use super::json::JsonObject;
use super::problem::FieldErrors;
use super::responses::{AccountGone, NotBuyer};
use super::{ApiError, ApiResult, Problem, State};
use crate::auth::account::{self, CurrentSession, ProfileUpdate};
use crate::auth::confirmation;
use crate::auth::{password, users, NewPassword, ProfileChanges, Role, User, UserError};
use crate::email_address::EmailAddress;
use crate::registry::CodiceFiscale;
use crate::validation::PersonName;

/// A user's profile.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProfileResponse {
    id: String,
    /// The brand the user belongs to.
    #[schema(example = "rinnovo")]
    brand: String,
    /// The account's address: where coupons, receipts and invoices are sent, once confirmed.
    #[schema(value_type = String, format = Email, example = "maria.rossi@example.it")]
    email: EmailAddress,
    /// Whether `email` is confirmed (its link was opened). An unconfirmed account cannot
    /// order or top up.
    email_confirmed: bool,
    /// A new address asked for and waiting for its confirmation link to be opened; until
    /// then everything still goes to `email`. `null` when none.
    #[schema(value_type = Option<String>, format = Email, required = true, example = json!(null))]
    pending_email: Option<EmailAddress>,
    #[schema(example = "Maria Rossi")]
    name: String,
    role: Role,
    /// `null` when none was given.
    #[schema(value_type = Option<String>, required = true, example = "RSSMRA80A41H501U")]
    codice_fiscale: Option<CodiceFiscale>,
    created_at: DateTime<Utc>,
}

impl From<User> for ProfileResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            brand: user.brand_id,
            email_confirmed: user.email_confirmed_at.is_some(),
            email: user.email,
            pending_email: None,
            name: user.name,
            role: user.role,
            codice_fiscale: user.codice_fiscale,
            created_at: user.created_at,
        }
    }
}

impl From<ProfileUpdate> for ProfileResponse {
    fn from(update: ProfileUpdate) -> Self {
        Self {
            pending_email: update.pending_email,
            ..update.user.into()
        }
    }
}

/// The signed-in user's profile
///
/// Any signed-in user (customer, registration officer, back-office).
#[utoipa::path(
    operation_id = "me_get",
    responses(
        (status = 200, description = "The profile", body = ProfileResponse),
        AccountGone,
    )
)]
#[get("/api/v1/me")]
pub async fn get(state: State, user: CurrentUser) -> ApiResult {
    let found = state
        .with_conn(move |conn| {
            let found = users::find(conn, &user.id)?.ok_or(UserError::NotFound)?;
            let pending_email = confirmation::pending_email(conn, &user.id, Utc::now())
                .map_err(|e| UserError::Storage(e.into()))?;
            Ok::<_, UserError>(ProfileUpdate {
                user: found,
                pending_email,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProfileResponse::from(found)))
}

/// Absent: leave as is. `null`: clear (codice fiscale only). A value: set.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Changes to the profile: an absent member is left as is.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    #[schema(example = "Maria Rossi")]
    name: Option<String>,
    #[serde(default)]
    #[schema(example = "maria.rossi@example.it")]
    email: Option<String>,
    /// `null` or `""` clears it; a value sets it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "RSSMRA80A41H501U")]
    codice_fiscale: Option<Option<String>>,
    /// Required (and checked) when `new_password` or a new `email` is given.
    #[serde(default)]
    #[schema(format = Password)]
    current_password: Option<String>,
    /// Must satisfy the password policy.
    #[serde(default)]
    #[schema(format = Password)]
    new_password: Option<String>,
}

/// Change the signed-in user's profile
///
/// Any signed-in user. Changing the password or the email address needs the current
/// password; wrong current passwords are throttled like sign-ins (they count against the same
/// account). A password change ends every other session of the user (other sign-ins with their
/// access tokens, browser sessions); the caller's tokens keep working. A new email address is
/// not set at once: a confirmation link goes to it and a notice to the current address, the
/// answer shows it as `pending_email`, and it becomes `email` when the link is opened (at most
/// 5 requests an hour). The same address as now changes nothing. Every invalid field is
/// reported at once in the problem's `errors`.
#[utoipa::path(
    operation_id = "me_patch",
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "The updated profile", body = ProfileResponse),
        (status = 400, description = "Invalid fields (`/problems/invalid-field`: name, email, \
            codice_fiscale, new_password, or a wrong current_password) or a malformed body \
            (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        AccountGone,
        (status = 409, description = "The new email already has an account in this brand \
            (`/problems/email-taken`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong current passwords, or too many address \
            changes (`/problems/too-many-requests`)",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
#[patch("/api/v1/me")]
pub async fn patch(
    state: State,
    request: HttpRequest,
    user: CurrentUser,
    body: JsonObject<ProfilePatch>,
) -> ApiResult {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let name = body
        .name
        .as_deref()
        .map(|n| errors.check("name", PersonName::parse(n)));
    let email = body
        .email
        .as_deref()
        .map(|e| errors.check("email", EmailAddress::parse(e)));
    let codice_fiscale = body.codice_fiscale.as_ref().map(|cf| match cf.as_deref() {
        None | Some("") => Some(None),
        Some(cf) => errors
            .check("codice_fiscale", CodiceFiscale::parse(cf))
            .map(Some),
    });
    let new_password = body.new_password.as_deref().map(|p| {
        let email = email.clone().flatten();
        errors.check("new_password", NewPassword::parse(p, email.as_ref()))
    });
    errors.finish()?;

    let now = Utc::now();
    let new_password = new_password.flatten();
    let email = email.flatten();
    // Changing the password or the address needs the current password: a stolen access
    // token alone must not be enough to take the account (or its coupons) over.
    let (user_id, client) = (user.id.clone(), super::client_address(&request));
    let (asks, wanted) = (new_password.is_some(), email.clone());
    let confirmation = state
        .with_conn(move |conn| {
            let current = users::find(conn, &user_id)?.ok_or(UserError::NotFound)?;
            if account::needs_current_password(&current, asks, wanted.as_ref()) {
                account::begin_reauthentication(conn, &user_id, &client, now).map(Some)
            } else {
                Ok(None)
            }
        })
        .await?;
    let reauthentication = match confirmation {
        Some(confirmation) => {
            let current = body.current_password.unwrap_or_default();
            let hash = confirmation.password_hash.clone();
            let matches = web::block(move || password::verify(&current, Some(&hash)))
                .await
                .map_err(|e| ApiError::Unexpected(e.into()))?;
            Some((confirmation, matches))
        }
        None => None,
    };
    let changes = ProfileChanges {
        name: name.flatten(),
        codice_fiscale: codice_fiscale.flatten(),
        new_password,
    };
    let app = state.clone();
    let updated = state
        .with_conn(move |conn| {
            let session = CurrentSession::Api {
                family: &user.session,
            };
            account::update_profile(
                conn,
                &user.id,
                changes,
                email,
                reauthentication,
                session,
                &app.config.public_url,
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProfileResponse::from(updated)))
}

/// Send a new link to confirm the email address
///
/// Customers and registration officers whose address is not confirmed yet: a new link goes
/// to the account's address and the earlier ones stop working. At most 3 an hour.
#[utoipa::path(
    operation_id = "me_email_confirmation_resend",
    responses(
        (status = 202, description = "A new link is on its way"),
        AccountGone,
        NotBuyer,
        (status = 409, description = "The address is already confirmed \
            (`/problems/email-already-confirmed`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many links asked for (`/problems/too-many-requests`)",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    )
)]
#[post("/api/v1/me/email/confirmation")]
pub async fn resend_confirmation(state: State, Buyer(user): Buyer) -> ApiResult {
    let app = state.clone();
    state
        .with_conn(move |conn| {
            confirmation::resend(conn, &user.id, &app.config.public_url, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Sign out everywhere
///
/// Any signed-in user. Ends every session of the user, this one included: every sign-in's
/// refresh and access tokens stop working at once, and every browser session of the shop
/// ends. Sign in again to go on.
#[utoipa::path(
    operation_id = "me_sessions_revoke",
    responses(
        (status = 204, description = "Every session of the user has ended"),
        AccountGone,
    )
)]
#[post("/api/v1/me/sessions/revoke")]
pub async fn revoke_sessions(state: State, user: CurrentUser) -> ApiResult {
    state
        .with_conn(move |conn| account::sign_out_everywhere(conn, &user.id, Utc::now()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
