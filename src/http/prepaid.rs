//! The prepaid account: the owner's balance and statement, and the back-office's search
//! and manual adjustments.

use actix_web::{get, post};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::card_payments::{self, CardPaymentView};
use super::extract::{BackOffice, Buyer};
use super::json::JsonObject;
use super::operation::{backoffice_action, Acting};
use super::orders::PayTo;
use super::problem::FieldErrors;
use super::query::{page_of, Listed, NoFilters, PageParams, Params};
use super::responses::{
    problem_response_type, AccountGone, BadPaging, NotBuyer, NotBuyerOrUnconfirmed, NotOperator,
};
use super::{idempotent, ApiError, ApiResult, Problem, State};
use crate::auth::{users, UserError};
use crate::email_address::EmailAddress;
use crate::money::{Money, PositiveMoney};
use crate::orders::PaymentMethod;
use crate::paging::Page;
use crate::prepaid::top_ups::{self, TopUp, TopUpStatus};
use crate::prepaid::{self, Account, Adjustment, Direction, Entry, EntryKind, PrepaidError};
use crate::validation::Reason;

problem_response_type!(
    /// A buyer's operation on the caller's own account, which does not exist yet.
    NoPrepaidAccount,
    404,
    "The caller has no prepaid account (`/problems/unknown-account`)"
);
problem_response_type!(
    /// A back-office operation on one account.
    NotOperatorOrOtherBrand,
    403,
    "Not a back-office operator (`/problems/forbidden-role`), or the account belongs to \
     another brand (`/problems/other-brand`)"
);
problem_response_type!(
    /// A back-office operation on one account.
    UnknownAccount,
    404,
    "No such account (`/problems/unknown-account`)"
);

/// A prepaid account and its balance.
#[derive(Serialize, utoipa::ToSchema)]
struct AccountResponse {
    account_id: String,
    #[schema(example = "rinnovo")]
    brand: String,
    #[schema(value_type = String, format = Email, example = "maria.rossi@example.it")]
    owner_email: EmailAddress,
    /// In euro.
    #[schema(value_type = String, example = "31.72")]
    balance: Money,
    /// Always `EUR`.
    #[schema(example = "EUR")]
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

/// One movement of a prepaid account.
#[derive(Serialize, utoipa::ToSchema)]
struct EntryResponse {
    id: String,
    /// The entry's position in the account's statement, from 1.
    seq: i64,
    kind: EntryKind,
    /// Signed: positive credits, negative debits.
    #[schema(value_type = String, example = "-31.72")]
    amount: Money,
    #[schema(value_type = String, example = "68.28")]
    balance_after: Money,
    description: String,
    /// What the movement is about (an order, a top-up...); `null` when nothing.
    #[schema(required = true)]
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

/// The caller's prepaid account and balance
///
/// Customers and registration officers (the roles that buy).
#[utoipa::path(
    operation_id = "prepaid_balance",
    responses(
        (status = 200, description = "The account", body = AccountResponse),
        NotBuyer,
        NoPrepaidAccount,
    )
)]
#[get("/api/v1/prepaid")]
pub async fn balance(state: State, Buyer(user): Buyer) -> ApiResult {
    let account = state
        .with_conn(move |conn| prepaid::account_of_owner(conn, &user.id))
        .await?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(account)))
}

/// A page of the statement. The statement keeps its cursor (`before`) rather than an
/// offset: entries are only ever added, at the top, so an offset would shift under a
/// reader while a cursor never does. `limit` follows the rule of every list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Entries per page, from 1 to 500 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500, example = 50)]
    limit: Option<String>,
    /// Only entries older than this `seq` (the previous page's `next_before`).
    before: Option<i64>,
}

/// A page of the statement, newest first.
#[derive(Serialize, utoipa::ToSchema)]
struct EntriesResponse {
    entries: Vec<EntryResponse>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
    /// How many entries the whole statement has.
    total: i64,
    /// The most entries this page holds.
    limit: i64,
    /// The address of the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/api/v1/prepaid/entries?limit=50&before=118")]
    next: Option<String>,
}

