//! Bank and postal statements: the list of imported ones and the import form.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use chrono::Utc;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::http::State;
use crate::paging::{Page, Paged};
use crate::payments::matching::PaymentStatus;
use crate::payments::queue;
use crate::payments::reconcile::{self, UploadImported};
use crate::payments::statement::upload::{self, SpooledUpload, UploadError};
use crate::web::{euro, form_status, refusal, OperatorPage, PageResult, WebError};

use super::{
    format_label, operator_of, or_dash, page_numbered, rows_and_pager, status_label, time_it,
    PageQuery,
};

/// The CSRF token is 64 hex digits; anything much longer in its form part is not one.
const TOKEN_PART_MAX: usize = 256;

pub(super) fn statements_context(
    list: Paged<queue::StatementView>,
    page: Page,
    max_bytes: usize,
    error: Option<String>,
) -> Value {
    let (statements, pager) = rows_and_pager("/backoffice/estratti", &[], page, list, |s| {
        json!({
            "id": s.id,
            "imported_at": time_it(s.imported_at),
            "file_name": or_dash(s.file_name),
            "format": format_label(&s.format, &s.version),
            "entries": s.entries,
            "new_entries": s.new_entries,
            "ignored_entries": s.ignored_entries,
        })
    });
    json!({
        "statements": statements,
        "pager": pager,
        "max_mb": max_bytes.div_ceil(1024 * 1024),
        "error": error,
    })
}

/// The import page with a page of the statements imported before; after a refused
/// upload, the first page.
pub(super) async fn statements_page(
    visit: &OperatorPage,
    status: StatusCode,
    error: Option<String>,
) -> PageResult {
    statements_page_at(visit, Page::default(), status, error).await
}

async fn statements_page_at(
    visit: &OperatorPage,
    page: Page,
    status: StatusCode,
    error: Option<String>,
) -> PageResult {
    let (brand, list) = visit
        .read(move |conn, brand_id| {
            queue::statements(conn, brand_id, page).map_err(WebError::storage)
        })
        .await?;
    let max = visit.state.config.statement_max_bytes;
    let context = statements_context(list, page, max, error);
    visit.render(&brand, "Estratti conto", status, "bo_estratti", context)
}

pub(super) async fn statements(visit: OperatorPage, query: web::Query<PageQuery>) -> PageResult {
    let page = page_numbered(&query.pagina);
    statements_page_at(&visit, page, StatusCode::OK, None).await
}

/// Why an upload was not taken, shown next to the file field.
pub(super) struct Refused(pub(super) StatusCode, pub(super) String);

impl Refused {
    fn unreadable(error: impl std::fmt::Display) -> Self {
        Self(
            StatusCode::BAD_REQUEST,
            format!("Il file non è arrivato per intero ({error}): riprova."),
        )
    }
}

/// What an upload form takes, and what it says when refused.
pub(super) struct UploadRules {
    /// Bytes per file.
    pub max_bytes: usize,
    pub max_files: usize,
    /// Shown for a file over `max_bytes`.
    pub too_large: String,
    /// Shown when no file was chosen.
    pub none_chosen: &'static str,
}

/// A file uploaded: its bytes and the name the browser gave.
pub(super) type Upload = (Vec<u8>, Option<String>);

/// A file uploaded, on disk, and the name the browser gave.
pub(super) type Spooled = (SpooledUpload, Option<String>);

/// Reads an upload form (see [`read_spooled_uploads`]) whose files are small enough to
/// hold: their bytes.
pub(super) async fn read_uploads(
    request: &HttpRequest,
    payload: web::Payload,
    rules: &UploadRules,
) -> Result<(OperatorPage, Result<Vec<Upload>, Refused>), WebError> {
    let dir = std::env::temp_dir();
    let (visit, spooled) = read_spooled_uploads(request, payload, rules, &dir).await?;
    let files = match spooled {
        Ok(files) => files,
        Err(refused) => return Ok((visit, Err(refused))),
    };
    let mut read = Vec::with_capacity(files.len());
    for (upload, file_name) in files {
        read.push((upload.bytes().map_err(WebError::storage)?, file_name));
    }
    Ok((visit, Ok(read)))
}

