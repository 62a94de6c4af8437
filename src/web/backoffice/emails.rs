//! Emails that could not be delivered, and sending them again.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::User;
use crate::http::AppState;
use crate::mail::outbox;
use crate::web::{merge, page, see_other, with_conn, Csrf, OperatorPage, WebError};

use super::{base, brand_of, done_message, operator_of, or_dash, time_it, DoneQuery};

/// Dead emails listed.
const EMAILS_SHOWN: i64 = 500;

pub(super) async fn emails_page(
    state: &web::Data<AppState>,
    csrf: &Csrf,
    user: User,
    done: Value,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let brand_id = user.brand_id.clone();
    let (brand, list) = with_conn(state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let list = outbox::list(conn, &brand_id, "dead", EMAILS_SHOWN)?;
        Ok((brand, list))
    })
    .await?;
    let emails: Vec<Value> = list
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "created_at": time_it(e.created_at.and_utc()),
                "recipient": e.recipient,
                "subject": e.subject,
                "kind": e.kind,
                "reference": or_dash(e.reference),
                "attempts": e.attempts,
                "last_error": or_dash(e.last_error),
            })
        })
        .collect();
    let context = merge(
        base(&user, &brand, csrf, "Email non consegnate"),
        json!({ "done": done, "error": error, "emails": emails }),
    );
    page(state, csrf, status, "bo_email", context)
}

pub(super) async fn emails(
    visit: OperatorPage,
    query: web::Query<DoneQuery>,
) -> Result<HttpResponse, WebError> {
    let OperatorPage { state, user, csrf } = visit;
    let done = done_message(query.fatto.as_deref());
    emails_page(&state, &csrf, user, done, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct TokenOnly {
    #[serde(default)]
    csrf_token: String,
}

pub(super) async fn retry_email(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    form: web::Form<TokenOnly>,
) -> Result<HttpResponse, WebError> {
    let (user, _) = operator_of(&request, &form.csrf_token).await?;
    let brand_id = user.brand_id.clone();
    let id = id.into_inner();
    let requeued = with_conn(&state, move |conn| {
        Ok(outbox::retry(conn, &brand_id, &id, Utc::now())?)
    })
    .await?;
    if requeued {
        return Ok(see_other("/backoffice/email?fatto=riprova"));
    }
    let csrf = Csrf::of(&request);
    let message = "Questa email non è più tra quelle non consegnate del tuo marchio (forse è già stata rimessa in coda).".to_owned();
    emails_page(
        &state,
        &csrf,
        user,
        Value::Null,
        Some(message),
        StatusCode::NOT_FOUND,
    )
    .await
}
