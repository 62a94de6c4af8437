//! Statement import (`POST /api/v1/backoffice/statements`, the file as the raw body or as
//! the `file` part of a multipart form) and the list of imported statements.

use actix_web::{get, post};
use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use std::path::Path;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::http::extract::BackOffice;
use crate::http::operation::{backoffice_list, Found, Listing};
use crate::http::problem::kinds;
use crate::http::query::{page_of, NoFilters, Params};
use crate::http::responses::NotOperator;
use crate::http::{ApiError, ApiResult, Problem, State};
use crate::payments::matching::PaymentStatus;
use crate::payments::queue::{self};
use crate::payments::reconcile::{
    self, MoneyFlow, OutcomeTotal, ReusedReference, SkippedStatement, UploadImported,
};
use crate::payments::statement::upload::{self, SpooledUpload, UploadError};

/// The file: the `file` part of a multipart form, or the whole body, on disk (see
/// [`upload::spool`]). Refused past the configured size without reading the rest.
pub(super) async fn read_file(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    dir: &Path,
) -> Result<(SpooledUpload, Option<String>), ApiError> {
    if !crate::http::is_multipart_form(request) {
        return Ok((spool(payload, limit, dir, "body").await?, None));
    }
    let mut form = actix_multipart::Multipart::new(request.headers(), payload);
    while let Some(field) = form.next().await {
        let field = field
            .map_err(|e| ApiError::MalformedRequest(format!("the form cannot be read: {e}")))?;
        let (name, file_name) = crate::http::part_names(&field);
        if name != "file" {
            continue;
        }
        return Ok((spool(field, limit, dir, "file").await?, file_name));
    }
    Err(ApiError::invalid_field(
        "file",
        "required",
        "the form has no part named 'file'",
    ))
}

/// All of `stream` (the body, or the `file` part of a form) on disk.
async fn spool<E: std::fmt::Display>(
    stream: impl futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    limit: usize,
    dir: &Path,
    what: &str,
) -> Result<SpooledUpload, ApiError> {
    upload::spool(stream, limit, dir)
        .await
        .map_err(|error| match error {
            UploadError::TooLarge => ApiError::refused(
                kinds::PAYLOAD_TOO_LARGE,
                format!(
                    "statements up to {} MB are accepted (RINNOVO_STATEMENT_MAX_MB)",
                    limit / (1024 * 1024)
                ),
            ),
            UploadError::Unreadable(e) => {
                ApiError::MalformedRequest(format!("the {what} cannot be read: {e}"))
            }
            UploadError::Io(e) => ApiError::Unexpected(e.into()),
        })
}

/// What an import did.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct StatementImportResponse {
    /// The statement recorded; `null` when the file brought nothing new.
    statement_id: Option<String>,
    /// The format recognised from the content: `camt.053`, `camt.054`, `cbi-camt.053` or
    /// `postal-csv`.
    #[schema(example = "camt.053")]
    format: &'static str,
    /// The format's version, as the file declares it.
    #[schema(example = "camt.053.001.02")]
    version: String,
    /// Statements of the file imported: those of the brand's accounts (a file may hold one
    /// per account, or one per business day in a CBI envelope).
    statements: usize,
    /// The file's statements of accounts that are not the brand's: read, not imported.
    skipped_statements: Vec<SkippedStatement>,
    /// Entries (credits and reversals) of the imported statements.
    entries: usize,
    /// Entries not imported before.
    new_entries: usize,
    /// Entries already imported by an earlier file.
    already_imported: usize,
    /// Entries of the imported statements that are not incoming payments (debits, pending
    /// or informational entries).
    ignored: usize,
    /// Count and amount of the new entries per outcome (`matched`, `partial`, `overpaid`,
    /// `duplicate`, `unmatched`, `reversal`...), money in and money out apart.
    #[schema(value_type = BTreeMap<String, OutcomeTotal>)]
    outcomes: BTreeMap<PaymentStatus, OutcomeTotal>,
    /// The new credits, whatever their outcome.
    money_in: MoneyFlow,
    /// The new reversals, whatever their outcome.
    money_out: MoneyFlow,
    /// New entries under a bank reference an earlier payment on the same account had with
    /// another amount, booking date or direction: imported, and flagged for a look (their
    /// payments' `same_reference_as`).
    reused_references: Vec<ReusedReference>,
    /// Payments of earlier imports that were a bank entry's whole sum (a batch booked as
    /// one amount), replaced by the entry's detail in this file: their money is now
    /// counted in this import's `money_in`, transaction by transaction.
    replaced_sums: MoneyFlow,
}

