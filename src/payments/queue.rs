//! The back-office's work on payments: the list with filters and totals, the daily
//! summary, matching an unmatched payment by hand to an order or a prepaid account, and
//! marking one refunded. Every manual action needs a reason, takes the brand's payments
//! lock (as the import does), and is in the audit log.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::json;

use super::matching::{decide, Payable, PayableKind, PaymentStatus, Standing};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::coupons::CouponKey;
use crate::db::schema::{orders, payments, statements, users};
use crate::db::{self, write_transaction, DbConnection};
use crate::money::Money;
use crate::orders::{self as order_domain, fulfilment, OrderStatus};
use crate::prepaid::{self, EntryKind, Posting, PrepaidError};
use crate::validation::Reason;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentView {
    pub id: String,
    pub statement_id: String,
    pub direction: String,
    pub status: PaymentStatus,
    pub reason: Option<String>,
    pub amount: Money,
    pub booking_date: NaiveDate,
    pub value_date: Option<NaiveDate>,
    pub account: String,
    pub bank_reference: Option<String>,
    pub payer_name: Option<String>,
    pub remittance: String,
    pub reference: Option<String>,
    pub order_id: Option<String>,
    pub top_up_id: Option<String>,
    pub account_id: Option<String>,
    pub applied: Money,
    pub credited: Money,
    pub reverses_payment_id: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution_note: Option<String>,
    pub created_at: DateTime<Utc>,
}

type ViewRow = (
    (
        String,
        String,
        String,
        String,
        String,
        i64,
        NaiveDate,
        Option<NaiveDate>,
        String,
        Option<String>,
        Option<String>,
        String,
    ),
    (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
        i64,
        Option<String>,
        Option<String>,
        Option<NaiveDateTime>,
        Option<String>,
        NaiveDateTime,
    ),
);

columns!(
    HEAD_COLUMNS = (
        payments::id,
        payments::statement_id,
        payments::direction,
        payments::status,
        payments::reason,
        payments::amount_cents,
        payments::booking_date,
        payments::value_date,
        payments::account,
        payments::bank_reference,
        payments::payer_name,
        payments::remittance,
    )
);

columns!(
    TAIL_COLUMNS = (
        payments::reference,
        payments::order_id,
        payments::top_up_id,
        payments::account_id,
        payments::applied_cents,
        payments::credited_cents,
        payments::reverses_payment_id,
        payments::resolved_by,
        payments::resolved_at,
        payments::resolution_note,
        payments::created_at,
    )
);

