//! What the back-office sees of payments: the list with filters and totals, one payment,
//! the daily summary, the counts per status, the imported statements.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::matching::PaymentStatus;
use super::statement::EntryDirection;
use crate::db::schema::{payments, statements};
use crate::db::{self, DbConnection};
use crate::money::Money;
use crate::paging::{Page, Paged};

/// A payment read from a statement, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Payment)]
pub struct PaymentView {
    pub id: String,
    pub statement_id: String,
    /// `credit` (money in) or `debit` (a reversal, money out).
    #[schema(example = "credit")]
    pub direction: EntryDirection,
    pub status: PaymentStatus,
    /// Why an unmatched payment waits (`no_reference`, `unknown_reference`,
    /// `reservation_expired`, `order_cancelled`, `original_not_found`, `balance_too_low`,
    /// `booked_in_future`, `booked_before_order`).
    pub reason: Option<String>,
    /// In euro.
    #[schema(value_type = String, example = "63.44")]
    pub amount: Money,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    /// The account the statement is of (IBAN or postal account).
    pub account: String,
    pub bank_reference: Option<String>,
    pub payer_name: Option<String>,
    /// The payment reason as sent by the payer.
    pub remittance: String,
    /// The RF code found in the remittance.
    #[schema(example = "RF18539007547034")]
    pub reference: Option<String>,
    pub order_id: Option<String>,
    pub top_up_id: Option<String>,
    /// The prepaid account credited, if any.
    pub account_id: Option<String>,
    /// Applied to the order, in euro.
    #[schema(value_type = String, example = "63.44")]
    pub applied: Money,
    /// Credited to the prepaid account, in euro.
    #[schema(value_type = String, example = "0.00")]
    pub credited: Money,
    /// For a reversal: the payment it reverses.
    pub reverses_payment_id: Option<String>,
    /// An earlier payment on the same account with the same bank reference but another
    /// amount, booking date or direction: the bank reused its reference; look at both.
    pub same_reference_as: Option<String>,
    /// The operator who matched or refunded it by hand.
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The operator's reason.
    pub resolution_note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A stored payment as the queue shows it: the statement entry, then what became of it
/// (two halves, each within diesel's 16 columns).
#[derive(Queryable, Selectable)]
#[diesel(table_name = payments)]
struct PaymentRow {
    #[diesel(embed)]
    entry: EntryColumns,
    #[diesel(embed)]
    outcome: OutcomeColumns,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payments)]
struct EntryColumns {
    id: String,
    statement_id: String,
    direction: EntryDirection,
    status: PaymentStatus,
    reason: String,
    amount_cents: i64,
    booking_date: NaiveDate,
    value_date: Option<NaiveDate>,
    account: String,
    bank_reference: Option<String>,
    payer_name: Option<String>,
    remittance: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payments)]
struct OutcomeColumns {
    reference: Option<String>,
    order_id: Option<String>,
    top_up_id: Option<String>,
    account_id: Option<String>,
    applied_cents: i64,
    credited_cents: i64,
    reverses_payment_id: Option<String>,
    same_reference_as: Option<String>,
    resolved_by: Option<String>,
    resolved_at: Option<NaiveDateTime>,
    resolution_note: Option<String>,
    created_at: NaiveDateTime,
}

fn view(row: PaymentRow) -> PaymentView {
    let PaymentRow { entry, outcome } = row;
    PaymentView {
        status: entry.status,
        id: entry.id,
        statement_id: entry.statement_id,
        direction: entry.direction,
        reason: (!entry.reason.is_empty()).then_some(entry.reason),
        amount: Money::from_cents(entry.amount_cents),
        booking_date: entry.booking_date,
        value_date: entry.value_date,
        account: entry.account,
        bank_reference: entry.bank_reference,
        payer_name: entry.payer_name,
        remittance: entry.remittance,
        reference: outcome.reference,
        order_id: outcome.order_id,
        top_up_id: outcome.top_up_id,
        account_id: outcome.account_id,
        applied: Money::from_cents(outcome.applied_cents),
        credited: Money::from_cents(outcome.credited_cents),
        reverses_payment_id: outcome.reverses_payment_id,
        same_reference_as: outcome.same_reference_as,
        resolved_by: outcome.resolved_by,
        resolved_at: outcome.resolved_at.map(|t| t.and_utc()),
        resolution_note: outcome.resolution_note,
        created_at: outcome.created_at.and_utc(),
    }
}

/// Which payments to list. Dates are booking dates, both ends included.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<PaymentStatus>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub reference: Option<String>,
    pub statement_id: Option<String>,
    pub order_id: Option<String>,
}

/// Count and sum of payments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PaymentTotals)]
pub struct Totals {
    pub count: i64,
    /// In euro.
    #[schema(value_type = String, example = "126.88")]
    pub amount: Money,
}

