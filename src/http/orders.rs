//! `POST /api/v1/orders` (idempotent; paid from the prepaid account at once, or by
//! transfer with an RF code), `GET /api/v1/orders`, `GET /api/v1/orders/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{Buyer, CurrentUser};
use super::catalog::{priced, requested_lines, LineRequest};
use super::{idempotent, ApiError, AppState};
use crate::auth::{users, Role, UserError};
use crate::brands::{self, Brand};
use crate::catalog;
use crate::money::Money;
use crate::orders::{self, Order, OrderError, OrderStatus, PaymentMethod};

const LIST_LIMIT: i64 = 200;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    lines: Vec<LineRequestCanonical>,
    payment_method: String,
}

/// The line as received, kept serialisable for the idempotency fingerprint.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LineRequestCanonical {
    product: String,
    quantity: i64,
}

#[derive(Serialize)]
struct OrderLineResponse {
    line_number: i32,
    product_id: String,
    code: String,
    name: String,
    quantity: i32,
    net_unit_price: Money,
    net_amount: Money,
    vat_rate: String,
}

/// How to pay an order by transfer, and how much has arrived.
#[derive(Serialize)]
struct TransferResponse {
    /// Electronic form, for a payment reason typed by a program.
    reference: String,
    /// Printed form in groups of four, as on the payment slip.
    reference_print: String,
    reserved_until: Option<DateTime<Utc>>,
    amount_received: Money,
    amount_due: Money,
    pay_to: PayTo,
}

#[derive(Serialize)]
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

#[derive(Serialize)]
pub struct OrderResponse {
    id: String,
    status: OrderStatus,
    payment_method: PaymentMethod,
    invoice_number: Option<String>,
    net_total: Money,
    vat_total: Money,
    gross_total: Money,
    currency: &'static str,
    email: String,
    coupons: i64,
    created_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    fulfilled_at: Option<DateTime<Utc>>,
    lines: Vec<OrderLineResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer: Option<TransferResponse>,
}

impl OrderResponse {
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

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Prepaid(e) => e.into(),
            OrderError::NotFound => {
                ApiError::not_found("unknown-order", "Unknown order", error.to_string())
            }
            OrderError::Storage(e) => ApiError::storage(e),
        }
    }
}

/// `POST /api/v1/orders` with an `Idempotency-Key` header.
pub async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    Buyer(user): Buyer,
    body: web::Json<OrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotent::key_from(&request)?;
    let body = body.into_inner();
    let fingerprint = idempotent::fingerprint(&body)?;
    let method = PaymentMethod::parse(&body.payment_method).ok_or_else(|| {
        ApiError::invalid_field(
            "payment_method",
            "one_of",
            "payment_method must be prepaid, bank_transfer, postal_slip or cheque",
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
    let requested = requested_lines(&lines, user.role)?;
    let app = state.clone();
    let user_id = user.id.clone();
    idempotent::respond(&state, user_id, key, fingerprint, move |conn, now| {
        let products = catalog::resolve(conn, &user.brand, &requested)?;
        let quote = priced(&products);
        let profile = users::find(conn, &user.id)?.ok_or(UserError::NotFound)?;
        let buyer = orders::Buyer {
            user_id: user.id.clone(),
            brand_id: user.brand.clone(),
            name: profile.name,
            email: profile.email.to_string(),
        };
        let order = if method.is_transfer() {
            orders::place_by_transfer(
                conn,
                &buyer,
                method,
                &products,
                &quote,
                app.config.reservation,
                now,
            )?
        } else {
            orders::place_prepaid(
                conn,
                &app.coupon_key,
                &buyer,
                &products,
                &quote,
                &app.config.public_url,
                now,
            )?
        };
        let brand = brand_of(conn, &user.brand)?;
        let body = serde_json::to_string(&OrderResponse::new(order, &brand))
            .map_err(|e| ApiError::Unexpected(e.into()))?;
        Ok((201, body))
    })
    .await
}

/// `GET /api/v1/orders`: own orders; the back-office sees every order of its brand.
pub async fn list(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, ApiError> {
    let list = state
        .with_conn(move |conn| {
            let owner = (user.role != Role::BackOffice).then_some(user.id.as_str());
            let list = orders::list(conn, &user.brand, owner, LIST_LIMIT)?;
            Ok::<_, ApiError>((list, brand_of(conn, &user.brand)?))
        })
        .await?;
    let (list, brand) = list;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "orders": list.into_iter().map(|o| OrderResponse::new(o, &brand)).collect::<Vec<_>>()
    })))
}

/// `GET /api/v1/orders/{id}`: someone else's order is as absent as a missing one.
pub async fn show(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let order = state
        .with_conn(move |conn| {
            let order = orders::find(conn, &id)?.ok_or(OrderError::NotFound)?;
            let visible = order.brand_id == user.brand
                && (user.role == Role::BackOffice || order.user_id == user.id);
            if !visible {
                return Err(OrderError::NotFound.into());
            }
            Ok::<_, ApiError>((order, brand_of(conn, &user.brand)?))
        })
        .await?;
    let (order, brand) = order;
    Ok(HttpResponse::Ok().json(OrderResponse::new(order, &brand)))
}

pub(super) fn brand_of(conn: &mut crate::db::DbConnection, id: &str) -> Result<Brand, ApiError> {
    brands::find(conn, id)?
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("brand {id} missing")))
}
