//! Reservations past their deadline: orders and top-ups still waiting for a transfer
//! become `expired`, and the customer is told. Run by a worker in every process; the
//! status change is a conditional update, so when several workers see the same
//! reservation only one expires it (and only one email leaves).
//!
//! An order that had received part of its price gives that money to the owner's prepaid
//! account when it expires: nothing paid is ever kept without something in return.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::db::schema::{orders, payments, prepaid_accounts, top_ups, users};
use crate::db::{write_transaction, DbConnection};
use crate::mail::outbox::{self, OutgoingEmail};
use crate::money::Money;
use crate::prepaid::{self, EntryKind, Posting};

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
    let due_orders: Vec<String> = orders::table
        .filter(orders::status.eq("awaiting_payment"))
        .filter(orders::reserved_until.lt(now.naive_utc()))
        .order((orders::reserved_until.asc(), orders::id.asc()))
        .limit(BATCH)
        .select(orders::id)
        .load(conn)?;
    for id in due_orders {
        if write_transaction(conn, |conn| expire_order(conn, &id, now))? {
            expired.orders += 1;
        }
    }
    let due_top_ups: Vec<String> = top_ups::table
        .filter(top_ups::status.eq("awaiting_payment"))
        .filter(top_ups::reserved_until.lt(now.naive_utc()))
        .order((top_ups::reserved_until.asc(), top_ups::id.asc()))
        .limit(BATCH)
        .select(top_ups::id)
        .load(conn)?;
    for id in due_top_ups {
        if write_transaction(conn, |conn| expire_top_up(conn, &id, now))? {
            expired.top_ups += 1;
        }
    }
    Ok(expired)
}

type Reservation = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    NaiveDateTime,
);

