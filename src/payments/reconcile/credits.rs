//! Credits of one chunk: each payment is decided in memory against the locked orders and
//! top-ups its RF code pays for, then everything is written with as few statements as
//! possible, in the lock order documented at the top of `reconcile`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::notices::{payment_email, Notice};
use super::{ImportContext, ImportError};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands::Brand;
use crate::db::schema::payment_references;
use crate::db::DbConnection;
use crate::mail::outbox::{self, OutgoingEmail};
use crate::money::Money;
use crate::orders::{self as order_book, fulfilment, Order, PaidOrder};
use crate::payments::matching::{
    decide, Decision, Payable, PayableKind, PaymentStatus, Standing, UnmatchedReason,
};
use crate::payments::statement::StatementEntry;
use crate::payments::store::{self, NewPayment};
use crate::prepaid::top_ups::{self, TopUp, TopUpStatus};
use crate::prepaid::{self, EntryKind, Holder, Posting};
use crate::transfer::CreditorReference;

/// Applies the credits of a chunk. Returns (status, amount) per payment.
pub(super) fn apply_credits(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement_id: &str,
    credits: &[&StatementEntry],
    now: DateTime<Utc>,
) -> Result<Vec<(PaymentStatus, Money)>, ImportError> {
    if credits.is_empty() {
        return Ok(Vec::new());
    }
    let brand = context.brand;
    let references: Vec<Option<CreditorReference>> =
        credits.iter().map(|e| e.creditor_reference()).collect();
    let mut targets = Targets::load(conn, &brand.id, &references, now)?;
    let mut plan = Plan::default();
    for (entry, reference) in credits.iter().zip(references) {
        plan.add(brand, &mut targets, entry, reference)?;
    }

    store::insert_all(conn, &brand.id, statement_id, &plan.payments, now)?;
    record_received(conn, &targets, now)?;
    let completed = targets.orders(&plan.completed_orders);
    write_coupons(conn, context, &targets, &completed, now)?;
    outbox::enqueue_all(conn, &plan.emails, now)?;
    record_audits(conn, brand, &plan.audits, now)?;
    // Prepaid credits late, then the invoice counter: the rows other lanes and checkouts
    // also lock are held for the shortest time, always in the same order.
    post_credits(conn, &plan.credits, now)?;
    fulfil(conn, brand, &targets, &completed, now)?;
    Ok(plan
        .payments
        .iter()
        .map(|p| (p.status, p.entry.amount))
        .collect())
}

/// What an RF code of this chunk pays for, loaded and locked.
enum Loaded {
    Order(Box<Order>),
    TopUp(Box<TopUp>),
}

impl Loaded {
    fn user_id(&self) -> &str {
        match self {
            Loaded::Order(o) => &o.user_id,
            Loaded::TopUp(t) => &t.user_id,
        }
    }

    fn id(&self) -> &str {
        match self {
            Loaded::Order(o) => &o.id,
            Loaded::TopUp(t) => &t.id,
        }
    }

    /// Where the payer's emails go: the address of the order or top-up.
    fn email(&self) -> &str {
        match self {
            Loaded::Order(o) => &o.email,
            Loaded::TopUp(t) => &t.email,
        }
    }

    fn payable(&self) -> Payable {
        match self {
            Loaded::Order(o) => Payable::of_order(o),
            Loaded::TopUp(t) => Payable::of_top_up(t),
        }
    }
}

/// The orders and top-ups the chunk's RF codes pay for, locked, with their owners; and
/// where each stands as the chunk's payments are decided one after the other.
struct Targets {
    /// By RF code.
    loaded: HashMap<String, Loaded>,
    /// By user id.
    owners: HashMap<String, Holder>,
    /// By RF code: the standing after the payments decided so far.
    standing: HashMap<String, Payable>,
    /// The day of the import, against which booking dates are checked.
    today: NaiveDate,
}

