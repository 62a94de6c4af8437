//! Topping up the prepaid account by transfer: the customer says how much they will pay,
//! gets an RF code and the bank details by email, and whatever arrives with that code is
//! credited to the account when the back-office imports the statement.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::{account_of_owner, Buyer, PrepaidError};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands;
use crate::card::store as card_store;
use crate::card::{CardPayment, CardSettings, CardTarget};
use crate::db::schema::top_ups;
use crate::db::{self, write_transaction, DbConnection};
use crate::mail::outbox;
use crate::money::{Money, PositiveMoney};
use crate::paging::{Page, Paged};
use crate::transfer::reservation::{self as reservations, Instructions, Purpose, Target};
use crate::transfer::{CreditorReference, PaymentMethod};

text_enum!(
    TopUpStatus {
        AwaitingPayment => "awaiting_payment",
        Paid => "paid",
        Expired => "expired",
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    pub id: String,
    pub brand_id: String,
    pub user_id: String,
    pub account_id: String,
    pub status: TopUpStatus,
    pub payment_method: PaymentMethod,
    pub amount: Money,
    pub received: Money,
    /// The RF code of a top-up by transfer; none for a top-up by card.
    pub payment_reference: Option<CreditorReference>,
    pub reserved_until: DateTime<Utc>,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// A method a top-up is not paid by.
#[derive(Debug, thiserror::Error)]
#[error("must be bank_transfer, postal_slip or cheque, or card when card payments are offered")]
pub struct MethodNotOffered;

impl crate::validation::Rule for MethodNotOffered {
    fn rule(&self) -> &'static str {
        "one_of"
    }
}

/// How a top-up may be paid: by transfer (bank transfer, postal slip, cheque), or by card
/// when a provider is configured; never from the account it tops up.
pub fn offered_method(
    method: PaymentMethod,
    card_offered: bool,
) -> Result<PaymentMethod, MethodNotOffered> {
    if method.is_transfer() || (method == PaymentMethod::Card && card_offered) {
        Ok(method)
    } else {
        Err(MethodNotOffered)
    }
}

/// Asks for a top-up of `amount` paid by `method`: by transfer, with an RF code held for
/// `reservation` ([`request`]); by card, on the provider's page ([`request_by_card`]) when
/// `card` says how. Any other method is refused ([`offered_method`]).
pub fn place(
    conn: &mut DbConnection,
    buyer: &Buyer,
    amount: PositiveMoney,
    method: PaymentMethod,
    reservation: Duration,
    card: Option<&CardSettings>,
    now: DateTime<Utc>,
) -> Result<(TopUp, Option<CardPayment>), PrepaidError> {
    match (method, card) {
        (PaymentMethod::Card, Some(card)) => {
            let (top_up, payment) = request_by_card(conn, buyer, amount, card, now)?;
            Ok((top_up, Some(payment)))
        }
        (method, _) if method.is_transfer() => {
            let top_up = request(conn, buyer, amount, method, reservation, now)?;
            Ok((top_up, None))
        }
        _ => Err(MethodNotOffered.into()),
    }
}

pub fn request(
    conn: &mut DbConnection,
    buyer: &Buyer,
    amount: PositiveMoney,
    method: PaymentMethod,
    reservation: Duration,
    now: DateTime<Utc>,
) -> Result<TopUp, PrepaidError> {
    debug_assert!(method.is_transfer());
    write_transaction(conn, |conn| {
        let brand = brands::existing(conn, buyer.brand_id.as_str())?;
        let account = account_of_owner(conn, buyer.user_id.as_str())?;
        let id = Uuid::now_v7().to_string();
        let reserved_until = now + reservation;
        // The reference is known only once reserved, inside the reservation.
        let without_reference = NewTopUp {
            id: &id,
            buyer,
            account_id: &account.id,
            method,
            amount: amount.money(),
            reference: None,
            reserved_until,
        };
        let reference = reservations::reserve(
            conn,
            buyer.brand_id.as_str(),
            now,
            |conn, reference| -> Result<Target, PrepaidError> {
                let top_up = NewTopUp {
                    reference: Some(reference),
                    ..without_reference
                };
                insert(conn, &top_up, now)?;
                Ok(Target::TopUp(id.clone()))
            },
        )?;
        let instructions = Instructions {
            brand: &brand,
            recipient_name: buyer.name.as_str(),
            recipient_email: buyer.email.as_str(),
            method,
            amount: amount.money(),
            reference: &reference,
            reserved_until,
            purpose: Purpose::TopUp { top_up_id: &id },
        };
        outbox::enqueue(conn, &instructions.email(), now)?;
        let top_up = NewTopUp {
            reference: Some(&reference),
            ..without_reference
        };
        top_up.record_requested(conn, ("payment_reference", json!(reference.as_str())), now)?;
        Ok(top_up.stored(now))
    })
}

/// A top-up about to be stored.
#[derive(Clone, Copy)]
struct NewTopUp<'a> {
    id: &'a str,
    buyer: &'a Buyer,
    account_id: &'a str,
    method: PaymentMethod,
    amount: Money,
    reference: Option<&'a CreditorReference>,
    reserved_until: DateTime<Utc>,
}

