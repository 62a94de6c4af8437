//! `POST /api/v1/orders` (idempotent; paid from the prepaid account at once, or by
//! transfer with an RF code), `GET /api/v1/orders`, `GET /api/v1/orders/{id}`.

use actix_web::{get, post};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::card_payments::{self, CardPaymentView};
use super::catalog::{requested_lines, LineRequest};
use super::extract::{Buyer, CurrentUser};
use super::json::JsonObject;
use super::operation::{backoffice_action, Acting};
use super::problem::FieldErrors;
use super::query::{one_of_all, page_of, Listed, PageParams, QueryRule};
use super::responses::{problem_response_type, BadListQuery, BadReason, NotBuyer, NotOperator};
use super::{brand_of, idempotent, ApiError, ApiResult, Problem, State};
use crate::auth::{users, Role, UserError};
use crate::brands::Brand;
use crate::card::store as card_store;
use crate::db::DbConnection;
use crate::email_address::EmailAddress;
use crate::money::Money;
use crate::orders::checkout;
use crate::orders::resend::{resend_unused_codes, Requester, Resent};
use crate::orders::{self, Order, OrderStatus, PaymentMethod};
use crate::paging::Page;
use crate::payments::CreditorReference;
use crate::validation::Reason;

problem_response_type!(
    /// The order's codes cannot be sent again: none were sent, or none is left unused.
    NothingToResend,
    409,
    "The order is not fulfilled (`/problems/order-not-fulfilled`) or has no unused code left \
     (`/problems/no-unused-codes`)"
);

/// An order: its lines, and how it is paid.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// At least one line; each product once.
    lines: Vec<LineRequestCanonical>,
    /// `prepaid` pays at once from the prepaid account (the coupons are delivered at
    /// once); `bank_transfer`, `postal_slip` and `cheque` pay later with the RF code.
    #[schema(value_type = PaymentMethod)]
    payment_method: String,
}

/// The line as received, kept serialisable for the idempotency fingerprint.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderLineRequest)]
struct LineRequestCanonical {
    /// The product's id or its code.
    #[schema(example = "RIN-FIRMA")]
    product: String,
    /// How many coupons of the product (at least 1; the role caps the order's total).
    #[schema(minimum = 1, example = 2)]
    quantity: i64,
}

/// A line of an order, at the prices of the time of the order.
#[derive(Serialize, utoipa::ToSchema)]
struct OrderLineResponse {
    line_number: i32,
    product_id: String,
    #[schema(example = "RIN-FIRMA")]
    code: String,
    name: String,
    quantity: i32,
    /// Net price of one coupon, in euro.
    #[schema(value_type = String, example = "26.00")]
    net_unit_price: Money,
    /// Net amount of the line, in euro.
    #[schema(value_type = String, example = "52.00")]
    net_amount: Money,
    /// VAT rate in percent.
    #[schema(example = "22.00")]
    vat_rate: String,
}

/// How to pay an order by transfer, and how much has arrived.
#[derive(Serialize, utoipa::ToSchema)]
struct TransferResponse {
    /// Electronic form, for a payment reason typed by a program.
    #[schema(example = "RF18539007547034")]
    reference: String,
    /// Printed form in groups of four, as on the payment slip.
    #[schema(example = "RF18 5390 0754 7034")]
    reference_print: String,
    /// Until when the order's prices and coupons are held for the payment.
    reserved_until: Option<DateTime<Utc>>,
    /// Received so far, in euro.
    #[schema(value_type = String, example = "0.00")]
    amount_received: Money,
    /// Still to pay, in euro.
    #[schema(value_type = String, example = "63.44")]
    amount_due: Money,
    pay_to: PayTo,
}

/// Whom to pay: the brand's accounts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PayTo {
    pub beneficiary: String,
    pub iban: String,
    pub postal_account: String,
}

impl From<&Brand> for PayTo {
    fn from(brand: &Brand) -> Self {
        Self {
            beneficiary: brand.name.clone(),
            iban: brand.iban.clone(),
            postal_account: brand.postal_account.clone(),
        }
    }
}

