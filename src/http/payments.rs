//! The back-office's payment work: statement import (`POST /api/v1/backoffice/statements`,
//! the file as the raw body or as the `file` part of a multipart form), the imported
//! statements, the payments work queue with filters and totals, manual match and refund,
//! and the daily summary.

use std::collections::BTreeMap;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::extract::BackOffice;
use super::json::JsonObject;
use super::problem::FieldErrors;
use super::query::{one_of, QueryRule};
use super::{ApiError, AppState, Problem};
use crate::payments::manual_match::{self, ManualTarget};
use crate::payments::matching::PaymentStatus;
use crate::payments::queue::{self, Filter, ManualError, Operator, Totals};
use crate::payments::reconcile::{self, ImportContext, OutcomeTotal};
use crate::payments::statement::{self};
use crate::payments::CreditorReference;
use crate::secrets::hex;
use crate::validation::{Reason, Rule};

const MAX_PAGE: i64 = 500;

/// The file: the `file` part of a multipart form, or the whole body. Refused past the
/// configured size without reading the rest.
async fn read_file(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let too_large = || {
        ApiError::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!(
                "statements up to {} MB are accepted (RINNOVO_STATEMENT_MAX_MB)",
                limit / (1024 * 1024)
            ),
        )
    };
    let multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut bytes = Vec::new();
    if !multipart {
        let mut payload = payload;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::MalformedRequest(format!("the body cannot be read: {e}")))?;
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok((bytes, None));
    }
    let mut form = actix_multipart::Multipart::new(request.headers(), payload);
    while let Some(field) = form.next().await {
        let mut field = field
            .map_err(|e| ApiError::MalformedRequest(format!("the form cannot be read: {e}")))?;
        let (name, file_name) = match field.content_disposition() {
            Some(disposition) => (
                disposition.get_name().unwrap_or_default().to_owned(),
                disposition.get_filename().map(str::to_owned),
            ),
            None => (String::new(), None),
        };
        if name != "file" {
            continue;
        }
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::MalformedRequest(format!("the file cannot be read: {e}")))?;
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok((bytes, file_name));
    }
    Err(ApiError::invalid_field(
        "file",
        "required",
        "the form has no part named 'file'",
    ))
}

/// What an import did.
#[derive(Serialize, utoipa::ToSchema)]
struct ImportResponse {
    /// The statement recorded; `null` when the file brought nothing new.
    statement_id: Option<String>,
    /// The format recognised from the content: `camt.053`, `camt.054`, `cbi-camt.053` or
    /// `postal-csv`.
    #[schema(example = "camt.053")]
    format: &'static str,
    /// The format's version, as the file declares it.
    #[schema(example = "camt.053.001.02")]
    version: String,
    /// Entries in the file.
    entries: usize,
    /// Entries not imported before.
    new_entries: usize,
    /// Entries already imported by an earlier file.
    already_imported: usize,
    /// Entries that are not incoming payments (debits, pending or informational entries).
    ignored: usize,
    /// Count and amount of the new entries per outcome (`matched`, `partial`, `overpaid`,
    /// `duplicate`, `unmatched`...).
    #[schema(value_type = BTreeMap<String, OutcomeTotalDoc>)]
    outcomes: BTreeMap<PaymentStatus, OutcomeTotal>,
}