/// The statement file as the part named `file` of a multipart form.
#[derive(utoipa::ToSchema)]
#[schema(as = StatementUpload)]
#[allow(dead_code)] // documentation only: the handler reads the form itself
pub(super) struct StatementUploadDoc {
    /// A camt.053 / camt.054 XML file (plain or in the CBI envelope) or a postal CSV.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The statement file as the raw request body.
#[derive(utoipa::ToSchema)]
#[schema(as = StatementFile, value_type = String, format = Binary)]
#[allow(dead_code)] // documentation only: the handler reads the body itself
pub(super) struct StatementFileDoc(Vec<u8>);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The file's name, for the record, when the body is the raw file (a multipart
    /// part's own file name wins).
    file_name: Option<String>,
}

/// Import a bank or postal statement and reconcile its payments
///
/// Back-office operators only. Each new incoming payment is matched to an order or top-up by
/// its RF code; re-importing a file changes nothing. 201 with the outcome of each new entry,
/// or 200 when the file brought nothing new.
#[utoipa::path(
    operation_id = "payments_import",
    params(ImportQuery),
    request_body(description = "The statement file: the raw body, or the part named `file` of a \
multipart form. camt.053 / camt.054 XML (plain or in the CBI envelope) or postal CSV; the \
format is told from the content. Limited in size (RINNOVO_STATEMENT_MAX_MB).", content(
        (StatementFileDoc = "application/octet-stream"),
        (StatementFileDoc = "text/xml"),
        (StatementFileDoc = "application/xml"),
        (StatementFileDoc = "text/csv"),
        (StatementUploadDoc = "multipart/form-data"),
    )),
    responses(
        (status = 201, description = "Imported: the outcome of each new entry", body = StatementImportResponse),
        (status = 200, description = "The file brought nothing new (already imported)",
            body = StatementImportResponse),
        (status = 400, description = "The file is empty, missing from the form, or not a \
statement this service reads (`/problems/invalid-field`, field `file`, rule such as `xml`, \
`unsupported_format`, `missing_element`; or a query parameter the import does not take, rule \
`unknown_parameter`), or the body or form cannot be read (`/problems/malformed-request`)", body = Problem, content_type = "application/problem+json"),
        NotOperator,
        (status = 413, description = "The file is larger than the configured limit \
(`/problems/payload-too-large`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No statement of the file is of an account of the brand's \
(`/problems/statement-of-another-account`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/backoffice/statements")]
pub async fn import(
    state: State,
    BackOffice(operator): BackOffice,
    request: HttpRequest,
    query: Params<ImportQuery>,
    payload: web::Payload,
) -> ApiResult {
    let limit = state.config.statement_max_bytes;
    let (upload, form_file_name) =
        read_file(&request, payload, limit, &state.config.data_dir).await?;
    let file_name = form_file_name.or(query.0.file_name);
    // Uploads arrive side by side (on disk); reading and applying them takes turns, one
    // import of the brand at a time in this process (see `reconcile::turn_of`).
    let turn = reconcile::turn_of(&operator.brand).await;
    let app = state.clone();
    let UploadImported {
        report, statement, ..
    } = state
        .with_conn(move |conn| {
            let importer = app.statement_importer(&turn, &operator.id);
            let name = file_name.as_deref();
            reconcile::import_upload(&app.pool, conn, &importer, upload, name, Utc::now())
        })
        .await?;
    let status = if report.statement_id.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(StatementImportResponse {
        statement_id: report.statement_id,
        format: statement.format.as_str(),
        version: statement.version,
        statements: report.statements,
        skipped_statements: report.skipped,
        entries: report.entries,
        new_entries: report.new_entries,
        already_imported: report.already_imported,
        ignored: report.ignored,
        outcomes: report.outcomes,
        money_in: report.money_in,
        money_out: report.money_out,
        reused_references: report.reused_references,
        replaced_sums: report.replaced_sums,
    }))
}

page_of!(
    /// A page of the brand's imported statements, newest first, with the total.
    StatementListResponse { statements: queue::StatementView }
);

backoffice_list!(
    /// List the brand's imported statements, newest first
    ///
    /// Back-office operators only, a page at a time.
    statements = "/api/v1/backoffice/statements" as "payments_statements",
    filters none, answers StatementListResponse "A page of the statements",
    by find_statements
);

async fn find_statements(
    Listing(state, operator, listed): Listing<NoFilters>,
) -> Found<queue::StatementView> {
    let page = listed.page()?;
    let read = move |conn: &mut _| {
        queue::statements(conn, &operator.brand, page).map_err(ApiError::storage)
    };
    listed.read_page(&state, page, read, |s| s).await
}