fn view(row: ViewRow) -> anyhow::Result<PaymentView> {
    let (
        (
            id,
            statement_id,
            direction,
            status,
            reason,
            amount,
            booking_date,
            value_date,
            account,
            bank_reference,
            payer_name,
            remittance,
        ),
        (
            reference,
            order_id,
            top_up_id,
            account_id,
            applied,
            credited,
            reverses,
            resolved_by,
            resolved_at,
            note,
            created_at,
        ),
    ) = row;
    Ok(PaymentView {
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("payment {id}: status {status}"))?,
        id,
        statement_id,
        direction,
        reason: (!reason.is_empty()).then_some(reason),
        amount: Money::from_cents(amount),
        booking_date,
        value_date,
        account,
        bank_reference,
        payer_name,
        remittance,
        reference,
        order_id,
        top_up_id,
        account_id,
        applied: Money::from_cents(applied),
        credited: Money::from_cents(credited),
        reverses_payment_id: reverses,
        resolved_by,
        resolved_at: resolved_at.map(|t| t.and_utc()),
        resolution_note: note,
        created_at: created_at.and_utc(),
    })
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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub count: i64,
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
    limit: i64,
    offset: i64,
) -> anyhow::Result<(Vec<PaymentView>, Totals)> {
    let rows: Vec<ViewRow> = filtered(brand_id, filter)
        .order((payments::booking_date.asc(), payments::id.asc()))
        .limit(limit)
        .offset(offset)
        .select((HEAD_COLUMNS, TAIL_COLUMNS))
        .load(conn)?;
    let (count, sum): (i64, i64) = filtered(brand_id, filter)
        .select((count_star(), sql::<BigInt>(SUM_AMOUNT)))
        .first(conn)?;
    Ok((
        rows.into_iter().map(view).collect::<anyhow::Result<_>>()?,
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
    payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::id.eq(id))
        .select((HEAD_COLUMNS, TAIL_COLUMNS))
        .first::<ViewRow>(conn)
        .optional()?
        .map(view)
        .transpose()
}

/// Count and sum per status of the payments booked on `date`.
pub fn daily_summary(
    conn: &mut DbConnection,
    brand_id: &str,
    date: NaiveDate,
) -> anyhow::Result<Vec<(PaymentStatus, Totals)>> {
    let rows: Vec<(String, i64, i64)> = payments::table
        .filter(payments::brand_id.eq(brand_id))
        .filter(payments::booking_date.eq(date))
        .group_by(payments::status)
        .order(payments::status.asc())
        .select((payments::status, count_star(), sql::<BigInt>(SUM_AMOUNT)))
        .load(conn)?;
    rows.into_iter()
        .map(|(status, count, sum)| {
            Ok((
                PaymentStatus::parse(&status).ok_or_else(|| anyhow::anyhow!("status {status}"))?,
                Totals {
                    count,
                    amount: Money::from_cents(sum),
                },
            ))
        })
        .collect()
}

/// How many stored payments are in each status, all brands (for the metrics); every
/// status is listed, with 0 when none. Reads the `(brand_id, status, ...)` index.
pub fn count_by_status(conn: &mut DbConnection) -> QueryResult<Vec<(PaymentStatus, i64)>> {
    let rows: Vec<(String, i64)> = payments::table
        .group_by(payments::status)
        .select((payments::status, count_star()))
        .load(conn)?;
    Ok(PaymentStatus::ALL
        .iter()
        .map(|&status| (status, db::count_of(&rows, status.as_str())))
        .collect())
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementView {
    pub id: String,
    pub format: String,
    pub version: String,
    pub message_id: Option<String>,
    pub file_name: Option<String>,
    pub entries: i32,
    pub new_entries: i32,
    pub ignored_entries: i32,
    pub imported_by: String,
    pub imported_at: DateTime<Utc>,
}

pub fn statements(
    conn: &mut DbConnection,
    brand_id: &str,
    limit: i64,
) -> anyhow::Result<Vec<StatementView>> {
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        i32,
        i32,
        i32,
        String,
        NaiveDateTime,
    );
    let rows: Vec<Row> = statements::table
        .filter(statements::brand_id.eq(brand_id))
        .order((statements::imported_at.desc(), statements::id.desc()))
        .limit(limit)
        .select((
            statements::id,
            statements::format,
            statements::version,
            statements::message_id,
            statements::file_name,
            statements::entries,
            statements::new_entries,
            statements::ignored_entries,
            statements::imported_by,
            statements::imported_at,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                format,
                version,
                message_id,
                file_name,
                entries,
                new_entries,
                ignored_entries,
                imported_by,
                imported_at,
            )| StatementView {
                id,
                format,
                version,
                message_id,
                file_name,
                entries,
                new_entries,
                ignored_entries,
                imported_by,
                imported_at: imported_at.and_utc(),
            },
        )
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    #[error("no payment of your brand has this id")]
    UnknownPayment,
    #[error("no order of your brand has this id")]
    UnknownOrder,
    #[error("only an unmatched credit can be matched by hand; this payment is {0}")]
    NotUnmatched(String),
    #[error(
        "only an unmatched, duplicate or overpaid credit can be refunded; this payment is {0}"
    )]
    NotRefundable(String),
    #[error("the order is {0}: only an order awaiting payment, expired or already paid can take a payment")]
    OrderNotPayable(String),
    #[error(transparent)]
    Prepaid(#[from] PrepaidError),
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for ManualError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(error.into())
    }
}

impl From<order_domain::OrderError> for ManualError {
    fn from(error: order_domain::OrderError) -> Self {
        Self::Storage(anyhow::anyhow!(error))
    }
}

/// Who acts, and why.
pub struct Operator<'a> {
    pub id: &'a str,
    pub brand_id: &'a str,
    pub reason: &'a Reason,
}

fn locked_payment(
    conn: &mut DbConnection,
    operator: &Operator<'_>,
    payment_id: &str,
) -> Result<PaymentView, ManualError> {
    super::reconcile::lock_payments_of_brand(conn, operator.brand_id)?;
    find(conn, operator.brand_id, payment_id)?.ok_or(ManualError::UnknownPayment)
}

