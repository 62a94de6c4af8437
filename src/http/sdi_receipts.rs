//! The SdI's receipts for the back-office: importing the notification files, the list of
//! those imported, the rejected queue and the re-send of a rejected document.

use actix_web::http::StatusCode;
use actix_web::{get, post};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::billing::BillingRequest;
use super::extract::BackOffice;
use super::json::JsonObject;
use super::operation::{backoffice_action, backoffice_list, Acting, Found, Listing};
use super::problem::kinds;
use super::query::{page_of, NoFilters, Params};
use super::responses::NotOperator;
use super::{ApiError, ApiResult, Problem, State};
use crate::billing::BillingInput;
use crate::invoices::receipts::{
    self, ImportContext, ImportedReceipt, NotificationFile, ReceiptError, ReceiptResult,
    RejectedDocument, SdiError, StoredReceipt, MAX_FILES, MAX_FILE_BYTES,
};
use crate::invoices::{DocumentKind, InvoiceStatus};

/// A part or body over the limit: 413, before the rest is read.
fn too_large() -> ApiError {
    ApiError::refused(
        kinds::PAYLOAD_TOO_LARGE,
        format!(
            "an SdI notification file is at most {} KB",
            MAX_FILE_BYTES / 1024
        ),
    )
}

async fn read_limited<E: std::fmt::Display>(
    mut stream: impl futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::MalformedRequest(format!("the file cannot be read: {e}")))?;
        if bytes.len() + chunk.len() > MAX_FILE_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The files: every part named `file` of a multipart form (each with its own file name),
/// or the whole body named by `file_name`.
async fn read_files(
    request: &HttpRequest,
    payload: web::Payload,
    file_name: Option<String>,
) -> Result<Vec<NotificationFile>, ApiError> {
    if !super::is_multipart_form(request) {
        let bytes = read_limited(payload).await?;
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(vec![NotificationFile { file_name, bytes }]);
    }
    let mut form = actix_multipart::Multipart::new(request.headers(), payload);
    let mut files = Vec::new();
    while let Some(field) = form.next().await {
        let field = field
            .map_err(|e| ApiError::MalformedRequest(format!("the form cannot be read: {e}")))?;
        let (name, part_file_name) = super::part_names(&field);
        let bytes = read_limited(field).await?;
        if name == "file" && !bytes.is_empty() {
            if files.len() == MAX_FILES {
                return Err(ReceiptError::TooManyFiles.into());
            }
            files.push(NotificationFile {
                file_name: part_file_name.or_else(|| file_name.clone()),
                bytes,
            });
        }
    }
    Ok(files)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The notification's file name (`IT01234567897_00001_RC_001.xml`), required when the
    /// body is the raw file; a multipart part's own file name wins.
    file_name: Option<String>,
}

/// What an import did, file by file.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReceiptImportResponse {
    /// One per file, in the order sent.
    receipts: Vec<ImportedReceipt>,
}

