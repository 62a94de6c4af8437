//! Emails that could not be delivered, and sending them again.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde_json::{json, Value};

use crate::mail::outbox::{self, EmailStatus};
use crate::paging::Page;
use crate::web::{refusal, NoFields, OperatorPage, PageResult};

use super::{
    done_message, done_redirect, or_dash, page_numbered, rows_and_pager, time_it, DoneQuery,
    OperatorForm,
};

pub(super) async fn emails_page(
    visit: &OperatorPage,
    page: Page,
    done: Value,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let (brand, list) = visit
        .read(move |conn, brand_id| Ok(outbox::list(conn, brand_id, EmailStatus::Dead, page)?))
        .await?;
    let (emails, pager) = rows_and_pager("/backoffice/email", &[], page, list, |e| {
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
    });
    let title = "Email non consegnate";
    let context = json!({ "done": done, "error": error, "emails": emails, "pager": pager });
    visit.render(&brand, title, status, "bo_email", context)
}

pub(super) async fn emails(visit: OperatorPage, query: web::Query<DoneQuery>) -> PageResult {
    let done = done_message(query.fatto.as_deref());
    emails_page(
        &visit,
        page_numbered(&query.pagina),
        done,
        None,
        StatusCode::OK,
    )
    .await
}

pub(super) async fn retry_email(
    OperatorForm { visit, .. }: OperatorForm<NoFields>,
    id: web::Path<String>,
) -> PageResult {
    let id = id.into_inner();
    let outcome = visit
        .as_operator(move |conn, operator| {
            Ok(outbox::retry(conn, operator.acting(), &id, Utc::now()))
        })
        .await?;
    match outcome {
        Ok(()) => Ok(done_redirect("/backoffice/email", "riprova")),
        Err(error) => {
            // The row's button names the email: nothing typed is wrong, the email is
            // not (or no longer) one to retry.
            let identity = refusal(error)?;
            emails_page(
                &visit,
                Page::default(),
                Value::Null,
                Some(identity.italian),
                identity.kind.status,
            )
            .await
        }
    }
}
