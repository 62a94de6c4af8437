//! The card payments: the list, one payment's page with its refunds, and the refund form.
//! The rules (what can be refunded, the credit note, the outbox) are in
//! `payments::card::refunds`; here the forms and the Italian.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::card::store::{self, RefundRow};
use crate::card::{CardPayment, CardStatus, CardTarget};
use crate::http::italian::refund_status_label;
use crate::http::Identity;
use crate::money::Money;
use crate::payments::card::refunds::{self, Coupons};
use crate::payments::card::CardError;
use crate::validation::Reason;
use crate::web::{euro, form_status, refusal, OperatorPage, PageResult, WebError};

use super::{
    done_message, filters_status, or_dash, page_numbered, reason_error, rows_and_pager,
    state_filter, time_it, url_segment, OperatorForm,
};

pub(super) const LIST_PATH: &str = "/backoffice/pagamenti/carte";

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    stato: String,
    pagina: String,
}

fn target_link(payment: &CardPayment) -> Value {
    match &payment.target {
        CardTarget::Order(id) => json!({
            "label": "Ordine",
            "id": id,
            "href": format!("/backoffice/ordini?cerca={}", url_segment(id)),
        }),
        CardTarget::TopUp(id) => json!({
            "label": "Ricarica",
            "id": id,
            // The top-up's account is on the prepaid pages; its id is what the operator
            // looks for there.
            "href": Value::Null,
        }),
    }
}

fn payment_row(p: &CardPayment) -> Value {
    json!({
        "id": p.id,
        "created": time_it(p.created_at),
        "amount": euro(p.amount),
        "status": p.status.as_str(),
        "status_label": p.status.italian(),
        "target": target_link(p),
        "session_id": or_dash(p.session_id.clone()),
        "provider_payment_id": or_dash(p.provider_payment_id.clone()),
        "paid": p.paid_cents.map(|c| euro(Money::from_cents(c))),
        "refunded": euro(p.refunded),
        "has_refunds": p.refunded.is_positive(),
        "note": p.note,
    })
}

pub(super) async fn list(visit: OperatorPage, query: web::Query<ListQuery>) -> PageResult {
    let query = query.into_inner();
    let page = page_numbered(&query.pagina);
    let chosen = query.stato.trim().to_owned();
    let (status, error) = match state_filter::<CardStatus>(&chosen) {
        Ok(status) => (status, None),
        Err(refused) => (None, Some(refused)),
    };
    let valid = error.is_none();
    let (brand, found) = visit
        .read_list(valid, move |conn, brand_id| {
            store::list(conn, brand_id, status, page).map_err(WebError::storage)
        })
        .await?;
    let statuses: Vec<Value> = CardStatus::ALL
        .iter()
        .map(|s| json!({ "value": s.as_str(), "label": s.italian(), "selected": s.as_str() == chosen }))
        .collect();
    let filters = [("stato", chosen.as_str())];
    let (rows, pager) = rows_and_pager(LIST_PATH, &filters, page, found, |p| payment_row(&p));
    visit.render(
        &brand,
        "Pagamenti con carta",
        filters_status(valid),
        "bo_carte",
        json!({
            "filters": { "stato": chosen },
            "errors": { "stato": error },
            "statuses": statuses,
            "payments": rows,
            "valid": valid,
            "pager": pager,
        }),
    )
}

fn refund_row(row: &RefundRow) -> Value {
    json!({
        "id": row.id,
        "created": time_it(row.created_at.and_utc()),
        "amount": euro(Money::from_cents(row.amount_cents)),
        "coupons": row.coupons,
        "credit_note_id": row.credit_note_id,
        "reason": row.reason,
        "status": refund_status_label(row.status),
        "provider_status": or_dash(row.provider_status.clone()),
        "provider_refund_id": or_dash(row.provider_refund_id.clone()),
        "last_error": row.last_error,
    })
}

/// What the refund form holds when shown again: what was typed, and why it was refused.
#[derive(Default)]
pub(super) struct RefundFormState {
    reason: String,
    chosen: Vec<String>,
    reason_error: Option<String>,
    error: Option<String>,
}

