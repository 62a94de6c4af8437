//! "Password dimenticata?" on the sign-in page: the form that asks for a link by email, and
//! the page the link opens to set the new password. The same use-cases as the API
//! (`auth::recovery`); the link's token travels in a hidden field of the form, not in the
//! address the form posts to.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{refusal, see_other, with_conn, CheckedForm, PageResult, Query, VisitorPage, WebError};
use crate::auth::password::MIN_LENGTH;
use crate::auth::recovery::{self, LINK_VALID_MINUTES};

const FORGOT: (&str, &str) = ("password_dimenticata", "Password dimenticata");
const NEW_PASSWORD: (&str, &str) = ("nuova_password", "Nuova password");

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages! { cfg;
        get  "/negozio/{brand}/accedi/password-dimenticata" => forgot_form,
        post "/negozio/{brand}/accedi/password-dimenticata" => forgot,
        get  "/negozio/{brand}/accedi/nuova-password" => new_password_form,
        post "/negozio/{brand}/accedi/nuova-password" => set_new_password,
    }
}

async fn forgot_form(visitor: VisitorPage) -> PageResult {
    let fields = json!({ "email": "", "sent": false, "minutes": LINK_VALID_MINUTES });
    visitor.render(StatusCode::OK, FORGOT, fields)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ForgotForm {
    email: String,
}

/// The same page whatever the address: whether it has an account is not told.
async fn forgot(
    CheckedForm(form): CheckedForm<ForgotForm>,
    visitor: VisitorPage,
    request: HttpRequest,
) -> PageResult {
    let client = crate::http::client_address(&request);
    let public_url = visitor.state.config.public_url.clone();
    let brand = visitor.brand.id.clone();
    with_conn(&visitor.state, move |conn| {
        Ok(recovery::request_reset(
            conn,
            &brand,
            &form.email,
            &client,
            &public_url,
            Utc::now(),
        )?)
    })
    .await?;
    let fields = json!({ "email": "", "sent": true, "minutes": LINK_VALID_MINUTES });
    visitor.render(StatusCode::OK, FORGOT, fields)
}

/// The page of the link: the form, or (a link that no longer works) why not, before
/// anyone types a password for nothing.
async fn new_password_form(visitor: VisitorPage, query: Query) -> PageResult {
    let token = query.get("token").cloned().unwrap_or_default();
    let typed = token.clone();
    let checked = with_conn(&visitor.state, move |conn| {
        match recovery::check_link(conn, &typed, Utc::now()) {
            Ok(()) => Ok(Ok(())),
            Err(refused) => Ok(Err(refusal(refused)?)),
        }
    })
    .await?;
    match checked {
        Ok(()) => new_password_page(&visitor, StatusCode::OK, &token, BTreeMap::new()),
        Err(refused) => invalid_link_page(&visitor, refused),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewPasswordForm {
    token: String,
    new_password: String,
}

/// Sets the password, which ends every session of the user (this browser's too), then
/// the sign-in form, which says the password is set.
async fn set_new_password(
    CheckedForm(form): CheckedForm<NewPasswordForm>,
    visitor: VisitorPage,
) -> PageResult {
    let NewPasswordForm {
        token,
        new_password,
    } = form;
    let typed = token.clone();
    let outcome = with_conn(&visitor.state, move |conn| {
        match recovery::reset_password(conn, &typed, &new_password, Utc::now()) {
            Ok(user) => Ok(Ok(user.brand_id)),
            Err(refused) => Ok(Err(refusal(refused)?)),
        }
    })
    .await?;
    let refused = match outcome {
        Ok(brand) => {
            let mut response = see_other(&format!("/negozio/{brand}/accedi?password=nuova"));
            response
                .add_removal_cookie(&super::expired_cookie(super::SESSION_COOKIE))
                .map_err(|e| WebError::Unexpected(e.into()))?;
            return Ok(response);
        }
        Err(refused) => refused,
    };
    match refused.field.as_ref().map(|(field, _)| field.as_str()) {
        Some("new_password") => {
            let errors = BTreeMap::from([("new_password", refused.italian)]);
            new_password_page(&visitor, StatusCode::UNPROCESSABLE_ENTITY, &token, errors)
        }
        Some("token") => invalid_link_page(&visitor, refused),
        _ => Err(refused.into()),
    }
}

fn new_password_page(
    visitor: &VisitorPage,
    status: StatusCode,
    token: &str,
    errors: BTreeMap<&str, String>,
) -> PageResult {
    let fields = json!({
        "token": token, "invalid": null, "errors": errors, "min_length": MIN_LENGTH,
    });
    visitor.render(status, NEW_PASSWORD, fields)
}

fn invalid_link_page(visitor: &VisitorPage, refused: crate::http::Identity) -> PageResult {
    let fields = json!({
        "token": "", "invalid": refused.italian, "errors": {}, "min_length": MIN_LENGTH,
    });
    visitor.render(refused.kind.status, NEW_PASSWORD, fields)
}
