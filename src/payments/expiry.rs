//! Reservations past their deadline: orders and top-ups still waiting for a transfer
//! become `expired`, and the customer is told. Run by a worker in every process; the
//! status change is a conditional update, so when several workers see the same
//! reservation only one expires it (and only one email leaves).
//!
//! An order that had received part of its price gives that money to the owner's prepaid
//! account when it expires: nothing paid is ever kept without something in return.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::store;
use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::db::schema::{orders, top_ups, users};
use crate::db::{write_transaction, DbConnection, UtcTimestamp};
use crate::mail::outbox::{self, OutgoingEmail};
use crate::mail::templates::EmailKind;
use crate::money::Money;
use crate::orders as order_book;
use crate::prepaid::{self, top_ups as top_up_book, EntryKind, Posting};
use crate::transfer::reservation::Target;
use crate::transfer::CreditorReference;

/// How many reservations of each kind one pass looks at.
const BATCH: i64 = 200;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub orders: usize,
    pub top_ups: usize,
}

/// Expires what is due at `now`; returns how many this call expired.
pub fn expire_due(conn: &mut DbConnection, now: DateTime<Utc>) -> anyhow::Result<Expired> {
    let mut expired = Expired::default();
    for id in order_book::due_for_expiry(conn, now, BATCH)? {
        if write_transaction(conn, |conn| expire_order(conn, &id, now))? {
            expired.orders += 1;
        }
    }
    for id in top_up_book::due_for_expiry(conn, now, BATCH)? {
        if write_transaction(conn, |conn| expire_top_up(conn, &id, now))? {
            expired.top_ups += 1;
        }
    }
    Ok(expired)
}

/// An expired order or top-up, as its notice needs it.
#[derive(Queryable)]
struct Reservation {
    brand_id: String,
    user_id: String,
    email: String,
    reference: CreditorReference,
    amount_cents: i64,
    received_cents: i64,
    name: String,
    #[diesel(deserialize_as = UtcTimestamp)]
    reserved_until: DateTime<Utc>,
}

fn expire_order(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    if !order_book::expire(conn, id, now)? {
        return Ok(false); // paid, or expired by another worker, meanwhile
    }
    let order: Reservation = orders::table
        .inner_join(users::table.on(users::id.eq(orders::user_id)))
        .filter(orders::id.eq(id))
        .select((
            orders::brand_id,
            orders::user_id,
            orders::email,
            orders::payment_reference.assume_not_null(),
            orders::gross_cents,
            orders::received_cents,
            users::name,
            orders::reserved_until.assume_not_null(),
        ))
        .first(conn)?;
    let credited = Money::from_cents(order.received_cents);
    if credited.is_positive() {
        credit_partial_payments(conn, id, &order.user_id, credited, now)?;
    }
    notify(conn, &Target::Order(id.to_owned()), &order, credited, now)?;
    Ok(true)
}

/// Partial payments go to the prepaid account: nothing paid is kept without something in
/// return.
fn credit_partial_payments(
    conn: &mut DbConnection,
    order_id: &str,
    user_id: &str,
    received: Money,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let account = prepaid::account_of_owner(conn, user_id)?;
    prepaid::post(
        conn,
        &account.id,
        Posting {
            kind: EntryKind::OverpaymentCredit,
            amount: received,
            description: "Pagamenti parziali di un ordine scaduto",
            reference: Some(order_id),
            actor_id: None,
        },
        now,
    )?;
    store::move_partials_to_account(conn, order_id, &account.id)?;
    order_book::release_received(conn, order_id)?;
    Ok(())
}

fn expire_top_up(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    if !top_up_book::expire(conn, id, now)? {
        return Ok(false);
    }
    // What part of a top-up arrived is already on the account: nothing to move.
    let top_up: Reservation = top_ups::table
        .inner_join(users::table.on(users::id.eq(top_ups::user_id)))
        .filter(top_ups::id.eq(id))
        .select((
            top_ups::brand_id,
            top_ups::user_id,
            top_ups::email,
            top_ups::payment_reference.assume_not_null(),
            top_ups::amount_cents,
            top_ups::received_cents,
            users::name,
            top_ups::reserved_until,
        ))
        .first(conn)?;
    notify(
        conn,
        &Target::TopUp(id.to_owned()),
        &top_up,
        Money::ZERO,
        now,
    )?;
    Ok(true)
}

/// The customer's email and the audit entry of an expiry; `credited` is what went to the
/// prepaid account.
fn notify(
    conn: &mut DbConnection,
    target: &Target,
    reservation: &Reservation,
    credited: Money,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let reserved_until = reservation.reserved_until;
    let brand = brands::existing(conn, &reservation.brand_id)?;
    outbox::enqueue(
        conn,
        &OutgoingEmail {
            brand_id: brand.id.clone(),
            kind: EmailKind::ReservationExpired,
            reference: Some(target.id().to_owned()),
            sender: brand.sender_address.clone(),
            recipient: reservation.email.clone(),
            context: json!({
                "name": reservation.name, "brand": brand.name, "what": target.italian(), "again": target.italian_again(),
                "reference": reservation.reference.printed(), "amount": Money::from_cents(reservation.amount_cents).to_string(),
                "deadline": reserved_until.format("%d/%m/%Y").to_string(),
                "credited": credited.is_positive().then(|| credited.to_string()),
            }),
            attachment: None,
        },
        now,
    )?;
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(&reservation.brand_id),
            actor: &Actor::System,
            action: match target {
                Target::Order(_) => "order.expired",
                Target::TopUp(_) => "top_up.expired",
            },
            subject_type: target.subject_type(),
            subject_id: target.id(),
            details: json!({
                "reserved_until": reserved_until,
                "credited_to_prepaid": credited.to_string(),
            }),
        },
        now,
    )?;
    Ok(())
}

/// The worker: expires due reservations every `interval`, until the task is dropped.
pub async fn run(pool: crate::db::Pool, interval: std::time::Duration) {
    crate::db::every_interval(
        pool,
        interval,
        "reservation expiry",
        expire_due,
        |expired| {
            if expired != Expired::default() {
                tracing::info!(
                    orders = expired.orders,
                    top_ups = expired.top_ups,
                    "reservations expired"
                )
            }
        },
    )
    .await
}