/// Reads an upload form: the `csrf_token` part first (checked, then the operator, before
/// any byte of a file is read), then every `file` part (a part the browser sends empty
/// for a file field left blank is skipped), each refused past `max_bytes` without reading
/// the rest. The page's form puts the token before the files, as browsers send parts in
/// the order of the form.
pub(super) async fn read_spooled_uploads(
    request: &HttpRequest,
    payload: web::Payload,
    rules: &UploadRules,
    dir: &std::path::Path,
) -> Result<(OperatorPage, Result<Vec<Spooled>, Refused>), WebError> {
    if !crate::http::is_multipart_form(request) {
        // Not our form: it cannot carry the token.
        return Err(WebError::Csrf);
    }
    let mut form = actix_multipart::Multipart::new(request.headers(), payload);
    let mut operator = None;
    let mut files = Vec::new();
    while let Some(field) = form.next().await {
        let mut field = match field {
            Ok(field) => field,
            Err(e) if operator.is_some() => {
                return Ok((operator.expect("set"), Err(Refused::unreadable(e))))
            }
            Err(_) => return Err(WebError::Csrf),
        };
        let (name, file_name) = crate::http::part_names(&field);
        match (name.as_str(), &operator) {
            ("csrf_token", None) => {
                let mut token = Vec::new();
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(|_| WebError::Csrf)?;
                    if token.len() + chunk.len() > TOKEN_PART_MAX {
                        return Err(WebError::Csrf);
                    }
                    token.extend_from_slice(&chunk);
                }
                let submitted = String::from_utf8_lossy(&token);
                operator = Some(operator_of(request, &submitted).await?);
            }
            // The file before the token: not the page's form.
            ("file", None) => return Err(WebError::Csrf),
            ("file", Some(_)) => {
                let refused = match upload::spool(&mut field, rules.max_bytes, dir).await {
                    Ok(spooled) => Ok(spooled),
                    Err(UploadError::TooLarge) => Err(Refused(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        rules.too_large.clone(),
                    )),
                    Err(UploadError::Unreadable(e)) => Err(Refused::unreadable(e)),
                    Err(UploadError::Io(e)) => return Err(WebError::storage(e)),
                };
                let bytes = match refused {
                    Ok(spooled) => spooled,
                    Err(refused) => return Ok((operator.expect("checked"), Err(refused))),
                };
                if bytes.size == 0 && file_name.as_deref().is_none_or(str::is_empty) {
                    continue;
                }
                if files.len() == rules.max_files {
                    let message = format!("Scegli al massimo {} file alla volta.", rules.max_files);
                    let refused = Refused(StatusCode::UNPROCESSABLE_ENTITY, message);
                    return Ok((operator.expect("checked"), Err(refused)));
                }
                files.push((bytes, file_name));
            }
            _ => {
                // Another part: read and ignore it.
                while let Some(chunk) = field.next().await {
                    if chunk.is_err() {
                        break;
                    }
                }
            }
        }
    }
    match operator {
        Some(operator) if files.is_empty() => Ok((
            operator,
            Err(Refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                rules.none_chosen.to_owned(),
            )),
        )),
        Some(operator) => Ok((operator, Ok(files))),
        None => Err(WebError::Csrf),
    }
}

/// Reads the statement upload (see [`read_spooled_uploads`]): one file, on disk in `dir`.
pub(super) async fn read_upload(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    dir: &std::path::Path,
) -> Result<(OperatorPage, Result<Spooled, Refused>), WebError> {
    let rules = UploadRules {
        max_bytes: limit,
        max_files: 1,
        too_large: format!(
            "Il file supera il limite di {} MB: dividi l'estratto o chiedi di alzare il limite (RINNOVO_STATEMENT_MAX_MB).",
            limit.div_ceil(1024 * 1024)
        ),
        none_chosen: "Scegli il file dell'estratto conto da importare.",
    };
    let (visit, upload) = read_spooled_uploads(request, payload, &rules, dir).await?;
    Ok((visit, upload.map(|mut files| files.remove(0))))
}