impl Targets {
    fn load(
        conn: &mut DbConnection,
        brand_id: &str,
        references: &[Option<CreditorReference>],
        now: DateTime<Utc>,
    ) -> Result<Self, ImportError> {
        let codes: Vec<String> = references
            .iter()
            .flatten()
            .map(|r| r.as_str().to_owned())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let loaded = load_payables(conn, brand_id, &codes)?;
        let user_ids: Vec<String> = loaded
            .values()
            .map(|l| l.user_id().to_owned())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let owners = prepaid::holders(conn, &user_ids)?
            .into_iter()
            .map(|holder| (holder.user_id.clone(), holder))
            .collect();
        let standing = loaded
            .iter()
            .map(|(code, target)| (code.clone(), target.payable()))
            .collect();
        Ok(Self {
            loaded,
            owners,
            standing,
            today: now.date_naive(),
        })
    }

    /// Decides a credit against the current standing of its code, and moves the
    /// standing on for the next payment with the same code.
    fn decide(
        &mut self,
        entry: &StatementEntry,
        reference: Option<&CreditorReference>,
    ) -> Decision {
        let Some(reference) = reference else {
            return Decision {
                status: PaymentStatus::Unmatched,
                reason: Some(UnmatchedReason::NoReference),
                applied: Money::ZERO,
                credited: Money::ZERO,
                completes: false,
            };
        };
        let current = self.standing.get(reference.as_str());
        let decision = decide(current, entry.amount, entry.booking_date, self.today);
        if let Some(current) = current {
            let next = current.after(&decision);
            self.standing.insert(reference.as_str().to_owned(), next);
        }
        decision
    }

    fn name_of(&self, user_id: &str) -> String {
        self.owners
            .get(user_id)
            .map(|o| o.name.clone())
            .unwrap_or_default()
    }

    /// The loaded orders with these ids, in this order.
    fn orders(&self, ids: &[String]) -> Vec<&Order> {
        ids.iter()
            .filter_map(|id| {
                self.loaded.values().find_map(|l| match l {
                    Loaded::Order(o) if &o.id == id => Some(o.as_ref()),
                    _ => None,
                })
            })
            .collect()
    }

    fn received_by(&self, order: &Order) -> Money {
        let code = order.payment_reference.as_ref().map(|r| r.as_str());
        self.standing[code.unwrap_or_default()].received
    }
}

/// Loads (and locks) the orders and top-ups the RF codes of `references` pay for.
fn load_payables(
    conn: &mut DbConnection,
    brand_id: &str,
    references: &[String],
) -> Result<HashMap<String, Loaded>, ImportError> {
    let targets: Vec<(String, Option<String>, Option<String>)> = payment_references::table
        .filter(payment_references::brand_id.eq(brand_id))
        .filter(payment_references::reference.eq_any(references))
        .select((
            payment_references::reference,
            payment_references::order_id,
            payment_references::top_up_id,
        ))
        .load(conn)?;
    let order_ids: Vec<String> = targets.iter().filter_map(|t| t.1.clone()).collect();
    let top_up_ids: Vec<String> = targets.iter().filter_map(|t| t.2.clone()).collect();
    let mut orders_by_id: HashMap<String, Order> = order_book::lock_many(conn, &order_ids)?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();
    let mut top_ups_by_id: HashMap<String, TopUp> = top_ups::lock_many(conn, &top_up_ids)?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
    let mut loaded = HashMap::new();
    for (reference, order_id, top_up_id) in targets {
        let target = match (order_id, top_up_id) {
            (Some(id), _) => orders_by_id.remove(&id).map(|o| Loaded::Order(Box::new(o))),
            (_, Some(id)) => top_ups_by_id
                .remove(&id)
                .map(|t| Loaded::TopUp(Box::new(t))),
            _ => None,
        };
        if let Some(target) = target {
            loaded.insert(reference, target);
        }
    }
    Ok(loaded)
}

/// Money for a prepaid account, posted once the chunk's other rows are written.
struct Credit {
    account_id: String,
    amount: Money,
    kind: EntryKind,
    description: &'static str,
    payment_id: String,
}

/// Everything the chunk's credits will write, gathered in memory first.
#[derive(Default)]
struct Plan<'a> {
    payments: Vec<NewPayment<'a>>,
    credits: Vec<Credit>,
    emails: Vec<OutgoingEmail>,
    /// (payment id, details) of each `payment.imported` entry.
    audits: Vec<(String, serde_json::Value)>,
    completed_orders: Vec<String>,
}