impl NewTopUp<'_> {
    /// The audit entry of a request, by transfer or by card alike, so both say the same;
    /// `paid_with` names how it will be paid (the RF code, or the card payment's id).
    fn record_requested(
        &self,
        conn: &mut DbConnection,
        (paid_with, value): (&str, serde_json::Value),
        now: DateTime<Utc>,
    ) -> QueryResult<()> {
        let mut details = json!({
            "amount": self.amount.to_string(),
            "payment_method": self.method.as_str(),
        });
        details[paid_with] = value;
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(self.buyer.brand_id.as_str()),
                actor: &Actor::User(self.buyer.user_id.as_str().to_owned()),
                action: "top_up.requested",
                subject_type: "top_up",
                subject_id: self.id,
                details,
            },
            now,
        )
    }

    /// The top-up as [`insert`] stored it, without reading it back.
    fn stored(&self, now: DateTime<Utc>) -> TopUp {
        TopUp {
            id: self.id.to_owned(),
            brand_id: self.buyer.brand_id.as_str().to_owned(),
            user_id: self.buyer.user_id.as_str().to_owned(),
            account_id: self.account_id.to_owned(),
            status: TopUpStatus::AwaitingPayment,
            payment_method: self.method,
            amount: self.amount,
            received: Money::ZERO,
            payment_reference: self.reference.cloned(),
            reserved_until: self.reserved_until,
            email: self.buyer.email.to_string(),
            created_at: now,
            paid_at: None,
        }
    }
}

