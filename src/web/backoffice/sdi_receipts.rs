//! The SdI's receipts on the back-office pages: the import of notification files (several
//! at once), the rejected queue, and a rejected document's correction and re-send. Thin
//! handlers over `invoices::receipts`, as the JSON API.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::statements::{read_uploads, Refused, UploadRules};
use super::{
    date_it, done_message, done_redirect, page_numbered, pager, rows_and_pager, time_it,
    OperatorForm, PageQuery,
};
use crate::billing::{BillingInput, InvalidField};
use crate::http::italian::{document_kind_label, invoice_status_label};
use crate::http::State;
use crate::invoices::receipts::{
    self, ImportContext, ImportedReceipt, NotificationFile, NotificationKind, ReceiptError,
    ReceiptResult, RejectedDocument, SdiError, MAX_FILES,
};
use crate::paging::Page;
use crate::web::billing::{chosen_kind_only, form_errors, form_values};
use crate::web::{refusal, NoFields, OperatorPage, PageResult, WebError};

pub const RECEIPTS_PATH: &str = "/backoffice/ricevute-sdi";
pub const REJECTED_PATH: &str = "/backoffice/fatture-scartate";

fn kind_label(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Delivered => "Ricevuta di consegna (RC)",
        NotificationKind::Rejected => "Notifica di scarto (NS)",
        NotificationKind::NotDelivered => "Mancata consegna (MC)",
        NotificationKind::Outcome => "Notifica di esito (NE)",
        NotificationKind::TermsElapsed => "Decorrenza termini (DT)",
        NotificationKind::TransmittedUndeliverable => "Attestazione di trasmissione (AT)",
        NotificationKind::Metadata => "Metadati (MT)",
    }
}

fn result_label(result: ReceiptResult) -> &'static str {
    match result {
        ReceiptResult::Applied => "applicata",
        ReceiptResult::AlreadyImported => "già importata: nulla è cambiato",
        ReceiptResult::Unmatched => "nessun documento ha questo file: conservata",
        ReceiptResult::EarlierFile => "riguarda un file precedente, già sostituito: nessun effetto",
        ReceiptResult::NoEffect => "il documento non la attendeva: nessun effetto",
        ReceiptResult::Informational => "conservata (non cambia lo stato)",
    }
}

fn errors_json(errors: &[SdiError]) -> Vec<Value> {
    errors
        .iter()
        .map(|e| json!({ "code": e.code, "description": e.description, "hint": e.hint }))
        .collect()
}

/// The import page with a page of the notifications imported before (after an import,
/// the first page: the newest, those just imported among them).
async fn receipts_page(
    visit: &OperatorPage,
    page: Page,
    status: StatusCode,
    imported: Option<Vec<ImportedReceipt>>,
    error: Option<String>,
) -> PageResult {
    let (brand, list) = visit
        .read(move |conn, brand_id| {
            receipts::recent(conn, brand_id, false, page).map_err(WebError::storage)
        })
        .await?;
    let (list, pager) = rows_and_pager(RECEIPTS_PATH, &[], page, list, |r| {
        json!({
            "imported_at": time_it(r.imported_at),
            "file_name": r.file_name,
            "kind": kind_label(r.kind),
            "invoice_file_name": r.invoice_file_name,
            "number": r.invoice_number,
            "codes": r.errors.iter().map(|e| e.code.as_str()).collect::<Vec<_>>().join(", "),
        })
    });
    let imported: Option<Vec<Value>> = imported.map(|imported| {
        imported
            .into_iter()
            .map(|r| {
                json!({
                    "file_name": r.file_name,
                    "kind": kind_label(r.kind),
                    "number": r.invoice_number,
                    "result": r.result.as_str(),
                    "result_label": result_label(r.result),
                    "status": r.invoice_status.map(invoice_status_label),
                })
            })
            .collect()
    });
    visit.render(
        &brand,
        "Ricevute SdI",
        status,
        "bo_ricevute_sdi",
        json!({
            "receipts": list,
            "pager": pager,
            "imported": imported,
            "error": error,
            "max_files": MAX_FILES,
        }),
    )
}

pub(super) async fn receipts(visit: OperatorPage, query: web::Query<PageQuery>) -> PageResult {
    let page = page_numbered(&query.pagina);
    receipts_page(&visit, page, StatusCode::OK, None, None).await
}