impl<'a> Plan<'a> {
    /// Decides one credit and plans what it writes.
    fn add(
        &mut self,
        brand: &Brand,
        targets: &mut Targets,
        entry: &'a StatementEntry,
        reference: Option<CreditorReference>,
    ) -> Result<(), ImportError> {
        let decision = targets.decide(entry, reference.as_ref());
        let mut payment = NewPayment {
            id: Uuid::now_v7().to_string(),
            entry,
            reference,
            status: decision.status,
            reason: decision.reason,
            order_id: None,
            top_up_id: None,
            account_id: None,
            applied: decision.applied,
            credited: decision.credited,
            reverses: None,
        };
        if let Some(reference) = payment.reference.clone() {
            if let Some(target) = targets.loaded.get(reference.as_str()) {
                self.apply_to(brand, targets, target, &reference, &decision, &mut payment)?;
            }
        }
        self.audits.push((
            payment.id.clone(),
            json!({
                "status": decision.status.as_str(),
                "reason": decision.reason.map(|r| r.as_str()),
                "amount": entry.amount.to_string(),
                "reference": payment.reference.as_ref().map(|r| r.as_str()),
                "order_id": payment.order_id, "top_up_id": payment.top_up_id,
                "applied": decision.applied.to_string(), "credited": decision.credited.to_string(),
            }),
        ));
        self.payments.push(payment);
        Ok(())
    }

    /// A credit whose RF code found its order or top-up: what it credits, completes, and
    /// tells the owner.
    fn apply_to(
        &mut self,
        brand: &Brand,
        targets: &Targets,
        target: &Loaded,
        reference: &CreditorReference,
        decision: &Decision,
        payment: &mut NewPayment<'a>,
    ) -> Result<(), ImportError> {
        let kind = match target {
            Loaded::Order(o) => {
                payment.order_id = Some(o.id.clone());
                PayableKind::Order
            }
            Loaded::TopUp(t) => {
                payment.top_up_id = Some(t.id.clone());
                PayableKind::TopUp
            }
        };
        let owner = targets.owners.get(target.user_id());
        if decision.credited.is_positive() {
            let account_id = match target {
                Loaded::TopUp(t) => Some(t.account_id.clone()),
                Loaded::Order(_) => owner.and_then(|o| o.account_id.clone()),
            }
            .ok_or_else(|| anyhow::anyhow!("user {} has no prepaid account", target.user_id()))?;
            let (entry_kind, description) = posting_for(kind, decision.status);
            self.credits.push(Credit {
                account_id: account_id.clone(),
                amount: decision.credited,
                kind: entry_kind,
                description,
                payment_id: payment.id.clone(),
            });
            payment.account_id = Some(account_id);
        }
        if decision.completes && kind == PayableKind::Order {
            self.completed_orders.push(target.id().to_owned());
        }
        let standing = targets.standing[reference.as_str()];
        if let (Some(notice), Some(owner)) = (notice_for(kind, decision, &standing), owner) {
            self.emails.push(payment_email(
                brand,
                &owner.name,
                target.email(),
                target.id(),
                payment.entry,
                reference,
                notice,
            ));
        }
        Ok(())
    }
}

/// The ledger entry of money a payment credits to the prepaid account.
fn posting_for(kind: PayableKind, status: PaymentStatus) -> (EntryKind, &'static str) {
    match (kind, status) {
        (PayableKind::TopUp, _) => (EntryKind::TopUp, "Ricarica con versamento"),
        (_, PaymentStatus::Duplicate) => (EntryKind::OverpaymentCredit, "Pagamento duplicato"),
        _ => (EntryKind::OverpaymentCredit, "Eccedenza di pagamento"),
    }
}

