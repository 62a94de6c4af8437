//! Who is calling: the extractors that turn a bearer token into a user and check roles
//! (the only place roles are checked). Every handler module takes its caller from here.
//!
//! An access token is accepted only while the sign-in it was issued with stands (one
//! indexed read per request): signing out, signing out everywhere and a password change
//! end its tokens at once.

use std::future::{ready, Ready};

use futures_util::future::LocalBoxFuture;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest};

use super::problem::kinds;
use super::{ApiError, State};
use crate::auth::{sessions, Role};

/// A signed-in user of any role, from a valid access token.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: String,
    pub brand: String,
    pub role: Role,
    /// The sign-in (refresh-token family) the access token was issued with.
    pub session: String,
}

impl CurrentUser {
    /// The caller as a back-office operator acting in their brand, as the domain's
    /// operator actions take them (the extractor checked the role).
    pub fn acting(&self) -> crate::audit::Operator<'_> {
        crate::audit::Operator {
            id: &self.id,
            brand_id: &self.brand,
        }
    }

    /// The caller, as the rule of who sees a buyer's records knows them.
    pub fn viewer(&self) -> crate::auth::Viewer<'_> {
        crate::auth::Viewer {
            user_id: &self.id,
            brand_id: &self.brand,
            role: self.role,
        }
    }
}

/// A signed-in customer or registration officer: someone who buys.
#[derive(Debug, Clone)]
pub struct Buyer(pub CurrentUser);

/// A signed-in back-office operator.
#[derive(Debug, Clone)]
pub struct BackOffice(pub CurrentUser);

/// The application state and the bearer token of the request; `kind` names the token
/// the endpoint wants (access or agent) in the refusal.
fn bearer<'r>(request: &'r HttpRequest, kind: &str) -> Result<(&'r State, &'r str), ApiError> {
    let state = request
        .app_data::<State>()
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("application state missing")))?;
    let header = request.headers().get(AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized(format!(
            "sign in first: send Authorization: Bearer <{kind}>"
        ))
    })?;
    let token = header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("Bearer").then_some(token))
        .ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "the Authorization header must be 'Bearer <{kind}>'"
            ))
        })?;
    Ok((state, token))
}

async fn authenticate(request: HttpRequest) -> Result<CurrentUser, ApiError> {
    let (state, token) = bearer(&request, "access token")?;
    let claims = state
        .tokens
        .verify_access(token.trim())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let (user_id, family) = (claims.sub.clone(), claims.sid.clone());
    let live = state
        .with_conn(move |conn| sessions::is_live(conn, &user_id, &family))
        .await?;
    if !live {
        return Err(ApiError::Unauthorized(
            "the session has ended (signed out, the password was changed, or the account was disabled): sign in again".into(),
        ));
    }
    Ok(CurrentUser {
        id: claims.sub,
        brand: claims.brand,
        role: claims.role,
        session: claims.sid,
    })
}

async fn with_role<T>(
    request: HttpRequest,
    allowed: fn(Role) -> bool,
    wrap: fn(CurrentUser) -> T,
) -> Result<T, ApiError> {
    let user = authenticate(request).await?;
    if allowed(user.role) {
        Ok(wrap(user))
    } else {
        Err(ApiError::refused(
            kinds::FORBIDDEN_ROLE,
            format!("a {} may not do this", user.role),
        ))
    }
}

/// A desktop agent signed in with a device's certificate (an agent token, never an
/// access token).
#[derive(Debug, Clone)]
pub struct Agent(pub crate::auth::tokens::AgentClaims);

impl FromRequest for Agent {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let (state, token) = bearer(request, "agent token")?;
            let claims = state.tokens.verify_agent(token.trim()).map_err(|e| {
                ApiError::Unauthorized(match e {
                    crate::auth::tokens::TokenError::Expired => {
                        "the agent token has expired: sign in again".into()
                    }
                    crate::auth::tokens::TokenError::Invalid => {
                        "the agent token is not valid".into()
                    }
                })
            })?;
            Ok(Agent(claims))
        })())
    }
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(request.clone()))
    }
}

impl FromRequest for Buyer {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(with_role(request.clone(), Role::buys, Buyer))
    }
}

impl FromRequest for BackOffice {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;
    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(with_role(
            request.clone(),
            |r| r == Role::BackOffice,
            BackOffice,
        ))
    }
}
