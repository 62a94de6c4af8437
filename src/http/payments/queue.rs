//! The payments work queue with filters and totals, one payment, and matching or
//! refunding one by hand.

use actix_web::HttpResponse;
use actix_web::{get, post};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::http::extract::CurrentUser;
use crate::http::json::JsonObject;
use crate::http::operation::{backoffice_action, backoffice_list, Acting, Listing};
use crate::http::problem::FieldErrors;
use crate::http::query::{one_of_all, PageInfo, QueryRule};
use crate::http::responses::{problem_response_type, NotOperator};
use crate::http::{ApiError, ApiResult, Problem};
use crate::payments::manual::{self, ManualTarget};
use crate::payments::matching::PaymentStatus;
use crate::payments::queue::{self, ByHand, Filter, ManualError, Totals};
use crate::payments::CreditorReference;
use crate::validation::Reason;

use super::date;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only payments with this outcome.
    #[param(value_type = Option<PaymentStatus>)]
    status: Option<String>,
    /// Only payments booked on or after this day.
    #[param(value_type = Option<NaiveDate>, example = "2026-11-01")]
    from: Option<String>,
    /// Only payments booked on or before this day.
    #[param(value_type = Option<NaiveDate>, example = "2026-11-30")]
    to: Option<String>,
    /// Only payments with this RF code.
    #[param(example = "RF18539007547034")]
    reference: Option<String>,
    /// Only payments of this statement (its id).
    statement: Option<String>,
    /// Only payments applied to this order (its id).
    order: Option<String>,
}

pub(super) fn status(text: &str) -> Result<PaymentStatus, QueryRule> {
    one_of_all("status", text)
}

/// A page of payments, and the count and sum of all payments matching the filters.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PaymentListResponse)]
pub(super) struct ListResponse {
    payments: Vec<queue::PaymentView>,
    /// Over every payment matching the filters, not only this page.
    totals: Totals,
    #[serde(flatten)]
    page: PageInfo,
}

backoffice_list!(
    /// The payments work queue, filtered, with totals
    ///
    /// Back-office operators only; the payments of the operator's brand.
    list = "/api/v1/backoffice/payments" as "payments_list",
    filters ListQuery, answers ListResponse "A page of payments and the totals",
    by find
);

async fn find(
    Listing(state, operator, listed): Listing<ListQuery>,
) -> Result<ListResponse, ApiError> {
    let query = &listed.filter;
    let mut errors = FieldErrors::default();
    let status = errors.check_optional("status", query.status.as_deref(), status);
    let from = errors.check_optional("from", query.from.as_deref(), date);
    let to = errors.check_optional("to", query.to.as_deref(), date);
    let reference = errors
        .check_optional(
            "reference",
            query.reference.as_deref(),
            CreditorReference::parse,
        )
        .map(|r| r.as_str().to_owned());
    let page = listed.page_checked(&mut errors);
    errors.finish()?;
    let filter = Filter {
        status,
        from,
        to,
        reference,
        statement_id: query.statement.clone(),
        order_id: query.order.clone(),
    };
    let (payments, totals) = state
        .with_conn(move |conn| {
            queue::list(conn, &operator.brand, &filter, page).map_err(ApiError::storage)
        })
        .await?;
    Ok(ListResponse {
        page: listed.info(page, totals.count),
        payments,
        totals,
    })
}

backoffice_action!(
    /// Show one payment
    ///
    /// Back-office operators only; payments of the operator's brand.
    get show = "/api/v1/backoffice/payments/{id}" as "payments_show",
    on "id" "The payment's id",
    answers (status = 200, description = "The payment", body = queue::PaymentView),
    refuses (
        NotOperator,
        (status = 404, description = "No payment of the brand has this id \
(`/problems/unknown-payment`)", body = Problem, content_type = "application/problem+json"),
    ),
    by show_payment
);

async fn show_payment(Acting(state, operator, id): Acting) -> ApiResult {
    let payment = state
        .with_conn(move |conn| {
            queue::find(conn, &operator.brand, &id)
                .map_err(ApiError::storage)?
                .ok_or_else(|| ApiError::from(ManualError::UnknownPayment))
        })
        .await?;
    Ok(HttpResponse::Ok().json(payment))
}

