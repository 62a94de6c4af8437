//! The back-office refunds a card payment: for an order, its unused coupons (all, or the
//! ones chosen) are voided and credited by a credit note, and the credit note's total is
//! refunded; a held payment is refunded whole. The refund is stored as an outbox row in
//! the same transaction, then sent to the provider by the worker (or at once by the
//! caller, [`send_due`]) with its id as the idempotency key: a retry never refunds twice,
//! and no provider call happens while rows are locked.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::CardError;
use crate::audit::Operator;
use crate::brands;
use crate::card::provider::{CardProvider, RefundRequest};
use crate::card::store::{self, NewRefund};
use crate::card::{CardPayment, CardSettings, CardStatus, CardTarget};
use crate::coupons::{self, state as coupon_state, CouponView, ShownStatus};
use crate::db::{write_transaction, DbConnection, Pool};
use crate::invoices::{self, CreditedCoupon};
use crate::money::Money;
use crate::workers::RetryPolicy;

/// Which coupons of a card-paid order to refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coupons {
    /// Every unused one.
    AllUnused,
    /// These (ids), each of which must be unused.
    Chosen(Vec<String>),
}

/// Who refunds, and why: the same as for the manual actions on payments.
pub use crate::payments::manual::ByHand;

/// A refund asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub refund_id: String,
    pub amount: Money,
    pub coupons: usize,
    pub credit_note: Option<String>,
}

/// Refunds card payment `card_payment_id` of the operator's brand (see the module).
pub fn refund(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    card_payment_id: &str,
    coupons: &Coupons,
    now: DateTime<Utc>,
) -> Result<Requested, CardError> {
    write_transaction(conn, |conn| {
        let payment = store::lock(conn, card_payment_id)?
            .filter(|p| p.brand_id == by.operator.brand_id)
            .ok_or(CardError::UnknownPayment)?;
        if let Some(refused) = not_refundable(&payment) {
            return Err(refused);
        }
        let (amount, voided, credit_note) = match (payment.status, &payment.target) {
            // Whole: not_refundable saw money left.
            (CardStatus::Held, _) => (payment.refundable(), 0, None),
            (CardStatus::Paid, CardTarget::Order(order_id)) => {
                let voided = void(conn, order_id, coupons, now)?;
                let brand = brands::existing(conn, &payment.brand_id)?;
                let note = invoices::credit_coupons(conn, &brand, order_id, &voided, now)?;
                let amount = match &note {
                    Some(note) => note.total,
                    None => voided.iter().try_fold(Money::ZERO, |sum, coupon| {
                        Ok::<_, anyhow::Error>(sum + coupons::price_with_vat(coupon)?)
                    })?,
                };
                // Credit notes keep within the invoice, so within what was paid; the
                // provider would refuse more anyway.
                let amount = amount.min(payment.refundable());
                (amount, voided.len(), note)
            }
            // Refused by not_refundable above.
            (status, _) => return Err(CardError::NotRefundable(status)),
        };
        if !amount.is_positive() {
            return Err(CardError::NothingToRefund);
        }
        let refund_id = store::add_refund(
            conn,
            NewRefund {
                brand_id: &payment.brand_id,
                card_payment_id: &payment.id,
                amount,
                coupons: voided as i32,
                credit_note_id: credit_note.as_ref().map(|n| n.id.as_str()),
                reason: by.reason.as_str(),
                operator_id: by.operator.id,
            },
            now,
        )?;
        by.operator.record(
            conn,
            "card_payment.refund_requested",
            ("card_payment", &payment.id),
            json!({
                "refund_id": refund_id,
                "amount": amount.to_string(),
                "coupons": voided,
                "credit_note": credit_note.as_ref().map(|n| n.number.as_str()),
                "reason": by.reason.as_str(),
            }),
            now,
        )?;
        Ok(Requested {
            refund_id,
            amount,
            coupons: voided,
            credit_note: credit_note.map(|n| n.number),
        })
    })
}

/// Why the payment cannot be refunded, as far as the payment alone tells: a held payment
/// is refunded whole and a paid order by its coupons, while money is left to refund; a paid
/// top-up is adjusted on the prepaid account instead; nothing else is refunded.
fn not_refundable(payment: &CardPayment) -> Option<CardError> {
    match (payment.status, &payment.target) {
        (CardStatus::Held, _) | (CardStatus::Paid, CardTarget::Order(_)) => {
            (!payment.refundable().is_positive()).then_some(CardError::NothingToRefund)
        }
        (CardStatus::Paid, CardTarget::TopUp(_)) => Some(CardError::TopUpNotRefundable),
        (status, _) => Some(CardError::NotRefundable(status)),
    }
}

