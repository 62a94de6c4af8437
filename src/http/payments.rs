//! The back-office's payment work: statement import (`POST /api/v1/backoffice/statements`,
//! the file as the raw body or as the `file` part of a multipart form), the imported
//! statements, the payments work queue with filters and totals, manual match and refund,
//! and the daily summary.

use std::collections::BTreeMap;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::auth::BackOffice;
use super::problem::FieldErrors;
use super::{ApiError, AppState};
use crate::payments::matching::PaymentStatus;
use crate::payments::queue::{self, Filter, ManualError, Operator, Totals};
use crate::payments::reconcile::{self, ImportContext, ImportError, OutcomeTotal};
use crate::payments::statement::{self, StatementError};
use crate::payments::CreditorReference;
use crate::secrets::hex;
use crate::validation::{Reason, Rule};

const MAX_PAGE: i64 = 500;

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::ForeignAccount { .. } => ApiError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "statement-of-another-account",
                "Statement of another account",
                error.to_string(),
            ),
            ImportError::Storage(e) => ApiError::storage(e),
        }
    }
}

impl From<ManualError> for ApiError {
    fn from(error: ManualError) -> Self {
        match error {
            ManualError::UnknownPayment => {
                ApiError::not_found("unknown-payment", "Unknown payment", error.to_string())
            }
            ManualError::UnknownOrder => {
                ApiError::not_found("unknown-order", "Unknown order", error.to_string())
            }
            ManualError::NotUnmatched(_)
            | ManualError::NotRefundable(_)
            | ManualError::OrderNotPayable(_) => ApiError::conflict(
                "payment-state",
                "Not possible in this state",
                error.to_string(),
            ),
            ManualError::Prepaid(e) => e.into(),
            ManualError::Storage(e) => ApiError::storage(e),
        }
    }
}

fn invalid_statement(error: StatementError) -> ApiError {
    ApiError::invalid_field("file", error.kind, error.to_string())
}

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

#[derive(Serialize)]
struct ImportResponse {
    statement_id: Option<String>,
    format: &'static str,
    version: String,
    entries: usize,
    new_entries: usize,
    already_imported: usize,
    ignored: usize,
    outcomes: BTreeMap<PaymentStatus, OutcomeTotal>,
}

#[derive(Deserialize)]
pub struct ImportQuery {
    file_name: Option<String>,
}

/// `POST /api/v1/backoffice/statements`: 201 with the outcome of each new entry, or 200
/// when the file brought nothing new (a re-import changes nothing).
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
    .map_err(invalid_statement)?;
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

/// `GET /api/v1/backoffice/statements`: the brand's imports, newest first.
pub async fn statements(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
) -> Result<HttpResponse, ApiError> {
    let list = state
        .with_conn(move |conn| {
            queue::statements(conn, &operator.brand, 200).map_err(ApiError::storage)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "statements": list })))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    reference: Option<String>,
    statement: Option<String>,
    order: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct QueryRule(&'static str, String);

impl Rule for QueryRule {
    fn rule(&self) -> &'static str {
        self.0
    }
}

fn date(text: &str) -> Result<NaiveDate, QueryRule> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| QueryRule("date", format!("'{text}' is not a date such as 2026-11-23")))
}

fn status(text: &str) -> Result<PaymentStatus, QueryRule> {
    PaymentStatus::parse(text).ok_or_else(|| {
        let all: Vec<&str> = PaymentStatus::ALL.iter().map(|s| s.as_str()).collect();
        QueryRule(
            "one_of",
            format!("status must be one of {}", all.join(", ")),
        )
    })
}

#[derive(Serialize)]
struct ListResponse {
    payments: Vec<queue::PaymentView>,
    totals: Totals,
}

/// `GET /api/v1/backoffice/payments?status=unmatched&from=2026-11-01&to=2026-11-30&reference=RF..&statement=..&order=..&limit=100&offset=0`
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

#[derive(Deserialize)]
pub struct SummaryQuery {
    date: Option<String>,
}

/// `GET /api/v1/backoffice/payments/summary?date=2026-11-23` (default today): count and
/// sum per outcome of the payments booked that day.
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
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "date": day, "outcomes": outcomes, "total": total,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    order_id: Option<String>,
    account_id: Option<String>,
    reason: String,
}

/// `POST /api/v1/backoffice/payments/{id}/match` with `order_id` or `account_id`, and a reason.
pub async fn match_by_hand(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    id: web::Path<String>,
    body: web::Json<MatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let reason = errors.check("reason", Reason::parse(&body.reason));
    let target = match (body.order_id, body.account_id) {
        (Some(order), None) => Some((Some(order), None)),
        (None, Some(account)) => Some((None, Some(account))),
        _ => {
            errors.check::<(), _>(
                "order_id",
                Err(QueryRule(
                    "one_of",
                    "give either order_id or account_id (one of them)".into(),
                )),
            );
            None
        }
    };
    errors.finish()?;
    let (reason, (order_id, account_id)) = (reason.expect("checked"), target.expect("checked"));
    let app = state.clone();
    let payment = state
        .with_conn(move |conn| {
            let who = Operator {
                id: &operator.id,
                brand_id: &operator.brand,
                reason: &reason,
            };
            match (order_id, account_id) {
                (Some(order_id), _) => queue::match_to_order(
                    conn,
                    &who,
                    &app.coupon_key,
                    &app.config.public_url,
                    &id,
                    &order_id,
                    Utc::now(),
                ),
                (_, Some(account_id)) => {
                    queue::match_to_account(conn, &who, &id, &account_id, Utc::now())
                }
                _ => unreachable!("checked above"),
            }
        })
        .await?;
    Ok(HttpResponse::Ok().json(payment))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    reason: String,
}

/// `POST /api/v1/backoffice/payments/{id}/refund` with a reason.
pub async fn refund(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    id: web::Path<String>,
    body: web::Json<RefundRequest>,
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
