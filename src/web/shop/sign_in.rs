//! Signing in to a brand's shop, signing up as its customer, and signing out: the
//! server-side session in an HttpOnly cookie that every other page of the shop reads.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{
    account, password, sessions, web_sessions, NewPassword, NewUser, Role, UserError,
};
use crate::email_address::EmailAddress;
use crate::http::problem::kinds;
use crate::http::{AppState, State};
use crate::validation::PersonName;
use crate::web::{
    refusal, see_other, with_conn, CheckedForm, NoFields, PageResult, Query, VisitorPage, WebError,
};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInForm {
    email: String,
    password: String,
}

const SIGN_IN: (&str, &str) = ("accedi", "Accedi");
const SIGN_UP: (&str, &str) = ("iscriviti", "Iscriviti");

pub(super) async fn sign_in_form(visitor: VisitorPage, query: Query) -> PageResult {
    // After a password reset (`?password=nuova`), say so above the form.
    let notice = (query.get("password").map(String::as_str) == Some("nuova"))
        .then_some("La nuova password è impostata: accedi con quella.");
    let fields = json!({ "email": "", "error": null, "notice": notice });
    visitor.render(StatusCode::OK, SIGN_IN, fields)
}

/// Signs the user in: a server-side session in an HttpOnly cookie, then the shop.
fn signed_in(state: &AppState, brand: &str, role: Role, token: &str) -> PageResult {
    let mut response = see_other(crate::web::home_of(role));
    let brand_cookie = actix_web::cookie::Cookie::build(crate::web::BRAND_COOKIE, brand.to_owned())
        .path("/")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .secure(crate::web::secure(state))
        .permanent()
        .finish();
    for cookie in [crate::web::session_cookie(state, token), brand_cookie] {
        response
            .add_cookie(&cookie)
            .map_err(|e| WebError::Unexpected(e.into()))?;
    }
    Ok(response)
}

pub(super) async fn sign_in(
    CheckedForm(form): CheckedForm<SignInForm>,
    visitor: VisitorPage,
    request: HttpRequest,
) -> PageResult {
    let VisitorPage { state, brand, .. } = &visitor;
    let SignInForm { email, password } = form;
    let client = crate::http::client_address(&request);
    let now = Utc::now();
    let (brand_id, typed) = (brand.id.clone(), email.clone());
    let login = with_conn(state, move |conn| {
        Ok(sessions::start_login(conn, &brand_id, &typed, &client, now))
    })
    .await?;
    let login = match login {
        Ok(login) => login,
        Err(error) => return sign_in_refused(&visitor, &email, error),
    };
    let hash = login.password_hash.clone();
    let matches = web::block(move || password::verify(&password, hash.as_deref())).await?;
    let outcome = with_conn(state, move |conn| {
        match sessions::close_attempt(conn, login, matches, now) {
            Ok(user) => Ok(Ok((user.role, web_sessions::start(conn, &user.id, now)?))),
            Err(error) => Ok(Err(error)),
        }
    })
    .await?;
    match outcome {
        Ok((role, token)) => signed_in(state, &brand.id, role, &token),
        Err(error) => sign_in_refused(&visitor, &email, error),
    }
}

/// Wrong credentials or a disabled account: the form again, with the message;
/// throttling: its error page.
fn sign_in_refused(
    visitor: &VisitorPage,
    email: &str,
    error: sessions::SessionError,
) -> PageResult {
    let identity = refusal(error)?;
    // Wrong credentials, or a disabled account (told only once the password matched).
    if identity.kind.status != StatusCode::UNAUTHORIZED && identity.kind != kinds::ACCOUNT_DISABLED
    {
        return Err(identity.into());
    }
    let fields = json!({ "email": email, "error": identity.italian, "notice": null });
    visitor.render(identity.kind.status, SIGN_IN, fields)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignUpForm {
    name: String,
    email: String,
    password: String,
}

pub(super) async fn sign_up_form(visitor: VisitorPage) -> PageResult {
    let fields = json!({ "name": "", "email": "", "error": null, "errors": {} });
    visitor.render(StatusCode::OK, SIGN_UP, fields)
}

pub(super) async fn sign_up(
    CheckedForm(form): CheckedForm<SignUpForm>,
    visitor: VisitorPage,
) -> PageResult {
    let VisitorPage { state, brand, .. } = &visitor;
    let mut errors = BTreeMap::new();
    let name = PersonName::parse(&form.name)
        .map_err(|e| errors.insert("name", crate::http::italian::person_name_rule(&e)))
        .ok();
    let email = EmailAddress::parse(&form.email)
        .map_err(|e| errors.insert("email", crate::http::italian::email_rule(&e).to_owned()))
        .ok();
    let password = match NewPassword::parse(&form.password, email.as_ref()) {
        Ok(password) => Some(password),
        Err(e) => {
            errors.insert(
                "password",
                crate::http::italian::password_rule(&e).to_owned(),
            );
            None
        }
    };
    let (Some(name), Some(email), Some(password)) = (name, email, password) else {
        return sign_up_again(&visitor, &form, errors);
    };
    let new = NewUser {
        brand_id: brand.id.clone(),
        email,
        name,
        password,
        role: Role::Customer,
        codice_fiscale: None,
    };
    let now = Utc::now();
    let public_url = state.config.public_url.clone();
    let created = with_conn(state, move |conn| {
        match account::sign_up(conn, new, &public_url, now) {
            Ok(user) => Ok(Ok(web_sessions::start(conn, &user.id, now)?)),
            Err(taken @ UserError::EmailTaken) => Ok(Err(refusal(taken)?)),
            Err(other) => Err(other.into()),
        }
    })
    .await?;
    match created {
        Ok(token) => signed_in(state, &brand.id, Role::Customer, &token),
        Err(taken) => {
            let message = format!("{} Accedi, o usa un'altra email.", taken.italian);
            let errors = BTreeMap::from([("email", message)]);
            sign_up_again(&visitor, &form, errors)
        }
    }
}

fn sign_up_again(
    visitor: &VisitorPage,
    form: &SignUpForm,
    errors: BTreeMap<&str, String>,
) -> PageResult {
    let fields = json!({ "name": form.name, "email": form.email, "errors": errors, "error": null });
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    visitor.render(status, SIGN_UP, fields)
}

pub(super) async fn sign_out(
    state: State,
    request: HttpRequest,
    _: CheckedForm<NoFields>,
) -> PageResult {
    let brand = crate::web::brand_hint(&request);
    if let Some(token) = request
        .cookie(crate::web::SESSION_COOKIE)
        .map(|c| c.value().to_owned())
    {
        with_conn(&state, move |conn| Ok(web_sessions::end(conn, &token)?)).await?;
    }
    let mut response = see_other(&format!("/negozio/{brand}/accedi"));
    response
        .add_removal_cookie(&crate::web::expired_cookie(crate::web::SESSION_COOKIE))
        .map_err(|e| WebError::Unexpected(e.into()))?;
    Ok(response)
}
