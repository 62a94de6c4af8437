//! The one writer of `orders` and `order_lines`: every move of the order state machine
//! (DESIGN.md, States) is a named function here.
//!
//! `awaiting_payment` -> `paid` -> `fulfilled`, with the invoice number taken in the same
//! update ([`fulfil_many`]; the prepaid checkout stores its order fulfilled and numbers it
//! with [`assign_invoice_number`]); `awaiting_payment` -> `expired` ([`expire`]), which money
//! booked in time reopens ([`record_received`]). Numbers come from
//! [`invoices::take_numbers`]; the order's row keeps the one it was given. Both moves to
//! fulfilled issue the orders' invoices ([`invoices::issue`]) right after numbering them:
//! this is the one place an invoice is issued, whatever paid the order.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::order::{Order, OrderStatus};
use crate::brands::Brand;
use crate::db::schema::{order_lines, orders};
use crate::db::{self, DbConnection};
use crate::invoices::document::{self, Buyer};
use crate::invoices::{self, InvoiceNumber, Sale};
use crate::money::Money;

/// Stores a new order with its lines, in the state the checkout made it.
pub(super) fn create(conn: &mut DbConnection, order: &Order) -> QueryResult<()> {
    diesel::insert_into(orders::table)
        .values((
            orders::id.eq(&order.id),
            orders::brand_id.eq(&order.brand_id),
            orders::user_id.eq(&order.user_id),
            orders::status.eq(order.status.as_str()),
            orders::payment_method.eq(order.payment_method.as_str()),
            orders::net_cents.eq(order.net_total.cents()),
            orders::vat_cents.eq(order.vat_total.cents()),
            orders::gross_cents.eq(order.gross_total.cents()),
            orders::email.eq(&order.email),
            orders::created_at.eq(order.created_at.naive_utc()),
            orders::paid_at.eq(order.paid_at.map(|t| t.naive_utc())),
            orders::fulfilled_at.eq(order.fulfilled_at.map(|t| t.naive_utc())),
            orders::payment_reference.eq(order.payment_reference.as_ref().map(|r| r.as_str())),
            orders::reserved_until.eq(order.reserved_until.map(|t| t.naive_utc())),
            orders::received_cents.eq(order.received.cents()),
        ))
        .execute(conn)?;
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|line| {
            (
                order_lines::id.eq(Uuid::now_v7().to_string()),
                order_lines::order_id.eq(&order.id),
                order_lines::line_number.eq(line.line_number),
                order_lines::product_id.eq(&line.product_id),
                order_lines::product_code.eq(&line.product_code),
                order_lines::product_name.eq(&line.product_name),
                order_lines::quantity.eq(line.quantity),
                order_lines::net_unit_cents.eq(line.net_unit_price.cents()),
                order_lines::vat_rate_basis_points.eq(line.vat_rate_basis_points),
                order_lines::net_cents.eq(line.net_amount.cents()),
            )
        })
        .collect();
    insert_many!(conn, order_lines::table, lines)?;
    Ok(())
}

/// Gives the order the next invoice number of its brand and year, issues its invoice,
/// and returns the number. Callers take the number last: from here to commit the brand's
/// counters are locked.
pub fn assign_invoice_number(
    conn: &mut DbConnection,
    brand: &Brand,
    order: &Order,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    use chrono::Datelike;
    // Read before the number: from then to commit the brand's counter is locked.
    let buyers = invoices::buyers_of(conn, &[order.user_id.as_str()])?;
    let number =
        invoices::take_numbers(conn, &brand.id, &brand.invoice_series, now.year(), 1)?.remove(0);
    diesel::update(orders::table.filter(orders::id.eq(&order.id)))
        .set((
            orders::invoice_year.eq(Some(number.year)),
            orders::invoice_seq.eq(Some(number.seq)),
            orders::invoice_number.eq(Some(&number.text)),
        ))
        .execute(conn)?;
    issue_invoices(
        conn,
        brand,
        &[order],
        std::slice::from_ref(&number),
        &buyers,
        now,
    )?;
    Ok(number.text)
}

/// The invoices of orders just numbered.
fn issue_invoices(
    conn: &mut DbConnection,
    brand: &Brand,
    orders: &[&Order],
    numbers: &[InvoiceNumber],
    buyers: &HashMap<String, Buyer>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let sales: Vec<Sale<'_>> = orders
        .iter()
        .zip(numbers)
        .map(|(order, number)| Sale {
            order_id: &order.id,
            user_id: &order.user_id,
            payment_method: order.payment_method,
            lines: order
                .lines
                .iter()
                .map(|line| document::Line {
                    description: line.product_name.clone(),
                    quantity: line.quantity,
                    unit_price: line.net_unit_price,
                    total: line.net_amount,
                    vat_rate_basis_points: line.vat_rate_basis_points,
                })
                .collect(),
            net_total: order.net_total,
            vat_total: order.vat_total,
            gross_total: order.gross_total,
            number,
        })
        .collect();
    invoices::issue(conn, brand, &sales, buyers, now)
}