/// The caller's prepaid statement, newest first, paged
///
/// Customers and registration officers (the roles that buy). Paged by a cursor, `before`,
/// not by `offset`: new entries never shift the pages a reader is going through.
#[utoipa::path(
    operation_id = "prepaid_entries",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of entries", body = EntriesResponse),
        (status = 400, description = "`limit` out of range, a parameter the list does not take \
            (rule `unknown_parameter`) (`/problems/invalid-field`) or a query string that does \
            not fit (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotBuyer,
        NoPrepaidAccount,
    )
)]
#[get("/api/v1/prepaid/entries")]
pub async fn entries(
    state: State,
    Buyer(user): Buyer,
    Params(page): Params<PageQuery>,
) -> ApiResult {
    let limit = Page::parse_limit(page.limit.as_deref())
        .map_err(|e| ApiError::invalid_field("limit", e.rule(), format!("limit {e}")))?;
    let before = page.before;
    let (entries, total) = state
        .with_conn(move |conn| {
            let account = prepaid::account_of_owner(conn, &user.id)?;
            let total = prepaid::entry_count(conn, &account.id)?;
            Ok::<_, PrepaidError>((prepaid::entries(conn, &account.id, before, limit)?, total))
        })
        .await?;
    let next_before = match entries.last() {
        Some(last) if entries.len() as i64 == limit && last.seq > 1 => Some(last.seq),
        _ => None,
    };
    Ok(HttpResponse::Ok().json(EntriesResponse {
        entries: entries.into_iter().map(EntryResponse::from).collect(),
        next: next_before.map(|seq| format!("/api/v1/prepaid/entries?limit={limit}&before={seq}")),
        next_before,
        total,
        limit,
    }))
}

/// Which accounts to find.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The owner's email (exact).
    #[param(example = "maria.rossi@example.it")]
    email: String,
}

/// The accounts found.
#[derive(Serialize, utoipa::ToSchema)]
struct AccountsResponse {
    accounts: Vec<AccountResponse>,
}

/// Find prepaid accounts by their owner's email
///
/// Back-office only; accounts of the operator's brand only.
#[utoipa::path(
    operation_id = "prepaid_search",
    params(SearchQuery),
    responses(
        (status = 200, description = "The accounts found (possibly none)", body = AccountsResponse),
        (status = 400, description = "Not a valid email, or a parameter the search does not \
            take (rule `unknown_parameter`) (`/problems/invalid-field`), or the `email` parameter \
            is missing (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotOperator,
    )
)]
#[get("/api/v1/backoffice/prepaid")]
pub async fn search(
    state: State,
    BackOffice(operator): BackOffice,
    query: Params<SearchQuery>,
) -> ApiResult {
    let email =
        EmailAddress::parse(&query.0.email).map_err(|e| ApiError::broken_field("email", e))?;
    let accounts = state
        .with_conn(move |conn| prepaid::find_by_email(conn, &operator.brand, &email))
        .await?;
    Ok(HttpResponse::Ok().json(AccountsResponse {
        accounts: accounts.into_iter().map(AccountResponse::from).collect(),
    }))
}

backoffice_action!(
    /// A prepaid account and its balance
    ///
    /// Back-office only; accounts of the operator's brand only.
    get show = "/api/v1/backoffice/prepaid/{account}" as "prepaid_show",
    on "account" "The account's id",
    answers (status = 200, description = "The account", body = AccountResponse),
    refuses (NotOperatorOrOtherBrand, UnknownAccount),
    by show_account
);

async fn show_account(Acting(state, operator, account_id): Acting) -> ApiResult {
    let account = state
        .with_conn(move |conn| prepaid::account_of_brand(conn, &operator.brand, &account_id))
        .await?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(account)))
}