/// The statement file as the part named `file` of a multipart form.
#[derive(utoipa::ToSchema)]
#[schema(as = StatementUpload)]
#[allow(dead_code)] // documentation only: the handler reads the form itself
struct StatementUploadDoc {
    /// A camt.053 / camt.054 XML file (plain or in the CBI envelope) or a postal CSV.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// The statement file as the raw request body.
#[derive(utoipa::ToSchema)]
#[schema(as = StatementFile, value_type = String, format = Binary)]
#[allow(dead_code)] // documentation only: the handler reads the body itself
struct StatementFileDoc(Vec<u8>);

/// Count and sum of payments.
#[derive(utoipa::ToSchema)]
#[schema(as = OutcomeTotal)]
#[allow(dead_code)] // documentation only: mirrors reconcile::OutcomeTotal
struct OutcomeTotalDoc {
    #[schema(minimum = 0)]
    count: u64,
    /// In euro.
    #[schema(example = "126.88")]
    amount: String,
}

/// Count and sum of payments.
#[derive(utoipa::ToSchema)]
#[schema(as = PaymentTotals)]
#[allow(dead_code)] // documentation only: mirrors queue::Totals
struct TotalsDoc {
    count: i64,
    /// In euro.
    #[schema(example = "126.88")]
    amount: String,
}

/// An imported statement file.
#[derive(utoipa::ToSchema)]
#[schema(as = Statement)]
#[allow(dead_code)] // documentation only: mirrors queue::StatementView
struct StatementDoc {
    id: String,
    /// `camt.053`, `camt.054`, `cbi-camt.053` or `postal-csv`.
    #[schema(example = "camt.053")]
    format: String,
    #[schema(example = "camt.053.001.02")]
    version: String,
    /// The message id the file declares, if any.
    message_id: Option<String>,
    file_name: Option<String>,
    entries: i32,
    new_entries: i32,
    ignored_entries: i32,
    /// The operator's user id.
    imported_by: String,
    imported_at: DateTime<Utc>,
}

/// A payment read from a statement, and what became of it.
#[derive(utoipa::ToSchema)]
#[schema(as = Payment)]
#[allow(dead_code)] // documentation only: mirrors queue::PaymentView
struct PaymentDoc {
    id: String,
    statement_id: String,
    /// `credit` (money in) or `debit` (a reversal, money out).
    #[schema(example = "credit")]
    direction: String,
    status: PaymentStatus,
    /// Why an unmatched payment waits (`no_reference`, `unknown_reference`,
    /// `reservation_expired`, `order_cancelled`, `original_not_found`, `balance_too_low`).
    reason: Option<String>,
    /// In euro.
    #[schema(example = "63.44")]
    amount: String,
    booking_date: NaiveDate,
    value_date: Option<NaiveDate>,
    /// The account the statement is of (IBAN or postal account).
    account: String,
    bank_reference: Option<String>,
    payer_name: Option<String>,
    /// The payment reason as sent by the payer.
    remittance: String,
    /// The RF code found in the remittance.
    #[schema(example = "RF18539007547034")]
    reference: Option<String>,
    order_id: Option<String>,
    top_up_id: Option<String>,
    /// The prepaid account credited, if any.
    account_id: Option<String>,
    /// Applied to the order, in euro.
    #[schema(example = "63.44")]
    applied: String,
    /// Credited to the prepaid account, in euro.
    #[schema(example = "0.00")]
    credited: String,
    /// For a reversal: the payment it reverses.
    reverses_payment_id: Option<String>,
    /// The operator who matched or refunded it by hand.
    resolved_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    /// The operator's reason.
    resolution_note: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The file's name, for the record, when the body is the raw file (a multipart
    /// part's own file name wins).
    file_name: Option<String>,
}

/// `POST /api/v1/backoffice/statements`: 201 with the outcome of each new entry, or 200
/// when the file brought nothing new (a re-import changes nothing).
#[utoipa::path(
    post,
    path = "/api/v1/backoffice/statements",
    tag = "back-office",
    operation_id = "payments_import",
    summary = "Import a bank or postal statement and reconcile its payments",
    description = "Back-office operators only. Each new incoming payment is matched to an order \
or top-up by its RF code; re-importing a file changes nothing.",
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
    security(("access_token" = [])),
    responses(
        (status = 201, description = "Imported: the outcome of each new entry", body = ImportResponse),
        (status = 200, description = "The file brought nothing new (already imported)",
            body = ImportResponse),
        (status = 400, description = "The file is empty, missing from the form, or not a \
statement this service reads (`/problems/invalid-field`, field `file`, rule such as `xml`, \
`unsupported_format`, `missing_element`), or the body or form cannot be read \
(`/problems/malformed-request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is larger than the configured limit \
(`/problems/payload-too-large`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The statement is of an account that is not the brand's \
(`/problems/statement-of-another-account`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn import(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    request: HttpRequest,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (bytes, form_file_name) =
        read_file(&request, payload, state.config.statement_max_bytes).await?;
    if bytes.is_empty() {
        return Err(ApiError::invalid_field(
            "file",
            "required",
            "the statement file is empty",
        ));
    }
    let file_name = form_file_name.or_else(|| query.into_inner().file_name);
    // Parsing a large file takes CPU: off the async workers.
    let (parsed, sha256) = web::block(move || {
        let sha256 = hex(&Sha256::digest(&bytes));
        statement::parse(&bytes).map(|parsed| (parsed, sha256))
    })
    .await
    .map_err(|e| ApiError::Unexpected(e.into()))?
    .map_err(ApiError::from)?;
    let app = state.clone();
    let (report, parsed) = state
        .with_conn(move |conn| {
            let brand = super::orders::brand_of(conn, &operator.brand)?;
            let context = ImportContext {
                brand: &brand,
                operator_id: &operator.id,
                coupon_key: &app.coupon_key,
                public_url: &app.config.public_url,
                file_name: file_name.as_deref(),
                file_sha256: &sha256,
            };
            let report = reconcile::import(&app.pool, conn, &context, &parsed, Utc::now())?;
            Ok::<_, ApiError>((report, parsed))
        })
        .await?;
    let status = if report.statement_id.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(ImportResponse {
        statement_id: report.statement_id,
        format: parsed.format.as_str(),
        version: parsed.version,
        entries: report.entries,
        new_entries: report.new_entries,
        already_imported: report.already_imported,
        ignored: report.ignored,
        outcomes: report.outcomes,
    }))
}

/// The brand's imported statements, newest first (at most 200).
#[derive(Serialize, utoipa::ToSchema)]
struct StatementListResponse {
    #[schema(value_type = Vec<StatementDoc>)]
    statements: Vec<queue::StatementView>,
}

/// `GET /api/v1/backoffice/statements`: the brand's imports, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/backoffice/statements",
    tag = "back-office",
    operation_id = "payments_statements",
    summary = "List the brand's imported statements, newest first",
    description = "Back-office operators only. At most 200.",
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The statements", body = StatementListResponse),
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn statements(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
) -> Result<HttpResponse, ApiError> {
    let list = state
        .with_conn(move |conn| {
            queue::statements(conn, &operator.brand, 200).map_err(ApiError::storage)
        })
        .await?;
    Ok(HttpResponse::Ok().json(StatementListResponse { statements: list }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only payments with this outcome.
    #[param(value_type = Option<PaymentStatus>)]
    status: Option<String>,
    /// Only payments booked on or after this day.
    #[param(value_type = Option<NaiveDate>, example = "2026-11-01")]
    from: Option<String>,
    /// Only payments booked on or before this day.
    #[param(value_type = Option<NaiveDate>, example = "2026-11-30")]
    to: Option<String>,
    /// Only payments with this RF code.
    #[param(example = "RF18539007547034")]
    reference: Option<String>,
    /// Only payments of this statement (its id).
    statement: Option<String>,
    /// Only payments applied to this order (its id).
    order: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<i64>,
    /// Payments to skip (default 0).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

fn date(text: &str) -> Result<NaiveDate, QueryRule> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| QueryRule("date", format!("'{text}' is not a date such as 2026-11-23")))
}

fn status(text: &str) -> Result<PaymentStatus, QueryRule> {
    let all: Vec<&str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
    one_of("status", PaymentStatus::parse(text), &all)
}

/// A page of payments, and the count and sum of all payments matching the filters.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PaymentListResponse)]
struct ListResponse {
    #[schema(value_type = Vec<PaymentDoc>)]
    payments: Vec<queue::PaymentView>,
    /// Over every payment matching the filters, not only this page.
    #[schema(value_type = TotalsDoc)]
    totals: Totals,
}

/// `GET /api/v1/backoffice/payments?status=unmatched&from=2026-11-01&to=2026-11-30&reference=RF..&statement=..&order=..&limit=100&offset=0`
#[utoipa::path(
    get,
    path = "/api/v1/backoffice/payments",
    tag = "back-office",
    operation_id = "payments_list",
    summary = "The payments work queue, filtered, with totals",
    description = "Back-office operators only; the payments of the operator's brand.",
    params(ListQuery),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "A page of payments and the totals", body = ListResponse),
        (status = 400, description = "A filter is invalid: unknown status, not a date, not an \
RF code, limit or offset out of range (`/problems/invalid-field`, every wrong field listed), \
or the query string does not fit (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = FieldErrors::default();
    let status = query
        .status
        .as_deref()
        .and_then(|s| errors.check("status", status(s)));
    let from = query
        .from
        .as_deref()
        .and_then(|d| errors.check("from", date(d)));
    let to = query
        .to
        .as_deref()
        .and_then(|d| errors.check("to", date(d)));
    let reference = query.reference.as_deref().and_then(|r| {
        errors
            .check("reference", CreditorReference::parse(r))
            .map(|r| r.as_str().to_owned())
    });
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        errors.check::<(), _>(
            "limit",
            Err(QueryRule(
                "range",
                format!("limit must be from 1 to {MAX_PAGE}"),
            )),
        );
    }
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        errors.check::<(), _>(
            "offset",
            Err(QueryRule("range", "offset must be 0 or more".into())),
        );
    }
    errors.finish()?;
    let filter = Filter {
        status,
        from,
        to,
        reference,
        statement_id: query.statement,
        order_id: query.order,
    };
    let (payments, totals) = state
        .with_conn(move |conn| {
            queue::list(conn, &operator.brand, &filter, limit, offset).map_err(ApiError::storage)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ListResponse { payments, totals }))
}