/// A paid order with the money received for it.
pub struct PaidOrder<'a> {
    pub order: &'a Order,
    pub received_cents: i64,
}

/// Moves paid orders to `fulfilled`, each with the next invoice number of the brand in
/// the given order, and issues their invoices. A statement import fulfils hundreds of orders per transaction: on
/// PostgreSQL that is one UPDATE joined to the arrays of values (one round trip instead
/// of hundreds); SQLite runs in-process, where one UPDATE per order costs as little.
pub fn fulfil_many(
    conn: &mut DbConnection,
    brand: &Brand,
    now: DateTime<Utc>,
    paid: &[PaidOrder<'_>],
) -> anyhow::Result<()> {
    use chrono::Datelike;
    if paid.is_empty() {
        return Ok(());
    }
    // Read before the numbers: from then to commit the brand's counter is locked.
    let user_ids: Vec<&str> = paid.iter().map(|p| p.order.user_id.as_str()).collect();
    let buyers = invoices::buyers_of(conn, &user_ids)?;
    let numbers = invoices::take_numbers(
        conn,
        &brand.id,
        &brand.invoice_series,
        now.year(),
        paid.len(),
    )?;
    let status = OrderStatus::Fulfilled.as_str();
    let issued_at = now;
    let now = now.naive_utc();
    db::per_backend(
        conn,
        |pg| {
            use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamp};
            diesel::sql_query(
                "UPDATE orders AS o SET status = $1, received_cents = v.received, paid_at = $2,
                     fulfilled_at = $2, closed_at = NULL, invoice_year = $3,
                     invoice_seq = v.seq, invoice_number = v.number
                 FROM unnest($4::text[], $5::bigint[], $6::bigint[], $7::text[])
                     AS v(id, received, seq, number)
                 WHERE o.id = v.id",
            )
            .bind::<Text, _>(status)
            .bind::<Timestamp, _>(now)
            .bind::<Integer, _>(numbers[0].year)
            .bind::<Array<Text>, _>(paid.iter().map(|o| o.order.id.as_str()).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(paid.iter().map(|o| o.received_cents).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(numbers.iter().map(|n| n.seq).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(numbers.iter().map(|n| n.text.as_str()).collect::<Vec<_>>())
            .execute(pg)
            .map(|_| ())
        },
        |sqlite| {
            for (order, number) in paid.iter().zip(&numbers) {
                fulfil_one(sqlite, order, number, status, now)?;
            }
            Ok(())
        },
    )?;
    let orders: Vec<&Order> = paid.iter().map(|p| p.order).collect();
    issue_invoices(conn, brand, &orders, &numbers, &buyers, issued_at)
}

fn fulfil_one(
    conn: &mut diesel::SqliteConnection,
    order: &PaidOrder<'_>,
    number: &InvoiceNumber,
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(orders::table.filter(orders::id.eq(&order.order.id)))
        .set((
            orders::status.eq(status),
            orders::received_cents.eq(order.received_cents),
            orders::paid_at.eq(Some(now)),
            orders::fulfilled_at.eq(Some(now)),
            orders::closed_at.eq(None::<NaiveDateTime>),
            orders::invoice_year.eq(Some(number.year)),
            orders::invoice_seq.eq(Some(number.seq)),
            orders::invoice_number.eq(Some(&number.text)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Money received that leaves the order short of its price: it waits (again) for the rest.
/// An expired order whose money was booked in time is reopened.
pub fn record_received(
    conn: &mut DbConnection,
    order_id: &str,
    received: Money,
) -> QueryResult<()> {
    diesel::update(orders::table.filter(orders::id.eq(order_id)))
        .set((
            orders::status.eq(OrderStatus::AwaitingPayment.as_str()),
            orders::received_cents.eq(received.cents()),
            orders::closed_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The bank took back `amount` of what the order had received (a reversal).
pub fn take_back(conn: &mut DbConnection, order_id: &str, amount: Money) -> QueryResult<()> {
    diesel::update(orders::table.filter(orders::id.eq(order_id)))
        .set(orders::received_cents.eq(orders::received_cents - amount.cents()))
        .execute(conn)
        .map(|_| ())
}

awaiting_payment_expiry!(orders, OrderStatus, "order");

/// The partial payments of an expired order went to the owner's prepaid account: the
/// order no longer holds them.
pub fn release_received(conn: &mut DbConnection, order_id: &str) -> QueryResult<()> {
    diesel::update(orders::table.filter(orders::id.eq(order_id)))
        .set(orders::received_cents.eq(0i64))
        .execute(conn)
        .map(|_| ())
}