fn expire_order(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let changed = diesel::update(
        orders::table
            .filter(orders::id.eq(id))
            .filter(orders::status.eq("awaiting_payment"))
            .filter(orders::reserved_until.lt(now.naive_utc())),
    )
    .set((
        orders::status.eq("expired"),
        orders::closed_at.eq(Some(now.naive_utc())),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Ok(false); // paid, or expired by another worker, meanwhile
    }
    let (brand_id, user_id, email, reference, gross, received, name, reserved_until): Reservation =
        orders::table
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
    let mut credited = Money::ZERO;
    if received > 0 {
        // Partial payments go to the prepaid account; the payments now say so, so that a
        // later reversal of one of them takes it back from there.
        let account_id: String = prepaid_accounts::table
            .filter(prepaid_accounts::owner_id.eq(&user_id))
            .select(prepaid_accounts::id)
            .first(conn)?;
        credited = Money::from_cents(received);
        prepaid::post(
            conn,
            &account_id,
            Posting {
                kind: EntryKind::OverpaymentCredit,
                amount: credited,
                description: "Pagamenti parziali di un ordine scaduto",
                reference: Some(id),
                actor_id: None,
            },
            now,
        )?;
        diesel::update(
            payments::table
                .filter(payments::order_id.eq(id))
                .filter(payments::status.eq("partial")),
        )
        .set((
            payments::credited_cents.eq(payments::credited_cents + payments::applied_cents),
            payments::applied_cents.eq(0i64),
            payments::account_id.eq(Some(&account_id)),
        ))
        .execute(conn)?;
        diesel::update(orders::table.filter(orders::id.eq(id)))
            .set(orders::received_cents.eq(0i64))
            .execute(conn)?;
    }
    notify(
        conn,
        &Notice {
            brand_id: &brand_id,
            subject_type: "order",
            subject_id: id,
            recipient: &email,
            name: &name,
            reference: &reference,
            amount: Money::from_cents(gross),
            reserved_until: reserved_until.and_utc(),
            credited,
        },
        now,
    )?;
    Ok(true)
}

fn expire_top_up(conn: &mut DbConnection, id: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let changed = diesel::update(
        top_ups::table
            .filter(top_ups::id.eq(id))
            .filter(top_ups::status.eq("awaiting_payment"))
            .filter(top_ups::reserved_until.lt(now.naive_utc())),
    )
    .set((
        top_ups::status.eq("expired"),
        top_ups::closed_at.eq(Some(now.naive_utc())),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    // What part of a top-up arrived is already on the account: nothing to move.
    let (brand_id, _user_id, email, reference, amount, _received, name, reserved_until): Reservation =
        top_ups::table
            .inner_join(users::table.on(users::id.eq(top_ups::user_id)))
            .filter(top_ups::id.eq(id))
            .select((
                top_ups::brand_id,
                top_ups::user_id,
                top_ups::email,
                top_ups::payment_reference,
                top_ups::amount_cents,
                top_ups::received_cents,
                users::name,
                top_ups::reserved_until,
            ))
            .first(conn)?;
    notify(
        conn,
        &Notice {
            brand_id: &brand_id,
            subject_type: "top_up",
            subject_id: id,
            recipient: &email,
            name: &name,
            reference: &reference,
            amount: Money::from_cents(amount),
            reserved_until: reserved_until.and_utc(),
            credited: Money::ZERO,
        },
        now,
    )?;
    Ok(true)
}

struct Notice<'a> {
    brand_id: &'a str,
    subject_type: &'static str,
    subject_id: &'a str,
    recipient: &'a str,
    name: &'a str,
    reference: &'a str,
    amount: Money,
    reserved_until: DateTime<Utc>,
    credited: Money,
}

fn notify(conn: &mut DbConnection, notice: &Notice<'_>, now: DateTime<Utc>) -> anyhow::Result<()> {
    let brand = brands::find(conn, notice.brand_id)?
        .ok_or_else(|| anyhow::anyhow!("brand {} missing", notice.brand_id))?;
    let printed = crate::transfer::CreditorReference::parse(notice.reference)
        .map(|r| r.printed())
        .unwrap_or_else(|_| notice.reference.to_owned());
    let what = if notice.subject_type == "order" {
        "l'acquisto dei coupon di rinnovo"
    } else {
        "la ricarica del conto prepagato"
    };
    outbox::enqueue(
        conn,
        &OutgoingEmail {
            brand_id: brand.id.clone(),
            kind: "reservation_expired",
            reference: Some(notice.subject_id.to_owned()),
            sender: brand.sender_address.clone(),
            recipient: notice.recipient.to_owned(),
            context: json!({
                "name": notice.name, "brand": brand.name, "what": what,
                "reference": printed, "amount": notice.amount.to_string(),
                "deadline": notice.reserved_until.format("%d/%m/%Y").to_string(),
                "credited": notice.credited.is_positive().then(|| notice.credited.to_string()),
            }),
            attachment: None,
        },
        now,
    )?;
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(notice.brand_id),
            actor: &Actor::System,
            action: if notice.subject_type == "order" {
                "order.expired"
            } else {
                "top_up.expired"
            },
            subject_type: notice.subject_type,
            subject_id: notice.subject_id,
            details: json!({
                "reserved_until": notice.reserved_until,
                "credited_to_prepaid": notice.credited.to_string(),
            }),
        },
        now,
    )?;
    Ok(())
}

/// The worker: expires due reservations every `interval`, until the task is dropped.
pub async fn run(pool: crate::db::Pool, interval: std::time::Duration) {
    loop {
        let pool = pool.clone();
        let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<Expired> {
            expire_due(&mut *pool.get()?, Utc::now())
        })
        .await;
        match outcome {
            Ok(Ok(expired)) if expired != Expired::default() => {
                tracing::info!(
                    orders = expired.orders,
                    top_ups = expired.top_ups,
                    "reservations expired"
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "reservation expiry: will retry"),
            Err(error) => tracing::warn!(error = %error, "reservation expiry task failed"),
        }
        tokio::time::sleep(interval).await;
    }
}