/// The operator acting by hand on a payment, and why.
fn acting<'a>(operator: &'a CurrentUser, reason: &'a Reason) -> ByHand<'a> {
    ByHand {
        operator: operator.acting(),
        reason,
    }
}

problem_response_type!(
    /// A hand-made change of a payment, which may touch a prepaid account.
    NotOperatorOrOtherBrand,
    403,
    "The caller is not a back-office operator (`/problems/forbidden-role`), or the prepaid \
     account belongs to another brand (`/problems/other-brand`)"
);

/// Where an unmatched payment goes: exactly one of `order_id` and `account_id`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    /// Apply the payment to this order of the brand.
    order_id: Option<String>,
    /// Credit the payment to this prepaid account.
    account_id: Option<String>,
    /// Why (kept in the audit log).
    #[schema(example = "RF code mistyped by the payer; amount and name match")]
    reason: String,
}

backoffice_action!(
    /// Match an unmatched payment by hand to an order or a prepaid account
    ///
    /// Back-office operators only; payments of the operator's brand that are unmatched credits.
    post match_by_hand = "/api/v1/backoffice/payments/{id}/match" as "payments_match_by_hand",
    on "id" "The payment's id", takes MatchRequest,
    answers (status = 200, description = "The payment, matched", body = queue::PaymentView),
    refuses (
        (status = 400, description = "No valid reason, or not exactly one of `order_id` and \
`account_id` (`/problems/invalid-field`), or the body is not the expected JSON \
(`/problems/malformed-request`)", body = Problem, content_type = "application/problem+json"),
        NotOperatorOrOtherBrand,
        (status = 404, description = "No such payment (`/problems/unknown-payment`), order \
(`/problems/unknown-order`) or prepaid account (`/problems/unknown-account`) in the brand",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment is not an unmatched credit, or the order \
cannot take a payment (`/problems/payment-state`)",
            body = Problem, content_type = "application/problem+json"),
    ),
    by match_payment
);

async fn match_payment(
    Acting(state, operator, id): Acting,
    body: JsonObject<MatchRequest>,
) -> ApiResult {
    let body = body.into_inner();
    let mut errors = FieldErrors::default();
    let reason = errors.check("reason", Reason::parse(&body.reason));
    let target = errors.check(
        "order_id",
        ManualTarget::choose(body.order_id.as_deref(), body.account_id.as_deref()),
    );
    errors.finish()?;
    let (reason, target) = (reason.expect("checked"), target.expect("checked"));
    let app = state.clone();
    let payment = state
        .with_conn(move |conn| {
            let who = acting(&operator, &reason);
            let (key, url) = (&app.coupon_key, &app.config.public_url);
            manual::match_by_hand(conn, &who, key, url, &id, &target, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(payment))
}

/// Why the payment is refunded (kept in the audit log).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[schema(example = "paid twice; refunded to the payer's IBAN")]
    reason: String,
}

backoffice_action!(
    /// Mark a payment as refunded to the payer
    ///
    /// Back-office operators only; unmatched, duplicate or overpaid credits of the operator's
    /// brand. What was credited to a prepaid account is taken back from it.
    post refund = "/api/v1/backoffice/payments/{id}/refund" as "payments_refund",
    on "id" "The payment's id", takes RefundRequest,
    answers (status = 200, description = "The payment, refunded", body = queue::PaymentView),
    refuses (
        (status = 400, description = "No valid reason (`/problems/invalid-field`), or the body \
is not the expected JSON (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotOperatorOrOtherBrand,
        (status = 404, description = "No payment of the brand has this id \
(`/problems/unknown-payment`), or the credited prepaid account is gone \
(`/problems/unknown-account`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment cannot be refunded in its state \
(`/problems/payment-state`), or the prepaid account no longer holds what was credited \
(`/problems/insufficient-funds`)", body = Problem, content_type = "application/problem+json"),
    ),
    by refund_payment
);

async fn refund_payment(
    Acting(state, operator, id): Acting,
    body: JsonObject<RefundRequest>,
) -> ApiResult {
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::broken_field("reason", e))?;
    let payment = state
        .with_conn(move |conn| {
            let who = acting(&operator, &reason);
            queue::refund(conn, &who, &id, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(payment))
}
