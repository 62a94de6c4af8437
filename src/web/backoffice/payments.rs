//! The payments: the work queue, one payment's page, and matching or refunding it by hand.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::db::DbConnection;
use crate::http::Identity;
use crate::payments::manual::{self, ManualTarget};
use crate::payments::matching::PaymentStatus;
use crate::payments::queue::{self, Filter, ManualError, PaymentView};
use crate::payments::statement::EntryDirection;
use crate::payments::CreditorReference;
use crate::prepaid::PrepaidError;
use crate::validation::Reason;
use crate::web::{euro, form_status, refusal, OperatorPage, PageResult, WebError};

use super::{
    date_it, done_message, done_redirect, filters_status, or_dash, page_numbered, pager,
    parse_date, query_string, reason_error, state_filter, status_label, time_it,
    unmatched_reason_label, url_segment, OperatorForm,
};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct QueueQuery {
    stato: String,
    dal: String,
    al: String,
    /// The RF code, named as in the API; `rf`, its name before, still reads, so that
    /// bookmarked addresses keep working.
    #[serde(alias = "rf")]
    reference: String,
    pagina: String,
    /// The payments of one statement (the link from the statements page).
    estratto: String,
}

pub(super) fn payment_row(p: &PaymentView) -> Value {
    json!({
        "id": p.id,
        "date": date_it(p.booking_date),
        "amount": euro(p.amount),
        "payer": or_dash(p.payer_name.clone()),
        "reference": or_dash(p.reference.clone()),
        "status": p.status.as_str(),
        "status_label": status_label(p.status),
        "reason": p.reason.as_deref().map(unmatched_reason_label),
        "order_id": p.order_id,
        "debit": p.direction != EntryDirection::Credit,
    })
}

pub(super) async fn payments(visit: OperatorPage, query: web::Query<QueueQuery>) -> PageResult {
    let query = query.into_inner();
    let mut errors = serde_json::Map::new();
    for field in ["stato", "dal", "al", "reference"] {
        errors.insert(field.into(), Value::Null);
    }
    let status = match state_filter::<PaymentStatus>(&query.stato) {
        Ok(status) => status,
        Err(refused) => {
            errors.insert("stato".into(), json!(refused));
            None
        }
    };
    let mut date = |field: &str, text: &str| match text.trim() {
        "" => None,
        text => match parse_date(text) {
            Ok(date) => Some(date),
            Err(message) => {
                errors.insert(field.into(), json!(message));
                None
            }
        },
    };
    let from = date("dal", &query.dal);
    let to = date("al", &query.al);
    let reference = match query.reference.trim() {
        "" => None,
        text => match CreditorReference::parse(text) {
            Ok(reference) => Some(reference.as_str().to_owned()),
            Err(e) => {
                errors.insert(
                    "reference".into(),
                    json!(format!(
                        "«{text}» non è un codice RF valido ({e}): controlla di averlo copiato per intero."
                    )),
                );
                None
            }
        },
    };
    let page = page_numbered(&query.pagina);
    let valid = errors.values().all(Value::is_null);
    let filter = Filter {
        status,
        from,
        to,
        reference,
        statement_id: Some(query.estratto.trim().to_owned()).filter(|s| !s.is_empty()),
        order_id: None,
    };
    let (brand, found) = visit
        .read(move |conn, brand_id| {
            if !valid {
                return Ok(None);
            }
            let found = queue::list(conn, brand_id, &filter, page);
            found.map(Some).map_err(WebError::storage)
        })
        .await?;
    let statuses: Vec<Value> = PaymentStatus::ALL
        .iter()
        .map(|s| {
            json!({ "value": s.as_str(), "label": status_label(*s), "selected": s.as_str() == query.stato.trim() })
        })
        .collect();
    let filters = [
        ("stato", query.stato.trim()),
        ("dal", query.dal.trim()),
        ("al", query.al.trim()),
        ("reference", query.reference.trim()),
        ("estratto", query.estratto.trim()),
    ];
    let (rows, totals, pager) = match &found {
        Some((list, totals)) => (
            list.iter().map(payment_row).collect::<Vec<_>>(),
            json!({
                "count": totals.count,
                "noun": if totals.count == 1 { "pagamento" } else { "pagamenti" },
                "amount": euro(totals.amount),
            }),
            pager("/backoffice/pagamenti", &filters, page, totals.count),
        ),
        None => (Vec::new(), Value::Null, Value::Null),
    };
    visit.render(
        &brand,
        "Pagamenti",
        filters_status(valid),
        "bo_pagamenti",
        json!({
            "filters": { "stato": query.stato.trim(), "dal": query.dal.trim(), "al": query.al.trim(), "reference": query.reference.trim(), "estratto": query.estratto.trim() },
            "errors": errors,
            "statuses": statuses,
            "payments": rows,
            "totals": totals,
            "pager": pager,
        }),
    )
}