/// Notification files as parts named `file` of a multipart form, each with its file name.
#[derive(utoipa::ToSchema)]
#[schema(as = SdiReceiptUpload)]
#[allow(dead_code)] // documentation only: the handler reads the form itself
pub(super) struct ReceiptUploadDoc {
    /// One or more SdI notification files (XML).
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// One notification file as the raw request body.
#[derive(utoipa::ToSchema)]
#[schema(as = SdiReceiptFile, value_type = String, format = Binary)]
#[allow(dead_code)] // documentation only: the handler reads the body itself
pub(super) struct ReceiptFileDoc(Vec<u8>);

/// Import SdI notification files
///
/// Back-office operators only. Ricevuta di consegna (RC) → the document is `delivered`;
/// notifica di scarto (NS) → `rejected`, in the rejected queue; mancata consegna (MC) →
/// `not_delivered`, and the buyer is emailed where to find it; the other kinds (NE, DT,
/// AT, MT) are kept. A notification is matched to the brand's document by the file it is
/// about (`NomeFile`); one about no known file is kept as unmatched; one about an earlier
/// file of a document sent again since changes nothing. Each is stored once by its file
/// name: importing it again changes nothing (`already_imported`). Every file is read
/// first: one that is not a notification refuses the whole import.
#[utoipa::path(
    operation_id = "sdi_receipts_import",
    params(ImportQuery),
    request_body(description = "The notification file as the raw body (named by `file_name`), \
or one or more parts named `file` of a multipart form. XML of the SdI's messaggi schema.", content(
        (ReceiptFileDoc = "application/xml"),
        (ReceiptFileDoc = "text/xml"),
        (ReceiptFileDoc = "application/octet-stream"),
        (ReceiptUploadDoc = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Imported: what each file did", body = ReceiptImportResponse),
        (status = 200, description = "Every file had been imported before: nothing changed",
            body = ReceiptImportResponse),
        (status = 400, description = "No file, no file name or one that is not a \
notification's (letters, digits, `_`, `-`, `.`, at most 100), or more than 100 files \
(`/problems/invalid-field`, field `file` or `file_name`; or a query parameter the import does \
not take, rule `unknown_parameter`), or a form that cannot be read \
(`/problems/malformed-request`)", body = Problem, content_type = "application/problem+json"),
        NotOperator,
        (status = 409, description = "Another notification with the same file name and a \
different content was imported before (`/problems/sdi-notification-conflict`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A file larger than 1 MB (`/problems/payload-too-large`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A file is not a notification this service reads \
(`/problems/invalid-sdi-notification`, field `file`, rule `utf8`, `xml`, \
`known_notification`, `required_element`, `identificativo_sdi`, `date_time` or \
`file_name_kind`): nothing was imported", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/backoffice/sdi/receipts")]
pub async fn import(
    state: State,
    BackOffice(operator): BackOffice,
    request: HttpRequest,
    query: Params<ImportQuery>,
    payload: web::Payload,
) -> ApiResult {
    let files = read_files(&request, payload, query.0.file_name).await?;
    let public_url = state.config.public_url.clone();
    let imported = state
        .with_conn(move |conn| {
            let context = ImportContext {
                brand_id: &operator.brand,
                operator_id: &operator.id,
                public_url: &public_url,
            };
            receipts::import(conn, &context, &files, Utc::now())
        })
        .await?;
    let status = if imported
        .iter()
        .all(|r| r.result == ReceiptResult::AlreadyImported)
    {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(ReceiptImportResponse { receipts: imported }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the notifications about no known file.
    #[serde(default)]
    unmatched: bool,
}

page_of!(
    /// A page of the brand's imported notifications, newest first, with the total.
    ReceiptListResponse { receipts: StoredReceipt }
);

backoffice_list!(
    /// List the imported SdI notifications
    ///
    /// Back-office operators only; the brand's, newest import first, a page at a time.
    list = "/api/v1/backoffice/sdi/receipts" as "sdi_receipts_list",
    filters ListQuery, answers ReceiptListResponse "A page of the notifications",
    by find
);

async fn find(Listing(state, operator, listed): Listing<ListQuery>) -> Found<StoredReceipt> {
    let (unmatched, page) = (listed.filter.unmatched, listed.page()?);
    let read = move |conn: &mut _| {
        receipts::recent(conn, &operator.brand, unmatched, page).map_err(ApiError::storage)
    };
    listed.read_page(&state, page, read, |r| r).await
}

/// A rejected document waiting to be sent again.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RejectedResponse {
    id: String,
    order_id: String,
    /// `TD01` invoice, `TD04` credit note.
    #[schema(value_type = String, example = "TD01")]
    kind: DocumentKind,
    #[schema(example = "VIS2026-000042")]
    number: String,
    issue_date: NaiveDate,
    /// The rejected file.
    file_name: String,
    /// The notifica di scarto.
    scarto_file_name: Option<String>,
    /// The SdI's errors: code, description and hint.
    errors: Vec<SdiError>,
    /// When the SdI received the rejected file.
    rejected_at: DateTime<Utc>,
    /// The last day (Italian date) to send it again with the same number and date: five
    /// days from the scarto, counted from the day the SdI received the file.
    resend_by: NaiveDate,
    /// Past `resend_by`.
    overdue: bool,
}

impl From<RejectedDocument> for RejectedResponse {
    fn from(refused: RejectedDocument) -> Self {
        let document = refused.document;
        Self {
            id: document.id,
            order_id: document.order_id,
            kind: document.kind,
            number: document.number,
            issue_date: document.issue_date,
            file_name: document.file_name,
            scarto_file_name: refused.scarto_file_name,
            errors: refused.errors,
            rejected_at: refused.rejected_at,
            resend_by: refused.resend_by,
            overdue: refused.overdue,
        }
    }
}

page_of!(RejectedListResponse {
    rejected: RejectedResponse
});

backoffice_list!(
    /// The rejected queue
    ///
    /// Back-office operators only: the brand's documents the SdI rejected, longest waiting
    /// first, each with the SdI's errors and the day by which to send it again.
    rejected = "/api/v1/backoffice/sdi/rejected" as "sdi_rejected_list",
    filters none, answers RejectedListResponse "A page of the rejected documents",
    by find_rejected
);

async fn find_rejected(
    Listing(state, operator, listed): Listing<NoFilters>,
) -> Found<RejectedResponse> {
    let page = listed.page()?;
    let read = move |conn: &mut _| {
        receipts::rejected_queue(conn, &operator.brand, page, Utc::now()).map_err(ApiError::storage)
    };
    listed.read_page(&state, page, read, Into::into).await
}

/// How to send a rejected document again.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// The buyer's corrected data, whole, with the billing data's rules; absent or `null`
    /// to send the document again unchanged.
    #[serde(default)]
    buyer: Option<BillingRequest>,
}

/// The document's new file.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentResendResponse {
    id: String,
    /// The same number (and date) as the rejected file.
    number: String,
    /// The new file, queued for transmission.
    file_name: String,
    progressivo_invio: String,
    previous_file_name: String,
    /// `issued`: waiting to be transmitted.
    #[schema(value_type = String, example = "issued")]
    status: InvoiceStatus,
    buyer_corrected: bool,
    /// Sent again after the five days.
    late: bool,
}

backoffice_action!(
    /// Send a rejected document again
    ///
    /// Back-office operators only. With `buyer`, the buyer's data are corrected first (every
    /// invalid field reported at once, named `buyer.<field>`); without, the document is sent
    /// as it was. Either way it gets a new file (same number and date, new ProgressivoInvio
    /// and file name), queued for transmission, and is `issued` again; receipts about the
    /// rejected file no longer touch it.
    post resend = "/api/v1/backoffice/sdi/rejected/{id}/resend" as "sdi_rejected_resend",
    on "id" "The document's id", takes ResendRequest,
    answers (status = 200, description = "Queued for transmission with its new file", body = DocumentResendResponse),
    refuses (
        (status = 400, description = "Invalid buyer fields (`/problems/invalid-field`) or a \
malformed body (`/problems/malformed-request`)", body = Problem, content_type = "application/problem+json"),
        NotOperator,
        (status = 404, description = "No document of the brand has this id \
(`/problems/unknown-invoice`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The document is not rejected \
(`/problems/invoice-not-rejected`)", body = Problem, content_type = "application/problem+json"),
    ),
    by resend_rejected
);

async fn resend_rejected(
    Acting(state, operator, id): Acting,
    body: JsonObject<ResendRequest>,
) -> ApiResult {
    let corrected = body.into_inner().buyer.map(BillingInput::from);
    let resent = state
        .with_conn(move |conn| {
            receipts::resend(conn, operator.acting(), &id, corrected.as_ref(), Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(DocumentResendResponse {
        id: resent.id,
        number: resent.number,
        file_name: resent.file_name,
        progressivo_invio: resent.progressivo_invio,
        previous_file_name: resent.previous_file_name,
        status: InvoiceStatus::Issued,
        buyer_corrected: resent.corrected,
        late: resent.late,
    }))
}
