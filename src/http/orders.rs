//! `POST /api/v1/orders` (idempotent), `GET /api/v1/orders`, `GET /api/v1/orders/{id}`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{Buyer, CurrentUser};
use super::catalog::{priced, requested_lines, LineRequest};
use super::{ApiError, AppState};
use crate::auth::{users, Role, UserError};
use crate::catalog;
use crate::idempotency::{self, IdempotencyError, IdempotencyKey};
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
}

impl From<Order> for OrderResponse {
    fn from(order: Order) -> Self {
        Self {
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
            OrderError::UnsupportedPayment(_) => {
                ApiError::invalid_field("payment_method", "supported", error.to_string())
            }
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
    let key_header = request
        .headers()
        .get("Idempotency-Key")
        .ok_or_else(|| {
            ApiError::invalid_field(
                "Idempotency-Key",
                "required",
                "send an Idempotency-Key header (e.g. a new UUID per order) so a retry cannot buy twice",
            )
        })?
        .to_str()
        .unwrap_or_default()
        .to_owned();
    let key = IdempotencyKey::parse(&key_header).map_err(|e| {
        ApiError::invalid_field("Idempotency-Key", "idempotency_key", e.to_string())
    })?;
    let body = body.into_inner();
    let fingerprint = idempotency::fingerprint(
        &serde_json::to_string(&body).map_err(|e| ApiError::Unexpected(e.into()))?,
    );
    let method = PaymentMethod::parse(&body.payment_method).ok_or_else(|| {
        ApiError::invalid_field(
            "payment_method",
            "one_of",
            "payment_method must be prepaid, bank_transfer, postal_slip or cheque",
        )
    })?;
    if method != PaymentMethod::Prepaid {
        return Err(OrderError::UnsupportedPayment(method).into());
    }
    let lines: Vec<LineRequest> = body
        .lines
        .iter()
        .map(|l| LineRequest {
            product: l.product.clone(),
            quantity: l.quantity,
        })
        .collect();
    let requested = requested_lines(&lines, user.role)?;
    let key_state = state.clone();
    let outcome = state
        .with_conn(move |conn| {
            let now = Utc::now();
            let result = idempotency::run(
                conn,
                &user.id,
                &key,
                &fingerprint,
                now,
                |conn| -> Result<(u16, String), ApiError> {
                    let products = catalog::resolve(conn, &user.brand, &requested)?;
                    let quote = priced(&products);
                    let profile = users::find(conn, &user.id)?.ok_or(UserError::NotFound)?;
                    let buyer = orders::Buyer {
                        user_id: user.id.clone(),
                        brand_id: user.brand.clone(),
                        name: profile.name,
                        email: profile.email.to_string(),
                    };
                    let order = orders::place_prepaid(
                        conn,
                        &key_state.coupon_key,
                        &buyer,
                        &products,
                        &quote,
                        &key_state.config.public_url,
                        now,
                    )?;
                    let body = serde_json::to_string(&OrderResponse::from(order))
                        .map_err(|e| ApiError::Unexpected(e.into()))?;
                    Ok((201, body))
                },
            );
            match result {
                Ok(outcome) => Ok(outcome),
                Err(IdempotencyError::KeyReused) => Err(ApiError::refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    "this Idempotency-Key was already used for a different order",
                )),
                Err(IdempotencyError::Work(e)) => Err(e),
            }
        })
        .await?;
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::CREATED);
    let mut response = HttpResponse::build(status);
    response.content_type("application/json");
    if outcome.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.body(outcome.body))
}

/// `GET /api/v1/orders`: own orders; the back-office sees every order of its brand.
pub async fn list(state: web::Data<AppState>, user: CurrentUser) -> Result<HttpResponse, ApiError> {
    let list = state
        .with_conn(move |conn| {
            let owner = (user.role != Role::BackOffice).then_some(user.id.as_str());
            orders::list(conn, &user.brand, owner, LIST_LIMIT)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "orders": list.into_iter().map(OrderResponse::from).collect::<Vec<_>>()
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
            if visible {
                Ok(order)
            } else {
                Err(OrderError::NotFound)
            }
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrderResponse::from(order)))
}
