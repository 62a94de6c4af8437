//! The invoice counters (`invoice_counters`, one row per brand and year): the only writer.
//!
//! A counter is one upsert that creates it or adds to it. It runs inside the paying
//! transaction, so the counter row stays locked until commit (PostgreSQL) or the writer
//! lock is held (SQLite): numbers are progressive, and a rolled-back payment gives its
//! numbers back. Callers take numbers last, so that the brand's other payments wait on
//! the counter for as short a time as possible.

use diesel::prelude::*;

use crate::db::schema::invoice_counters;
use crate::db::DbConnection;

/// An invoice number given out: the year and sequence it was counted in, and the text
/// printed on the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceNumber {
    pub year: i32,
    pub seq: i64,
    pub text: String,
}

/// The invoice number printed for a sequence number: `<series><year>-<seq, 6+ digits>`.
pub fn invoice_number(series: &str, year: i32, seq: i64) -> String {
    format!("{series}{year}-{seq:06}")
}

/// Takes the next `count` consecutive numbers of the brand's `year` (at least one) and
/// returns them in order.
pub fn take_numbers(
    conn: &mut DbConnection,
    brand_id: &str,
    series: &str,
    year: i32,
    count: usize,
) -> QueryResult<Vec<InvoiceNumber>> {
    let count = count.max(1) as i64;
    let last: i64 = on_backend!(conn, |c| diesel::insert_into(invoice_counters::table)
        .values((
            invoice_counters::brand_id.eq(brand_id),
            invoice_counters::year.eq(year),
            invoice_counters::last_seq.eq(count),
        ))
        .on_conflict((invoice_counters::brand_id, invoice_counters::year))
        .do_update()
        .set(invoice_counters::last_seq.eq(invoice_counters::last_seq + count))
        .returning(invoice_counters::last_seq)
        .get_result(c))?;
    Ok((last - count + 1..=last)
        .map(|seq| InvoiceNumber {
            year,
            seq,
            text: invoice_number(series, year, seq),
        })
        .collect())
}