fn filtered<'a>(
    brand_id: &str,
    filter: &Filter,
) -> payments::BoxedQuery<'a, <DbConnection as diesel::Connection>::Backend> {
    let mut query = payments::table
        .filter(payments::brand_id.eq(brand_id.to_owned()))
        .into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(payments::status.eq(status.as_str()));
    }
    if let Some(from) = filter.from {
        query = query.filter(payments::booking_date.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(payments::booking_date.le(to));
    }
    if let Some(reference) = &filter.reference {
        query = query.filter(payments::reference.eq(reference.clone()));
    }
    if let Some(statement_id) = &filter.statement_id {
        query = query.filter(payments::statement_id.eq(statement_id.clone()));
    }
    if let Some(order_id) = &filter.order_id {
        query = query.filter(payments::order_id.eq(order_id.clone()));
    }
    query
}

/// SUM of BIGINT is NUMERIC on PostgreSQL and INTEGER on SQLite: cast it back.
const SUM_AMOUNT: &str = "CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT)";

/// A page of payments (oldest booking first, as the back-office works through them) and
/// the totals of everything the filter selects.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    filter: &Filter,
    page: Page,
) -> anyhow::Result<(Vec<PaymentView>, Totals)> {
    let rows: Vec<PaymentRow> = filtered(brand_id, filter)
        .order((payments::booking_date.asc(), payments::id.asc()))
        .limit(page.limit())
        .offset(page.offset())
        .select(PaymentRow::as_select())
        .load(conn)?;
    let (count, sum): (i64, i64) = filtered(brand_id, filter)
        .select((count_star(), sql::<BigInt>(SUM_AMOUNT)))
        .first(conn)?;
    Ok((
        rows.into_iter().map(view).collect(),
        Totals {
            count,
            amount: Money::from_cents(sum),
        },
    ))
}

pub fn find(
    conn: &mut DbConnection,
    brand_id: &str,
    id: &str,
) -> anyhow::Result<Option<PaymentView>> {
    Ok(payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::id.eq(id))
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?
        .map(view))
}

/// The payments booked on one day: count and sum per outcome, and in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySummary {
    pub day: NaiveDate,
    pub outcomes: Vec<(PaymentStatus, Totals)>,
    pub total: Totals,
}

/// The summary of the payments booked on `day`, or today when no day is given: today in
/// Italy, as statements book on the Italian calendar (at 00:30 in Rome it is already the
/// new day, while in UTC it is still the old one).
pub fn daily_summary(
    conn: &mut DbConnection,
    brand_id: &str,
    day: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> anyhow::Result<DailySummary> {
    let day = day.unwrap_or_else(|| crate::invoices::receipts::notification::italian_date(now));
    let rows: Vec<(PaymentStatus, i64, i64)> = payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::booking_date.eq(day))
        .group_by(payments::status)
        .order(payments::status.asc())
        .select((payments::status, count_star(), sql::<BigInt>(SUM_AMOUNT)))
        .load(conn)?;
    let mut total = Totals {
        count: 0,
        amount: Money::ZERO,
    };
    let mut outcomes = Vec::with_capacity(rows.len());
    for (status, count, sum) in rows {
        let amount = Money::from_cents(sum);
        total.count += count;
        total.amount = total.amount + amount;
        outcomes.push((status, Totals { count, amount }));
    }
    Ok(DailySummary {
        day,
        outcomes,
        total,
    })
}

/// How many stored payments are in each status, all brands (for the metrics); every
/// status is listed, with 0 when none. Reads the `(brand_id, status, ...)` index.
pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<Vec<(PaymentStatus, i64)>> {
    let rows: Vec<(PaymentStatus, i64)> = payments::table
        .group_by(payments::status)
        .select((payments::status, count_star()))
        .load(conn)?;
    Ok(PaymentStatus::ALL
        .iter()
        .map(|&status| (status, db::count_of(&rows, status)))
        .collect())
}

/// An imported statement file.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, Queryable, Selectable, utoipa::ToSchema,
)]
#[diesel(table_name = statements)]
#[schema(as = Statement)]
pub struct StatementView {
    pub id: String,
    /// `camt.053`, `camt.054`, `cbi-camt.053` or `postal-csv`.
    #[schema(example = "camt.053")]
    pub format: String,
    #[schema(example = "camt.053.001.02")]
    pub version: String,
    /// The message id the file declares, if any.
    pub message_id: Option<String>,
    pub file_name: Option<String>,
    pub entries: i32,
    pub new_entries: i32,
    pub ignored_entries: i32,
    /// The operator's user id.
    pub imported_by: String,
    #[diesel(deserialize_as = db::UtcTimestamp)]
    pub imported_at: DateTime<Utc>,
}

/// A page of the brand's imported statements, newest first, and how many there are.
pub fn statements(
    conn: &mut DbConnection,
    brand_id: &str,
    page: Page,
) -> anyhow::Result<Paged<StatementView>> {
    let of_brand = || statements::table.filter(statements::brand_id.eq(brand_id));
    Ok(db::load_page(conn, page, of_brand, |query| {
        query
            .order((statements::imported_at.desc(), statements::id.desc()))
            .select(StatementView::as_select())
    })?)
}
