//! Voiding a coupon, found by its code or id.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::coupons::{self, CouponCode, VoidError};
use crate::money::Money;
use crate::validation::Reason;
use crate::web::{
    euro, form_status, refusal, with_conn, OperatorPage, WebError, COUPON_CODE_INVALID,
};

use super::{reason_error, OperatorForm};

#[derive(Default)]
pub(super) struct VoidState {
    coupon_id: String,
    reason: String,
    coupon_id_error: Option<String>,
    reason_error: Option<String>,
    error: Option<String>,
    refunded: Option<Money>,
}

pub(super) async fn coupon_page(
    visit: &OperatorPage,
    form: VoidState,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let (brand, ()) = visit.read(|_, _| Ok(())).await?;
    let voided = form
        .refunded
        .map(|refund| json!({ "coupon_id": form.coupon_id, "refunded": euro(refund) }));
    let fresh = voided.is_some();
    visit.render(
        &brand,
        "Coupon",
        status,
        "bo_coupon",
        json!({
            "voided": voided,
            "form": {
                "coupon_id": if fresh { String::new() } else { form.coupon_id },
                "reason": if fresh { String::new() } else { form.reason },
            },
            "errors": {
                "coupon_id": form.coupon_id_error,
                "reason": form.reason_error,
                "form": form.error,
            },
        }),
    )
}

pub(super) async fn coupon_form(visit: OperatorPage) -> Result<HttpResponse, WebError> {
    coupon_page(&visit, VoidState::default(), StatusCode::OK).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct VoidFields {
    coupon_id: String,
    reason: String,
}

/// Voids a coupon and shows what went back to the owner's prepaid account. The result is
/// the answer to the POST itself: sent again (a reload), the void is refused as the coupon
/// is no longer available, so nothing happens twice.
/// What the operator typed into the void form: the code the customer quotes, or the id
/// the API and the audit log use.
pub(super) enum CouponTyped {
    Code(CouponCode),
    Id(String),
}

pub(super) async fn void_coupon(form: OperatorForm<VoidFields>) -> Result<HttpResponse, WebError> {
    let OperatorForm { visit, fields } = form;
    let VoidFields { coupon_id, reason } = fields;
    let coupon_id = coupon_id.trim().to_owned();
    let mut form = VoidState {
        coupon_id: coupon_id.clone(),
        reason: reason.clone(),
        ..VoidState::default()
    };
    let typed = if coupon_id.is_empty() {
        form.coupon_id_error =
            Some("Scrivi il codice o l'identificativo del coupon da annullare.".into());
        None
    } else if uuid::Uuid::parse_str(&coupon_id).is_ok() {
        Some(CouponTyped::Id(coupon_id.clone()))
    } else {
        CouponCode::parse(&coupon_id)
            .map_err(|_| {
                form.coupon_id_error = Some(COUPON_CODE_INVALID.into());
            })
            .ok()
            .map(|code| {
                form.coupon_id = code.formatted();
                CouponTyped::Code(code)
            })
    };
    let reason = Reason::parse(&reason)
        .map_err(|e| form.reason_error = Some(reason_error(&e)))
        .ok();
    let (Some(reason), Some(typed)) = (reason, typed) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return coupon_page(&visit, form, status).await;
    };
    let (operator_id, brand_id) = (visit.user.id.clone(), visit.user.brand_id.clone());
    let key = visit.state.coupon_key.clone();
    let outcome = with_conn(&visit.state, move |conn| {
        let id = match typed {
            CouponTyped::Code(code) => coupons::id_by_code(conn, &key, &code)
                .map_err(WebError::storage)?
                .unwrap_or_default(),
            CouponTyped::Id(id) => id,
        };
        match coupons::void(conn, &operator_id, &brand_id, &id, &reason, Utc::now()) {
            Ok(refund) => Ok(Ok(refund)),
            Err(error) => {
                // The refund to the owner's account is the form's trouble; the rest, the
                // coupon's (unknown, another brand's, not available).
                let about_refund = matches!(error, VoidError::Prepaid(_));
                Ok(Err((about_refund, refusal(error)?)))
            }
        }
    })
    .await?;
    let status = match outcome {
        Ok(refund) => {
            form.refunded = Some(refund);
            StatusCode::OK
        }
        Err((about_refund, identity)) => {
            let status = form_status(&identity);
            if about_refund {
                form.error = Some(identity.italian);
            } else {
                form.coupon_id_error = Some(identity.italian);
            }
            status
        }
    };
    coupon_page(&visit, form, status).await
}
