//! The back-office's view of the transmission outbox: the files sent to the SdI, waiting
//! or given up, and retrying a dead one.

use actix_web::HttpResponse;
use actix_web::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::operation::{backoffice_action, backoffice_list, Acting, Found, Listing};
use super::query::{one_of_all, page_of};
use super::responses::NotOperator;
use super::{ApiError, ApiResult, Problem};
use crate::invoices::transmission::{self, TransmissionStatus, TransmissionSummary};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Which files to list: `pending`, `sent` or `dead`; all when absent.
    #[param(value_type = Option<TransmissionStatus>)]
    status: Option<String>,
}

/// A file of the transmission outbox.
#[derive(Serialize, utoipa::ToSchema)]
struct OutboxFileResponse {
    id: String,
    /// The document (invoice or credit note) the file carries.
    invoice_id: String,
    /// The document's number.
    #[schema(example = "V2026-000042")]
    number: String,
    /// The SdI file name.
    #[schema(example = "IT01234567897_00001.xml")]
    file_name: String,
    #[schema(value_type = TransmissionStatus)]
    status: TransmissionStatus,
    /// Attempts since it was queued (or put back in the queue).
    attempts: i32,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// The channel of the last attempt: `file` or `pec`.
    channel: Option<String>,
    /// What the channel said of the sent file: the path written, or the PEC message's
    /// Message-ID.
    channel_reference: Option<String>,
    created_at: DateTime<Utc>,
    /// When a pending file is tried next.
    next_attempt_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl From<TransmissionSummary> for OutboxFileResponse {
    fn from(t: TransmissionSummary) -> Self {
        Self {
            id: t.id,
            invoice_id: t.invoice_id,
            number: t.number,
            file_name: t.file_name,
            status: t.status,
            attempts: t.attempts,
            last_error: t.last_error,
            channel: t.channel,
            channel_reference: t.channel_reference,
            created_at: t.created_at.and_utc(),
            next_attempt_at: t.next_attempt_at.and_utc(),
            sent_at: t.sent_at.map(|s| s.and_utc()),
        }
    }
}

page_of!(
    /// A page of the brand's files, newest first, with the total.
    TransmissionListResponse { transmissions: OutboxFileResponse }
);

/// The file's new state after a retry.
#[derive(Serialize, utoipa::ToSchema)]
struct TransmissionRetryResponse {
    #[schema(value_type = TransmissionStatus, example = "pending")]
    status: TransmissionStatus,
}

backoffice_list!(
    /// List the brand's files sent or to send to the SdI
    ///
    /// Back-office operators only. The brand's files in the transmission outbox, in one status
    /// or all, newest first, a page at a time: each with its attempts and the last error.
    list = "/api/v1/backoffice/sdi/transmissions" as "sdi_transmissions_list",
    filters ListQuery, answers TransmissionListResponse "A page of the files",
    by find
);

async fn find(Listing(state, operator, listed): Listing<ListQuery>) -> Found<OutboxFileResponse> {
    let page = listed.page()?;
    let status = (listed.filter.status.as_deref())
        .map(|text| one_of_all::<TransmissionStatus>("status", text))
        .transpose()
        .map_err(|rule| rule.on("status"))?;
    let read = move |conn: &mut _| {
        transmission::list(conn, &operator.brand, status, page).map_err(ApiError::storage)
    };
    listed
        .read_page(&state, page, read, OutboxFileResponse::from)
        .await
}

backoffice_action!(
    /// Put a dead file back in the transmission queue
    ///
    /// Back-office operators only; only dead files of the operator's brand. It is tried again
    /// from zero attempts; the retry is audited.
    post retry = "/api/v1/backoffice/sdi/transmissions/{id}/retry" as "sdi_transmissions_retry",
    on "id" "The transmission's id",
    answers (status = 202, description = "The file is pending again; it will be sent shortly",
            body = TransmissionRetryResponse, example = json!({ "status": "pending" })),
    refuses (
        NotOperator,
        (status = 404, description = "No dead file of the brand has this id \
(`/problems/unknown-transmission`)", body = Problem, content_type = "application/problem+json"),
    ),
    by retry_transmission
);

async fn retry_transmission(Acting(state, operator, id): Acting) -> ApiResult {
    state
        .with_conn(move |conn| transmission::retry(conn, operator.acting(), &id, Utc::now()))
        .await?;
    Ok(HttpResponse::Accepted().json(TransmissionRetryResponse {
        status: TransmissionStatus::Pending,
    }))
}