/// `GET /api/v1/backoffice/payments/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/backoffice/payments/{id}",
    tag = "back-office",
    operation_id = "payments_show",
    summary = "Show one payment",
    description = "Back-office operators only; payments of the operator's brand.",
    params(("id" = String, Path, description = "The payment's id")),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The payment", body = PaymentDoc),
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No payment of the brand has this id \
(`/problems/unknown-payment`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let payment = state
        .with_conn(move |conn| {
            queue::find(conn, &operator.brand, &id)
                .map_err(ApiError::storage)?
                .ok_or_else(|| ApiError::from(ManualError::UnknownPayment))
        })
        .await?;
    Ok(HttpResponse::Ok().json(payment))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// The booking day (default today, UTC).
    #[param(value_type = Option<NaiveDate>, example = "2026-11-23")]
    date: Option<String>,
}

/// Count and sum per outcome of the payments booked on one day.
#[derive(Serialize, utoipa::ToSchema)]
struct SummaryResponse {
    date: NaiveDate,
    /// Per outcome (`matched`, `partial`, `overpaid`, `duplicate`, `unmatched`...); only
    /// outcomes that occurred.
    #[schema(value_type = BTreeMap<String, TotalsDoc>)]
    outcomes: BTreeMap<PaymentStatus, Totals>,
    /// Over every outcome.
    #[schema(value_type = TotalsDoc)]
    total: Totals,
}