pub(super) async fn import(
    state: State,
    request: HttpRequest,
    payload: web::Payload,
) -> PageResult {
    let rules = UploadRules {
        max_bytes: receipts::MAX_FILE_BYTES,
        max_files: MAX_FILES,
        too_large: "Un file è troppo grande per essere una notifica del SdI (al massimo 1 MB)."
            .to_owned(),
        none_chosen: "Scegli uno o più file di notifica del SdI da importare.",
    };
    let (visit, upload) = read_uploads(&request, payload, &rules).await?;
    let files: Vec<NotificationFile> = match upload {
        Ok(files) => files
            .into_iter()
            .map(|(bytes, file_name)| NotificationFile { file_name, bytes })
            .collect(),
        Err(Refused(status, message)) => {
            return receipts_page(&visit, Page::default(), status, None, Some(message)).await
        }
    };
    let public_url = state.config.public_url.clone();
    let outcome = visit
        .as_operator(move |conn, operator| {
            let context = ImportContext {
                brand_id: &operator.brand_id,
                operator_id: &operator.id,
                public_url: &public_url,
            };
            match receipts::import(conn, &context, &files, Utc::now()) {
                Ok(imported) => Ok(Ok(imported)),
                Err(refused) => Ok(Err(refusal(refused)?)),
            }
        })
        .await?;
    match outcome {
        Ok(imported) => {
            let page = Page::default();
            receipts_page(&visit, page, StatusCode::OK, Some(imported), None).await
        }
        Err(identity) => {
            let status = crate::web::form_status(&identity);
            receipts_page(
                &visit,
                Page::default(),
                status,
                None,
                Some(identity.italian),
            )
            .await
        }
    }
}

fn rejected_json(rejected: &RejectedDocument) -> Value {
    let document = &rejected.document;
    json!({
        "id": document.id,
        "kind": document_kind_label(document.kind),
        "number": document.number,
        "issue_date": date_it(document.issue_date),
        "file_name": document.file_name,
        "scarto_file_name": rejected.scarto_file_name,
        "rejected_at": time_it(rejected.rejected_at),
        "resend_by": date_it(rejected.resend_by),
        "overdue": rejected.overdue,
        "days_left": rejected.days_left,
        "errors": errors_json(&rejected.errors),
    })
}

/// The rejected queue's address: which page, and the message of a re-send just done.
#[derive(Deserialize)]
pub(super) struct RejectedQuery {
    fatto: Option<String>,
    #[serde(default)]
    pagina: String,
}

pub(super) async fn rejected_queue(
    visit: OperatorPage,
    query: web::Query<RejectedQuery>,
) -> PageResult {
    let now = Utc::now();
    let page = page_numbered(&query.pagina);
    let (brand, queue) = visit
        .read(move |conn, brand_id| {
            receipts::rejected_queue(conn, brand_id, page, now).map_err(WebError::storage)
        })
        .await?;
    let rows: Vec<Value> = queue.items.iter().map(rejected_json).collect();
    visit.render(
        &brand,
        "Fatture scartate",
        StatusCode::OK,
        "bo_fatture_scartate",
        json!({
            "rejected": rows,
            "done": done_message(query.fatto.as_deref()),
            "pager": pager("/backoffice/fatture-scartate", &[], page, queue.total),
        }),
    )
}

/// The page of one rejected document: the SdI's errors, the re-send as it is, and the
/// correction form (filled with `values`, or the buyer as the file had them).
async fn rejected_page(
    visit: &OperatorPage,
    id: String,
    status: StatusCode,
    values: Option<BillingInput>,
    invalid: &[InvalidField],
) -> PageResult {
    let now = Utc::now();
    let (brand, (rejected, stored_buyer)) = visit
        .read(move |conn, brand_id| Ok(receipts::rejected_document(conn, brand_id, &id, now)?))
        .await?;
    let values = values.unwrap_or(stored_buyer);
    visit.render(
        &brand,
        "Fattura scartata",
        status,
        "bo_fattura_scartata",
        json!({
            "document": rejected_json(&rejected),
            "values": form_values(&values),
            "errors": form_errors(invalid),
        }),
    )
}

pub(super) async fn rejected_document(visit: OperatorPage, id: web::Path<String>) -> PageResult {
    rejected_page(&visit, id.into_inner(), StatusCode::OK, None, &[]).await
}

/// Sends the document again, with the corrected buyer or as it was; back to the queue.
async fn resend_with(
    visit: OperatorPage,
    id: String,
    corrected: Option<BillingInput>,
) -> PageResult {
    let document_id = id.clone();
    let input = corrected.clone();
    let outcome = visit
        .as_operator(move |conn, operator| {
            match receipts::resend(
                conn,
                operator.acting(),
                &document_id,
                input.as_ref(),
                Utc::now(),
            ) {
                Ok(_) => Ok(Ok(())),
                Err(ReceiptError::InvalidBuyer(fields)) => Ok(Err(fields)),
                Err(other) => Err(other.into()),
            }
        })
        .await?;
    match outcome {
        Ok(()) => Ok(done_redirect(REJECTED_PATH, "reinviata")),
        Err(fields) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            rejected_page(&visit, id, status, corrected, &fields).await
        }
    }
}

pub(super) async fn resend_unchanged(
    form: OperatorForm<NoFields>,
    id: web::Path<String>,
) -> PageResult {
    resend_with(form.visit, id.into_inner(), None).await
}

pub(super) async fn resend_corrected(
    form: OperatorForm<BillingInput>,
    id: web::Path<String>,
) -> PageResult {
    let values = chosen_kind_only(form.fields);
    resend_with(form.visit, id.into_inner(), Some(values)).await
}