/// An order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderResponse {
    id: String,
    status: OrderStatus,
    payment_method: PaymentMethod,
    invoice_number: Option<String>,
    /// In euro.
    #[schema(value_type = String, example = "52.00")]
    net_total: Money,
    /// In euro.
    #[schema(value_type = String, example = "11.44")]
    vat_total: Money,
    /// In euro.
    #[schema(value_type = String, example = "63.44")]
    gross_total: Money,
    #[schema(example = "EUR")]
    currency: &'static str,
    /// Where the coupons are delivered.
    email: String,
    /// How many coupons the order buys.
    coupons: i64,
    created_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    fulfilled_at: Option<DateTime<Utc>>,
    lines: Vec<OrderLineResponse>,
    /// Present for orders paid by transfer, postal slip or cheque.
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer: Option<TransferResponse>,
    /// Present for orders paid by card: send the buyer to `checkout_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<CardPaymentView>,
}

page_of!(
    /// A page of the caller's orders, newest first, with the total.
    OrderListResponse { orders: OrderResponse }
);

impl OrderResponse {
    /// The order with its card payment, if paid by card.
    fn of(conn: &mut DbConnection, order: Order, brand: &Brand) -> Result<Self, ApiError> {
        let card = match order.payment_method {
            PaymentMethod::Card => card_store::of_order(conn, &order.id)?,
            _ => None,
        };
        let mut response = Self::new(order, brand);
        response.card = card.as_ref().map(CardPaymentView::from);
        Ok(response)
    }

    fn new(order: Order, brand: &Brand) -> Self {
        let transfer = order
            .payment_reference
            .as_ref()
            .map(|reference| TransferResponse {
                reference: reference.as_str().to_owned(),
                reference_print: reference.printed(),
                reserved_until: order.reserved_until,
                amount_received: order.received,
                amount_due: order.amount_due(),
                pay_to: PayTo::from(brand),
            });
        Self {
            transfer,
            card: None,
            id: order.id,
            status: order.status,
            payment_method: order.payment_method,
            invoice_number: order.invoice_number,
            net_total: order.net_total,
            vat_total: order.vat_total,
            gross_total: order.gross_total,
            currency: "EUR",
            email: order.email,
            coupons: order.coupon_count,
            created_at: order.created_at,
            paid_at: order.paid_at,
            fulfilled_at: order.fulfilled_at,
            lines: order
                .lines
                .into_iter()
                .map(|l| OrderLineResponse {
                    line_number: l.line_number,
                    product_id: l.product_id,
                    code: l.product_code,
                    name: l.product_name,
                    quantity: l.quantity,
                    net_unit_price: l.net_unit_price,
                    net_amount: l.net_amount,
                    vat_rate: format!(
                        "{:.2}",
                        rust_decimal::Decimal::new(l.vat_rate_basis_points as i64, 2)
                    ),
                })
                .collect(),
        }
    }
}

/// Place an order, paid from the prepaid account or by transfer
///
/// Customers and registration officers (the roles that buy). Paid `prepaid`, the order is paid
/// and fulfilled at once (the coupons are emailed); otherwise it waits for the money, which
/// must carry the RF code of `transfer.reference`. A retry with the same `Idempotency-Key` and
/// body gets the first answer again (with `Idempotent-Replayed: true`) instead of a second
/// order.
#[utoipa::path(
    operation_id = "orders_create",
    params(("Idempotency-Key" = String, Header,
        description = "1 to 255 visible ASCII characters, new for each order (a UUID is typical)",
        example = "0f8e4c4e-7d8a-4bd5-9a55-3e3f1c2b7a10")),
    request_body = OrderRequest,
    responses(
        (status = 201, description = "The order is placed (or, replayed, was placed by the \
first request with this key)", body = OrderResponse,
            headers(("Idempotent-Replayed" = String,
                description = "`true` when this is the stored answer of an earlier request with the same key"))),
        (status = 400, description = "The `Idempotency-Key` header is missing or invalid, a field \
is invalid (unknown, inactive or repeated product, quantity below 1, unknown payment \
method; `/problems/invalid-field`), or the body is not the expected JSON \
(`/problems/malformed-request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid access token, or the account no longer exists \
(`/problems/unauthorized`)", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "The caller's role does not buy (`/problems/forbidden-role`), \
the caller has not confirmed their email address yet (`/problems/email-not-confirmed`), \
or the prepaid account belongs to another brand (`/problems/other-brand`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Paying `prepaid` without a prepaid account \
(`/problems/unknown-account`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The prepaid balance does not cover the order \
(`/problems/insufficient-funds`), or the buyer has not given their billing data yet \
(`/problems/billing-data-missing`, field `billing`: set it with `PUT /api/v1/me/billing`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More coupons than the role may buy in one order, on one \
line or over several (`/problems/order-too-large`), or the `Idempotency-Key` was already used for a different \
request (`/problems/idempotency-key-reused`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/orders")]
pub async fn create(
    state: State,
    request: HttpRequest,
    Buyer(user): Buyer,
    body: JsonObject<OrderRequest>,
) -> ApiResult {
    let key = idempotent::key_from(&request)?;
    let body = body.into_inner();
    let fingerprint = idempotent::fingerprint(&body)?;
    let method = PaymentMethod::parse(&body.payment_method).ok_or_else(|| {
        ApiError::invalid_field(
            "payment_method",
            "one_of",
            "payment_method must be prepaid, bank_transfer, postal_slip, cheque or card",
        )
    })?;
    let lines: Vec<LineRequest> = body
        .lines
        .iter()
        .map(|l| LineRequest {
            product: l.product.clone(),
            quantity: l.quantity,
        })
        .collect();
    let requested = requested_lines(&lines);
    let app = state.clone();
    let user_id = user.id.clone();
    let mut answer = idempotent::run(&state, user_id, key, fingerprint, move |conn, now| {
        let profile = users::find(conn, &user.id)?.ok_or(UserError::NotFound)?;
        let buyer = orders::Buyer::of(&profile)?;
        let till = app.till();
        let order = checkout::place_order(conn, &till, &buyer, user.role, method, &requested, now)?;
        let brand = brand_of(conn, &user.brand)?;
        let body = serde_json::to_string(&OrderResponse::of(conn, order, &brand)?)
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        Ok((201, body))
    })
    .await?;
    if method == PaymentMethod::Card {
        answer.body = card_payments::open_page_into(&state, answer.body).await?;
    }
    Ok(idempotent::reply(answer))
}

