//! The brand's invoices and credit notes: the list with its filters, each document's page
//! with its transmissions and the SdI's receipts, the downloads (XML, courtesy copy) and
//! the export of a period's files for the accountant. Over the same domain functions as
//! `http::backoffice_invoices`.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::downloads::{file_download, pdf_download, xml_download};
use crate::http::italian::{invoice_status_label, transmission_status_label};
use crate::invoices::export::{self, ExportPeriod};
use crate::invoices::listing::{self, DocumentFilter, ListedDocument, SearchText};
use crate::invoices::{self, DocumentKind, InvoiceStatus};
use crate::web::{document_row, refusal, OperatorPage, PageResult, WebError};

use super::{
    filters_status, or_dash, page_numbered, pager, parse_date, state_filter, time_it, url_segment,
};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DocumentsQuery {
    stato: String,
    tipo: String,
    dal: String,
    al: String,
    numero: String,
    cliente: String,
    pagina: String,
}

/// A search text typed in a filter, or the message saying why it is refused.
fn search_text(text: &str) -> Result<Option<SearchText>, String> {
    match text.trim() {
        "" => Ok(None),
        text => SearchText::parse(text)
            .map(Some)
            .map_err(|_| "Scrivi al massimo 100 caratteri, senza caratteri di controllo.".into()),
    }
}

/// An optional day typed in a filter.
fn optional_day(text: &str) -> Result<Option<chrono::NaiveDate>, String> {
    match text.trim() {
        "" => Ok(None),
        text => parse_date(text).map(Some),
    }
}

/// A document with its exchange with the SdI, as the list and its page show it.
fn listed_row(listed: &ListedDocument) -> Value {
    let mut row = document_row(&listed.document, "/backoffice/fatture");
    let last = listed.transmissions.last();
    let extra = json!({
        "buyer": listed.buyer_name,
        "status": invoice_status_label(listed.document.status),
        "transmission": last.map(|t| transmission_status_label(t.status)).unwrap_or("—"),
        "identificativo_sdi": or_dash(listed.document.identificativo_sdi.clone()),
        "receipts": listed.receipts.iter().map(|r| json!({
            "kind": r.kind.as_str(),
            "file_name": r.file_name,
            "identificativo_sdi": r.identificativo_sdi,
            "received_at": time_it(r.received_at),
            "errors": r.errors.iter().map(|e| json!({ "code": e.code, "description": e.description })).collect::<Vec<_>>(),
            "codes": r.errors.iter().map(|e| e.code.as_str()).collect::<Vec<_>>().join(", "),
        })).collect::<Vec<_>>(),
        "transmissions": listed.transmissions.iter().map(|t| json!({
            "file_name": t.file_name,
            "status": transmission_status_label(t.status),
            "attempts": t.attempts,
            "last_error": or_dash(t.last_error.clone()),
            "channel": or_dash(t.channel.clone()),
            "created_at": time_it(t.created_at.and_utc()),
            "sent_at": t.sent_at.map(|at| time_it(at.and_utc())).unwrap_or_else(|| "—".into()),
        })).collect::<Vec<_>>(),
    });
    if let (Some(row), Value::Object(extra)) = (row.as_object_mut(), extra) {
        row.extend(extra);
    }
    row
}

