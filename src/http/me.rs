//! `GET/PATCH /api/v1/me`: the signed-in user's profile (its email is where coupons go);
//! `POST /api/v1/me/sessions/revoke`: sign out everywhere.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::extract::CurrentUser;
use super::json::JsonObject;
use super::problem::FieldErrors;
use super::responses::AccountGone;
use super::{ApiError, AppState, Problem};
use crate::auth::account::{self, CurrentSession};
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
    /// Where the user's coupons are sent.
    #[schema(value_type = String, format = Email, example = "maria.rossi@example.it")]
    email: EmailAddress,
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
            email: user.email,
            name: user.name,
            role: user.role,
            codice_fiscale: user.codice_fiscale,
            created_at: user.created_at,
        }
    }
}

/// The signed-in user's profile
///
/// Any signed-in user (customer, registration officer, back-office).
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "me",
    operation_id = "me_get",
    responses(
        (status = 200, description = "The profile", body = ProfileResponse),
        AccountGone,
    )
)]
pub async fn get(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, ApiError> {
    let found = state
        .with_conn(move |conn| users::find(conn, &user.id)?.ok_or(UserError::NotFound))
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
    /// Required (and checked) when `new_password` is given.
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
/// Any signed-in user. Changing the password needs the current one; wrong current passwords
/// are throttled like sign-ins (they count against the same account). A password change ends
/// every other session of the user (other sign-ins with their access tokens, browser
/// sessions); the caller's tokens keep working. Every invalid field is reported at once in
/// the problem's `errors`.
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    tag = "me",
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
        (status = 429, description = "Too many wrong current passwords \
            (`/problems/too-many-requests`)",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn patch(
    state: web::Data<AppState>,
    request: HttpRequest,
    user: CurrentUser,
    body: JsonObject<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
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
    let reauthentication = if new_password.is_some() {
        // Changing the password needs the current one: a stolen access token alone
        // must not be enough to take the account over.
        let current = body.current_password.unwrap_or_default();
        let (user_id, client) = (user.id.clone(), super::client_address(&request));
        let confirmation = state
            .with_conn(move |conn| account::begin_reauthentication(conn, &user_id, &client, now))
            .await?;
        let hash = confirmation.password_hash.clone();
        let matches = web::block(move || password::verify(&current, Some(&hash)))
            .await
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        Some((confirmation, matches))
    } else {
        None
    };
    let changes = ProfileChanges {
        name: name.flatten(),
        email: email.flatten(),
        codice_fiscale: codice_fiscale.flatten(),
        new_password: new_password.flatten(),
    };
    let updated = state
        .with_conn(move |conn| {
            let session = CurrentSession::Api {
                family: &user.session,
            };
            account::update_profile(conn, &user.id, changes, reauthentication, session, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProfileResponse::from(updated)))
}

/// Sign out everywhere
///
/// Any signed-in user. Ends every session of the user, this one included: every sign-in's
/// refresh and access tokens stop working at once, and every browser session of the shop
/// ends. Sign in again to go on.
#[utoipa::path(
    post,
    path = "/api/v1/me/sessions/revoke",
    tag = "me",
    operation_id = "me_sessions_revoke",
    responses(
        (status = 204, description = "Every session of the user has ended"),
        AccountGone,
    )
)]
pub async fn revoke_sessions(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    state
        .with_conn(move |conn| account::sign_out_everywhere(conn, &user.id, Utc::now()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The profile endpoints' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(get, patch, revoke_sessions))]
pub struct Docs;
