//! The one writer of `card_payments`, `card_events` and `card_refunds`: every move of a
//! card payment is a named, conditional update here, so that a notification and the
//! worker racing over the same payment change it once.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::{CardPayment, CardStatus, CardTarget};
use crate::db::schema::{card_events, card_payments, card_refunds};
use crate::db::{self, DbConnection};
use crate::money::Money;
use crate::paging::{Page, Paged};

/// A card payment about to be stored, in the checkout's transaction.
pub struct NewCardPayment<'a> {
    pub brand_id: &'a str,
    pub user_id: &'a str,
    pub target: CardTarget,
    pub provider: &'a str,
    pub amount: Money,
    pub expires_at: DateTime<Utc>,
}

/// The currency of every price in rinnovo.
pub const CURRENCY: &str = "EUR";

/// Stores a card payment `opening`: its session is created at the provider after the
/// checkout's transaction commits (by `payments::card::sessions`, above).
pub fn open(
    conn: &mut DbConnection,
    new: NewCardPayment<'_>,
    now: DateTime<Utc>,
) -> QueryResult<CardPayment> {
    let id = Uuid::new_v4().to_string();
    let (order_id, top_up_id) = match &new.target {
        CardTarget::Order(id) => (Some(id.as_str()), None),
        CardTarget::TopUp(id) => (None, Some(id.as_str())),
    };
    diesel::insert_into(card_payments::table)
        .values((
            card_payments::id.eq(&id),
            card_payments::brand_id.eq(new.brand_id),
            card_payments::user_id.eq(new.user_id),
            card_payments::order_id.eq(order_id),
            card_payments::top_up_id.eq(top_up_id),
            card_payments::provider.eq(new.provider),
            card_payments::amount_cents.eq(new.amount.cents()),
            card_payments::currency.eq(CURRENCY),
            card_payments::status.eq(CardStatus::Opening.as_str()),
            card_payments::refunded_cents.eq(0i64),
            card_payments::expires_at.eq(new.expires_at.naive_utc()),
            card_payments::next_check_at.eq(now.naive_utc()),
            card_payments::checks.eq(0),
            card_payments::created_at.eq(now.naive_utc()),
            card_payments::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    find(conn, &id).map(|found| found.expect("just stored"))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = card_payments)]
struct Row {
    id: String,
    brand_id: String,
    user_id: String,
    order_id: Option<String>,
    top_up_id: Option<String>,
    provider: String,
    amount_cents: i64,
    currency: String,
    status: CardStatus,
    session_id: Option<String>,
    checkout_url: Option<String>,
    provider_payment_id: Option<String>,
    paid_cents: Option<i64>,
    paid_currency: Option<String>,
    refunded_cents: i64,
    note: Option<String>,
    expires_at: NaiveDateTime,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

fn from_row(row: Row) -> CardPayment {
    let target = match (row.order_id, row.top_up_id) {
        (Some(order), _) => CardTarget::Order(order),
        (None, top_up) => CardTarget::TopUp(top_up.unwrap_or_default()),
    };
    CardPayment {
        status: row.status,
        id: row.id,
        brand_id: row.brand_id,
        user_id: row.user_id,
        target,
        provider: row.provider,
        amount: Money::from_cents(row.amount_cents),
        currency: row.currency,
        session_id: row.session_id,
        checkout_url: row.checkout_url,
        provider_payment_id: row.provider_payment_id,
        paid_cents: row.paid_cents,
        paid_currency: row.paid_currency,
        refunded: Money::from_cents(row.refunded_cents),
        note: row.note,
        expires_at: row.expires_at.and_utc(),
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
    }
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<CardPayment>> {
    first(conn, By::Id(id))
}

/// The card payment of an order, if it was paid (or is to be paid) by card.
pub fn of_order(conn: &mut DbConnection, order_id: &str) -> QueryResult<Option<CardPayment>> {
    first(conn, By::Order(order_id))
}

pub fn of_top_up(conn: &mut DbConnection, top_up_id: &str) -> QueryResult<Option<CardPayment>> {
    first(conn, By::TopUp(top_up_id))
}

/// How a card payment is looked for.
enum By<'a> {
    Id(&'a str),
    Order(&'a str),
    TopUp(&'a str),
}

fn first(conn: &mut DbConnection, by: By<'_>) -> QueryResult<Option<CardPayment>> {
    let query = card_payments::table.select(Row::as_select()).into_boxed();
    let query = match by {
        By::Id(id) => query.filter(card_payments::id.eq(id.to_owned())),
        By::Order(id) => query.filter(card_payments::order_id.eq(id.to_owned())),
        By::TopUp(id) => query.filter(card_payments::top_up_id.eq(id.to_owned())),
    };
    Ok(query.first(conn).optional()?.map(from_row))
}

/// The card payment, locked until the transaction ends (PostgreSQL; SQLite's writer lock
/// already excludes every other writer).
pub fn lock(conn: &mut DbConnection, id: &str) -> QueryResult<Option<CardPayment>> {
    // The query is written inside the macro: each backend's arm infers its own selection.
    let row: Option<Row> = for_update!(
        conn,
        card_payments::table
            .filter(card_payments::id.eq(id))
            .select(Row::as_select()),
        |q, c| q.first(c).optional()
    )?;
    Ok(row.map(from_row))
}

/// The card payment of a provider's session, locked as [`lock`] does.
pub fn lock_by_session(
    conn: &mut DbConnection,
    provider: &str,
    session_id: &str,
) -> QueryResult<Option<CardPayment>> {
    let row: Option<Row> = for_update!(
        conn,
        card_payments::table
            .filter(card_payments::provider.eq(provider))
            .filter(card_payments::session_id.eq(session_id))
            .select(Row::as_select()),
        |q, c| q.first(c).optional()
    )?;
    Ok(row.map(from_row))
}

/// `opening` → `open`: the provider's session exists. False if another request stored it
/// first (the provider answered both with the same session: same idempotency key).
pub fn session_opened(
    conn: &mut DbConnection,
    id: &str,
    session_id: &str,
    checkout_url: &str,
    check_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(
        card_payments::table
            .filter(card_payments::id.eq(id))
            .filter(card_payments::status.eq(CardStatus::Opening.as_str())),
    )
    .set((
        card_payments::status.eq(CardStatus::Open.as_str()),
        card_payments::session_id.eq(session_id),
        card_payments::checkout_url.eq(checkout_url),
        card_payments::next_check_at.eq(check_at.naive_utc()),
        card_payments::updated_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// What the provider says was paid.
pub struct PaidAtProvider<'a> {
    pub payment_id: Option<&'a str>,
    pub cents: i64,
    pub currency: &'a str,
}

/// A waiting payment is paid: `paid` when it settled its order or top-up, `held` (with
/// the reason) when it could not. False if it was no longer waiting.
pub fn record_paid(
    conn: &mut DbConnection,
    id: &str,
    paid: &PaidAtProvider<'_>,
    held_because: Option<&str>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let status = if held_because.is_some() {
        CardStatus::Held
    } else {
        CardStatus::Paid
    };
    let changed = diesel::update(
        card_payments::table
            .filter(card_payments::id.eq(id))
            .filter(card_payments::status.eq_any(waiting())),
    )
    .set((
        card_payments::status.eq(status.as_str()),
        card_payments::provider_payment_id.eq(paid.payment_id),
        card_payments::paid_cents.eq(Some(paid.cents)),
        card_payments::paid_currency.eq(Some(paid.currency)),
        card_payments::note.eq(held_because),
        card_payments::updated_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// A waiting payment ended unpaid (`expired` or `failed`). False if it was no longer
/// waiting.
pub fn end(
    conn: &mut DbConnection,
    id: &str,
    status: CardStatus,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    debug_assert!(matches!(status, CardStatus::Expired | CardStatus::Failed));
    let changed = diesel::update(
        card_payments::table
            .filter(card_payments::id.eq(id))
            .filter(card_payments::status.eq_any(waiting())),
    )
    .set((
        card_payments::status.eq(status.as_str()),
        card_payments::updated_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

fn waiting() -> [&'static str; 2] {
    [CardStatus::Opening.as_str(), CardStatus::Open.as_str()]
}

/// The worker asked and the payment is still waiting: ask again at `next`.
pub fn check_later(
    conn: &mut DbConnection,
    id: &str,
    next: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(card_payments::table.filter(card_payments::id.eq(id)))
        .set((
            card_payments::next_check_at.eq(next.naive_utc()),
            card_payments::checks.eq(card_payments::checks + 1),
            card_payments::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Waiting payments the worker should ask the provider about: (id, session id, checks).
pub fn due_for_check(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<(String, Option<String>, i32)>> {
    card_payments::table
        .filter(card_payments::status.eq_any(waiting()))
        .filter(card_payments::next_check_at.le(now.naive_utc()))
        .order((card_payments::next_check_at.asc(), card_payments::id.asc()))
        .limit(limit)
        .select((
            card_payments::id,
            card_payments::session_id,
            card_payments::checks,
        ))
        .load(conn)
}

/// Card payments of a brand, newest first, optionally of one status.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    status: Option<CardStatus>,
    page: Page,
) -> QueryResult<Paged<CardPayment>> {
    let query = || {
        let mut query = card_payments::table
            .filter(card_payments::brand_id.eq(brand_id.to_owned()))
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(card_payments::status.eq(status.as_str()));
        }
        query
    };
    let rows = db::load_page(conn, page, query, |query| {
        query
            .order((card_payments::created_at.desc(), card_payments::id.desc()))
            .select(Row::as_select())
    })?;
    Ok(rows.map(from_row))
}

// ---- notifications ----

/// Records that event `event_id` of `provider` is being applied. False if it was
/// recorded before: a redelivery, to be acknowledged without applying it again. In the
/// transaction that applies it, so an event whose application fails is not recorded and
/// the provider's next delivery tries again. Of two deliveries at once, PostgreSQL makes
/// the second wait for the first's commit, then finds the row.
pub fn record_event(
    conn: &mut DbConnection,
    provider: &str,
    event_id: &str,
    kind: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let row = (
        card_events::provider.eq(provider),
        card_events::event_id.eq(event_id),
        card_events::kind.eq(kind),
        card_events::outcome.eq("received"),
        card_events::received_at.eq(now.naive_utc()),
    );
    let inserted = insert_or_skip!(conn, card_events::table, row)?;
    Ok(inserted == 1)
}

/// What applying the event did.
pub fn event_outcome(
    conn: &mut DbConnection,
    provider: &str,
    event_id: &str,
    outcome: &str,
    card_payment_id: Option<&str>,
) -> QueryResult<()> {
    diesel::update(
        card_events::table
            .filter(card_events::provider.eq(provider))
            .filter(card_events::event_id.eq(event_id)),
    )
    .set((
        card_events::outcome.eq(outcome),
        card_events::card_payment_id.eq(card_payment_id),
    ))
    .execute(conn)
    .map(|_| ())
}

// ---- refunds ----

text_enum!(
    /// A refund as an outbox row: waiting to be sent (or sent again), sent, or given up.
    RefundStatus {
        Pending => "pending",
        Sent => "sent",
        Dead => "dead",
    }
);

leased_outbox!(card_refunds, RefundStatus);

/// A refund the back-office asked for.
pub struct NewRefund<'a> {
    pub brand_id: &'a str,
    pub card_payment_id: &'a str,
    pub amount: Money,
    pub coupons: i32,
    pub credit_note_id: Option<&'a str>,
    pub reason: &'a str,
    pub operator_id: &'a str,
}

/// Stores the refund, to be sent to the provider, and counts it against the payment.
pub fn add_refund(
    conn: &mut DbConnection,
    new: NewRefund<'_>,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = Uuid::new_v4().to_string();
    diesel::insert_into(card_refunds::table)
        .values((
            card_refunds::id.eq(&id),
            card_refunds::brand_id.eq(new.brand_id),
            card_refunds::card_payment_id.eq(new.card_payment_id),
            card_refunds::amount_cents.eq(new.amount.cents()),
            card_refunds::coupons.eq(new.coupons),
            card_refunds::credit_note_id.eq(new.credit_note_id),
            card_refunds::reason.eq(new.reason),
            card_refunds::operator_id.eq(new.operator_id),
            card_refunds::status.eq(RefundStatus::Pending.as_str()),
            card_refunds::attempts.eq(0),
            card_refunds::next_attempt_at.eq(now.naive_utc()),
            card_refunds::created_at.eq(now.naive_utc()),
            card_refunds::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    diesel::update(card_payments::table.filter(card_payments::id.eq(new.card_payment_id)))
        .set((
            card_payments::refunded_cents.eq(card_payments::refunded_cents + new.amount.cents()),
            card_payments::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
}

/// A refund as the sender and the back-office read it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = card_refunds)]
pub struct RefundRow {
    pub id: String,
    pub card_payment_id: String,
    pub amount_cents: i64,
    pub coupons: i32,
    pub credit_note_id: Option<String>,
    pub reason: String,
    pub operator_id: String,
    pub status: RefundStatus,
    pub provider_refund_id: Option<String>,
    pub provider_status: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn refunds_of(conn: &mut DbConnection, card_payment_id: &str) -> QueryResult<Vec<RefundRow>> {
    card_refunds::table
        .filter(card_refunds::card_payment_id.eq(card_payment_id))
        .order((card_refunds::created_at.asc(), card_refunds::id.asc()))
        .select(RefundRow::as_select())
        .load(conn)
}

/// A refund leased to be sent, with what the provider needs.
#[derive(Debug, Queryable)]
pub struct DueRefund {
    pub id: String,
    /// The provider's payment it refunds part of.
    pub payment_id: Option<String>,
    pub amount_cents: i64,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Leases up to `limit` refunds due to be sent.
pub fn lease_refunds(
    conn: &mut DbConnection,
    limit: i64,
    lease: chrono::Duration,
    now: DateTime<Utc>,
) -> QueryResult<Vec<DueRefund>> {
    let ids = lease_due(conn, limit, lease, now)?;
    card_refunds::table
        .inner_join(card_payments::table)
        .filter(card_refunds::id.eq_any(&ids))
        .select((
            card_refunds::id,
            card_payments::provider_payment_id,
            card_refunds::amount_cents,
            card_refunds::attempts,
        ))
        .load(conn)
}

/// The provider took the refund (`provider_status` as it answered).
pub fn refund_sent(
    conn: &mut DbConnection,
    id: &str,
    provider_refund_id: &str,
    provider_status: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(card_refunds::table.filter(card_refunds::id.eq(id)))
        .set((
            card_refunds::status.eq(RefundStatus::Sent.as_str()),
            card_refunds::provider_refund_id.eq(Some(provider_refund_id)),
            card_refunds::claimed_until.eq(None::<NaiveDateTime>),
            card_refunds::last_error.eq(None::<String>),
            card_refunds::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    // A notification may have told the refund's state before this answer arrived: it
    // is newer than the answer and stays.
    diesel::update(
        card_refunds::table
            .filter(card_refunds::id.eq(id))
            .filter(card_refunds::provider_status.is_null()),
    )
    .set(card_refunds::provider_status.eq(Some(provider_status)))
    .execute(conn)
    .map(|_| ())
}

/// A failed attempt to send the refund; true if it is now given up (`dead`).
pub fn refund_failed(
    conn: &mut DbConnection,
    id: &str,
    attempts: i32,
    error: &str,
    retry: &crate::workers::RetryPolicy,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    release_failed(conn, id, attempts, error, retry, now)
}

/// A dead refund back in the queue (the back-office retries it).
pub fn retry_refund(
    conn: &mut DbConnection,
    brand_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    requeue_dead(conn, brand_id, id, now)
}

/// What a refund notification said: the refund's state at the provider, found by the
/// provider's id or by ours. False if no refund of ours matches.
pub fn record_refund_state(
    conn: &mut DbConnection,
    provider_refund_id: &str,
    our_id: Option<&str>,
    provider_status: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let by_theirs = diesel::update(
        card_refunds::table.filter(card_refunds::provider_refund_id.eq(provider_refund_id)),
    )
    .set((
        card_refunds::provider_status.eq(Some(provider_status)),
        card_refunds::updated_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    if by_theirs > 0 {
        return Ok(true);
    }
    let Some(our_id) = our_id else {
        return Ok(false);
    };
    // The notification came before the provider's answer to our request.
    let by_ours = diesel::update(card_refunds::table.filter(card_refunds::id.eq(our_id)))
        .set((
            card_refunds::provider_refund_id.eq(Some(provider_refund_id)),
            card_refunds::provider_status.eq(Some(provider_status)),
            card_refunds::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(by_ours > 0)
}

/// Counts for the metrics: card payments by status, notifications by outcome, refunds by
/// what the provider says of them (`requested` while not yet answered).
pub struct Stats {
    pub payments: Vec<(CardStatus, i64)>,
    pub events: Vec<(String, i64)>,
    pub refunds: Vec<(String, i64)>,
}

pub fn stats(conn: &mut DbConnection) -> QueryResult<Stats> {
    use diesel::dsl::count_star;
    let payments = card_payments::table
        .group_by(card_payments::status)
        .select((card_payments::status, count_star()))
        .load(conn)?;
    let events = card_events::table
        .group_by(card_events::outcome)
        .select((card_events::outcome, count_star()))
        .load(conn)?;
    let refunds: Vec<(Option<String>, i64)> = card_refunds::table
        .group_by(card_refunds::provider_status)
        .select((card_refunds::provider_status, count_star()))
        .load(conn)?;
    Ok(Stats {
        payments,
        events,
        refunds: refunds
            .into_iter()
            .map(|(status, n)| (status.unwrap_or_else(|| "requested".into()), n))
            .collect(),
    })
}
