//! `GET/PATCH /api/v1/me`: the signed-in user's profile. Its email is where coupons go.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::auth::CurrentUser;
use super::problem::FieldErrors;
use super::{ApiError, AppState};
use crate::auth::{password, users, NewPassword, ProfileChanges, Role, User, UserError};
use crate::email_address::EmailAddress;
use crate::registry::CodiceFiscale;
use crate::validation::PersonName;

#[derive(Serialize)]
pub struct ProfileResponse {
    id: String,
    brand: String,
    email: EmailAddress,
    name: String,
    role: Role,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    codice_fiscale: Option<Option<String>>,
    #[serde(default)]
    current_password: Option<String>,
    #[serde(default)]
    new_password: Option<String>,
}

pub async fn patch(
    state: web::Data<AppState>,
    user: CurrentUser,
    body: web::Json<ProfilePatch>,
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

    if new_password.is_some() {
        // Changing the password needs the current one: a stolen access token alone
        // must not be enough to take the account over.
        let current = body.current_password.unwrap_or_default();
        let user_id = user.id.clone();
        let stored = state
            .with_conn(move |conn| users::password_hash(conn, &user_id))
            .await?;
        let matches = web::block(move || password::verify(&current, Some(&stored)))
            .await
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        if !matches {
            return Err(ApiError::invalid_field(
                "current_password",
                "matches",
                "the current password is wrong",
            ));
        }
    }
    let changes = ProfileChanges {
        name: name.flatten(),
        email: email.flatten(),
        codice_fiscale: codice_fiscale.flatten(),
        new_password: new_password.flatten(),
    };
    let updated = state
        .with_conn(move |conn| users::update_profile(conn, &user.id, changes, Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(ProfileResponse::from(updated)))
}
