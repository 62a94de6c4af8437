//! The back-office's invoices: the brand's documents found by state, type, issue date,
//! number and buyer, each with its transmissions and SdI receipts; and a period's files
//! as one ZIP for the accountant.

use actix_web::get;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::downloads::file_download;
use super::extract::BackOffice;
use super::invoices::DocumentResponse;
use super::operation::{backoffice_list, Found, Listing};
use super::problem::FieldErrors;
use super::query::{one_of_all, page_of, Params, QueryRule};
use super::responses::NotOperator;
use super::{ApiError, ApiResult, Problem, State};
use crate::invoices::export::{export_zip, ExportPeriod};
use crate::invoices::listing::{self, DocumentFilter, ListedDocument, SearchText, Transmission};
use crate::invoices::receipts::StoredReceipt;
use crate::invoices::transmission::TransmissionStatus;
use crate::invoices::InvoiceStatus;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only documents in this state of the exchange with the SdI.
    #[param(value_type = Option<InvoiceStatus>)]
    status: Option<String>,
    /// Only invoices (`TD01`) or only credit notes (`TD04`).
    #[param(value_type = Option<String>, example = "TD01")]
    kind: Option<String>,
    /// Issued on or after this day (`YYYY-MM-DD`).
    #[param(value_type = Option<NaiveDate>)]
    issued_from: Option<String>,
    /// Issued on or before this day (`YYYY-MM-DD`).
    #[param(value_type = Option<NaiveDate>)]
    issued_to: Option<String>,
    /// A piece of the document's number, any case.
    #[param(example = "2026-0000")]
    number: Option<String>,
    /// A piece of the buyer's data as the document has them (name, codice fiscale,
    /// partita IVA, address, PEC), any case.
    #[param(example = "rossi")]
    buyer: Option<String>,
}

/// A file sent (or to send) to the SdI.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TransmissionResponse {
    file_name: String,
    /// `pending`, `sent`, or `dead` (given up after the last retry).
    #[schema(example = "sent")]
    status: TransmissionStatus,
    attempts: i32,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// The channel that took it (`file`, `pec`).
    channel: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl From<Transmission> for TransmissionResponse {
    fn from(t: Transmission) -> Self {
        Self {
            file_name: t.file_name,
            status: t.status,
            attempts: t.attempts,
            last_error: t.last_error,
            channel: t.channel,
            created_at: t.created_at.and_utc(),
            sent_at: t.sent_at.map(|at| at.and_utc()),
        }
    }
}

/// A document of the brand with its exchange with the SdI.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BackOfficeDocumentResponse {
    #[serde(flatten)]
    document: DocumentResponse,
    /// The buyer's name as the document has it.
    #[schema(example = "Maria Rossi")]
    buyer_name: String,
    /// The SdI's identifier of the file, from its first receipt.
    identificativo_sdi: Option<String>,
    status_changed_at: DateTime<Utc>,
    /// Where the latest file is in the outbox (`pending`, `sent`, `dead`); `null` when
    /// none was queued.
    #[schema(example = "sent")]
    transmission_status: Option<TransmissionStatus>,
    /// Every file queued for the document, oldest first (a rejected document corrected
    /// and sent again has several).
    transmissions: Vec<TransmissionResponse>,
    /// The SdI's notifications, oldest first.
    receipts: Vec<StoredReceipt>,
}

impl From<ListedDocument> for BackOfficeDocumentResponse {
    fn from(listed: ListedDocument) -> Self {
        let transmission_status = listed.transmissions.last().map(|t| t.status);
        Self {
            identificativo_sdi: listed.document.identificativo_sdi.clone(),
            status_changed_at: listed.document.status_changed_at.and_utc(),
            document: listed.document.into(),
            buyer_name: listed.buyer_name,
            transmission_status,
            transmissions: listed.transmissions.into_iter().map(Into::into).collect(),
            receipts: listed.receipts,
        }
    }
}

page_of!(
    /// A page of the brand's documents, newest first.
    DocumentListResponse { invoices: BackOfficeDocumentResponse }
);

/// A day given as `YYYY-MM-DD`.
fn day(text: &str) -> Result<NaiveDate, QueryRule> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| QueryRule("date", format!("'{text}' is not a day as 2026-12-31")))
}

