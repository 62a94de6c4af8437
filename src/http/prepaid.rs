//! The prepaid account: the owner's balance and statement, and the back-office's search
//! and manual adjustments.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{BackOffice, Buyer};
use super::orders::PayTo;
use super::problem::FieldErrors;
use super::{idempotent, ApiError, AppState};
use crate::auth::{users, UserError};
use crate::email_address::EmailAddress;
use crate::money::{Money, PositiveMoney};
use crate::orders::PaymentMethod;
use crate::prepaid::top_ups::{self, TopUp, TopUpStatus};
use crate::prepaid::{self, Account, Adjustment, Direction, Entry, EntryKind, PrepaidError};
use crate::validation::Reason;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

impl From<PrepaidError> for ApiError {
    fn from(error: PrepaidError) -> Self {
        match error {
            PrepaidError::InsufficientFunds { .. } => ApiError::refused(
                StatusCode::CONFLICT,
                "insufficient-funds",
                "Insufficient funds",
                error.to_string(),
            ),
            // An account of another brand is as good as absent for this caller, but the
            // operator asked for it by id, so say why rather than pretend.
            PrepaidError::OtherBrand => ApiError::forbidden("other-brand", error.to_string()),
            PrepaidError::UnknownAccount => {
                ApiError::not_found("unknown-account", "Unknown account", error.to_string())
            }
            PrepaidError::Storage(e) => ApiError::storage(e),
        }
    }
}

#[derive(Serialize)]
struct AccountResponse {
    account_id: String,
    brand: String,
    owner_email: EmailAddress,
    balance: Money,
    currency: &'static str,
    updated_at: DateTime<Utc>,
}

impl From<Account> for AccountResponse {
    fn from(account: Account) -> Self {
        Self {
            account_id: account.id,
            brand: account.brand_id,
            owner_email: account.owner_email,
            balance: account.balance,
            currency: "EUR",
            updated_at: account.updated_at,
        }
    }
}

#[derive(Serialize)]
struct EntryResponse {
    id: String,
    seq: i64,
    kind: EntryKind,
    amount: Money,
    balance_after: Money,
    description: String,
    reference: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Entry> for EntryResponse {
    fn from(entry: Entry) -> Self {
        Self {
            id: entry.id,
            seq: entry.seq,
            kind: entry.kind,
            amount: entry.amount,
            balance_after: entry.balance_after,
            description: entry.description,
            reference: entry.reference,
            created_at: entry.created_at,
        }
    }
}

/// `GET /api/v1/prepaid`
pub async fn balance(
    state: web::Data<AppState>,
    Buyer(user): Buyer,
) -> Result<HttpResponse, ApiError> {
    let account = state
        .with_conn(move |conn| prepaid::account_of_owner(conn, &user.id))
        .await?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(account)))
}

#[derive(Deserialize)]
pub struct PageQuery {
    limit: Option<i64>,
    before: Option<i64>,
}

#[derive(Serialize)]
struct EntriesResponse {
    entries: Vec<EntryResponse>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

/// `GET /api/v1/prepaid/entries?limit=50&before=<seq>`: the statement, newest first.
pub async fn entries(
    state: web::Data<AppState>,
    Buyer(user): Buyer,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "range",
            format!("limit must be from 1 to {MAX_PAGE}"),
        ));
    }
    let before = page.before;
    let entries = state
        .with_conn(move |conn| {
            let account = prepaid::account_of_owner(conn, &user.id)?;
            prepaid::entries(conn, &account.id, before, limit)
        })
        .await?;
    let next_before = match entries.last() {
        Some(last) if entries.len() as i64 == limit && last.seq > 1 => Some(last.seq),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(EntriesResponse {
        entries: entries.into_iter().map(EntryResponse::from).collect(),
        next_before,
    }))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    email: String,
}

#[derive(Serialize)]
struct AccountsResponse {
    accounts: Vec<AccountResponse>,
}

/// `GET /api/v1/backoffice/prepaid?email=...`: the operator's brand only.
pub async fn search(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let email = EmailAddress::parse(&query.email)
        .map_err(|e| ApiError::invalid_field("email", e.rule(), e.to_string()))?;
    let accounts = state
        .with_conn(move |conn| prepaid::find_by_email(conn, &operator.brand, &email))
        .await?;
    Ok(HttpResponse::Ok().json(AccountsResponse {
        accounts: accounts.into_iter().map(AccountResponse::from).collect(),
    }))
}

/// `GET /api/v1/backoffice/prepaid/{account}`
pub async fn show(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    account_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let account = state
        .with_conn(move |conn| {
            let account = prepaid::account(conn, &account_id)?;
            if account.brand_id != operator.brand {
                return Err(PrepaidError::OtherBrand);
            }
            Ok(account)
        })
        .await?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(account)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    direction: String,
    amount: String,
    reason: String,
}