/// Filters of the order list; every one given must hold.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this state.
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    /// Only the order with this RF code (printed in groups or not, any case).
    #[param(example = "RF18539007547034")]
    reference: Option<String>,
    /// Only the order with this invoice number (any case).
    #[param(example = "VIS2026-000123", min_length = 1, max_length = 40)]
    invoice_number: Option<String>,
    /// Only orders whose codes went to this address.
    #[param(example = "studio@example.it")]
    email: Option<String>,
}

/// List orders: the caller's own, or every order of the brand for the back-office
///
/// Any signed-in user (any role). Customers and registration officers see their own orders;
/// back-office operators see every order of their brand, and find the one a customer asks about
/// by its RF code, invoice number or email. Newest first, a page at a time (`limit`, `offset`),
/// with the total of orders that match.
#[utoipa::path(
    operation_id = "orders_list",
    params(ListQuery, PageParams),
    responses(
        (status = 200, description = "A page of the orders", body = OrderListResponse),
        BadListQuery,
    )
)]
#[get("/api/v1/orders")]
pub async fn list(state: State, user: CurrentUser, query: Listed<ListQuery>) -> ApiResult {
    let (filter, page) = list_filter(&query)?;
    let (list, total) = state
        .with_conn(move |conn| {
            let owner = (user.role != Role::BackOffice).then_some(user.id.as_str());
            let list = orders::list(conn, &user.brand, owner, &filter, page)?;
            let brand = brand_of(conn, &user.brand)?;
            let orders = list
                .items
                .into_iter()
                .map(|o| OrderResponse::of(conn, o, &brand))
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok::<_, ApiError>((orders, list.total))
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrderListResponse {
        orders: list,
        page: query.info(page, total),
    }))
}

/// The longest invoice number looked for: series, year and sequence fit well within.
const INVOICE_NUMBER_MAX: usize = 40;

fn list_filter(listed: &Listed<ListQuery>) -> Result<(orders::OrderFilter, Page), ApiError> {
    let query = &listed.filter;
    let mut errors = FieldErrors::default();
    let status = errors.check_optional("status", query.status.as_deref(), |text| {
        one_of_all("status", text)
    });
    let reference = errors.check_optional(
        "reference",
        query.reference.as_deref(),
        CreditorReference::parse,
    );
    let email = errors.check_optional("email", query.email.as_deref(), EmailAddress::parse);
    let invoice_number = query.invoice_number.as_ref().and_then(|n| {
        let n = n.trim().to_uppercase();
        let fits = !n.is_empty() && n.chars().count() <= INVOICE_NUMBER_MAX;
        errors.check(
            "invoice_number",
            if fits {
                Ok(n)
            } else {
                Err(QueryRule(
                    "length",
                    format!("invoice_number must be 1 to {INVOICE_NUMBER_MAX} characters"),
                ))
            },
        )
    });
    let page = listed.page_checked(&mut errors);
    errors.finish()?;
    let filter = orders::OrderFilter {
        status,
        reference,
        invoice_number,
        email,
        id: None,
    };
    Ok((filter, page))
}