pub(super) async fn documents_page(
    visit: OperatorPage,
    query: web::Query<DocumentsQuery>,
) -> PageResult {
    let query = query.into_inner();
    // Every field named, so the template (strict) finds each one, null when it is right.
    let mut errors: serde_json::Map<String, Value> =
        ["stato", "tipo", "dal", "al", "numero", "cliente"]
            .into_iter()
            .map(|field| (field.to_owned(), Value::Null))
            .collect();
    let mut refuse = |field: &str, message: String| {
        errors.insert(field.to_owned(), json!(message));
    };
    let mut filter = DocumentFilter::default();
    match state_filter::<InvoiceStatus>(&query.stato) {
        Ok(status) => filter.status = status,
        Err(refused) => refuse("stato", refused.into()),
    }
    if !query.tipo.is_empty() {
        filter.kind = DocumentKind::parse(&query.tipo);
        if filter.kind.is_none() {
            refuse("tipo", "Scegli fattura o nota di credito.".into());
        }
    }
    match optional_day(&query.dal) {
        Ok(day) => filter.issued_from = day,
        Err(message) => refuse("dal", message),
    }
    match optional_day(&query.al) {
        Ok(day) => filter.issued_to = day,
        Err(message) => refuse("al", message),
    }
    if let (Some(from), Some(to)) = (filter.issued_from, filter.issued_to) {
        if to < from {
            refuse(
                "al",
                "La data finale viene prima di quella iniziale.".into(),
            );
        }
    }
    match search_text(&query.numero) {
        Ok(text) => filter.number = text,
        Err(message) => refuse("numero", message),
    }
    match search_text(&query.cliente) {
        Ok(text) => filter.buyer = text,
        Err(message) => refuse("cliente", message),
    }
    let page = page_numbered(&query.pagina);
    let valid = errors.values().all(Value::is_null);
    let (brand, found) = visit
        .read_list(valid, move |conn, brand_id| {
            Ok(listing::list(conn, brand_id, &filter, page)?)
        })
        .await?;
    let (rows, total) = (
        found.items.iter().map(listed_row).collect::<Vec<_>>(),
        found.total,
    );
    let filters = [
        ("stato", query.stato.as_str()),
        ("tipo", query.tipo.as_str()),
        ("dal", query.dal.as_str()),
        ("al", query.al.as_str()),
        ("numero", query.numero.as_str()),
        ("cliente", query.cliente.as_str()),
    ];
    let shown_to = page.offset() + rows.len() as i64;
    let statuses: Vec<Value> = InvoiceStatus::ALL
        .iter()
        .map(|s| json!({ "value": s.as_str(), "label": invoice_status_label(*s), "selected": s.as_str() == query.stato }))
        .collect();
    let kinds: Vec<Value> = [
        (DocumentKind::Invoice, "Fattura"),
        (DocumentKind::CreditNote, "Nota di credito"),
    ]
    .iter()
    .map(|(k, label)| json!({ "value": k.as_str(), "label": label, "selected": k.as_str() == query.tipo }))
    .collect();
    let context = json!({
        "filters": {
            "dal": query.dal, "al": query.al, "numero": query.numero, "cliente": query.cliente,
        },
        "errors": errors,
        "statuses": statuses,
        "kinds": kinds,
        "documents": rows,
        "total": total,
        "first": page.offset() + 1,
        "last": shown_to,
        "pager": pager("/backoffice/fatture", &filters, page, total),
        "export_max_days": export::MAX_DAYS,
    });
    visit.render(
        &brand,
        "Fatture",
        filters_status(valid),
        "bo_fatture",
        context,
    )
}

pub(super) async fn document_page(visit: OperatorPage, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let (brand, listed) = visit
        .read(move |conn, brand_id| Ok(listing::find(conn, brand_id, &id)?))
        .await?;
    let title = format!(
        "{} {}",
        match listed.document.kind {
            DocumentKind::Invoice => "Fattura",
            DocumentKind::CreditNote => "Nota di credito",
        },
        listed.document.number
    );
    let credited = listed
        .document
        .credited_invoice_id
        .as_deref()
        .map(|id| format!("/backoffice/fatture/{}", url_segment(id)));
    let context = json!({
        "document": listed_row(&listed),
        "credited_link": credited,
    });
    visit.render(&brand, &title, StatusCode::OK, "bo_fattura", context)
}

pub(super) async fn document_xml(visit: OperatorPage, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let document = visit
        .as_operator(move |conn, operator| Ok(invoices::document(conn, &operator.into(), &id)?))
        .await?;
    Ok(xml_download(&document.file_name, document.xml))
}

pub(super) async fn document_pdf(visit: OperatorPage, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let copy = visit
        .as_operator(move |conn, operator| {
            Ok(invoices::courtesy_copy(conn, &operator.into(), &id)?)
        })
        .await?;
    Ok(pdf_download(copy))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ExportQuery {
    dal: String,
    al: String,
}

/// The ZIP of a period's files; a period that cannot be read is shown on the list page,
/// next to the export form.
pub(super) async fn export_zip(visit: OperatorPage, query: web::Query<ExportQuery>) -> PageResult {
    let from = parse_date(&query.dal);
    let to = parse_date(&query.al);
    let period = match (from, to) {
        (Ok(from), Ok(to)) => match ExportPeriod::new(from, to) {
            Ok(period) => Ok(period),
            Err(refused) => Err(refusal(refused)?.italian),
        },
        (Err(message), _) | (_, Err(message)) => Err(message),
    };
    let period = match period {
        Ok(period) => period,
        Err(message) => {
            return Err(WebError::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("Esportazione non possibile: {message}"),
            })
        }
    };
    let name = period.file_name(&visit.user.brand_id);
    let (file, _) = visit
        .as_operator(move |conn, operator| {
            Ok(export::export_zip(
                conn,
                operator.acting(),
                period,
                Utc::now(),
            )?)
        })
        .await?;
    Ok(file_download(file, "application/zip", &name))
}
