//! What the provider says of a card payment, applied: one function for the notification
//! and the worker, under the card payment's row lock, so that the two racing apply it
//! once. Paid as asked: the order is fulfilled (coupons, email, invoice) as a matched
//! transfer is, or the top-up credited. Paid otherwise (another amount or currency, or
//! for an order that can no longer take it): held for the back-office, nothing settled.
//! Expired or failed: the order or top-up ends.
//!
//! Lock order: the card payment, its order or top-up, the prepaid account, the invoice
//! counter last, as every other payment path takes them.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{CardError, Till};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::card::provider::{Session, SessionState};
use crate::card::store::{self, PaidAtProvider};
use crate::card::{CardPayment, CardStatus, CardTarget};
use crate::db::DbConnection;
use crate::orders::{self, OrderStatus};
use crate::prepaid::top_ups::{self, TopUpStatus};
use crate::prepaid::{self, EntryKind, Posting};

text_enum!(
    /// What applying the provider's word did (the notifications' outcome in
    /// `card_events`, and the metrics' label).
    Outcome {
        /// Paid as asked: the order fulfilled or the top-up credited.
        Settled => "settled",
        /// Paid, but held for the back-office.
        Held => "held",
        /// Expired or failed: the order or top-up ended.
        Ended => "ended",
        /// Still open (or processing): nothing changed.
        Waiting => "waiting",
        /// The payment was already settled, held or ended: nothing changed.
        AlreadyApplied => "already_applied",
        /// No card payment of ours has this session.
        UnknownSession => "unknown_session",
        /// A refund's state recorded.
        Refund => "refund",
        /// A refund notification of no refund of ours.
        UnknownRefund => "unknown_refund",
        /// An event of a kind rinnovo has no use for.
        Ignored => "ignored",
    }
);

/// Applies `session` (as the provider reports it) to the card payment that opened it,
/// in the caller's transaction; the card payment's id, if it is ours.
pub fn apply_session(
    conn: &mut DbConnection,
    till: Till<'_>,
    provider: &str,
    session: &Session,
    now: DateTime<Utc>,
) -> Result<(Outcome, Option<String>), CardError> {
    let Some(payment) = store::lock_by_session(conn, provider, &session.id)? else {
        return Ok((Outcome::UnknownSession, None));
    };
    let outcome = apply_locked(conn, till, &payment, session.state, Some(session), now)?;
    Ok((outcome, Some(payment.id)))
}

/// Applies `state` to a card payment its caller locked. `session` carries what was paid
/// when `state` is paid.
pub(super) fn apply_locked(
    conn: &mut DbConnection,
    till: Till<'_>,
    payment: &CardPayment,
    state: SessionState,
    session: Option<&Session>,
    now: DateTime<Utc>,
) -> Result<Outcome, CardError> {
    if !payment.status.is_waiting() {
        return Ok(Outcome::AlreadyApplied);
    }
    match (state, session) {
        (SessionState::Open | SessionState::Processing, _) => Ok(Outcome::Waiting),
        (SessionState::Expired, _) => end(conn, payment, CardStatus::Expired, now),
        (SessionState::Failed, _) => end(conn, payment, CardStatus::Failed, now),
        (SessionState::Paid, Some(session)) => pay(conn, till, payment, session, now),
        (SessionState::Paid, None) => Err(anyhow::anyhow!("paid without a session").into()),
    }
}

/// The page ended unpaid: so does the order (expired, or cancelled when the payment
/// failed) or the top-up.
fn end(
    conn: &mut DbConnection,
    payment: &CardPayment,
    status: CardStatus,
    now: DateTime<Utc>,
) -> Result<Outcome, CardError> {
    if !store::end(conn, &payment.id, status, now)? {
        return Ok(Outcome::AlreadyApplied);
    }
    match &payment.target {
        CardTarget::Order(id) => {
            let ending = if status == CardStatus::Failed {
                OrderStatus::Cancelled
            } else {
                OrderStatus::Expired
            };
            orders::end_unpaid(conn, id, ending, now)?;
        }
        CardTarget::TopUp(id) => {
            top_ups::end_unpaid(conn, id, TopUpStatus::Expired, now)?;
        }
    }
    record(
        conn,
        payment,
        "card_payment.ended",
        json!({ "status": status.as_str() }),
        now,
    )?;
    Ok(Outcome::Ended)
}

