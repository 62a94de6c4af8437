//! The back-office's view of the outbox: dead emails, and retrying them.

use actix_web::HttpResponse;
use actix_web::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::operation::{backoffice_action, backoffice_list, Acting, Found, Listing};
use super::query::{one_of_all, page_of};
use super::responses::NotOperator;
use super::{ApiResult, Problem};
use crate::mail::outbox::{self, EmailStatus, EmailSummary};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Which emails to list: `dead` (default), `pending` or `sent`.
    #[serde(default = "dead")]
    #[param(value_type = Option<EmailStatus>, default = "dead")]
    status: String,
}

fn dead() -> String {
    "dead".into()
}

/// An email of the outbox.
#[derive(Serialize, utoipa::ToSchema)]
struct EmailResponse {
    id: String,
    /// What the email is about (e.g. the coupon delivery).
    kind: String,
    /// The id of what the email is about (an order, a top-up...).
    reference: Option<String>,
    recipient: String,
    subject: String,
    status: EmailStatus,
    /// Delivery attempts so far.
    attempts: i32,
    /// Why the last attempt failed.
    last_error: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<EmailSummary> for EmailResponse {
    fn from(e: EmailSummary) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            reference: e.reference,
            recipient: e.recipient,
            subject: e.subject,
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error,
            created_at: e.created_at.and_utc(),
        }
    }
}

page_of!(
    /// A page of the brand's emails in one status, oldest first, with the total.
    EmailListResponse { emails: EmailResponse }
);

/// The email's new state after a retry.
#[derive(Serialize, utoipa::ToSchema)]
struct EmailRetryResponse {
    #[schema(example = "pending")]
    status: EmailStatus,
}

backoffice_list!(
    /// List the brand's outbox emails in one status (dead by default)
    ///
    /// Back-office operators only. The brand's emails in the given status, oldest first, a page
    /// at a time (`limit`, `offset`), with the total.
    list = "/api/v1/backoffice/emails" as "emails_list",
    filters ListQuery, answers EmailListResponse "A page of the emails",
    by find
);

async fn find(Listing(state, operator, listed): Listing<ListQuery>) -> Found<EmailResponse> {
    let page = listed.page()?;
    let status = one_of_all::<EmailStatus>("status", &listed.filter.status)
        .map_err(|rule| rule.on("status"))?;
    let read = move |conn: &mut _| outbox::list(conn, &operator.brand, status, page);
    listed
        .read_page(&state, page, read, EmailResponse::from)
        .await
}

backoffice_action!(
    /// Put a dead email back in the sending queue
    ///
    /// Back-office operators only; only dead emails of the operator's brand.
    post retry = "/api/v1/backoffice/emails/{id}/retry" as "emails_retry",
    on "id" "The email's id",
    answers (status = 202, description = "The email is pending again; it will be sent shortly",
            body = EmailRetryResponse, example = json!({ "status": "pending" })),
    refuses (
        NotOperator,
        (status = 404, description = "No dead email of the brand has this id \
(`/problems/unknown-email`)", body = Problem, content_type = "application/problem+json"),
    ),
    by retry_email
);

async fn retry_email(Acting(state, operator, id): Acting) -> ApiResult {
    state
        .with_conn(move |conn| outbox::retry(conn, operator.acting(), &id, Utc::now()))
        .await?;
    Ok(HttpResponse::Accepted().json(EmailRetryResponse {
        status: EmailStatus::Pending,
    }))
}
