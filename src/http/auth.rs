//! The sign-up / sign-in endpoints (who is calling is decided in `extract`).

use actix_web::post;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::extract::CurrentUser;
use super::json::JsonObject;
use super::me::ProfileResponse;
use super::problem::FieldErrors;
use super::responses::{AccountGone, MalformedBody};
use super::{ApiError, ApiResult, Problem, State};
use crate::auth::recovery;
use crate::auth::sessions::{self, Session};
use crate::auth::{account, confirmation, password, NewPassword, NewUser, Role};
use crate::email_address::EmailAddress;
use crate::registry::CodiceFiscale;
use crate::validation::PersonName;

/// A new customer account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// The brand (shop) the account belongs to.
    #[schema(example = "rinnovo")]
    brand: String,
    /// The person's full name.
    #[schema(example = "Maria Rossi")]
    name: String,
    #[schema(example = "maria.rossi@example.it")]
    email: String,
    /// Must satisfy the password policy (length, not the email...).
    #[schema(format = Password)]
    password: String,
    /// Optional; empty or absent means none.
    #[serde(default)]
    #[schema(example = "RSSMRA80A41H501U")]
    codice_fiscale: Option<String>,
}

/// Open a customer account
///
/// Creates a customer account (and its prepaid account) in a brand and sends a link to the
/// email address to confirm it; until it is confirmed the account can sign in but not order
/// or top up. The address must be one the mailer delivers to: a plain `local@domain.tld`
/// in ASCII (no quoted local part, no IP address as domain; rule `deliverable_email`). Every
/// invalid field is reported at once in the problem's `errors`.
#[utoipa::path(
    operation_id = "auth_signup",
    security(()),
    request_body = SignupRequest,
    responses(
        (status = 201, description = "The account was created; its profile", body = ProfileResponse,
            headers(("Location" = String, description = "`/api/v1/me`"))),
        (status = 400, description = "Invalid fields (`/problems/invalid-field`: name, email, \
            password, codice_fiscale, or an unknown brand) or a malformed body \
            (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email already has an account in this brand \
            (`/problems/email-taken`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/auth/signup")]
pub async fn signup(state: State, body: JsonObject<SignupRequest>) -> ApiResult {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let name = errors.check("name", PersonName::parse(&body.name));
    let email = errors.check("email", EmailAddress::parse(&body.email));
    let password = errors.check(
        "password",
        NewPassword::parse(&body.password, email.as_ref()),
    );
    let codice_fiscale = body
        .codice_fiscale
        .as_deref()
        .filter(|cf| !cf.trim().is_empty())
        .map(|cf| errors.check("codice_fiscale", CodiceFiscale::parse(cf)));
    errors.finish()?;
    let new = NewUser {
        brand_id: body.brand,
        email: email.expect("checked"),
        name: name.expect("checked"),
        password: password.expect("checked"),
        role: Role::Customer,
        codice_fiscale: codice_fiscale.flatten(),
    };
    // Hashing is slow on purpose; it runs inside with_conn's blocking thread.
    let app = state.clone();
    let user = state
        .with_conn(move |conn| account::sign_up(conn, new, &app.config.public_url, Utc::now()))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", "/api/v1/me"))
        .json(ProfileResponse::from(user)))
}

/// Credentials of a user of a brand.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "rinnovo")]
    brand: String,
    #[schema(example = "maria.rossi@example.it")]
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// A signed-in session: a short-lived access token and a refresh token.
#[derive(Serialize, utoipa::ToSchema)]
struct SessionResponse {
    /// The JWT to send as `Authorization: Bearer <access_token>`.
    access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    expires_in: i64,
    /// Single use: `POST /api/v1/auth/refresh` exchanges it for a new session.
    refresh_token: String,
    user: ProfileResponse,
}

impl From<Session> for SessionResponse {
    fn from(session: Session) -> Self {
        Self {
            access_token: session.access_token,
            token_type: "Bearer",
            expires_in: session.expires_in_seconds,
            refresh_token: session.refresh_token,
            user: session.user.into(),
        }
    }
}

/// Sign in with email and password
///
/// Failed attempts are throttled per account and client address, per client address, and
/// per account across all addresses.
#[utoipa::path(
    operation_id = "auth_login",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = SessionResponse),
        MalformedBody,
        (status = 401, description = "Wrong brand, email or password (`/problems/unauthorized`)",
            body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 429, description = "Too many failed attempts (`/problems/too-many-requests`)",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    state: State,
    request: HttpRequest,
    body: JsonObject<LoginRequest>,
) -> ApiResult {
    let LoginRequest {
        brand,
        email,
        password: candidate,
    } = body.into_inner();
    let client_address = super::client_address(&request);
    let now = Utc::now();
    let login = state
        .with_conn(move |conn| sessions::start_login(conn, &brand, &email, &client_address, now))
        .await?;
    let hash = login.password_hash.clone();
    let matches = web::block(move || password::verify(&candidate, hash.as_deref()))
        .await
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    let tokens = state.tokens.clone();
    let session = state
        .with_conn(move |conn| sessions::finish_login(conn, &tokens, login, matches, now))
        .await?;
    Ok(HttpResponse::Ok().json(SessionResponse::from(session)))
}