/// `GET /api/v1/backoffice/payments/summary?date=2026-11-23` (default today): count and
/// sum per outcome of the payments booked that day.
#[utoipa::path(
    get,
    path = "/api/v1/backoffice/payments/summary",
    tag = "back-office",
    operation_id = "payments_summary",
    summary = "Daily summary: count and sum per outcome of the payments booked on a day",
    description = "Back-office operators only; the payments of the operator's brand.",
    params(SummaryQuery),
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The day's summary", body = SummaryResponse),
        (status = 400, description = "`date` is not a date such as 2026-11-23 \
(`/problems/invalid-field`), or the query string does not fit (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn summary(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, ApiError> {
    let day = match query.into_inner().date {
        Some(text) => date(&text).map_err(|e| ApiError::invalid_field("date", e.0, e.1))?,
        None => Utc::now().date_naive(),
    };
    let rows = state
        .with_conn(move |conn| {
            queue::daily_summary(conn, &operator.brand, day).map_err(ApiError::storage)
        })
        .await?;
    let mut total = Totals {
        count: 0,
        amount: crate::money::Money::ZERO,
    };
    let mut outcomes = BTreeMap::new();
    for (status, totals) in rows {
        total.count += totals.count;
        total.amount = total.amount + totals.amount;
        outcomes.insert(status, totals);
    }
    Ok(HttpResponse::Ok().json(SummaryResponse {
        date: day,
        outcomes,
        total,
    }))
}

/// Where an unmatched payment goes: exactly one of `order_id` and `account_id`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// Apply the payment to this order of the brand.
    order_id: Option<String>,
    /// Credit the payment to this prepaid account.
    account_id: Option<String>,
    /// Why (kept in the audit log).
    #[schema(example = "RF code mistyped by the payer; amount and name match")]
    reason: String,
}

