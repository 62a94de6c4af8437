//! The back-office's invoices: the brand's documents found by state, type, issue date,
//! number and buyer, each with its transmissions and SdI receipts; and a period's files
//! as one ZIP for the accountant.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::downloads::file_download;
use super::extract::BackOffice;
use super::invoices::DocumentResponse;
use super::problem::FieldErrors;
use super::query::{one_of, QueryRule};
use super::responses::NotOperator;
use super::{ApiError, AppState, Problem};
use crate::invoices::export::{self, ExportPeriod};
use crate::invoices::listing::{self, DocumentFilter, ListedDocument, SearchText, Transmission};
use crate::invoices::receipts::StoredReceipt;
use crate::invoices::{DocumentKind, InvoiceStatus};

/// Largest page of documents.
pub const MAX_PAGE: i64 = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
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
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, default = 50)]
    limit: Option<i64>,
    /// Documents to skip (default 0).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// A file sent (or to send) to the SdI.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TransmissionResponse {
    file_name: String,
    /// `pending`, `sent`, or `dead` (given up after the last retry).
    #[schema(example = "sent")]
    status: String,
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
    transmission_status: Option<String>,
    /// Every file queued for the document, oldest first (a rejected document corrected
    /// and sent again has several).
    transmissions: Vec<TransmissionResponse>,
    /// The SdI's notifications, oldest first.
    receipts: Vec<StoredReceipt>,
}

impl From<ListedDocument> for BackOfficeDocumentResponse {
    fn from(listed: ListedDocument) -> Self {
        let transmission_status = listed.transmissions.last().map(|t| t.status.clone());
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

/// A page of the brand's documents, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentListResponse {
    invoices: Vec<BackOfficeDocumentResponse>,
    /// How many documents match the filters, over every page.
    total: i64,
}

/// A day given as `YYYY-MM-DD`.
fn day(text: &str) -> Result<NaiveDate, QueryRule> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| QueryRule("date", format!("'{text}' is not a day as 2026-12-31")))
}

/// Find the brand's invoices and credit notes
///
/// Back-office operators only; the documents of the operator's brand, newest first, each
/// with its transmissions and the SdI's receipts (kind, date, error codes).
#[utoipa::path(
    get,
    path = "/api/v1/backoffice/invoices",
    tag = "back-office",
    operation_id = "backoffice_invoices_list",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of documents", body = DocumentListResponse),
        (status = 400, description = "A filter is invalid: unknown status or kind, a day not \
as YYYY-MM-DD or issued_to before issued_from, a search text empty, too long or with control \
characters, limit or offset out of range (`/problems/invalid-field`, every wrong field listed), \
or the query string does not fit or names an unknown filter (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotOperator,
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = FieldErrors::default();
    let status = errors.check_optional("status", query.status.as_deref(), |text| {
        let all: Vec<&str> = InvoiceStatus::ALL.iter().map(|s| s.as_str()).collect();
        one_of("status", InvoiceStatus::parse(text), &all)
    });
    let kind = errors.check_optional("kind", query.kind.as_deref(), |text| {
        one_of("kind", DocumentKind::parse(text), &["TD01", "TD04"])
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
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        let rule = QueryRule("range", format!("limit must be from 1 to {MAX_PAGE}"));
        errors.check::<(), _>("limit", Err(rule));
    }
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        let rule = QueryRule("range", "offset must be 0 or more".into());
        errors.check::<(), _>("offset", Err(rule));
    }
    errors.finish()?;
    let filter = DocumentFilter {
        status,
        kind,
        issued_from,
        issued_to,
        number,
        buyer,
    };
    let page = state
        .with_conn(move |conn| listing::list(conn, &operator.brand, &filter, limit, offset))
        .await?;
    Ok(HttpResponse::Ok().json(DocumentListResponse {
        invoices: page.documents.into_iter().map(Into::into).collect(),
        total: page.total,
    }))
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
    get,
    path = "/api/v1/backoffice/invoices/export.zip",
    tag = "back-office",
    operation_id = "backoffice_invoices_export",
    params(ExportQuery),
    responses(
        (status = 200, description = "The ZIP, named `fatture-<brand>-<from>-<to>.zip` in \
`Content-Disposition`", content_type = "application/zip", body = Vec<u8>),
        (status = 400, description = "`from` or `to` missing or not a day as YYYY-MM-DD, `to` \
before `from` or more than 366 days after it (`/problems/invalid-field`, every wrong field \
listed), or the query string does not fit or names an unknown parameter \
(`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotOperator,
    )
)]
pub async fn export(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let period = period_of(&query)?;
    let name = period.file_name(&operator.brand);
    let (file, _) = state
        .with_conn(move |conn| {
            export::export_zip(conn, &operator.brand, &operator.id, period, Utc::now())
        })
        .await?;
    Ok(file_download(file, "application/zip", &name))
}

/// The back-office invoices' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, export),
    components(schemas(
        DocumentListResponse,
        BackOfficeDocumentResponse,
        TransmissionResponse,
        StoredReceipt,
        InvoiceStatus
    ))
)]
pub struct Docs;