/// `POST /api/v1/backoffice/prepaid/{account}/adjustments`
pub async fn adjust(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    account_id: web::Path<String>,
    body: web::Json<AdjustmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let direction = errors.check(
        "direction",
        Direction::parse(&body.direction).ok_or(UnknownDirection),
    );
    let amount = errors.check("amount", PositiveMoney::parse(&body.amount));
    let reason = errors.check("reason", Reason::parse(&body.reason));
    errors.finish()?;
    let adjustment = Adjustment {
        direction: direction.expect("checked"),
        amount: amount.expect("checked"),
        reason: reason.expect("checked"),
    };
    let entry = state
        .with_conn(move |conn| {
            prepaid::adjust(
                conn,
                &operator.id,
                &operator.brand,
                &account_id,
                adjustment,
                Utc::now(),
            )
        })
        .await?;
    Ok(HttpResponse::Created().json(EntryResponse::from(entry)))
}

#[derive(Debug, thiserror::Error)]
#[error("must be credit or debit")]
struct UnknownDirection;

impl crate::validation::Rule for UnknownDirection {
    fn rule(&self) -> &'static str {
        "one_of"
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    amount: String,
    payment_method: String,
}

#[derive(Serialize)]
struct TopUpResponse {
    id: String,
    status: TopUpStatus,
    payment_method: PaymentMethod,
    amount: Money,
    amount_received: Money,
    currency: &'static str,
    reference: String,
    reference_print: String,
    reserved_until: DateTime<Utc>,
    pay_to: PayTo,
    created_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
}

impl TopUpResponse {
    fn new(top_up: TopUp, brand: &crate::brands::Brand) -> Self {
        Self {
            id: top_up.id,
            status: top_up.status,
            payment_method: top_up.payment_method,
            amount: top_up.amount,
            amount_received: top_up.received,
            currency: "EUR",
            reference: top_up.payment_reference.as_str().to_owned(),
            reference_print: top_up.payment_reference.printed(),
            reserved_until: top_up.reserved_until,
            pay_to: PayTo::from(brand),
            created_at: top_up.created_at,
            paid_at: top_up.paid_at,
        }
    }
}

/// `POST /api/v1/prepaid/topups` with an `Idempotency-Key`: an RF code and the bank
/// details to top up the account by transfer; the money is credited when it arrives.
pub async fn request_top_up(
    state: web::Data<AppState>,
    request: HttpRequest,
    Buyer(user): Buyer,
    body: web::Json<TopUpRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotent::key_from(&request)?;
    let body = body.into_inner();
    let fingerprint = idempotent::fingerprint(&body)?;
    let mut errors = FieldErrors::default();
    let amount = errors.check("amount", PositiveMoney::parse(&body.amount));
    let method = errors.check(
        "payment_method",
        PaymentMethod::parse(&body.payment_method)
            .filter(|m| m.is_transfer())
            .ok_or(TransferMethodOnly),
    );
    errors.finish()?;
    let (amount, method) = (amount.expect("checked"), method.expect("checked"));
    let app = state.clone();
    let user_id = user.id.clone();
    idempotent::respond(&state, user_id, key, fingerprint, move |conn, now| {
        let profile = users::find(conn, &user.id)?.ok_or(UserError::NotFound)?;
        let email = profile.email.to_string();
        let top_up = top_ups::request(
            conn,
            &top_ups::Requester {
                user_id: &user.id,
                brand_id: &user.brand,
                name: &profile.name,
                email: &email,
            },
            amount,
            method,
            app.config.reservation,
            now,
        )?;
        let brand = super::orders::brand_of(conn, &user.brand)?;
        let body = serde_json::to_string(&TopUpResponse::new(top_up, &brand))
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        Ok((201, body))
    })
    .await
}

/// `GET /api/v1/prepaid/topups`: own top-ups, newest first.
pub async fn list_top_ups(
    state: web::Data<AppState>,
    Buyer(user): Buyer,
) -> Result<HttpResponse, ApiError> {
    let (list, brand) = state
        .with_conn(move |conn| {
            let list = top_ups::list_for_user(conn, &user.id, MAX_PAGE)?;
            Ok::<_, ApiError>((list, super::orders::brand_of(conn, &user.brand)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "top_ups": list.into_iter().map(|t| TopUpResponse::new(t, &brand)).collect::<Vec<_>>()
    })))
}

#[derive(Debug, thiserror::Error)]
#[error("must be bank_transfer, postal_slip or cheque (a top-up comes by transfer)")]
struct TransferMethodOnly;

impl crate::validation::Rule for TransferMethodOnly {
    fn rule(&self) -> &'static str {
        "one_of"
    }
}
