//! The document counters, one row per brand and year in each series: `invoice_counters`
//! for invoices (TD01), `credit_note_counters` for credit notes (TD04). The only writer
//! of both.
//!
//! A counter is one upsert that creates it or adds to it. It runs inside the paying (or
//! crediting) transaction, so the counter row stays locked until commit (PostgreSQL) or
//! the writer lock is held (SQLite): numbers are progressive, and a rolled-back payment
//! gives its numbers back. Callers take numbers last, so that the brand's other payments
//! wait on the counter for as short a time as possible.

use diesel::prelude::*;

use crate::db::schema::{credit_note_counters, invoice_counters};
use crate::db::DbConnection;

/// A document number given out: the year and sequence it was counted in, and the text
/// printed on the document.
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

/// The credit note number printed for a sequence number of the credit notes' own series:
/// the invoice form behind `NC-` (nota di credito), `NC-V2026-000001`, so that no credit
/// note can be taken for the invoice of the same sequence number.
pub fn credit_note_number(series: &str, year: i32, seq: i64) -> String {
    format!("NC-{}", invoice_number(series, year, seq))
}

/// Adds `count` to the brand's counter of `year` in `table` (creating it at `count`) and
/// returns the last sequence number taken. The two counter tables have the same columns.
macro_rules! count_up {
    ($conn:expr, $table:ident, $brand_id:expr, $year:expr, $count:expr) => {
        upsert!(
            $conn,
            $table::table,
            (
                $table::brand_id.eq($brand_id),
                $table::year.eq($year),
                $table::last_seq.eq($count),
            ),
            on ($table::brand_id, $table::year),
            set $table::last_seq.eq($table::last_seq + $count),
            returning $table::last_seq
        )
    };
}

/// Takes the next `count` consecutive invoice numbers of the brand's `year` (at least
/// one) and returns them in order.
pub fn take_numbers(
    conn: &mut DbConnection,
    brand_id: &str,
    series: &str,
    year: i32,
    count: usize,
) -> QueryResult<Vec<InvoiceNumber>> {
    let count = count.max(1) as i64;
    let last = count_up!(conn, invoice_counters, brand_id, year, count)?;
    Ok((last - count + 1..=last)
        .map(|seq| InvoiceNumber {
            year,
            seq,
            text: invoice_number(series, year, seq),
        })
        .collect())
}

/// Takes the next credit note number of the brand's `year`, in the credit notes' own
/// series (gap-free like the invoices', independent of them).
pub fn take_credit_note_number(
    conn: &mut DbConnection,
    brand_id: &str,
    series: &str,
    year: i32,
) -> QueryResult<InvoiceNumber> {
    let last = count_up!(conn, credit_note_counters, brand_id, year, 1_i64)?;
    Ok(InvoiceNumber {
        year,
        seq: last,
        text: credit_note_number(series, year, last),
    })
}
