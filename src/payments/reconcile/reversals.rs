//! Reversals: the bank takes back an earlier credit (a bounced cheque, a recalled
//! transfer), and its effects are undone. They run after the credits, holding every lane.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::notices::{payment_email, Notice};
use super::{ImportContext, ImportError};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands::Brand;
use crate::db::schema::{orders, payments, top_ups, users};
use crate::db::DbConnection;
use crate::invoices;
use crate::mail::outbox;
use crate::money::Money;
use crate::orders as order_book;
use crate::payments::matching::{PaymentStatus, UnmatchedReason};
use crate::payments::statement::{EntryDirection, StatementEntry};
use crate::payments::store::{self, NewPayment};
use crate::prepaid::{self, top_ups as top_up_book, EntryKind, Posting, PrepaidError};
use crate::transfer::CreditorReference;

/// An earlier credit that a reversal takes back: its effects, to undo.
#[derive(Queryable)]
struct Original {
    id: String,
    status: PaymentStatus,
    order_id: Option<String>,
    top_up_id: Option<String>,
    account_id: Option<String>,
    applied_cents: i64,
    credited_cents: i64,
}

/// The credit a reversal takes back: same amount, same RF code (or, without one, the same
/// payment reason), not yet reversed or refunded; the most recent one.
fn find_original(
    conn: &mut DbConnection,
    brand_id: &str,
    entry: &StatementEntry,
    reference: Option<&CreditorReference>,
) -> QueryResult<Option<Original>> {
    let mut query = payments::table
        .filter(payments::brand_id.eq(brand_id.to_owned()))
        .filter(payments::direction.eq(EntryDirection::Credit.as_str()))
        .filter(payments::amount_cents.eq(entry.amount.cents()))
        .filter(payments::booking_date.le(entry.booking_date))
        .filter(payments::status.ne_all([
            PaymentStatus::Reversed.as_str(),
            PaymentStatus::Refunded.as_str(),
        ]))
        .order((payments::booking_date.desc(), payments::id.desc()))
        .select((
            payments::id,
            payments::status,
            payments::order_id,
            payments::top_up_id,
            payments::account_id,
            payments::applied_cents,
            payments::credited_cents,
        ))
        .into_boxed();
    query = match reference {
        Some(reference) => query.filter(payments::reference.eq(reference.as_str().to_owned())),
        None => query
            .filter(payments::reference.is_null())
            .filter(payments::remittance.eq(entry.remittance_text.clone())),
    };
    query.first(conn).optional()
}

/// A reversal: the bank took back an earlier credit (a bounced cheque, a recalled
/// transfer). Its effects are undone: the prepaid credit debited back, the order's
/// received amount reduced and, if the order was fulfilled, its unused coupons voided.
/// When that cannot be done (no such credit, or the credit already spent), the reversal
/// waits in the queue, `unmatched`, for the back-office.
pub(super) fn apply_reversal(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement_id: &str,
    entry: &StatementEntry,
    now: DateTime<Utc>,
) -> Result<(PaymentStatus, Money), ImportError> {
    let brand = context.brand;
    let reference = entry.creditor_reference();
    let id = Uuid::now_v7().to_string();
    let mut row = NewPayment {
        id: id.clone(),
        entry,
        reference: reference.clone(),
        status: PaymentStatus::Unmatched,
        reason: Some(UnmatchedReason::OriginalNotFound),
        order_id: None,
        top_up_id: None,
        account_id: None,
        applied: Money::ZERO,
        credited: Money::ZERO,
        reverses: None,
    };
    let Some(original) = find_original(conn, &brand.id, entry, reference.as_ref())? else {
        store::insert_all(conn, &brand.id, statement_id, &[row], now)?;
        return Ok((PaymentStatus::Unmatched, entry.amount));
    };
    row.reverses = Some(original.id.clone());
    row.order_id = original.order_id.clone();
    row.top_up_id = original.top_up_id.clone();
    row.account_id = original.account_id.clone();
    let undone = undo(conn, brand, &original, &id, now)?;
    let Some(undone) = undone else {
        row.reason = Some(UnmatchedReason::BalanceTooLow);
        store::insert_all(conn, &brand.id, statement_id, &[row], now)?;
        return Ok((PaymentStatus::Unmatched, entry.amount));
    };
    let mut details = json!({
        "reversal": id, "previous_status": original.status,
        "order_id": original.order_id, "top_up_id": original.top_up_id,
        "debited": Money::from_cents(original.credited_cents).to_string(),
        "coupons_voided": undone.voided,
        "credit_note": undone.credit_note,
    });
    if undone.voided > 0 && undone.credit_note.is_none() {
        details["no_credit_note"] = json!(invoices::NO_INVOICE_TO_CREDIT);
    }
    row.status = PaymentStatus::Reversal;
    row.reason = None;
    row.applied = Money::from_cents(original.applied_cents);
    row.credited = Money::from_cents(original.credited_cents);
    store::insert_all(conn, &brand.id, statement_id, &[row], now)?;
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(&brand.id),
            actor: &Actor::System,
            action: "payment.reversed",
            subject_type: "payment",
            subject_id: &original.id,
            details,
        },
        now,
    )?;
    if let Some(reference) = &reference {
        tell_owner(
            conn,
            context,
            &original,
            entry,
            reference,
            undone.voided,
            now,
        )?;
    }
    Ok((PaymentStatus::Reversal, entry.amount))
}

