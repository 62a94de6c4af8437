//! The one writer of `payments`: one row per statement entry, stored by the import with
//! its outcome, then changed only by the named moves below (taken back by the bank,
//! resolved by hand, partial payments of an expired order moved to the prepaid account).
//!
//! The payer's name and the payment reason come from the bank's file, written by whoever
//! paid: they are stored without control characters (each becomes a space; the newlines
//! that join the reason's lines are kept) and without the characters that change the
//! writing direction (U+202A–U+202E, U+2066–U+2069, removed), so the back-office reads
//! them as they are. The file is never refused for them, and matching is unaffected: the
//! RF code is looked for, and the duplicate key computed, on the text as the bank sent it,
//! before it is stored. The bank's reference is an identifier compared exactly with the
//! references of later files (a reused reference is flagged), so it is stored as sent;
//! the log escapes it like any other text.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::matching::{PaymentStatus, UnmatchedReason};
use super::statement::StatementEntry;
use crate::db::schema::payments;
use crate::db::DbConnection;
use crate::money::Money;
use crate::transfer::CreditorReference;

/// A payment about to be stored.
pub struct NewPayment<'a> {
    pub id: String,
    pub entry: &'a StatementEntry,
    pub reference: Option<CreditorReference>,
    pub status: PaymentStatus,
    pub reason: Option<UnmatchedReason>,
    pub order_id: Option<String>,
    pub top_up_id: Option<String>,
    pub account_id: Option<String>,
    pub applied: Money,
    pub credited: Money,
    pub reverses: Option<String>,
}