/// Show one order
///
/// Any signed-in user (any role): customers and registration officers their own orders,
/// back-office operators any order of their brand. Someone else's order is answered as unknown.
#[utoipa::path(
    operation_id = "orders_show",
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = OrderResponse),
        (status = 404, description = "No such order visible to the caller \
(`/problems/unknown-order`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/api/v1/orders/{id}")]
pub async fn show(state: State, user: CurrentUser, id: web::Path<String>) -> ApiResult {
    let order = state
        .with_conn(move |conn| {
            let order = orders::visible(conn, &user.viewer(), &id)?;
            let brand = brand_of(conn, &user.brand)?;
            OrderResponse::of(conn, order, &brand)
        })
        .await?;
    Ok(HttpResponse::Ok().json(order))
}

/// New codes sent in place of the order's unused ones.
#[derive(Serialize, utoipa::ToSchema)]
struct CodesResendResponse {
    /// How many new codes were sent (as many unused codes were voided).
    #[schema(example = 3)]
    codes: usize,
    /// The account's address the new codes went to.
    #[schema(example = "mario.rossi@example.it")]
    sent_to: String,
}

impl From<Resent> for CodesResendResponse {
    fn from(resent: Resent) -> Self {
        Self {
            codes: resent.codes,
            sent_to: resent.recipient,
        }
    }
}

/// Why an operator has the codes sent again.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorResendRequest {
    #[schema(example = "customer deleted the delivery email (call of 1 Dec)")]
    reason: String,
}

/// Have the order's unused codes sent again
///
/// For a lost or deleted delivery email. Codes are stored only as hashes, so they cannot be
/// sent as they were: the order's unused, unexpired codes are voided and as many new codes
/// of the same products, price and validity are emailed to the account's address. Used,
/// reserved and expired codes are left alone; no money moves. At most 5 times per order a
/// day. The buyer's own orders only.
#[utoipa::path(
    operation_id = "orders_codes_resend",
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "New codes sent", body = CodesResendResponse),
        NotBuyer,
        (status = 404, description = "No such order of the caller (`/problems/unknown-order`)",
            body = Problem, content_type = "application/problem+json"),
        NothingToResend,
        (status = 429, description = "Codes of this order were sent again too often \
(`/problems/too-many-requests`, with `Retry-After`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/orders/{id}/codes/resend")]
pub async fn resend_codes(state: State, Buyer(user): Buyer, id: web::Path<String>) -> ApiResult {
    resend(state, user, None, id.into_inner()).await
}

backoffice_action!(
    /// Send a customer's unused codes again (back-office)
    ///
    /// As `POST /api/v1/orders/{id}/codes/resend`, for any order of the operator's brand, with a
    /// reason for the audit log and without the daily limit.
    post resend_codes_as_operator = "/api/v1/backoffice/orders/{id}/codes/resend"
        as "backoffice_orders_codes_resend",
    on "id" "The order's id", takes OperatorResendRequest,
    answers (status = 200, description = "New codes sent", body = CodesResendResponse),
    refuses (
        BadReason,
        NotOperator,
        (status = 404, description = "No such order of the brand (`/problems/unknown-order`)",
            body = Problem, content_type = "application/problem+json"),
        NothingToResend,
    ),
    by resend_as_operator
);

async fn resend_as_operator(
    Acting(state, operator, id): Acting,
    body: JsonObject<OperatorResendRequest>,
) -> ApiResult {
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::broken_field("reason", e))?;
    resend(state, operator, Some(reason), id).await
}

/// Sends the order's unused codes again for the buyer, or (with a reason) an operator.
async fn resend(
    state: State,
    caller: CurrentUser,
    operator_reason: Option<Reason>,
    order_id: String,
) -> ApiResult {
    let state_ = state.clone();
    let resent = state
        .with_conn(move |conn| {
            let requester = match &operator_reason {
                Some(reason) => Requester::Operator {
                    operator: caller.acting(),
                    reason,
                },
                None => Requester::Owner {
                    user_id: &caller.id,
                    brand_id: &caller.brand,
                },
            };
            let (key, url) = (&state_.coupon_key, &state_.config.public_url);
            resend_unused_codes(conn, key, url, &requester, &order_id, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(CodesResendResponse::from(resent)))
}