/// What the two forms of a payment's page hold: typed values, messages per field, and
/// the message of a refusal of the domain.
#[derive(Default)]
pub(super) struct PaymentForms {
    order_id: String,
    account_id: String,
    match_reason: String,
    refund_reason: String,
    order_id_error: Option<String>,
    match_reason_error: Option<String>,
    match_error: Option<String>,
    refund_reason_error: Option<String>,
    refund_error: Option<String>,
}

pub(super) async fn payment_page(
    visit: &OperatorPage,
    id: String,
    forms: PaymentForms,
    done: Value,
    status: StatusCode,
) -> PageResult {
    let (brand, found) = visit
        .read(move |conn, brand_id| queue::find(conn, brand_id, &id).map_err(WebError::storage))
        .await?;
    let p = found.ok_or(ManualError::UnknownPayment)?;
    let (can_match, can_refund) = (p.may_match_by_hand(), p.may_refund_by_hand());
    let top_error = forms
        .match_error
        .clone()
        .filter(|_| !can_match)
        .or_else(|| forms.refund_error.clone().filter(|_| !can_refund));
    visit.render(
        &brand,
        "Pagamento",
        status,
        "bo_pagamento",
        json!({
            "done": done,
            "payment": {
                "id": p.id,
                "statement_id": p.statement_id,
                "direction": if p.is_credit() { "accredito" } else { "addebito" },
                "status": p.status.as_str(),
                "status_label": status_label(p.status),
                "reason": p.reason.as_deref().map(unmatched_reason_label),
                "amount": euro(p.amount),
                "applied": euro(p.applied),
                "credited": euro(p.credited),
                "booking_date": date_it(p.booking_date),
                "value_date": p.value_date.map(date_it),
                "account": p.account,
                "bank_reference": or_dash(p.bank_reference.clone()),
                "payer": or_dash(p.payer_name.clone()),
                "remittance": or_dash(Some(p.remittance.clone())),
                "reference": or_dash(p.reference.clone()),
                "order_id": p.order_id,
                "top_up_id": p.top_up_id,
                "account_id": p.account_id,
                "reverses_payment_id": p.reverses_payment_id,
                "same_reference_as": p.same_reference_as,
                "resolved_at": p.resolved_at.map(time_it),
                "resolution_note": p.resolution_note,
            },
            "can_match": can_match,
            // The orders page, searching by the payment's RF code (a typo finds nothing, and
            // the operator types what the remittance or the payer suggests instead).
            "find_order_link": format!(
                "/backoffice/ordini?{}",
                query_string(&[
                    ("pagamento", p.id.as_str()),
                    ("cerca", p.reference.as_deref().unwrap_or_default()),
                ])
            ),
            "can_refund": can_refund,
            // A refusal whose form is no longer shown (the payment changed state meanwhile).
            "top_error": top_error,
            "form": {
                "order_id": forms.order_id,
                "account_id": forms.account_id,
                "match_reason": forms.match_reason,
                "refund_reason": forms.refund_reason,
            },
            "errors": {
                "order_id": forms.order_id_error,
                "match_reason": forms.match_reason_error,
                "match": forms.match_error.filter(|_| can_match),
                "refund_reason": forms.refund_reason_error,
                "refund": forms.refund_error.filter(|_| can_refund),
            },
        }),
    )
}

/// The payment's page again, with what was typed and why it was refused.
async fn payment_again(
    visit: &OperatorPage,
    id: String,
    forms: PaymentForms,
    status: StatusCode,
) -> PageResult {
    payment_page(visit, id, forms, Value::Null, status).await
}

/// Where a manual action on the payment `id` lands when done.
fn payment_path(id: &str) -> String {
    format!("/backoffice/pagamenti/{}", url_segment(id))
}

/// Runs a manual action on the payment `id` as the operator, giving the reason typed.
async fn by_hand<F>(
    visit: &OperatorPage,
    id: &str,
    reason: Reason,
    action: F,
) -> Result<Result<(), ManualError>, WebError>
where
    F: FnOnce(&mut DbConnection, &queue::ByHand, &str) -> Result<(), ManualError> + Send + 'static,
{
    let payment_id = id.to_owned();
    visit
        .as_operator(move |conn, operator| {
            let who = queue::ByHand {
                operator: operator.acting(),
                reason: &reason,
            };
            Ok(action(conn, &who, &payment_id))
        })
        .await
}