backoffice_list!(
    /// Find the brand's invoices and credit notes
    ///
    /// Back-office operators only; the documents of the operator's brand, newest first, each
    /// with its transmissions and the SdI's receipts (kind, date, error codes).
    list = "/api/v1/backoffice/invoices" as "backoffice_invoices_list",
    filters ListQuery, answers DocumentListResponse "A page of documents",
    by find
);

async fn find(
    Listing(state, operator, listed): Listing<ListQuery>,
) -> Found<BackOfficeDocumentResponse> {
    let query = &listed.filter;
    let mut errors = FieldErrors::default();
    let status = errors.check_optional("status", query.status.as_deref(), |text| {
        one_of_all("status", text)
    });
    let kind = errors.check_optional("kind", query.kind.as_deref(), |text| {
        one_of_all("kind", text)
    });
    let issued_from = errors.check_optional("issued_from", query.issued_from.as_deref(), day);
    let issued_to = errors.check_optional("issued_to", query.issued_to.as_deref(), day);
    if let (Some(from), Some(to)) = (issued_from, issued_to) {
        if to < from {
            let rule = QueryRule(
                "after_from",
                "issued_to must be on or after issued_from".into(),
            );
            errors.check::<(), _>("issued_to", Err(rule));
        }
    }
    let number = errors.check_optional("number", query.number.as_deref(), SearchText::parse);
    let buyer = errors.check_optional("buyer", query.buyer.as_deref(), SearchText::parse);
    let page = listed.page_checked(&mut errors);
    errors.finish()?;
    let filter = DocumentFilter {
        status,
        kind,
        issued_from,
        issued_to,
        number,
        buyer,
    };
    let read = move |conn: &mut _| listing::list(conn, &operator.brand, &filter, page);
    listed.read_page(&state, page, read, Into::into).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// The first issue day (`YYYY-MM-DD`).
    #[param(value_type = NaiveDate)]
    from: Option<String>,
    /// The last issue day (`YYYY-MM-DD`), at most 366 days after `from` counted inclusive.
    #[param(value_type = NaiveDate)]
    to: Option<String>,
}

/// The export period of a query, or every wrong field.
fn period_of(query: &ExportQuery) -> Result<ExportPeriod, ApiError> {
    let mut errors = FieldErrors::default();
    let mut required = |field: &str, value: Option<&str>| {
        let text = value.ok_or_else(|| QueryRule("required", format!("{field} is required")));
        errors.check(field, text.and_then(day))
    };
    let from = required("from", query.from.as_deref());
    let to = required("to", query.to.as_deref());
    let period = match (from, to) {
        (Some(from), Some(to)) => errors.check("to", ExportPeriod::new(from, to)),
        _ => None,
    };
    errors.finish()?;
    Ok(period.expect("checked"))
}

/// Download a period's FatturaPA files as one ZIP
///
/// Back-office operators only; the invoices and credit notes of the operator's brand
/// issued from `from` to `to` (both included, at most 366 days), each under its SdI file
/// name, exactly as stored: what the accountant needs for the period.
#[utoipa::path(
    operation_id = "backoffice_invoices_export",
    params(ExportQuery),
    responses(
        (status = 200, description = "The ZIP, named `fatture-<brand>-<from>-<to>.zip` in \
`Content-Disposition`", content_type = "application/zip", body = Vec<u8>),
        (status = 400, description = "`from` or `to` missing or not a day as YYYY-MM-DD, `to` \
before `from` or more than 366 days after it, a parameter the export does not take (rule \
`unknown_parameter`) (`/problems/invalid-field`, every wrong field listed), or the query \
string does not fit (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotOperator,
    )
)]
#[get("/api/v1/backoffice/invoices/export.zip")]
pub async fn export(
    state: State,
    BackOffice(operator): BackOffice,
    query: Params<ExportQuery>,
) -> ApiResult {
    let period = period_of(&query.0)?;
    let name = period.file_name(&operator.brand);
    let (file, _) = state
        .with_conn(move |conn| export_zip(conn, operator.acting(), period, Utc::now()))
        .await?;
    Ok(file_download(file, "application/zip", &name))
}
