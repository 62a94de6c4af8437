//! RF reservations: the code a payer quotes so that the money finds its order or top-up.
//!
//! Each code is random (not an order number someone could guess), registered in
//! `payment_references` whose primary key keeps it unique across orders and top-ups, and
//! announced by an email that says how much to pay, where, and by when.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde_json::json;

use super::{CreditorReference, PaymentMethod};
use crate::brands::Brand;
use crate::db::schema::payment_references;
use crate::db::DbConnection;
use crate::mail::outbox::OutgoingEmail;
use crate::mail::templates::EmailKind;
use crate::money::Money;

/// What an RF code pays for, and the words every email about it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Order(String),
    TopUp(String),
}

impl Target {
    /// The order's or the top-up's id.
    pub fn id(&self) -> &str {
        match self {
            Target::Order(id) | Target::TopUp(id) => id,
        }
    }

    /// What the payer pays for, as the instructions and the expiry notice say it.
    pub fn italian(&self) -> &'static str {
        match self {
            Target::Order(_) => "l'acquisto dei coupon di rinnovo",
            Target::TopUp(_) => "la ricarica del conto prepagato",
        }
    }

    /// What the payer may do instead, as the expiry notice says it.
    pub fn italian_again(&self) -> &'static str {
        match self {
            Target::Order(_) => "puoi fare un nuovo ordine",
            Target::TopUp(_) => "puoi chiedere una nuova ricarica",
        }
    }

    /// The subject type of its audit entries.
    pub fn subject_type(&self) -> &'static str {
        match self {
            Target::Order(_) => "order",
            Target::TopUp(_) => "top_up",
        }
    }
}

/// Draws a new code, lets `store` write the order or top-up that carries it, and registers
/// the code for that target, retrying with another code in the (1 in 10^16) case of a
/// collision. Each try is a savepoint, so a collision never spoils the caller's transaction.
pub fn reserve<E>(
    conn: &mut DbConnection,
    brand_id: &str,
    now: DateTime<Utc>,
    mut store: impl FnMut(&mut DbConnection, &CreditorReference) -> Result<Target, E>,
) -> Result<CreditorReference, E>
where
    E: From<DieselError>,
{
    const TRIES: usize = 3;
    for attempt in 1..=TRIES {
        let reference = CreditorReference::generate();
        let stored = conn.transaction(|conn| -> Result<(), Collision<E>> {
            let target = store(conn, &reference).map_err(Collision::Other)?;
            let (order_id, top_up_id) = match &target {
                Target::Order(id) => (Some(id.as_str()), None),
                Target::TopUp(id) => (None, Some(id.as_str())),
            };
            diesel::insert_into(payment_references::table)
                .values((
                    payment_references::reference.eq(reference.as_str()),
                    payment_references::brand_id.eq(brand_id),
                    payment_references::order_id.eq(order_id),
                    payment_references::top_up_id.eq(top_up_id),
                    payment_references::created_at.eq(now.naive_utc()),
                ))
                .execute(conn)?;
            Ok(())
        });
        match stored {
            Ok(()) => return Ok(reference),
            Err(Collision::Unique) if attempt < TRIES => continue,
            Err(Collision::Unique) => {
                return Err(E::from(DieselError::DatabaseError(
                    DatabaseErrorKind::UniqueViolation,
                    Box::new(format!("no free RF code after {TRIES} tries")),
                )))
            }
            Err(Collision::Other(e)) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

enum Collision<E> {
    Unique,
    Other(E),
}

impl<E: From<DieselError>> From<DieselError> for Collision<E> {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Unique,
            other => Self::Other(E::from(other)),
        }
    }
}

/// What the payer is paying for, as the instructions email says it.
pub enum Purpose<'a> {
    Order {
        order_id: &'a str,
        items: Vec<OrderedItem<'a>>,
    },
    TopUp {
        top_up_id: &'a str,
    },
}

/// A line of the order, as the instructions email lists it.
pub struct OrderedItem<'a> {
    pub product: &'a str,
    pub quantity: i32,
}

/// How to pay: amount, RF code, the brand's bank or postal account, deadline.
pub struct Instructions<'a> {
    pub brand: &'a Brand,
    pub recipient_name: &'a str,
    pub recipient_email: &'a str,
    pub method: PaymentMethod,
    pub amount: Money,
    pub reference: &'a CreditorReference,
    pub reserved_until: DateTime<Utc>,
    pub purpose: Purpose<'a>,
}

impl Instructions<'_> {
    pub fn email(&self) -> OutgoingEmail {
        let (target, lines) = match &self.purpose {
            Purpose::Order { order_id, items } => (
                Target::Order((*order_id).to_owned()),
                items
                    .iter()
                    .map(|i| json!({ "product": i.product, "quantity": i.quantity }))
                    .collect::<Vec<_>>(),
            ),
            Purpose::TopUp { top_up_id } => (Target::TopUp((*top_up_id).to_owned()), Vec::new()),
        };
        OutgoingEmail {
            brand_id: self.brand.id.clone(),
            kind: EmailKind::TransferInstructions,
            reference: Some(target.id().to_owned()),
            sender: self.brand.sender_address.clone(),
            recipient: self.recipient_email.to_owned(),
            context: json!({
                "name": self.recipient_name,
                "brand": self.brand.name,
                "what": target.italian(),
                "lines": lines,
                "amount": self.amount.to_string(),
                "reference": self.reference.printed(),
                "reference_electronic": self.reference.as_str(),
                "method": self.method.italian(),
                "postal": self.method == PaymentMethod::PostalSlip,
                "iban": self.brand.iban,
                "postal_account": self.brand.postal_account,
                "beneficiary": self.brand.name,
                "deadline": self.reserved_until.format("%d/%m/%Y").to_string(),
            }),
            attachment: None,
        }
    }
}