fn insert(conn: &mut DbConnection, top_up: &NewTopUp<'_>, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::insert_into(top_ups::table)
        .values((
            top_ups::id.eq(top_up.id),
            top_ups::brand_id.eq(top_up.buyer.brand_id.as_str()),
            top_ups::user_id.eq(top_up.buyer.user_id.as_str()),
            top_ups::account_id.eq(top_up.account_id),
            top_ups::status.eq(TopUpStatus::AwaitingPayment.as_str()),
            top_ups::payment_method.eq(top_up.method.as_str()),
            top_ups::amount_cents.eq(top_up.amount.cents()),
            top_ups::received_cents.eq(0i64),
            top_ups::payment_reference.eq(top_up.reference.map(|r| r.as_str())),
            top_ups::reserved_until.eq(top_up.reserved_until.naive_utc()),
            top_ups::email.eq(top_up.buyer.email.as_str()),
            top_ups::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Asks for a top-up paid by card on the provider's page: it waits `awaiting_payment`,
/// its card payment stored `opening` (the page is opened after this transaction commits,
/// with `payments::card::sessions`), until the provider says it is paid (the account is
/// credited) or the page expired.
pub fn request_by_card(
    conn: &mut DbConnection,
    buyer: &Buyer,
    amount: PositiveMoney,
    card: &CardSettings,
    now: DateTime<Utc>,
) -> Result<(TopUp, CardPayment), PrepaidError> {
    write_transaction(conn, |conn| {
        let account = account_of_owner(conn, buyer.user_id.as_str())?;
        let id = Uuid::now_v7().to_string();
        let expires_at = now + card.session_lifetime;
        let top_up = NewTopUp {
            id: &id,
            buyer,
            account_id: &account.id,
            method: PaymentMethod::Card,
            amount: amount.money(),
            reference: None,
            reserved_until: expires_at,
        };
        insert(conn, &top_up, now)?;
        let payment = card_store::open(
            conn,
            card_store::NewCardPayment {
                brand_id: buyer.brand_id.as_str(),
                user_id: buyer.user_id.as_str(),
                target: CardTarget::TopUp(id.clone()),
                provider: card.provider.name(),
                amount: amount.money(),
                expires_at,
            },
            now,
        )?;
        top_up.record_requested(conn, ("card_payment_id", json!(payment.id)), now)?;
        Ok((top_up.stored(now), payment))
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = top_ups)]
struct TopUpRow {
    id: String,
    brand_id: String,
    user_id: String,
    account_id: String,
    status: TopUpStatus,
    payment_method: PaymentMethod,
    amount_cents: i64,
    received_cents: i64,
    payment_reference: Option<CreditorReference>,
    reserved_until: NaiveDateTime,
    email: String,
    created_at: NaiveDateTime,
    paid_at: Option<NaiveDateTime>,
}

fn from_row(row: TopUpRow) -> TopUp {
    TopUp {
        status: row.status,
        payment_method: row.payment_method,
        payment_reference: row.payment_reference,
        id: row.id,
        brand_id: row.brand_id,
        user_id: row.user_id,
        account_id: row.account_id,
        amount: Money::from_cents(row.amount_cents),
        received: Money::from_cents(row.received_cents),
        reserved_until: row.reserved_until.and_utc(),
        email: row.email,
        created_at: row.created_at.and_utc(),
        paid_at: row.paid_at.map(|t| t.and_utc()),
    }
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<TopUp>, PrepaidError> {
    let row: Option<TopUpRow> = top_ups::table
        .filter(top_ups::id.eq(id))
        .select(TopUpRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(from_row))
}

/// A page of the user's top-ups, newest first, and how many they have.
pub fn list_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    page: Page,
) -> Result<Paged<TopUp>, PrepaidError> {
    let of_user = || top_ups::table.filter(top_ups::user_id.eq(user_id));
    let rows = db::load_page(conn, page, of_user, |query| {
        query
            .order((top_ups::created_at.desc(), top_ups::id.desc()))
            .select(TopUpRow::as_select())
    })?;
    Ok(rows.map(from_row))
}

/// Top-ups by id, locked for update on PostgreSQL until the caller's transaction ends.
pub fn lock_many(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<TopUp>, PrepaidError> {
    // The query is written inside the macro: each backend's arm infers its own selection.
    let rows: Vec<TopUpRow> = for_update!(
        conn,
        top_ups::table
            .filter(top_ups::id.eq_any(ids))
            .order(top_ups::id.asc())
            .select(TopUpRow::as_select()),
        |q, c| q.load(c)
    )?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Records money received for a top-up (the account itself is credited by the caller).
pub fn record_received(
    conn: &mut DbConnection,
    id: &str,
    received: Money,
    status: TopUpStatus,
    paid_at: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    let paid_at = paid_at.map(|t| t.naive_utc());
    diesel::update(top_ups::table.filter(top_ups::id.eq(id)))
        .set((
            top_ups::received_cents.eq(received.cents()),
            top_ups::status.eq(status.as_str()),
            top_ups::paid_at.eq(paid_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The bank took back `amount` of what the top-up had received (a reversal; the account
/// is debited by the caller).
pub fn take_back(conn: &mut DbConnection, id: &str, amount: Money) -> QueryResult<()> {
    diesel::update(top_ups::table.filter(top_ups::id.eq(id)))
        .set(top_ups::received_cents.eq(top_ups::received_cents - amount.cents()))
        .execute(conn)?;
    Ok(())
}

awaiting_payment_expiry!(top_ups, TopUpStatus, "top-up");