pub(super) async fn import(
    state: State,
    request: HttpRequest,
    payload: web::Payload,
) -> PageResult {
    let limit = state.config.statement_max_bytes;
    let (visit, upload) = read_upload(&request, payload, limit, &state.config.data_dir).await?;
    let (upload, file_name) = match upload {
        Ok(upload) => upload,
        Err(Refused(status, message)) => {
            return statements_page(&visit, status, Some(message)).await
        }
    };
    // One import of the brand at a time in this process (see `reconcile::turn_of`).
    let turn = reconcile::turn_of(&visit.user.brand_id).await;
    let app = state.clone();
    let outcome = visit
        .as_operator(move |conn, operator| {
            let importer = app.statement_importer(&turn, &operator.id);
            let name = file_name.as_deref();
            match reconcile::import_upload(&app.pool, conn, &importer, upload, name, Utc::now()) {
                Ok(imported) => Ok(Ok(imported)),
                Err(refused) => Ok(Err(refusal(refused)?)),
            }
        })
        .await?;
    let UploadImported {
        brand,
        report,
        statement: parsed,
    } = match outcome {
        Ok(imported) => imported,
        Err(identity) => {
            let status = form_status(&identity);
            return statements_page(&visit, status, Some(identity.italian)).await;
        }
    };
    // The usual outcomes always, with zero; the others when the file had some.
    let outcomes: Vec<Value> = PaymentStatus::ALL
        .iter()
        .filter(|s| {
            matches!(
                s,
                PaymentStatus::Matched
                    | PaymentStatus::Partial
                    | PaymentStatus::Overpaid
                    | PaymentStatus::Duplicate
                    | PaymentStatus::Unmatched
            ) || report.outcomes.contains_key(s)
        })
        .map(|s| {
            let total = report.outcomes.get(s).cloned().unwrap_or_default();
            json!({
                "status": s.as_str(),
                "label": status_label(*s),
                "count_in": total.money_in.count,
                "amount_in": euro(total.money_in.amount),
                "count_out": total.money_out.count,
                "amount_out": euro(total.money_out.amount),
                "unmatched": *s == PaymentStatus::Unmatched && total.count > 0,
            })
        })
        .collect();
    let skipped: Vec<Value> = report
        .skipped
        .iter()
        .map(|part| {
            json!({
                "account": part.account,
                "location": part.location,
                "entries": part.entries,
                "money_in": euro(part.money_in.amount),
                "money_out": euro(part.money_out.amount),
            })
        })
        .collect();
    let reused: Vec<Value> = report
        .reused_references
        .iter()
        .map(|reused| {
            json!({
                "account": reused.account,
                "bank_reference": reused.bank_reference,
                "amount": euro(reused.amount),
                "booking_date": reused.booking_date.format("%d/%m/%Y").to_string(),
                "location": reused.location,
                "same_reference_as": reused.same_reference_as,
            })
        })
        .collect();
    visit.render(
        &brand,
        "Estratto importato",
        StatusCode::OK,
        "bo_estratto_importato",
        json!({
            "statement_id": report.statement_id,
            "format": format_label(parsed.format.as_str(), &parsed.version),
            "statements": report.statements,
            "skipped": skipped,
            "reused": reused,
            "replaced_count": report.replaced_sums.count,
            "replaced_amount": euro(report.replaced_sums.amount),
            "entries": report.entries,
            "new_entries": report.new_entries,
            "already_imported": report.already_imported,
            "ignored": report.ignored,
            "outcomes": outcomes,
            "money_in": euro(report.money_in.amount),
            "money_out": euro(report.money_out.amount),
        }),
    )
}