/// Whether the back-office may refund the payment now ([`refund`] decides the same).
pub fn may_refund(payment: &CardPayment) -> bool {
    not_refundable(payment).is_none()
}

/// The coupons a refund of the payment may void: its order's unused ones, past their
/// validity or not (none for a top-up). [`refund`] voids exactly these, or those chosen
/// among them.
pub fn voidable_coupons(
    conn: &mut DbConnection,
    payment: &CardPayment,
    now: DateTime<Utc>,
) -> Result<Vec<CouponView>, CardError> {
    let Some(order_id) = payment.order_id() else {
        return Ok(Vec::new());
    };
    Ok(coupons::list_for_owner(conn, &payment.user_id, None, now)?
        .into_iter()
        .filter(|c| c.order_id == order_id)
        .filter(|c| matches!(c.status, ShownStatus::Available | ShownStatus::Expired))
        .collect())
}

/// Voids the coupons to refund; refused whole if a chosen one is not an unused coupon of
/// the order.
fn void(
    conn: &mut DbConnection,
    order_id: &str,
    coupons: &Coupons,
    now: DateTime<Utc>,
) -> Result<Vec<CreditedCoupon>, CardError> {
    let voided = match coupons {
        Coupons::AllUnused => coupon_state::void_unused_of_order(conn, order_id, None, now)?,
        Coupons::Chosen(ids) => {
            let voided =
                coupon_state::void_unused_of_order(conn, order_id, Some(ids.as_slice()), now)?;
            if let Some(missing) = ids.iter().find(|id| !voided.iter().any(|v| &v.id == *id)) {
                return Err(CardError::CouponNotRefundable(missing.clone()));
            }
            voided
        }
    };
    if voided.is_empty() {
        return Err(CardError::NothingToRefund);
    }
    Ok(voided)
}

/// A refund given up after its last attempt (`dead`), back in the queue from zero
/// attempts, for the operator's brand; audited.
pub fn retry(
    conn: &mut DbConnection,
    operator: Operator<'_>,
    card_payment_id: &str,
    refund_id: &str,
    now: DateTime<Utc>,
) -> Result<(), CardError> {
    let brand_id = operator.brand_id;
    write_transaction(conn, |conn| {
        let ours = store::refunds_of(conn, card_payment_id)?
            .iter()
            .any(|r| r.id == refund_id);
        if !ours || !store::retry_refund(conn, brand_id, refund_id, now)? {
            return Err(CardError::UnknownDeadRefund);
        }
        operator.record(
            conn,
            "card_refund.retried",
            ("card_payment", card_payment_id),
            json!({ "refund_id": refund_id }),
            now,
        )?;
        Ok(())
    })
}

/// How refunds are retried: as SdI files are, a minute first, doubling.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base: chrono::Duration::minutes(1),
    }
}

/// Sends the refunds just requested at once, when a provider is configured and answers;
/// otherwise the worker retries them. They are stored either way, so a provider that does
/// not answer is no refusal: the back-office sees the refund pending.
pub async fn send_now(pool: &Pool, card: Option<&CardSettings>) {
    let Some(card) = card else {
        return;
    };
    if let Err(error) = send_due(pool, card.provider.as_ref(), retry_policy()).await {
        tracing::warn!(%error, "card refund: left to the worker");
    }
}

/// Sends the refunds due to the provider; how many it sent or failed.
pub async fn send_due(
    pool: &Pool,
    provider: &dyn CardProvider,
    retry: RetryPolicy,
) -> Result<usize, CardError> {
    let now = Utc::now();
    let lease = chrono::Duration::minutes(5);
    let due = super::sessions::blocking(pool, move |conn| {
        Ok(write_transaction(conn, |conn| {
            store::lease_refunds(conn, 20, lease, now)
        })?)
    })
    .await?;
    let count = due.len();
    for store::DueRefund {
        id,
        payment_id,
        amount_cents: cents,
        attempts,
    } in due
    {
        let answer = match payment_id {
            Some(payment_id) => {
                let request = RefundRequest {
                    idempotency_key: id.clone(),
                    payment_id,
                    amount: Money::from_cents(cents),
                };
                provider.refund(&request).await.map_err(|e| e.to_string())
            }
            None => Err("the provider gave no payment id to refund".to_owned()),
        };
        let now = Utc::now();
        super::sessions::blocking(pool, move |conn| {
            match answer {
                Ok(refund) => {
                    store::refund_sent(conn, &id, &refund.id, refund.state.as_str(), now)?;
                    tracing::info!(refund = %id, provider_refund = %refund.id, "card refund sent");
                }
                Err(error) => {
                    let dead = store::refund_failed(conn, &id, attempts, &error, &retry, now)?;
                    tracing::warn!(refund = %id, %error, dead, "card refund not sent");
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(count)
}