async fn payment_page(
    visit: &OperatorPage,
    id: String,
    form: RefundFormState,
    done: Value,
    status: StatusCode,
) -> PageResult {
    let (brand, (payment, refund_rows, unused)) = visit
        .read(move |conn, brand_id| {
            let (payment, refund_rows) = crate::payments::card::of_brand(conn, brand_id, &id)?;
            let unused = refunds::voidable_coupons(conn, &payment, Utc::now())?;
            Ok((payment, refund_rows, unused))
        })
        .await?;
    let refundable = refunds::may_refund(&payment);
    let coupon_rows: Vec<Value> = unused
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "hint": c.hint,
                "product": c.product_name,
                "status": c.status.italian(),
                "checked": form.chosen.contains(&c.id),
            })
        })
        .collect();
    let mut row = payment_row(&payment);
    row["expires"] = json!(time_it(payment.expires_at));
    row["updated"] = json!(time_it(payment.updated_at));
    row["refundable"] = json!(euro(payment.refundable()));
    row["provider"] = json!(payment.provider);
    visit.render(
        &brand,
        "Pagamento con carta",
        status,
        "bo_carta",
        json!({
            "done": done,
            "payment": row,
            "refunds": refund_rows.iter().map(refund_row).collect::<Vec<_>>(),
            "can_refund": refundable,
            "held": payment.status == CardStatus::Held,
            "coupons": coupon_rows,
            "form": { "reason": form.reason },
            "errors": { "reason": form.reason_error, "refund": form.error },
        }),
    )
}

pub(super) async fn payment(
    visit: OperatorPage,
    id: web::Path<String>,
    query: web::Query<super::DoneQuery>,
) -> PageResult {
    let done = done_message(query.fatto.as_deref());
    let form = RefundFormState::default();
    payment_page(&visit, id.into_inner(), form, done, StatusCode::OK).await
}

/// The refund form: `reason`, and a `coupon_<id>` box per coupon chosen (none chosen: all
/// the unused ones), read from a map since the boxes are named by the coupons.
pub(super) async fn refund(
    OperatorForm { visit, fields }: OperatorForm<HashMap<String, String>>,
    id: web::Path<String>,
) -> PageResult {
    let id = id.into_inner();
    let typed = fields.get("reason").cloned().unwrap_or_default();
    let mut chosen: Vec<String> = fields
        .keys()
        .filter_map(|k| k.strip_prefix("coupon_"))
        .map(str::to_owned)
        .collect();
    chosen.sort();
    let mut state = RefundFormState {
        reason: typed.clone(),
        chosen: chosen.clone(),
        ..RefundFormState::default()
    };
    let reason = match Reason::parse(&typed) {
        Ok(reason) => reason,
        Err(e) => {
            state.reason_error = Some(reason_error(&e));
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return payment_page(&visit, id, state, Value::Null, status).await;
        }
    };
    let coupons = if chosen.is_empty() {
        Coupons::AllUnused
    } else {
        Coupons::Chosen(chosen)
    };
    let payment_id = id.clone();
    let outcome = visit
        .as_operator(move |conn, operator| {
            let who = refunds::ByHand {
                operator: operator.acting(),
                reason: &reason,
            };
            Ok(refunds::refund(
                conn,
                &who,
                &payment_id,
                &coupons,
                Utc::now(),
            ))
        })
        .await?;
    if let Err(error) = outcome {
        let identity = page_refusal(error)?;
        let status = form_status(&identity);
        state.error = Some(identity.italian);
        return payment_page(&visit, id, state, Value::Null, status).await;
    }
    refunds::send_now(&visit.state.pool, visit.state.card.as_ref()).await;
    Ok(super::done_redirect(
        &format!("{LIST_PATH}/{}", url_segment(&id)),
        "rimborso-carta",
    ))
}

/// A refused refund, for the payment's page; an unknown payment is the error page (there
/// is no page to show again).
fn page_refusal(error: CardError) -> Result<Identity, WebError> {
    if matches!(error, CardError::UnknownPayment) {
        return Err(error.into());
    }
    refusal(error)
}