/// A refresh token of a session.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Exchange a refresh token for a new session
///
/// The refresh token is single use: the answer carries a new one. Reusing a spent refresh token
/// is refused.
#[utoipa::path(
    operation_id = "auth_refresh",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new session", body = SessionResponse),
        MalformedBody,
        (status = 401, description = "Unknown, expired, revoked or already used refresh token \
            (`/problems/unauthorized`)",
            body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(state: State, body: JsonObject<RefreshRequest>) -> ApiResult {
    let token = body.into_inner().refresh_token;
    let tokens = state.tokens.clone();
    let session = state
        .with_conn(move |conn| sessions::refresh(conn, &tokens, &token, Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(SessionResponse::from(session)))
}

/// Sign out: revoke the refresh token's whole session family
///
/// Unknown refresh tokens are ignored (still 204), so the answer tells nothing about them.
/// The access tokens of the sign-in stop working at once.
#[utoipa::path(
    operation_id = "auth_logout",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Signed out"),
        MalformedBody,
    )
)]
#[post("/api/v1/auth/logout")]
pub async fn logout(state: State, body: JsonObject<RefreshRequest>) -> ApiResult {
    let token = body.into_inner().refresh_token;
    state
        .with_conn(move |conn| sessions::logout(conn, &token, Utc::now()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A forgotten password: the account, as the sign-in names it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[schema(example = "rinnovo")]
    brand: String,
    #[schema(example = "maria.rossi@example.it")]
    email: String,
}

/// The one answer to every accepted request for a reset link.
#[derive(Serialize, utoipa::ToSchema)]
struct PasswordResetAccepted {
    #[schema(
        example = "If the address has an account in this brand, an email with a link to set a new password is on its way."
    )]
    detail: &'static str,
    /// How long the link works, in minutes.
    #[schema(example = 30)]
    link_valid_minutes: i64,
}

const RESET_ACCEPTED: PasswordResetAccepted = PasswordResetAccepted {
    detail: "If the address has an account in this brand, an email with a link to set a new \
             password is on its way.",
    link_valid_minutes: recovery::LINK_VALID_MINUTES,
};

/// Ask for a link to set a new password
///
/// The answer is the same (202, same body) whether or not the address has an account, so
/// it tells nothing about who is registered. If it has one, an email with a single-use link
/// goes to it, valid for 30 minutes; a newer request voids the older links. At most 3
/// emails an hour and 10 a day go to one account (past that, still 202, no email); one
/// client address may ask 10 times an hour (past that, 429).
#[utoipa::path(
    operation_id = "auth_password_reset",
    security(()),
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted; an email follows if the account exists",
            body = PasswordResetAccepted),
        (status = 400, description = "An unknown brand (`/problems/invalid-field`) or a \
            malformed body (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this client address \
            (`/problems/too-many-requests`)",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    )
)]
#[post("/api/v1/auth/password-reset")]
pub async fn request_password_reset(
    state: State,
    request: HttpRequest,
    body: JsonObject<PasswordResetRequest>,
) -> ApiResult {
    let PasswordResetRequest { brand, email } = body.into_inner();
    let client_address = super::client_address(&request);
    let public_url = state.config.public_url.clone();
    state
        .with_conn(move |conn| {
            recovery::request_reset(
                conn,
                &brand,
                &email,
                &client_address,
                &public_url,
                Utc::now(),
            )
        })
        .await?;
    Ok(HttpResponse::Accepted().json(RESET_ACCEPTED))
}

/// The emailed link's token and the new password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirmation {
    /// The `token` of the link in the email.
    token: String,
    /// Must satisfy the password policy.
    #[schema(format = Password)]
    new_password: String,
}

/// Set a new password with the emailed link
///
/// Uses the link (once), sets the password, and ends every session of the user: every
/// refresh token, every access token issued before, every browser session. Then sign in
/// with the new password.
#[utoipa::path(
    operation_id = "auth_password_reset_confirm",
    security(()),
    request_body = PasswordResetConfirmation,
    responses(
        (status = 204, description = "The password is set; every session of the user has ended"),
        (status = 400, description = "The link is unknown, expired, used or replaced by a newer \
            one (`/problems/reset-link-invalid`, field token), the new password breaks the \
            policy (`/problems/invalid-field`, field new_password), or a malformed body \
            (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/auth/password-reset/confirm")]
pub async fn confirm_password_reset(
    state: State,
    body: JsonObject<PasswordResetConfirmation>,
) -> ApiResult {
    let PasswordResetConfirmation {
        token,
        new_password,
    } = body.into_inner();
    state
        .with_conn(move |conn| {
            recovery::reset_password(conn, &token, &new_password, Utc::now()).map(|_| ())
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The token of a confirmation link (`.../conferma-email?token=<token>`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmailRequest {
    token: String,
}

/// Confirm an email address with the token of its link
///
/// The signed-in user confirms their address with the token of the link emailed at sign-up,
/// or confirms the new address they asked for (which then becomes the account's address;
/// it is checked again to be free in the brand). A token works once, within 48 hours, and
/// only for the account it was sent for.
#[utoipa::path(
    operation_id = "auth_email_confirm",
    request_body = ConfirmEmailRequest,
    responses(
        (status = 200, description = "Confirmed; the profile", body = ProfileResponse),
        (status = 400, description = "The token is unknown, used, expired or for another \
            account (`/problems/invalid-field`, field `token`, rule `valid_link`), or a \
            malformed body (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        AccountGone,
        (status = 409, description = "The new address got an account in this brand meanwhile \
            (`/problems/email-taken`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/auth/email/confirm")]
pub async fn confirm_email(
    state: State,
    user: CurrentUser,
    body: JsonObject<ConfirmEmailRequest>,
) -> ApiResult {
    let token = body.into_inner().token;
    let confirmed = state
        .with_conn(move |conn| confirmation::confirm(conn, &token, Some(&user.id), Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(ProfileResponse::from(confirmed)))
}
