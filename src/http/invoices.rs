//! The electronic documents of an order (its invoice and credit notes): the list, each
//! file as the SdI received it, and its courtesy copy (PDF).

use actix_web::get;
use actix_web::web;
use chrono::NaiveDate;
use serde::Serialize;

use super::downloads::{pdf_download, xml_download};
use super::extract::CurrentUser;
use super::responses::problem_response_type;
use super::{ApiError, ApiResult, Problem, State};
use crate::invoices::{self, DocumentKind, InvoiceStatus, StoredDocument};
use crate::money::Money;

problem_response_type!(
    /// The id names no invoice or credit note the caller may see.
    UnknownDocument,
    404,
    "No document of that id visible to the caller (`/problems/unknown-invoice`)"
);

/// The order's electronic invoice (FatturaPA XML), named as the SdI names it.
///
/// Issued when the order is fulfilled. Customers and registration officers their own
/// orders, back-office operators any order of their brand; anyone else, and an order not
/// yet fulfilled, is answered as unknown.
#[utoipa::path(
    operation_id = "orders_invoice_xml",
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The FatturaPA file (format FPR12), with its SdI file \
name in `Content-Disposition`", content_type = "application/xml", body = String),
        (status = 404, description = "No invoice of that order visible to the caller \
(`/problems/unknown-invoice`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/orders/{id}/invoice.xml")]
pub async fn xml(state: State, user: CurrentUser, id: web::Path<String>) -> ApiResult {
    let file = state
        .with_conn(move |conn| {
            Ok::<_, ApiError>(invoices::invoice_of_order(conn, &user.viewer(), &id)?)
        })
        .await?;
    Ok(xml_download(&file.file_name, file.xml))
}

/// An invoice or credit note of an order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentResponse {
    id: String,
    /// `TD01` invoice, `TD04` credit note.
    #[schema(value_type = String, example = "TD01")]
    kind: DocumentKind,
    /// The invoice a credit note corrects (its id).
    credits_invoice: Option<String>,
    #[schema(example = "VIS2026-000042")]
    number: String,
    issue_date: NaiveDate,
    /// In euro.
    #[schema(value_type = String, example = "52.00")]
    net_total: Money,
    /// In euro.
    #[schema(value_type = String, example = "11.44")]
    vat_total: Money,
    /// In euro.
    #[schema(value_type = String, example = "63.44")]
    gross_total: Money,
    /// Where it is in its exchange with the SdI.
    #[schema(value_type = String, example = "transmitted")]
    status: InvoiceStatus,
    /// The SdI file name.
    file_name: String,
    #[schema(example = "/api/v1/invoices/0193a1b2-0000-7000-8000-000000000000/xml")]
    xml_url: String,
    /// The courtesy copy, a PDF to read (the XML is the fiscally valid document).
    #[schema(example = "/api/v1/invoices/0193a1b2-0000-7000-8000-000000000000/pdf")]
    pdf_url: String,
}

impl From<StoredDocument> for DocumentResponse {
    fn from(document: StoredDocument) -> Self {
        Self {
            xml_url: format!("/api/v1/invoices/{}/xml", document.id),
            pdf_url: format!("/api/v1/invoices/{}/pdf", document.id),
            id: document.id,
            kind: document.kind,
            credits_invoice: document.credited_invoice_id,
            number: document.number,
            issue_date: document.issue_date,
            net_total: Money::from_cents(document.net_cents),
            vat_total: Money::from_cents(document.vat_cents),
            gross_total: Money::from_cents(document.gross_cents),
            status: document.status,
            file_name: document.file_name,
        }
    }
}

/// The order's electronic documents: its invoice, then its credit notes.
///
/// Empty until the order is fulfilled. Customers and registration officers their own
/// orders, back-office operators any order of their brand; anyone else is answered as
/// unknown.
#[utoipa::path(
    operation_id = "orders_documents",
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The invoice and the credit notes", body = [DocumentResponse]),
        (status = 404, description = "No order of that id visible to the caller \
(`/problems/unknown-invoice`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/orders/{id}/documents")]
pub async fn of_order(
    state: State,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<web::Json<Vec<DocumentResponse>>, ApiError> {
    let documents = state
        .with_conn(move |conn| {
            Ok::<_, ApiError>(invoices::documents_of_order(conn, &user.viewer(), &id)?)
        })
        .await?;
    Ok(web::Json(documents.into_iter().map(Into::into).collect()))
}

/// An invoice or credit note's FatturaPA file, named as the SdI names it.
#[utoipa::path(
    operation_id = "invoices_xml",
    params(("id" = String, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The FatturaPA file (format FPR12), with its SdI file \
name in `Content-Disposition`", content_type = "application/xml", body = String),
        UnknownDocument,
    )
)]
#[get("/api/v1/invoices/{id}/xml")]
pub async fn document_xml(state: State, user: CurrentUser, id: web::Path<String>) -> ApiResult {
    let document = state
        .with_conn(move |conn| Ok::<_, ApiError>(invoices::document(conn, &user.viewer(), &id)?))
        .await?;
    Ok(xml_download(&document.file_name, document.xml))
}

/// An invoice or credit note's courtesy copy (PDF)
///
/// Made from the document's FatturaPA file, so it says what the file says; it is for
/// reading only: the fiscally valid document is the XML sent through the SdI. Who may
/// download the XML may download the copy.
#[utoipa::path(
    operation_id = "invoices_pdf",
    params(("id" = String, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The courtesy copy, named `fattura-<number>.pdf` or \
`nota-di-credito-<number>.pdf` in `Content-Disposition`", content_type = "application/pdf",
            body = Vec<u8>),
        UnknownDocument,
    )
)]
#[get("/api/v1/invoices/{id}/pdf")]
pub async fn document_pdf(state: State, user: CurrentUser, id: web::Path<String>) -> ApiResult {
    let copy = state
        .with_conn(move |conn| {
            Ok::<_, ApiError>(invoices::courtesy_copy(conn, &user.viewer(), &id)?)
        })
        .await?;
    Ok(pdf_download(copy))
}
