//! Coupons: the owner's list (masked), the public "verifica stato coupon" check
//! (rate-limited), and the back-office's void with refund.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::{BackOffice, Buyer};
use super::{ApiError, AppState};
use crate::catalog::Covers;
use crate::coupons::{self, CouponCode, CouponView, ShownStatus, VoidError};
use crate::money::Money;
use crate::rate_limit;
use crate::validation::Reason;

#[derive(Serialize)]
struct CouponResponse {
    id: String,
    code: String,
    product_code: String,
    product_name: String,
    covers: Covers,
    order_id: String,
    invoice_number: Option<String>,
    status: ShownStatus,
    valid_until: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl From<CouponView> for CouponResponse {
    fn from(c: CouponView) -> Self {
        Self {
            id: c.id,
            code: c.hint,
            product_code: c.product_code,
            product_name: c.product_name,
            covers: c.covers,
            order_id: c.order_id,
            invoice_number: c.invoice_number,
            status: c.status,
            valid_until: c.valid_until,
            created_at: c.created_at,
        }
    }
}

/// `GET /api/v1/coupons`: the buyer's coupons, codes masked (the full codes are in the
/// delivery email only).
pub async fn list(
    state: web::Data<AppState>,
    Buyer(user): Buyer,
) -> Result<HttpResponse, ApiError> {
    let list = state
        .with_conn(move |conn| {
            coupons::list_for_owner(conn, &user.id, 1000, Utc::now()).map_err(ApiError::storage)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "coupons": list.into_iter().map(CouponResponse::from).collect::<Vec<_>>()
    })))
}

#[derive(Serialize)]
struct StatusResponse {
    code: String,
    status: ShownStatus,
    covers: Covers,
    brand: String,
    valid_until: DateTime<Utc>,
}

/// `GET /api/v1/coupons/{code}/status`: anyone holding a code may check it. A typo is
/// caught by the check character before any lookup (and is not counted).
pub async fn status(
    state: web::Data<AppState>,
    request: HttpRequest,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = CouponCode::parse(&code).map_err(|e| {
        ApiError::invalid_field("code", crate::validation::Rule::rule(&e), e.to_string())
    })?;
    let client = super::client_address(&request);
    let key = state.coupon_key.clone();
    let display = code.to_string();
    let found = state
        .with_conn(move |conn| -> Result<_, ApiError> {
            let now = Utc::now();
            if let Err(retry_after_seconds) =
                rate_limit::hit(conn, coupons::STATUS_CHECKS, &client, now)?
            {
                return Err(ApiError::TooManyRequests {
                    retry_after_seconds,
                    detail: format!(
                        "too many coupon checks; retry in {retry_after_seconds} seconds"
                    ),
                });
            }
            coupons::public_status(conn, &key, &code, now).map_err(ApiError::storage)
        })
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown-coupon",
                "Unknown coupon",
                "no coupon has this code",
            )
        })?;
    Ok(HttpResponse::Ok().json(StatusResponse {
        code: display,
        status: found.status,
        covers: found.covers,
        brand: found.brand_id,
        valid_until: found.valid_until,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    reason: String,
}

impl From<VoidError> for ApiError {
    fn from(error: VoidError) -> Self {
        match error {
            VoidError::NotFound => {
                ApiError::not_found("unknown-coupon", "Unknown coupon", error.to_string())
            }
            VoidError::OtherBrand => ApiError::forbidden("other-brand", error.to_string()),
            VoidError::NotAvailable(_) => ApiError::refused(
                StatusCode::CONFLICT,
                "coupon-not-available",
                "Coupon not available",
                error.to_string(),
            ),
            VoidError::Prepaid(e) => e.into(),
            VoidError::Storage(e) => ApiError::storage(e),
        }
    }
}

/// `POST /api/v1/backoffice/coupons/{id}/void`: refunds the coupon to the owner's prepaid
/// account.
pub async fn void(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    id: web::Path<String>,
    body: web::Json<VoidRequest>,
) -> Result<HttpResponse, ApiError> {
    let reason = Reason::parse(&body.reason).map_err(|e| {
        ApiError::invalid_field("reason", crate::validation::Rule::rule(&e), e.to_string())
    })?;
    let refund: Money = state
        .with_conn(move |conn| {
            coupons::void(
                conn,
                &operator.id,
                &operator.brand,
                &id,
                &reason,
                Utc::now(),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "voided", "refunded": refund })))
}