/// `text` from a bank file as the back-office should read it: control characters (but
/// the newlines joining lines, when `keep_newlines`) become spaces, direction overrides
/// and isolates are removed.
pub fn readable(text: &str, keep_newlines: bool) -> String {
    text.chars()
        .filter(|c| !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        .map(|c| {
            if c.is_control() && !(keep_newlines && c == '\n') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Rows per INSERT: well under the bind-parameter limit of both backends.
const ROWS_PER_INSERT: usize = 500;

pub fn insert_all(
    conn: &mut DbConnection,
    brand_id: &str,
    statement_id: &str,
    rows: &[NewPayment<'_>],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    insert_many!(conn, payments::table, rows, ROWS_PER_INSERT, |p| {
        (
            payments::id.eq(&p.id),
            payments::brand_id.eq(brand_id),
            payments::statement_id.eq(statement_id),
            payments::dedup_key.eq(&p.entry.dedup_key),
            payments::direction.eq(p.entry.direction.as_str()),
            payments::account.eq(&p.entry.account),
            payments::bank_reference.eq(&p.entry.bank_reference),
            payments::booking_date.eq(p.entry.booking_date),
            payments::value_date.eq(p.entry.value_date),
            payments::amount_cents.eq(p.entry.amount.cents()),
            payments::payer_name.eq(p.entry.payer_name.as_deref().map(|n| readable(n, false))),
            payments::remittance.eq(readable(&p.entry.remittance_text, true)),
            payments::reference.eq(p.reference.as_ref().map(|r| r.as_str())),
            payments::status.eq(p.status.as_str()),
            payments::reason.eq(p.reason.map(|r| r.as_str()).unwrap_or("")),
            payments::order_id.eq(&p.order_id),
            payments::top_up_id.eq(&p.top_up_id),
            payments::account_id.eq(&p.account_id),
            payments::applied_cents.eq(p.applied.cents()),
            payments::credited_cents.eq(p.credited.cents()),
            payments::reverses_payment_id.eq(&p.reverses),
            payments::created_at.eq(now.naive_utc()),
            payments::bank_entry.eq(p.entry.bank_entry.as_ref().map(|b| &b.key)),
            payments::bank_entry_part.eq(p.entry.bank_entry.as_ref().map(|b| b.part())),
        )
    })?;
    Ok(())
}

/// Payments (by dedup key) whose bank reference an earlier payment of another amount,
/// booking date or direction on the same account already had: each points at that
/// payment, for the back-office to look at.
pub fn flag_reused_references(
    conn: &mut DbConnection,
    brand_id: &str,
    flagged: &[(&str, &str)],
) -> QueryResult<()> {
    for (dedup_key, earlier_id) in flagged {
        diesel::update(
            payments::table
                .filter(payments::brand_id.eq(brand_id))
                .filter(payments::dedup_key.eq(dedup_key)),
        )
        .set(payments::same_reference_as.eq(Some(earlier_id)))
        .execute(conn)?;
    }
    Ok(())
}

/// A payment that was a bank entry's whole sum, untouched since it was imported (waiting,
/// unmatched, for the back-office), whose detail has now arrived: the detail's payments
/// take its place, so that the money is counted once. The import records it in the audit
/// log. `false` when the payment was resolved or referred to meanwhile and stays.
pub fn remove_replaced_sum(conn: &mut DbConnection, payment_id: &str) -> QueryResult<bool> {
    let referred: i64 = payments::table
        .filter(
            payments::reverses_payment_id
                .eq(payment_id)
                .or(payments::same_reference_as.eq(payment_id)),
        )
        .count()
        .get_result(conn)?;
    if referred > 0 {
        return Ok(false);
    }
    let removed = diesel::delete(
        payments::table
            .filter(payments::id.eq(payment_id))
            .filter(payments::status.eq(PaymentStatus::Unmatched.as_str()))
            .filter(payments::resolved_by.is_null())
            .filter(payments::applied_cents.eq(0i64))
            .filter(payments::credited_cents.eq(0i64)),
    )
    .execute(conn)?;
    Ok(removed == 1)
}

/// The bank took this credit back; the reversal is a payment of its own.
pub fn mark_reversed(conn: &mut DbConnection, payment_id: &str) -> QueryResult<()> {
    diesel::update(payments::table.filter(payments::id.eq(payment_id)))
        .set(payments::status.eq(PaymentStatus::Reversed.as_str()))
        .execute(conn)
        .map(|_| ())
}

/// What an operator decided about a payment, and why.
pub struct Resolution<'a> {
    pub status: PaymentStatus,
    pub order_id: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub applied: Money,
    pub credited: Money,
    pub operator_id: &'a str,
    pub note: &'a str,
}

/// A payment resolved by hand: its new outcome, who decided and why.
pub fn resolve_by_hand(
    conn: &mut DbConnection,
    payment_id: &str,
    resolution: &Resolution<'_>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(payments::table.filter(payments::id.eq(payment_id)))
        .set((
            payments::status.eq(resolution.status.as_str()),
            payments::reason.eq(""),
            payments::order_id.eq(resolution.order_id),
            payments::account_id.eq(resolution.account_id),
            payments::applied_cents.eq(resolution.applied.cents()),
            payments::credited_cents.eq(resolution.credited.cents()),
            payments::resolved_by.eq(Some(resolution.operator_id)),
            payments::resolved_at.eq(Some(now.naive_utc())),
            payments::resolution_note.eq(Some(resolution.note)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The partial payments of an expired order went to the owner's prepaid account: they
/// now say so, so that a later reversal of one of them takes it back from there.
pub fn move_partials_to_account(
    conn: &mut DbConnection,
    order_id: &str,
    account_id: &str,
) -> QueryResult<()> {
    diesel::update(
        payments::table
            .filter(payments::order_id.eq(order_id))
            .filter(payments::status.eq(PaymentStatus::Partial.as_str())),
    )
    .set((
        payments::credited_cents.eq(payments::credited_cents + payments::applied_cents),
        payments::applied_cents.eq(0i64),
        payments::account_id.eq(Some(account_id)),
    ))
    .execute(conn)
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn bank_text_is_stored_readable() {
        assert_eq!(
            readable("RINNOVO\u{202e} RF18\tX\u{0}\nriga 2", true),
            "RINNOVO RF18 X \nriga 2"
        );
        assert_eq!(readable("Studio\nRossi\u{2066}", false), "Studio Rossi");
    }
}
