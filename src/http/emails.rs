//! The back-office's view of the outbox: dead emails, and retrying them.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;

use super::auth::BackOffice;
use super::{ApiError, AppState};
use crate::mail::outbox;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default = "dead")]
    status: String,
}

fn dead() -> String {
    "dead".into()
}

/// `GET /api/v1/backoffice/emails?status=dead|pending|sent`
pub async fn list(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let status = query.into_inner().status;
    if !["dead", "pending", "sent"].contains(&status.as_str()) {
        return Err(ApiError::invalid_field(
            "status",
            "one_of",
            "status must be dead, pending or sent",
        ));
    }
    let list = state
        .with_conn(move |conn| outbox::list(conn, &operator.brand, &status, 500))
        .await?;
    let emails: Vec<_> = list
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id, "kind": e.kind, "reference": e.reference, "recipient": e.recipient,
                "subject": e.subject, "status": e.status, "attempts": e.attempts,
                "last_error": e.last_error, "created_at": e.created_at.and_utc(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "emails": emails })))
}

/// `POST /api/v1/backoffice/emails/{id}/retry`: a dead email goes back in the queue.
pub async fn retry(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let requeued = state
        .with_conn(move |conn| outbox::retry(conn, &operator.brand, &id, Utc::now()))
        .await?;
    if !requeued {
        return Err(ApiError::not_found(
            "unknown-email",
            "Unknown email",
            "no dead email of your brand has this id",
        ));
    }
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "status": "pending" })))
}
