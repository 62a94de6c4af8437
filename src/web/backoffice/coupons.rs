//! Voiding a coupon, found by its code or id; sending an order's unused codes again.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::coupons::{self, CouponCode, VoidError};
use crate::money::Money;
use crate::orders::resend::{self, Resent};
use crate::validation::Reason;
use crate::web::{
    euro, form_status, refusal, OperatorPage, PageResult, WebError, COUPON_CODE_INVALID,
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
    credit_note: Option<String>,
}

/// The "send the codes again" form: the order (its id, from the orders page) and why.
#[derive(Default)]
pub(super) struct ResendState {
    order_id: String,
    reason: String,
    order_id_error: Option<String>,
    reason_error: Option<String>,
    resent: Option<Resent>,
}

pub(super) async fn coupon_page(
    visit: &OperatorPage,
    form: VoidState,
    resend: ResendState,
    status: StatusCode,
) -> PageResult {
    let (brand, ()) = visit.read(|_, _| Ok(())).await?;
    let voided = form.refunded.map(|refund| {
        json!({
            "coupon_id": form.coupon_id,
            "refunded": euro(refund),
            "credit_note": form.credit_note,
        })
    });
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
            "resent": resend.resent.as_ref().map(|r| json!({
                "order_id": resend.order_id, "codes": r.codes, "recipient": r.recipient,
            })),
            "resend": {
                "order_id": if resend.resent.is_some() { "" } else { resend.order_id.as_str() },
                "reason": if resend.resent.is_some() { "" } else { resend.reason.as_str() },
                "errors": { "order_id": resend.order_id_error, "reason": resend.reason_error },
            },
        }),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CouponQuery {
    /// The order whose codes are to be sent again (the link from the orders page).
    ordine: String,
}

pub(super) async fn coupon_form(visit: OperatorPage, query: web::Query<CouponQuery>) -> PageResult {
    let resend = ResendState {
        order_id: query.into_inner().ordine.trim().to_owned(),
        ..ResendState::default()
    };
    coupon_page(&visit, VoidState::default(), resend, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ResendFields {
    order_id: String,
    reason: String,
}

/// Sends an order's unused codes again for a customer who lost them
/// ([`resend::resend_unused_codes`], as the API does), and shows where they went.
pub(super) async fn resend_codes(
    OperatorForm { visit, fields }: OperatorForm<ResendFields>,
) -> PageResult {
    let order_id = fields.order_id.trim().to_owned();
    let mut resend = ResendState {
        order_id: order_id.clone(),
        reason: fields.reason.clone(),
        ..ResendState::default()
    };
    if order_id.is_empty() {
        resend.order_id_error =
            Some("Scrivi l'identificativo dell'ordine (dalla pagina Ordini).".into());
    }
    let reason = Reason::parse(&fields.reason)
        .map_err(|e| resend.reason_error = Some(reason_error(&e)))
        .ok();
    let (Some(reason), false) = (reason, order_id.is_empty()) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return coupon_page(&visit, VoidState::default(), resend, status).await;
    };
    let state = visit.state.clone();
    let outcome = visit
        .as_operator(move |conn, operator| {
            let requester = resend::Requester::Operator {
                operator: operator.acting(),
                reason: &reason,
            };
            let now = Utc::now();
            let (key, url) = (&state.coupon_key, &state.config.public_url);
            match resend::resend_unused_codes(conn, key, url, &requester, &order_id, now) {
                Ok(resent) => Ok(Ok(resent)),
                Err(error) => Ok(Err(refusal(error)?)),
            }
        })
        .await?;
    let status = match outcome {
        Ok(resent) => {
            resend.resent = Some(resent);
            StatusCode::OK
        }
        Err(identity) => {
            let status = form_status(&identity);
            resend.order_id_error = Some(identity.italian);
            status
        }
    };
    coupon_page(&visit, VoidState::default(), resend, status).await
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

pub(super) async fn void_coupon(
    OperatorForm { visit, fields }: OperatorForm<VoidFields>,
) -> PageResult {
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
        return coupon_page(&visit, form, ResendState::default(), status).await;
    };
    let key = visit.state.coupon_key.clone();
    let outcome = visit
        .as_operator(move |conn, operator| {
            let id = match typed {
                CouponTyped::Code(code) => coupons::id_by_code(conn, &key, &code)
                    .map_err(WebError::storage)?
                    .unwrap_or_default(),
                CouponTyped::Id(id) => id,
            };
            match coupons::void(conn, operator.acting(), &id, &reason, Utc::now()) {
                Ok(voided) => Ok(Ok(voided)),
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
        Ok(voided) => {
            form.refunded = Some(voided.refund);
            form.credit_note = voided.credit_note.map(|note| note.number);
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
    coupon_page(&visit, form, ResendState::default(), status).await
}