fn resolve(
    conn: &mut DbConnection,
    operator: &Operator<'_>,
    payment: &PaymentView,
    changes: Resolution,
    now: DateTime<Utc>,
) -> Result<PaymentView, ManualError> {
    diesel::update(payments::table.filter(payments::id.eq(&payment.id)))
        .set((
            payments::status.eq(changes.status.as_str()),
            payments::reason.eq(""),
            payments::order_id.eq(changes.order_id.as_ref().or(payment.order_id.as_ref())),
            payments::account_id.eq(changes.account_id.as_ref().or(payment.account_id.as_ref())),
            payments::applied_cents.eq(changes.applied.cents()),
            payments::credited_cents.eq(changes.credited.cents()),
            payments::resolved_by.eq(Some(operator.id)),
            payments::resolved_at.eq(Some(now.naive_utc())),
            payments::resolution_note.eq(Some(operator.reason.as_str())),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(operator.brand_id),
            actor: &Actor::User(operator.id.to_owned()),
            action: changes.action,
            subject_type: "payment",
            subject_id: &payment.id,
            details: json!({
                "reason": operator.reason.as_str(),
                "previous_status": payment.status.as_str(),
                "status": changes.status.as_str(),
                "order_id": changes.order_id, "account_id": changes.account_id,
                "applied": changes.applied.to_string(), "credited": changes.credited.to_string(),
            }),
        },
        now,
    )?;
    // Read back as the operator will see it in the queue.
    find(conn, operator.brand_id, &payment.id)?.ok_or(ManualError::UnknownPayment)
}

struct Resolution {
    action: &'static str,
    status: PaymentStatus,
    order_id: Option<String>,
    account_id: Option<String>,
    applied: Money,
    credited: Money,
}

fn ensure_unmatched_credit(payment: &PaymentView) -> Result<(), ManualError> {
    if payment.status != PaymentStatus::Unmatched || payment.direction != "credit" {
        return Err(ManualError::NotUnmatched(
            payment.status.as_str().to_owned(),
        ));
    }
    Ok(())
}