/// A manual correction of a prepaid balance.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// `credit` or `debit`.
    #[schema(example = "credit")]
    direction: String,
    /// A positive amount in euro, at most two decimals.
    #[schema(example = "10.00")]
    amount: String,
    /// Why; shown in the statement and kept in the audit log.
    #[schema(example = "refund of a duplicate transfer fee")]
    reason: String,
}

backoffice_action!(
    /// Credit or debit a prepaid account by hand
    ///
    /// Back-office only; accounts of the operator's brand only. Recorded in the audit log. Every
    /// invalid field is reported at once in the problem's `errors`.
    post adjust = "/api/v1/backoffice/prepaid/{account}/adjustments" as "prepaid_adjust",
    on "account" "The account's id", takes AdjustmentRequest,
    answers (status = 201, description = "The entry posted", body = EntryResponse),
    refuses (
        (status = 400, description = "Invalid fields (`/problems/invalid-field`: direction, \
            amount, reason) or a malformed body (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotOperatorOrOtherBrand,
        UnknownAccount,
        (status = 409, description = "A debit larger than the balance \
            (`/problems/insufficient-funds`)",
            body = Problem, content_type = "application/problem+json"),
    ),
    by adjust_account
);

async fn adjust_account(
    Acting(state, operator, account_id): Acting,
    body: JsonObject<AdjustmentRequest>,
) -> ApiResult {
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
            prepaid::adjust(conn, operator.acting(), &account_id, adjustment, Utc::now())
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

/// A top-up to pay by transfer.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// A positive amount in euro, at most two decimals.
    #[schema(example = "100.00")]
    amount: String,
    /// `bank_transfer`, `postal_slip`, `cheque`, or `card` when card payments are offered.
    #[schema(example = "bank_transfer")]
    payment_method: String,
}

/// A top-up and how to pay it.
#[derive(Serialize, utoipa::ToSchema)]
struct TopUpResponse {
    id: String,
    status: TopUpStatus,
    payment_method: PaymentMethod,
    #[schema(value_type = String, example = "100.00")]
    amount: Money,
    /// What has arrived so far.
    #[schema(value_type = String, example = "0.00")]
    amount_received: Money,
    /// Always `EUR`.
    #[schema(example = "EUR")]
    currency: &'static str,
    /// The RF creditor reference the transfer must carry (`null` for a top-up by card).
    #[schema(example = "RF18539007547034", required = true)]
    reference: Option<String>,
    /// The reference grouped by four, for printing (`null` for a top-up by card).
    #[schema(example = "RF18 5390 0754 7034", required = true)]
    reference_print: Option<String>,
    /// Until when the reference is reserved for this top-up.
    reserved_until: DateTime<Utc>,
    pay_to: PayTo,
    created_at: DateTime<Utc>,
    /// `null` until paid in full.
    #[schema(required = true)]
    paid_at: Option<DateTime<Utc>>,
    /// Present for a top-up by card: send the buyer to `checkout_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<CardPaymentView>,
}

page_of!(
    /// The caller's top-ups, newest first.
    TopUpsResponse { top_ups: TopUpResponse }
);

impl TopUpResponse {
    fn new(top_up: TopUp, brand: &crate::brands::Brand) -> Self {
        Self {
            id: top_up.id,
            status: top_up.status,
            payment_method: top_up.payment_method,
            amount: top_up.amount,
            amount_received: top_up.received,
            currency: "EUR",
            reference: top_up
                .payment_reference
                .as_ref()
                .map(|r| r.as_str().to_owned()),
            reference_print: top_up.payment_reference.as_ref().map(|r| r.printed()),
            card: None,
            reserved_until: top_up.reserved_until,
            pay_to: PayTo::from(brand),
            created_at: top_up.created_at,
            paid_at: top_up.paid_at,
        }
    }
}

/// Ask to top up the prepaid account by transfer
///
/// Customers and registration officers (the roles that buy). The answer gives the RF code and
/// the bank details; the account is credited when the money arrives. A retry with the same
/// `Idempotency-Key` and body gets the first answer again (with `Idempotent-Replayed: true`)
/// instead of a second top-up.
#[utoipa::path(
    operation_id = "prepaid_request_top_up",
    params(("Idempotency-Key" = String, Header,
        description = "1 to 255 visible ASCII characters, new for each top-up (a UUID is typical)",
        example = "0f8e4c4e-7d8a-4bd5-9a55-3e3f1c2b7a10")),
    request_body = TopUpRequest,
    responses(
        (status = 201, description = "The top-up is requested (or, replayed, was requested by \
            the first request with this key)", body = TopUpResponse,
            headers(("Idempotent-Replayed" = String,
                description = "`true` when this is the stored answer of an earlier request with the same key"))),
        (status = 400, description = "The `Idempotency-Key` header is missing or invalid, or a \
            field is invalid (amount, payment_method not a transfer; `/problems/invalid-field`), \
            or the body is not the expected JSON (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        AccountGone,
        NotBuyerOrUnconfirmed,
        (status = 422, description = "The `Idempotency-Key` was already used for a different \
            request (`/problems/idempotency-key-reused`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/prepaid/topups")]
pub async fn request_top_up(
    state: State,
    request: HttpRequest,
    Buyer(user): Buyer,
    body: JsonObject<TopUpRequest>,
) -> ApiResult {
    let key = idempotent::key_from(&request)?;
    let body = body.into_inner();
    let fingerprint = idempotent::fingerprint(&body)?;
    let mut errors = FieldErrors::default();
    let amount = errors.check("amount", PositiveMoney::parse(&body.amount));
    let method = errors.check(
        "payment_method",
        PaymentMethod::parse(&body.payment_method)
            .ok_or(top_ups::MethodNotOffered)
            .and_then(|method| top_ups::offered_method(method, state.card.is_some())),
    );
    errors.finish()?;
    let (amount, method) = (amount.expect("checked"), method.expect("checked"));
    let app = state.clone();
    let user_id = user.id.clone();
    let mut answer = idempotent::run(&state, user_id, key, fingerprint, move |conn, now| {
        let profile = users::find(conn, &user.id)?.ok_or(UserError::NotFound)?;
        let buyer = prepaid::Buyer::of(&profile)?;
        let (reservation, card) = (app.config.reservation, app.card.as_ref());
        let (top_up, payment) =
            top_ups::place(conn, &buyer, amount, method, reservation, card, now)?;
        let card = payment.as_ref().map(CardPaymentView::from);
        let brand = crate::http::brand_of(conn, &user.brand)?;
        let mut response = TopUpResponse::new(top_up, &brand);
        response.card = card;
        let body = serde_json::to_string(&response).map_err(|e| ApiError::Unexpected(e.into()))?;
        Ok((201, body))
    })
    .await?;
    if method == PaymentMethod::Card {
        answer.body = card_payments::open_page_into(&state, answer.body).await?;
    }
    Ok(idempotent::reply(answer))
}

/// The caller's top-ups, newest first, a page at a time
///
/// Customers and registration officers (the roles that buy).
#[utoipa::path(
    operation_id = "prepaid_list_top_ups",
    params(PageParams),
    responses(
        (status = 200, description = "A page of the top-ups", body = TopUpsResponse),
        BadPaging,
        NotBuyer,
    )
)]
#[get("/api/v1/prepaid/topups")]
pub async fn list_top_ups(
    state: State,
    Buyer(user): Buyer,
    listed: Listed<NoFilters>,
) -> ApiResult {
    let page = listed.page()?;
    let (list, brand) = state
        .with_conn(move |conn| {
            let list = top_ups::list_for_user(conn, &user.id, page)?;
            Ok::<_, ApiError>((list, crate::http::brand_of(conn, &user.brand)?))
        })
        .await?;
    Ok(HttpResponse::Ok().json(TopUpsResponse {
        page: listed.info(page, list.total),
        top_ups: list
            .items
            .into_iter()
            .map(|t| TopUpResponse::new(t, &brand))
            .collect(),
    }))
}