#[derive(Deserialize)]
pub struct PaymentQuery {
    fatto: Option<String>,
    /// The order chosen on the orders page, filled into the match form.
    ordine: Option<String>,
}

pub(super) async fn payment(
    visit: OperatorPage,
    id: web::Path<String>,
    query: web::Query<PaymentQuery>,
) -> PageResult {
    let query = query.into_inner();
    let done = done_message(query.fatto.as_deref());
    let forms = PaymentForms {
        order_id: query.ordine.unwrap_or_default().trim().to_owned(),
        ..PaymentForms::default()
    };
    payment_page(&visit, id.into_inner(), forms, done, StatusCode::OK).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MatchForm {
    order_id: String,
    account_id: String,
    reason: String,
}

pub(super) async fn match_payment(
    OperatorForm { visit, fields }: OperatorForm<MatchForm>,
    id: web::Path<String>,
) -> PageResult {
    let id = id.into_inner();
    let MatchForm {
        order_id,
        account_id,
        reason,
    } = fields;
    let mut forms = PaymentForms {
        order_id: order_id.trim().to_owned(),
        account_id: account_id.trim().to_owned(),
        match_reason: reason.clone(),
        ..PaymentForms::default()
    };
    let parsed_reason = Reason::parse(&reason)
        .map_err(|e| forms.match_reason_error = Some(reason_error(&e)))
        .ok();
    let target = match ManualTarget::choose(Some(&order_id), Some(&account_id)) {
        Ok(target) => Some(target),
        Err(e) => {
            forms.order_id_error = Some(refusal(e)?.italian);
            None
        }
    };
    let (Some(reason), Some(target)) = (parsed_reason, target) else {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return payment_again(&visit, id, forms, status).await;
    };
    let app = visit.state.clone();
    let outcome = by_hand(&visit, &id, reason, move |conn, who, payment_id| {
        let (key, url) = (&app.coupon_key, &app.config.public_url);
        let matched = manual::match_by_hand(conn, who, key, url, payment_id, &target, Utc::now());
        matched.map(|_| ())
    })
    .await?;
    match outcome {
        Ok(()) => Ok(done_redirect(&payment_path(&id), "abbinato")),
        Err(error) => {
            // An unknown order or account is the target field's fault; the rest, the
            // payment's or the order's state.
            let about_target = matches!(
                error,
                ManualError::UnknownOrder
                    | ManualError::Prepaid(PrepaidError::UnknownAccount)
                    | ManualError::Prepaid(PrepaidError::OtherBrand)
            );
            let identity = page_refusal(error)?;
            let status = form_status(&identity);
            if about_target {
                forms.order_id_error = Some(identity.italian);
            } else {
                forms.match_error = Some(identity.italian);
            }
            payment_again(&visit, id, forms, status).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RefundForm {
    reason: String,
}

pub(super) async fn refund_payment(
    OperatorForm { visit, fields }: OperatorForm<RefundForm>,
    id: web::Path<String>,
) -> PageResult {
    let id = id.into_inner();
    let RefundForm { reason } = fields;
    let mut forms = PaymentForms {
        refund_reason: reason.clone(),
        ..PaymentForms::default()
    };
    let reason = match Reason::parse(&reason) {
        Ok(reason) => reason,
        Err(e) => {
            forms.refund_reason_error = Some(reason_error(&e));
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return payment_again(&visit, id, forms, status).await;
        }
    };
    let outcome = by_hand(&visit, &id, reason, |conn, who, payment_id| {
        queue::refund(conn, who, payment_id, Utc::now()).map(|_| ())
    })
    .await?;
    match outcome {
        Ok(()) => Ok(done_redirect(&payment_path(&id), "rimborsato")),
        Err(error) => {
            let identity = page_refusal(error)?;
            let status = form_status(&identity);
            forms.refund_error = Some(identity.italian);
            payment_again(&visit, id, forms, status).await
        }
    }
}

/// A refusal of a manual match or refund, for the payment's page; an unknown payment is
/// the error page (there is no page to show again).
fn page_refusal(error: ManualError) -> Result<Identity, WebError> {
    if matches!(error, ManualError::UnknownPayment) {
        return Err(error.into());
    }
    refusal(error)
}