/// Credits an unmatched payment to a prepaid account of the brand (a payer who forgot
/// the RF code, a late payment the customer wants as credit).
pub fn match_to_account(
    conn: &mut DbConnection,
    operator: &Operator<'_>,
    payment_id: &str,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<PaymentView, ManualError> {
    write_transaction(conn, |conn| {
        let payment = locked_payment(conn, operator, payment_id)?;
        ensure_unmatched_credit(&payment)?;
        let account = prepaid::account(conn, account_id)?;
        if account.brand_id != operator.brand_id {
            return Err(PrepaidError::UnknownAccount.into());
        }
        prepaid::post(
            conn,
            account_id,
            Posting {
                kind: EntryKind::TopUp,
                amount: payment.amount,
                description: "Versamento abbinato dall'amministrazione",
                reference: Some(&payment.id),
                actor_id: Some(operator.id),
            },
            now,
        )?;
        resolve(
            conn,
            operator,
            &payment,
            Resolution {
                action: "payment.matched_by_hand",
                status: PaymentStatus::Matched,
                order_id: None,
                account_id: Some(account_id.to_owned()),
                applied: Money::ZERO,
                credited: payment.amount,
            },
            now,
        )
    })
}

/// Applies an unmatched payment to an order of the brand as if it had carried its RF code,
/// with the reservation deadline waived (the operator decided): exact → fulfilled, less →
/// partial, more → fulfilled with the excess credited, already paid → credited.
pub fn match_to_order(
    conn: &mut DbConnection,
    operator: &Operator<'_>,
    key: &CouponKey,
    public_url: &str,
    payment_id: &str,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<PaymentView, ManualError> {
    write_transaction(conn, |conn| {
        let payment = locked_payment(conn, operator, payment_id)?;
        ensure_unmatched_credit(&payment)?;
        let order = order_domain::lock_many(conn, &[order_id.to_owned()])?
            .pop()
            .filter(|o| o.brand_id == operator.brand_id)
            .ok_or(ManualError::UnknownOrder)?;
        let standing = match order.status {
            OrderStatus::AwaitingPayment | OrderStatus::Expired => Standing::Open,
            OrderStatus::Paid | OrderStatus::Fulfilled => Standing::Paid,
            OrderStatus::Cancelled => {
                return Err(ManualError::OrderNotPayable(order.status.as_str().into()))
            }
        };
        let payable = Payable {
            kind: PayableKind::Order,
            standing,
            due: order.gross_total,
            // A partial payment credited away when the order expired no longer counts.
            received: order.received,
            reserved_until: DateTime::<Utc>::MAX_UTC,
        };
        let decision = decide(Some(&payable), payment.amount, payment.booking_date);
        let (name, account_id): (String, Option<String>) = users::table
            .left_join(
                crate::db::schema::prepaid_accounts::table
                    .on(crate::db::schema::prepaid_accounts::owner_id.eq(users::id)),
            )
            .filter(users::id.eq(&order.user_id))
            .select((
                users::name,
                crate::db::schema::prepaid_accounts::id.nullable(),
            ))
            .first(conn)?;
        if decision.credited.is_positive() {
            let account_id = account_id
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("user {} has no prepaid account", order.user_id))?;
            prepaid::post(
                conn,
                account_id,
                Posting {
                    kind: EntryKind::OverpaymentCredit,
                    amount: decision.credited,
                    description: "Eccedenza di pagamento (abbinato dall'amministrazione)",
                    reference: Some(&payment.id),
                    actor_id: Some(operator.id),
                },
                now,
            )?;
        }
        let received = payable.after(&decision).received;
        if decision.completes && standing == Standing::Open {
            let brand = brands::find(conn, operator.brand_id)?
                .ok_or_else(|| anyhow::anyhow!("brand {} missing", operator.brand_id))?;
            fulfilment::write(
                conn,
                key,
                &brand,
                &[fulfilment::Recipient::of(&order, &name)],
                public_url,
                now,
            )?;
            diesel::update(orders::table.filter(orders::id.eq(order_id)))
                .set((
                    orders::status.eq(OrderStatus::Fulfilled.as_str()),
                    orders::received_cents.eq(received.cents()),
                    orders::paid_at.eq(Some(now.naive_utc())),
                    orders::fulfilled_at.eq(Some(now.naive_utc())),
                    orders::closed_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
            order_domain::invoiced::assign_invoice_number(
                conn,
                order_id,
                operator.brand_id,
                &brand.invoice_series,
                now.year(),
            )?;
        } else if decision.applied.is_positive() {
            diesel::update(orders::table.filter(orders::id.eq(order_id)))
                .set((
                    orders::status.eq(OrderStatus::AwaitingPayment.as_str()),
                    orders::received_cents.eq(received.cents()),
                    orders::closed_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
        }
        resolve(
            conn,
            operator,
            &payment,
            Resolution {
                action: "payment.matched_by_hand",
                status: decision.status,
                order_id: Some(order_id.to_owned()),
                account_id: decision
                    .credited
                    .is_positive()
                    .then(|| account_id.clone())
                    .flatten(),
                applied: decision.applied,
                credited: decision.credited,
            },
            now,
        )
    })
}

/// The money went back to the payer (outside rinnovo). An unmatched payment simply leaves
/// the queue; for a duplicate or an overpayment, what had been credited to the prepaid
/// account is debited back (refused if the customer has spent it meanwhile).
pub fn refund(
    conn: &mut DbConnection,
    operator: &Operator<'_>,
    payment_id: &str,
    now: DateTime<Utc>,
) -> Result<PaymentView, ManualError> {
    write_transaction(conn, |conn| {
        let payment = locked_payment(conn, operator, payment_id)?;
        let refundable = payment.direction == "credit"
            && matches!(
                payment.status,
                PaymentStatus::Unmatched | PaymentStatus::Duplicate | PaymentStatus::Overpaid
            );
        if !refundable {
            return Err(ManualError::NotRefundable(
                payment.status.as_str().to_owned(),
            ));
        }
        if let (Some(account_id), true) = (&payment.account_id, payment.credited.is_positive()) {
            prepaid::post(
                conn,
                account_id,
                Posting {
                    kind: EntryKind::Adjustment,
                    amount: -payment.credited,
                    description: "Rimborso al versante",
                    reference: Some(&payment.id),
                    actor_id: Some(operator.id),
                },
                now,
            )?;
        }
        resolve(
            conn,
            operator,
            &payment,
            Resolution {
                action: "payment.refunded",
                status: PaymentStatus::Refunded,
                order_id: None,
                account_id: None,
                applied: payment.applied,
                credited: Money::ZERO,
            },
            now,
        )
    })
}
