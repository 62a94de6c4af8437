//! The prepaid account: the owner's balance and statement, and the back-office's search
//! and manual adjustments.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{BackOffice, Buyer};
use super::problem::FieldErrors;
use super::{ApiError, AppState};
use crate::email_address::EmailAddress;
use crate::money::{Money, PositiveMoney};
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
