//! The moves of paid orders to `fulfilled` with their invoice numbers, the last step of
//! every payment (prepaid, a matched transfer, a match by hand). Numbers come from
//! [`invoices::take_numbers`]; the order's row keeps the one it was given.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::OrderStatus;
use crate::db::schema::orders;
use crate::db::{self, DbConnection};
use crate::invoices::{self, InvoiceNumber};

/// Gives the order the next invoice number of its brand and year, and returns it.
/// Callers take the number last: from here to commit the brand's counter is locked.
pub fn assign_invoice_number(
    conn: &mut DbConnection,
    order_id: &str,
    brand_id: &str,
    series: &str,
    year: i32,
) -> QueryResult<String> {
    let number = invoices::take_numbers(conn, brand_id, series, year, 1)?.remove(0);
    diesel::update(orders::table.filter(orders::id.eq(order_id)))
        .set((
            orders::invoice_year.eq(Some(number.year)),
            orders::invoice_seq.eq(Some(number.seq)),
            orders::invoice_number.eq(Some(&number.text)),
        ))
        .execute(conn)?;
    Ok(number.text)
}

/// A paid order with the money received for it.
pub struct PaidOrder<'a> {
    pub id: &'a str,
    pub received_cents: i64,
}

/// Moves paid orders to `fulfilled`, each with the next invoice number of the brand in
/// the given order. A statement import fulfils hundreds of orders per transaction: on
/// PostgreSQL that is one UPDATE joined to the arrays of values (one round trip instead
/// of hundreds); SQLite runs in-process, where one UPDATE per order costs as little.
pub fn fulfil_many(
    conn: &mut DbConnection,
    brand_id: &str,
    series: &str,
    now: DateTime<Utc>,
    paid: &[PaidOrder<'_>],
) -> QueryResult<()> {
    use chrono::Datelike;
    if paid.is_empty() {
        return Ok(());
    }
    let numbers = invoices::take_numbers(conn, brand_id, series, now.year(), paid.len())?;
    let status = OrderStatus::Fulfilled.as_str();
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
            .bind::<Array<Text>, _>(paid.iter().map(|o| o.id).collect::<Vec<_>>())
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
    )
}

fn fulfil_one(
    conn: &mut diesel::SqliteConnection,
    order: &PaidOrder<'_>,
    number: &InvoiceNumber,
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(orders::table.filter(orders::id.eq(order.id)))
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
