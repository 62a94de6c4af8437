//! Bank references reused for another payment, within one file or against earlier
//! imports: such entries are imported as payments of their own and flagged. Apart, as the
//! rule is shared by the plan, the chunks and the end of the import.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;

use super::report::ReusedReference;
use super::{ImportError, ImportReport, StoredEntry};
use crate::db::schema::payments;
use crate::db::DbConnection;
use crate::payments::statement::{EntryDirection, StatementEntry};
use crate::payments::store;

/// Whether `entry` is another payment than one with the same bank reference on the same
/// account and this direction, amount and booking date: it differs in any of them, and is
/// not a storno repeating the reference of the credit it takes back (same amount, booked
/// on or after it), which is how banks link the two.
pub(super) fn another_payment(
    entry: &StatementEntry,
    direction: EntryDirection,
    amount_cents: i64,
    booking_date: NaiveDate,
) -> bool {
    let same_amount = amount_cents == entry.amount.cents();
    let takes_it_back = entry.direction == EntryDirection::Reversal
        && direction == EntryDirection::Credit
        && same_amount
        && booking_date <= entry.booking_date;
    let same = same_amount && booking_date == entry.booking_date && direction == entry.direction;
    !takes_it_back && !same
}

/// After the lanes: the new entries of this file whose bank reference an earlier entry of
/// the same file, on the same account, had for another payment (the bank repeating a
/// reference within one statement), found while planning, each with the earlier entry's
/// key. Both are imported (their keys differ by `#n`); the later one is flagged like one
/// reusing the reference of an earlier file.
pub(super) fn flag_reused_in_file(
    conn: &mut DbConnection,
    brand_id: &str,
    statement_id: &str,
    pairs: &[(StatementEntry, String)],
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    if pairs.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = pairs
        .iter()
        .flat_map(|(later, earlier)| [later.dedup_key.as_str(), earlier.as_str()])
        .collect();
    /// A stored payment of one of the pairs, by its dedup key.
    #[derive(Queryable, Selectable)]
    #[diesel(table_name = payments)]
    struct Stored {
        dedup_key: String,
        id: String,
        statement_id: String,
        same_reference_as: Option<String>,
    }
    let stored: HashMap<String, Stored> = payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::dedup_key.eq_any(&keys))
        .select(Stored::as_select())
        .load(conn)?
        .into_iter()
        .map(|payment: Stored| (payment.dedup_key.clone(), payment))
        .collect();
    let mut marks = Vec::new();
    for (later, earlier) in pairs {
        let (Some(later_payment), Some(earlier_payment)) =
            (stored.get(&later.dedup_key), stored.get(earlier))
        else {
            continue;
        };
        // Only what this import stored, and not flagged already against an earlier file:
        // a re-import flags nothing again.
        if later_payment.statement_id != statement_id || later_payment.same_reference_as.is_some() {
            continue;
        }
        let earlier_id = &earlier_payment.id;
        marks.push((later.dedup_key.as_str(), earlier_id.as_str()));
        report.reused_references.push(ReusedReference {
            account: later.account.clone(),
            bank_reference: later.bank_reference.clone().unwrap_or_default(),
            direction: later.direction,
            amount: later.amount,
            booking_date: later.booking_date,
            location: later.location.clone(),
            same_reference_as: earlier_id.clone(),
        });
    }
    store::flag_reused_references(conn, brand_id, &marks)?;
    Ok(())
}

/// The new entries whose bank reference an earlier payment on the same account had with
/// another amount, booking date or direction, each with the first such payment. A
/// reversal that repeats the reference of the credit it takes back (same amount, booked
/// before) is how banks link the two, and is not flagged.
pub(super) fn reused_references<'e>(
    conn: &mut DbConnection,
    brand_id: &str,
    fresh: &[&'e StatementEntry],
) -> QueryResult<Vec<(&'e StatementEntry, StoredEntry)>> {
    let references: Vec<&str> = fresh
        .iter()
        .filter_map(|e| e.bank_reference.as_deref())
        .collect();
    if references.is_empty() {
        return Ok(Vec::new());
    }
    let mut stored: Vec<StoredEntry> = payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::bank_reference.eq_any(&references))
        .order((payments::booking_date.asc(), payments::id.asc()))
        .select(StoredEntry::as_select())
        .load(conn)?;
    let mut flagged = Vec::new();
    for entry in fresh {
        let differs = |row: &&StoredEntry| {
            row.account == entry.account
                && row.bank_reference == entry.bank_reference
                && another_payment(entry, row.direction, row.amount_cents, row.booking_date)
        };
        if let Some(index) = stored.iter().position(|row| differs(&row)) {
            flagged.push((*entry, stored.swap_remove(index)));
        }
    }
    Ok(flagged)
}