/// Paid at the provider: settled if paid as asked and the order or top-up still takes
/// it, held otherwise.
fn pay(
    conn: &mut DbConnection,
    till: Till<'_>,
    payment: &CardPayment,
    session: &Session,
    now: DateTime<Utc>,
) -> Result<Outcome, CardError> {
    let paid = PaidAtProvider {
        payment_id: session.payment_id.as_deref(),
        cents: session.amount_cents,
        currency: &session.currency,
    };
    let as_asked = session.amount_cents == payment.amount.cents()
        && session.currency.eq_ignore_ascii_case(&payment.currency);
    let held_because = if !as_asked {
        Some(format!(
            "pagati {:.2} {} invece di {} {}",
            session.amount_cents as f64 / 100.0,
            session.currency,
            payment.amount,
            payment.currency
        ))
    } else {
        match &payment.target {
            CardTarget::Order(id) => fulfil_order(conn, till, id, now)?,
            CardTarget::TopUp(id) => credit_top_up(conn, payment, id, now)?,
        }
    };
    store::record_paid(conn, &payment.id, &paid, held_because.as_deref(), now)?;
    let details = json!({
        "session_id": session.id,
        "provider_payment_id": session.payment_id,
        "paid_cents": session.amount_cents,
        "currency": session.currency,
        "held_because": held_because,
    });
    match held_because {
        Some(reason) => {
            tracing::warn!(card_payment = %payment.id, %reason, "card payment held for the back-office");
            record(conn, payment, "card_payment.held", details, now)?;
            Ok(Outcome::Held)
        }
        None => {
            record(conn, payment, "card_payment.paid", details, now)?;
            Ok(Outcome::Settled)
        }
    }
}

/// Fulfils the order (as a payment matched by hand does); why not, if it no longer takes
/// a payment.
fn fulfil_order(
    conn: &mut DbConnection,
    till: Till<'_>,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, CardError> {
    let order = orders::lock_many(conn, &[order_id.to_owned()])?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("order {order_id} of a card payment is missing"))?;
    if !matches!(
        order.status,
        OrderStatus::AwaitingPayment | OrderStatus::Expired
    ) {
        return Ok(Some(format!("l'ordine è {}", order.status.as_str())));
    }
    let brand = brands::existing(conn, &order.brand_id)?;
    let name = prepaid::holders(conn, std::slice::from_ref(&order.user_id))?
        .pop()
        .map(|holder| holder.name)
        .unwrap_or_default();
    orders::fulfil_paid(
        conn,
        till.coupon_key,
        &brand,
        &order,
        &name,
        order.gross_total,
        till.public_url,
        now,
    )?;
    Ok(None)
}

/// Credits the top-up's account (as a statement credit does); why not, if the top-up no
/// longer takes a payment.
fn credit_top_up(
    conn: &mut DbConnection,
    payment: &CardPayment,
    top_up_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, CardError> {
    let top_up = top_ups::lock_many(conn, &[top_up_id.to_owned()])?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("top-up {top_up_id} of a card payment is missing"))?;
    if top_up.status == TopUpStatus::Paid {
        return Ok(Some("la ricarica risulta già pagata".into()));
    }
    prepaid::post(
        conn,
        &top_up.account_id,
        Posting {
            kind: EntryKind::TopUp,
            amount: payment.amount,
            description: "Ricarica con carta di credito",
            reference: Some(&payment.id),
            actor_id: None,
        },
        now,
    )?;
    top_ups::record_received(
        conn,
        &top_up.id,
        payment.amount,
        TopUpStatus::Paid,
        Some(now),
    )?;
    Ok(None)
}

fn record(
    conn: &mut DbConnection,
    payment: &CardPayment,
    action: &'static str,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(&payment.brand_id),
            actor: &Actor::System,
            action,
            subject_type: "card_payment",
            subject_id: &payment.id,
            details,
        },
        now,
    )?;
    Ok(())
}