/// What undoing a credit did to the order it paid.
struct Undone {
    /// How many unused coupons of the order were voided.
    voided: usize,
    /// The number of the credit note that credits them; none when no coupon was voided,
    /// or the order was fulfilled before invoices were issued (it has none to credit).
    credit_note: Option<String>,
}

/// Undoes what `original` did, in a savepoint: a refused debit must leave nothing of the
/// reversal half-applied. `None`: the prepaid credit has been spent meanwhile.
fn undo(
    conn: &mut DbConnection,
    brand: &Brand,
    original: &Original,
    reversal_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Undone>, ImportError> {
    conn.transaction(|conn| {
        if let (Some(account_id), true) = (&original.account_id, original.credited_cents > 0) {
            let debit = prepaid::post(
                conn,
                account_id,
                Posting {
                    kind: EntryKind::Adjustment,
                    amount: -Money::from_cents(original.credited_cents),
                    description: "Storno del pagamento da parte della banca",
                    reference: Some(reversal_id),
                    actor_id: None,
                },
                now,
            );
            match debit {
                Err(PrepaidError::InsufficientFunds { .. }) => return Ok(None),
                other => {
                    other?;
                }
            }
        }
        let mut undone = Undone {
            voided: 0,
            credit_note: None,
        };
        let taken_back = Money::from_cents(original.applied_cents);
        if let Some(order_id) = &original.order_id {
            order_book::take_back(conn, order_id, taken_back)?;
            let voided = crate::coupons::state::void_unused_of_order(conn, order_id, None, now)?;
            undone.voided = voided.len();
            // The sale of those coupons is undone: one credit note credits them all.
            undone.credit_note = invoices::credit_coupons(conn, brand, order_id, &voided, now)
                .map_err(anyhow::Error::from)?
                .map(|note| note.number);
        }
        if let Some(top_up_id) = &original.top_up_id {
            top_up_book::take_back(conn, top_up_id, taken_back)?;
        }
        store::mark_reversed(conn, &original.id)?;
        Ok(Some(undone))
    })
}

/// The owner of the order or top-up hears about it, if the money was theirs.
fn tell_owner(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    original: &Original,
    entry: &StatementEntry,
    reference: &CreditorReference,
    voided: usize,
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    let owner: Option<(String, String, &String)> = match (&original.order_id, &original.top_up_id) {
        (Some(order_id), _) => orders::table
            .inner_join(users::table.on(users::id.eq(orders::user_id)))
            .filter(orders::id.eq(order_id))
            .select((users::name, orders::email))
            .first(conn)
            .optional()?
            .map(|(name, email)| (name, email, order_id)),
        (None, Some(top_up_id)) => top_ups::table
            .inner_join(users::table.on(users::id.eq(top_ups::user_id)))
            .filter(top_ups::id.eq(top_up_id))
            .select((users::name, top_ups::email))
            .first(conn)
            .optional()?
            .map(|(name, email)| (name, email, top_up_id)),
        (None, None) => None,
    };
    let Some((name, email, subject_id)) = owner else {
        return Ok(());
    };
    let notice = Notice {
        reversed: true,
        debited: Money::from_cents(original.credited_cents),
        voided,
        ..Notice::default()
    };
    let email = payment_email(
        context.brand,
        &name,
        &email,
        subject_id,
        entry,
        reference,
        notice,
    );
    outbox::enqueue(conn, &email, now)?;
    Ok(())
}