/// What the owner is told about a payment, if anything (`standing`: after it).
fn notice_for(kind: PayableKind, decision: &Decision, standing: &Payable) -> Option<Notice> {
    match (kind, decision.status) {
        (_, PaymentStatus::Unmatched) => {
            (decision.reason == Some(UnmatchedReason::ReservationExpired)).then(|| Notice {
                late: true,
                ..Notice::default()
            })
        }
        (PayableKind::TopUp, _) => Some(Notice {
            top_up: true,
            credited: decision.credited,
            ..Notice::default()
        }),
        (_, PaymentStatus::Partial) => Some(Notice {
            partial_missing: Some(standing.due - standing.received),
            ..Notice::default()
        }),
        (_, PaymentStatus::Overpaid) => Some(Notice {
            overpaid: true,
            credited: decision.credited,
            ..Notice::default()
        }),
        (_, PaymentStatus::Duplicate) => Some(Notice {
            duplicate: true,
            credited: decision.credited,
            ..Notice::default()
        }),
        _ => None,
    }
}

/// Top-ups and orders that received money without completing (or completed top-ups).
/// Completed orders move to fulfilled last, with their invoice numbers ([`fulfil`]).
fn record_received(
    conn: &mut DbConnection,
    targets: &Targets,
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    for (code, target) in &targets.loaded {
        let after = targets.standing[code.as_str()];
        let before = target.payable();
        if after == before {
            continue;
        }
        match target {
            Loaded::TopUp(t) => {
                let (status, paid_at) = match after.standing {
                    Standing::Paid if before.standing != Standing::Paid => {
                        (TopUpStatus::Paid, Some(now))
                    }
                    Standing::Paid => (TopUpStatus::Paid, t.paid_at),
                    // Money booked in time for an expired top-up reopens it.
                    _ => (TopUpStatus::AwaitingPayment, None),
                };
                top_ups::record_received(conn, &t.id, after.received, status, paid_at)?;
            }
            Loaded::Order(o) if after.standing != Standing::Paid => {
                order_book::record_received(conn, &o.id, after.received)?;
            }
            Loaded::Order(_) => {}
        }
    }
    Ok(())
}

/// Coupons and emails of the orders the chunk paid.
fn write_coupons(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    targets: &Targets,
    completed: &[&Order],
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    let names: Vec<String> = completed
        .iter()
        .map(|o| targets.name_of(&o.user_id))
        .collect();
    let recipients: Vec<fulfilment::Recipient<'_>> = completed
        .iter()
        .zip(&names)
        .map(|(order, name)| fulfilment::Recipient::of(order, name))
        .collect();
    fulfilment::write(
        conn,
        context.coupon_key,
        context.brand,
        &recipients,
        context.public_url,
        now,
    )?;
    Ok(())
}

fn record_audits(
    conn: &mut DbConnection,
    brand: &Brand,
    audits: &[(String, serde_json::Value)],
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    let actor = Actor::System;
    audit::record_all(
        conn,
        audits
            .iter()
            .map(|(payment_id, details)| AuditEntry {
                brand_id: Some(&brand.id),
                actor: &actor,
                action: "payment.imported",
                subject_type: "payment",
                subject_id: payment_id,
                details: details.clone(),
            })
            .collect(),
        now,
    )?;
    Ok(())
}

/// One balance update per account, accounts in id order.
fn post_credits(
    conn: &mut DbConnection,
    credits: &[Credit],
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    let mut by_account: BTreeMap<&str, Vec<Posting<'_>>> = BTreeMap::new();
    for credit in credits {
        by_account
            .entry(&credit.account_id)
            .or_default()
            .push(Posting {
                kind: credit.kind,
                amount: credit.amount,
                description: credit.description,
                reference: Some(&credit.payment_id),
                actor_id: None,
            });
    }
    for (account_id, postings) in &by_account {
        prepaid::credit_many(conn, account_id, postings, now)?;
    }
    Ok(())
}

/// Last: invoice numbers, and the orders' move to fulfilled in the same update.
fn fulfil(
    conn: &mut DbConnection,
    brand: &Brand,
    targets: &Targets,
    completed: &[&Order],
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    let paid: Vec<PaidOrder<'_>> = completed
        .iter()
        .map(|order| PaidOrder {
            order,
            received_cents: targets.received_by(order).cents(),
        })
        .collect();
    order_book::fulfil_many(conn, brand, now, &paid)?;
    Ok(())
}