/// `POST /api/v1/backoffice/payments/{id}/match` with `order_id` or `account_id`, and a reason.
#[utoipa::path(
    post,
    path = "/api/v1/backoffice/payments/{id}/match",
    tag = "back-office",
    operation_id = "payments_match_by_hand",
    summary = "Match an unmatched payment by hand to an order or a prepaid account",
    description = "Back-office operators only; payments of the operator's brand that are \
unmatched credits.",
    params(("id" = String, Path, description = "The payment's id")),
    request_body = MatchRequest,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The payment, matched", body = PaymentDoc),
        (status = 400, description = "No valid reason, or not exactly one of `order_id` and \
`account_id` (`/problems/invalid-field`), or the body is not the expected JSON \
(`/problems/malformed-request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`), or the prepaid account belongs to another brand \
(`/problems/other-brand`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment (`/problems/unknown-payment`), order \
(`/problems/unknown-order`) or prepaid account (`/problems/unknown-account`) in the brand",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment is not an unmatched credit, or the order \
cannot take a payment (`/problems/payment-state`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn match_by_hand(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    id: web::Path<String>,
    body: JsonObject<MatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let reason = errors.check("reason", Reason::parse(&body.reason));
    let target = errors.check(
        "order_id",
        ManualTarget::choose(body.order_id.as_deref(), body.account_id.as_deref()),
    );
    errors.finish()?;
    let (reason, target) = (reason.expect("checked"), target.expect("checked"));
    let app = state.clone();
    let payment = state
        .with_conn(move |conn| {
            let who = Operator {
                id: &operator.id,
                brand_id: &operator.brand,
                reason: &reason,
            };
            let (key, url) = (&app.coupon_key, &app.config.public_url);
            manual_match::match_by_hand(conn, &who, key, url, &id, &target, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(payment))
}

/// Why the payment is refunded (kept in the audit log).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[schema(example = "paid twice; refunded to the payer's IBAN")]
    reason: String,
}

/// `POST /api/v1/backoffice/payments/{id}/refund` with a reason.
#[utoipa::path(
    post,
    path = "/api/v1/backoffice/payments/{id}/refund",
    tag = "back-office",
    operation_id = "payments_refund",
    summary = "Mark a payment as refunded to the payer",
    description = "Back-office operators only; unmatched, duplicate or overpaid credits of the \
operator's brand. What was credited to a prepaid account is taken back from it.",
    params(("id" = String, Path, description = "The payment's id")),
    request_body = RefundRequest,
    security(("access_token" = [])),
    responses(
        (status = 200, description = "The payment, refunded", body = PaymentDoc),
        (status = 400, description = "No valid reason (`/problems/invalid-field`), or the body \
is not the expected JSON (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`), or the prepaid account belongs to another brand \
(`/problems/other-brand`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No payment of the brand has this id \
(`/problems/unknown-payment`), or the credited prepaid account is gone \
(`/problems/unknown-account`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment cannot be refunded in its state \
(`/problems/payment-state`), or the prepaid account no longer holds what was credited \
(`/problems/insufficient-funds`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refund(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    id: web::Path<String>,
    body: JsonObject<RefundRequest>,
) -> Result<HttpResponse, ApiError> {
    let reason = Reason::parse(&body.reason)
        .map_err(|e| ApiError::invalid_field("reason", e.rule(), e.to_string()))?;
    let payment = state
        .with_conn(move |conn| {
            let who = Operator {
                id: &operator.id,
                brand_id: &operator.brand,
                reason: &reason,
            };
            queue::refund(conn, &who, &id, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(payment))
}

/// The back-office payment operations' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(import, statements, list, summary, show, match_by_hand, refund))]
pub struct Docs;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{NaiveDate, Utc};
    use utoipa::PartialSchema;

    use super::*;
    use crate::money::Money;

    /// The property names of a documentation-only schema.
    fn documented<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).expect("schema serializes");
        schema["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect()
    }

    fn emitted(value: impl Serialize) -> BTreeSet<String> {
        serde_json::to_value(value)
            .expect("serializes")
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn the_documented_schemas_name_the_members_the_domain_types_serialize() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date");
        let payment = queue::PaymentView {
            id: "p".into(),
            statement_id: "s".into(),
            direction: "credit".into(),
            status: PaymentStatus::Unmatched,
            reason: None,
            amount: Money::ZERO,
            booking_date: day,
            value_date: None,
            account: "IT60X0542811101000000123456".into(),
            bank_reference: None,
            payer_name: None,
            remittance: String::new(),
            reference: None,
            order_id: None,
            top_up_id: None,
            account_id: None,
            applied: Money::ZERO,
            credited: Money::ZERO,
            reverses_payment_id: None,
            resolved_by: None,
            resolved_at: None,
            resolution_note: None,
            created_at: Utc::now(),
        };
        assert_eq!(emitted(&payment), documented::<PaymentDoc>());
        let statement = queue::StatementView {
            id: "s".into(),
            format: "camt.053".into(),
            version: "camt.053.001.02".into(),
            message_id: None,
            file_name: None,
            entries: 1,
            new_entries: 1,
            ignored_entries: 0,
            imported_by: "u".into(),
            imported_at: Utc::now(),
        };
        assert_eq!(emitted(&statement), documented::<StatementDoc>());
        let totals = Totals {
            count: 1,
            amount: Money::ZERO,
        };
        assert_eq!(emitted(&totals), documented::<TotalsDoc>());
        let outcome = OutcomeTotal {
            count: 1,
            amount: Money::ZERO,
        };
        assert_eq!(emitted(&outcome), documented::<OutcomeTotalDoc>());
    }
}
