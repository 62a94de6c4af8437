//! Importing a statement: every new entry becomes a payment, matched by its RF code to an
//! order or top-up and applied (order fulfilled, prepaid account credited, emails
//! written) in the same transaction as the payment row.
//!
//! Credits are split into lanes (`LANES`, by RF code, so all the payments of one order
//! go through one lane in file order) that run in parallel on PostgreSQL, each on its
//! own connection. A lane takes its entries in chunks, one transaction each, so that a
//! 100,000-entry statement never holds the brand's invoice counter for long. Work on one
//! lane of a brand is serialised across processes (`lock_payment_lane`), and inside
//! the lock each entry's de-duplication key is looked up before it is stored: an entry
//! falls in the same lane in every import, so re-importing a file, an overlapping
//! statement, or ten imports at once count each payment once. The unique key on (brand,
//! dedup_key) is the last line of defence. Reversals come last, holding every lane. A
//! chunk that fails rolls back whole; the chunks before it stay, and importing the file
//! again completes it.
//!
//! Lock order, as in the prepaid checkout: lane locks, then the orders and top-ups of
//! the chunk (disjoint between lanes), prepaid accounts in id order, the invoice counter
//! last; the lanes of one import, other imports and checkouts never wait in a circle.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::matching::{
    decide, Decision, Payable, PayableKind, PaymentStatus, Standing, UnmatchedReason,
};
use super::statement::{EntryDirection, ParsedStatement, StatementEntry};
use crate::audit::{self, Actor, AuditEntry};
use crate::brands::Brand;
use crate::coupons::CouponKey;
use crate::db::schema::orders;
use crate::db::schema::{payment_references, payments, statements, users};
use crate::db::{self, write_transaction, DbConnection, Pool};
use crate::mail::outbox::{self, OutgoingEmail};
use crate::money::Money;
use crate::orders::{self as order_domain, fulfilment, Order, OrderStatus};
use crate::prepaid::top_ups::{self, TopUp, TopUpStatus};
use crate::prepaid::{self, EntryKind, Posting, PrepaidError};
use crate::transfer::CreditorReference;

/// Entries per transaction: large enough that the per-transaction cost vanishes, small
/// enough that the invoice counter is held for milliseconds.
pub const CHUNK: usize = 500;

/// What the import needs besides the file.
pub struct ImportContext<'a> {
    pub brand: &'a Brand,
    pub operator_id: &'a str,
    pub coupon_key: &'a CouponKey,
    pub public_url: &'a str,
    pub file_name: Option<&'a str>,
    pub file_sha256: &'a str,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutcomeTotal {
    pub count: u64,
    pub amount: Money,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The statement recorded for this import; `None` when it brought nothing new.
    pub statement_id: Option<String>,
    pub entries: usize,
    pub new_entries: usize,
    pub already_imported: usize,
    pub ignored: usize,
    pub outcomes: BTreeMap<PaymentStatus, OutcomeTotal>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{location}: account {account} is not an account of {brand} (IBAN {iban}, postal account {postal}): wrong file or wrong brand")]
    ForeignAccount {
        location: String,
        account: String,
        brand: String,
        iban: String,
        postal: String,
    },
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for ImportError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(error.into())
    }
}

impl From<PrepaidError> for ImportError {
    fn from(error: PrepaidError) -> Self {
        Self::Storage(error.into())
    }
}

impl From<order_domain::OrderError> for ImportError {
    fn from(error: order_domain::OrderError) -> Self {
        Self::Storage(anyhow::anyhow!(error))
    }
}

fn compact(account: &str) -> String {
    account
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The file's entries must all be on the brand's own accounts: a statement of the other
/// brand imported by mistake would otherwise match nothing and fill the queue.
fn check_accounts(brand: &Brand, statement: &ParsedStatement) -> Result<(), ImportError> {
    let iban = compact(&brand.iban);
    let postal = compact(&brand.postal_account);
    let postal_digits = postal.trim_start_matches('0');
    for entry in &statement.entries {
        let account = compact(&entry.account);
        let ours = account == iban
            || (!postal_digits.is_empty() && account.trim_start_matches('0') == postal_digits);
        if !ours {
            return Err(ImportError::ForeignAccount {
                location: entry.location.clone(),
                account: entry.account.clone(),
                brand: brand.name.clone(),
                iban: brand.iban.clone(),
                postal: brand.postal_account.clone(),
            });
        }
    }
    Ok(())
}

/// Lanes an import runs in parallel on PostgreSQL, each on its own connection and thread:
/// a lane is chosen by the entry's RF code (else its dedup key), so every payment for one
/// order or top-up goes through one lane, in file order, and the same entry falls in the
/// same lane in every import (the lane lock keeps two imports from storing it twice).
/// PostgreSQL runs one backend per connection: with one lane, one core does the work.
pub const LANES: usize = 2;

/// Serialises the work on one lane of a brand's payments across every process, for the
/// rest of the transaction: two imports never store the same entry, or decide on the
/// same order, at once.
pub fn lock_payment_lane(conn: &mut DbConnection, brand_id: &str, lane: usize) -> QueryResult<()> {
    db::lock_key(conn, &format!("rinnovo.payments.{brand_id}.{lane}"))
}

/// Every lane of the brand's payments, in lane order (so two holders never wait for each
/// other in a circle): for reversals and manual actions, which may touch any order.
pub fn lock_payments_of_brand(conn: &mut DbConnection, brand_id: &str) -> QueryResult<()> {
    (0..LANES).try_for_each(|lane| lock_payment_lane(conn, brand_id, lane))
}

fn lane_of(entry: &StatementEntry) -> usize {
    let key = entry
        .creditor_reference()
        .map(|r| r.as_str().to_owned())
        .unwrap_or_else(|| entry.dedup_key.clone());
    // RF codes end in random digits, dedup keys in hex or a bank reference: the last
    // byte spreads them evenly enough, and is the same in every process and version.
    key.bytes().last().map_or(0, |b| b as usize % LANES)
}

pub fn import(
    pool: &Pool,
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement: &ParsedStatement,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    check_accounts(context.brand, statement)?;
    // The same transaction reported twice in one file (a batch and its detail) is one.
    let mut seen = HashSet::new();
    let unique: Vec<&StatementEntry> = statement
        .entries
        .iter()
        .filter(|e| seen.insert(e.dedup_key.as_str()))
        .collect();
    let mut report = ImportReport {
        statement_id: None,
        entries: statement.entries.len(),
        new_entries: 0,
        already_imported: statement.entries.len() - unique.len(),
        ignored: statement.ignored,
        outcomes: BTreeMap::new(),
    };
    // The statement row is committed first, so that every lane's payments can refer to
    // it; it is removed again if the file brings nothing new.
    let statement_id =
        write_transaction(conn, |conn| record_statement(conn, context, statement, now))?;
    let (credits, reversals): (Vec<&StatementEntry>, Vec<&StatementEntry>) = unique
        .into_iter()
        .partition(|e| e.direction == EntryDirection::Credit);
    let lanes = if db::writes_in_parallel(conn) {
        LANES
    } else {
        1
    };
    let mut by_lane: Vec<Vec<&StatementEntry>> = vec![Vec::new(); lanes];
    for entry in credits {
        by_lane[if lanes == 1 { 0 } else { lane_of(entry) }].push(entry);
    }
    let run_lane = |conn: &mut DbConnection, lane: Option<usize>, entries: &[&StatementEntry]| {
        let mut part = ImportReport::default();
        for chunk in entries.chunks(CHUNK) {
            write_transaction(conn, |conn| {
                import_chunk(conn, context, &statement_id, lane, chunk, &mut part, now)
            })?;
        }
        Ok::<_, ImportError>(part)
    };
    let mut parts = Vec::new();
    std::thread::scope(|scope| {
        let mut here = Vec::new();
        let mut threads = Vec::new();
        for (lane, entries) in by_lane.iter().enumerate() {
            let lane_id = (lanes > 1).then_some(lane);
            // Lane 0 runs here; the others on connections of their own when the pool has
            // one to spare, else after it on this one.
            let own = (lane > 0)
                .then(|| pool.get_timeout(std::time::Duration::from_secs(1)).ok())
                .flatten();
            match own {
                Some(mut own) => {
                    threads.push(scope.spawn(move || run_lane(&mut own, lane_id, entries)))
                }
                None => here.push((lane_id, entries)),
            }
        }
        for (lane_id, entries) in here {
            parts.push(run_lane(conn, lane_id, entries));
        }
        for thread in threads {
            parts.push(thread.join().unwrap_or_else(|_| {
                Err(ImportError::Storage(anyhow::anyhow!(
                    "an import lane panicked"
                )))
            }));
        }
    });
    // Reversals last, holding every lane: the credit one takes back may have come
    // through any lane, earlier in this very file.
    parts.push(run_lane(conn, None, &reversals));
    for part in parts {
        let part = part?;
        report.new_entries += part.new_entries;
        report.already_imported += part.already_imported;
        for (status, total) in part.outcomes {
            let sum = report.outcomes.entry(status).or_default();
            sum.count += total.count;
            sum.amount = sum.amount + total.amount;
        }
    }
    write_transaction(conn, |conn| {
        if report.new_entries == 0 {
            diesel::delete(statements::table.filter(statements::id.eq(&statement_id)))
                .execute(conn)?;
            return Ok::<_, ImportError>(());
        }
        diesel::update(statements::table.filter(statements::id.eq(&statement_id)))
            .set((
                statements::entries.eq(report.entries as i32),
                statements::new_entries.eq(report.new_entries as i32),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&context.brand.id),
                actor: &Actor::User(context.operator_id.to_owned()),
                action: "statement.imported",
                subject_type: "statement",
                subject_id: &statement_id,
                details: json!({
                    "format": statement.format.as_str(), "version": statement.version,
                    "file_name": context.file_name, "sha256": context.file_sha256,
                    "entries": report.entries, "new_entries": report.new_entries,
                }),
            },
            now,
        )?;
        Ok(())
    })?;
    if report.new_entries > 0 {
        report.statement_id = Some(statement_id);
    }
    Ok(report)
}

/// A payment about to be stored.
struct NewPayment<'a> {
    id: String,
    entry: &'a StatementEntry,
    reference: Option<CreditorReference>,
    status: PaymentStatus,
    reason: Option<UnmatchedReason>,
    order_id: Option<String>,
    top_up_id: Option<String>,
    account_id: Option<String>,
    applied: Money,
    credited: Money,
    reverses: Option<String>,
}

/// What an RF code of this chunk pays for, loaded and locked.
enum Loaded {
    Order(Box<Order>),
    TopUp(Box<TopUp>),
}

/// One transaction of a lane (`None`: all lanes, for reversals): skips the entries
/// already stored, then applies the credits and reversals of the rest.
fn import_chunk(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement_id: &str,
    lane: Option<usize>,
    chunk: &[&StatementEntry],
    report: &mut ImportReport,
    now: DateTime<Utc>,
) -> Result<(), ImportError> {
    let brand = context.brand;
    match lane {
        Some(lane) => lock_payment_lane(conn, &brand.id, lane)?,
        None => lock_payments_of_brand(conn, &brand.id)?,
    }
    db::plan_each_query(conn)?;
    let keys: Vec<&str> = chunk.iter().map(|e| e.dedup_key.as_str()).collect();
    let known: HashSet<String> = payments::table
        .filter(payments::brand_id.eq(&brand.id))
        .filter(payments::dedup_key.eq_any(&keys))
        .select(payments::dedup_key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let fresh: Vec<&StatementEntry> = chunk
        .iter()
        .copied()
        .filter(|e| !known.contains(&e.dedup_key))
        .collect();
    report.already_imported += chunk.len() - fresh.len();
    if fresh.is_empty() {
        return Ok(());
    }
    report.new_entries += fresh.len();

    let (credits, reversals): (Vec<&StatementEntry>, Vec<&StatementEntry>) = fresh
        .into_iter()
        .partition(|e| e.direction == EntryDirection::Credit);
    let mut applied = apply_credits(conn, context, statement_id, &credits, now)?;
    for reversal in reversals {
        applied.push(apply_reversal(conn, context, statement_id, reversal, now)?);
    }
    for (status, amount) in applied {
        let total = report.outcomes.entry(status).or_default();
        total.count += 1;
        total.amount = total.amount + amount;
    }
    Ok(())
}

fn record_statement(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement: &ParsedStatement,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(statements::table)
        .values((
            statements::id.eq(&id),
            statements::brand_id.eq(&context.brand.id),
            statements::format.eq(statement.format.as_str()),
            statements::version.eq(&statement.version),
            statements::message_id.eq(&statement.message_id),
            statements::file_name.eq(context.file_name),
            statements::file_sha256.eq(context.file_sha256),
            statements::entries.eq(statement.entries.len() as i32),
            statements::new_entries.eq(0),
            statements::ignored_entries.eq(statement.ignored as i32),
            statements::imported_by.eq(context.operator_id),
            statements::imported_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
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
    let mut orders_by_id: HashMap<String, Order> = order_domain::lock_many(conn, &order_ids)?
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

fn payable(loaded: &Loaded) -> Payable {
    match loaded {
        Loaded::Order(order) => Payable {
            kind: PayableKind::Order,
            standing: match order.status {
                OrderStatus::AwaitingPayment => Standing::Open,
                OrderStatus::Paid | OrderStatus::Fulfilled => Standing::Paid,
                OrderStatus::Expired => Standing::Expired,
                OrderStatus::Cancelled => Standing::Cancelled,
            },
            due: order.gross_total,
            received: order.received,
            reserved_until: order.reserved_until.unwrap_or(order.created_at),
        },
        Loaded::TopUp(top_up) => Payable {
            kind: PayableKind::TopUp,
            standing: match top_up.status {
                TopUpStatus::AwaitingPayment => Standing::Open,
                TopUpStatus::Paid => Standing::Paid,
                TopUpStatus::Expired => Standing::Expired,
            },
            due: top_up.amount,
            received: top_up.received,
            reserved_until: top_up.reserved_until,
        },
    }
}

/// Who hears about a payment: the owner of the order or top-up.
struct Owner {
    name: String,
    email: String,
    account_id: Option<String>,
}

fn owners(
    conn: &mut DbConnection,
    loaded: &HashMap<String, Loaded>,
) -> QueryResult<HashMap<String, Owner>> {
    let user_ids: Vec<String> = loaded
        .values()
        .map(|l| match l {
            Loaded::Order(o) => o.user_id.clone(),
            Loaded::TopUp(t) => t.user_id.clone(),
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let rows: Vec<(String, String, Option<String>)> = users::table
        .left_join(
            crate::db::schema::prepaid_accounts::table
                .on(crate::db::schema::prepaid_accounts::owner_id.eq(users::id)),
        )
        .filter(users::id.eq_any(&user_ids))
        .select((
            users::id,
            users::name,
            crate::db::schema::prepaid_accounts::id.nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(user_id, name, account_id)| {
            (
                user_id,
                Owner {
                    name,
                    email: String::new(),
                    account_id,
                },
            )
        })
        .collect())
}

/// What the payment email says, all flags always present (the templates are strict).
#[derive(Default)]
struct Notice {
    partial_missing: Option<Money>,
    overpaid: bool,
    duplicate: bool,
    top_up: bool,
    late: bool,
    reversed: bool,
    credited: Money,
    debited: Money,
    voided: usize,
}

fn payment_email(
    brand: &Brand,
    name: &str,
    recipient: &str,
    subject_id: &str,
    payment: &StatementEntry,
    reference: &CreditorReference,
    notice: Notice,
) -> OutgoingEmail {
    OutgoingEmail {
        brand_id: brand.id.clone(),
        kind: "payment_update",
        reference: Some(subject_id.to_owned()),
        sender: brand.sender_address.clone(),
        recipient: recipient.to_owned(),
        context: json!({
            "name": name, "brand": brand.name,
            "amount": payment.amount.to_string(),
            "reference": reference.printed(),
            "date": payment.booking_date.format("%d/%m/%Y").to_string(),
            "partial": notice.partial_missing.is_some(),
            "missing": notice.partial_missing.unwrap_or_default().to_string(),
            "overpaid": notice.overpaid, "duplicate": notice.duplicate,
            "top_up": notice.top_up, "late": notice.late, "reversed": notice.reversed,
            "credited": notice.credited.to_string(),
            "debited": (notice.debited.is_positive()).then(|| notice.debited.to_string()),
            "voided": notice.voided,
        }),
        attachment: None,
    }
}

/// Credits of one chunk: decided in memory against the locked orders and top-ups, then
/// written with as few statements as possible. Returns (status, amount) per payment.
fn apply_credits(
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
    let codes: Vec<String> = references
        .iter()
        .flatten()
        .map(|r| r.as_str().to_owned())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let loaded = load_payables(conn, &brand.id, &codes)?;
    let mut owners = owners(conn, &loaded)?;
    for target in loaded.values() {
        let (user_id, email) = match target {
            Loaded::Order(o) => (&o.user_id, &o.email),
            Loaded::TopUp(t) => (&t.user_id, &t.email),
        };
        if let Some(owner) = owners.get_mut(user_id) {
            owner.email = email.clone();
        }
    }
    let mut state: HashMap<String, Payable> = loaded
        .iter()
        .map(|(code, target)| (code.clone(), payable(target)))
        .collect();

    let mut rows = Vec::with_capacity(credits.len());
    let mut postings: Vec<(String, Money, EntryKind, &'static str, String)> = Vec::new();
    let mut emails = Vec::new();
    let mut audits: Vec<(&'static str, &'static str, String, serde_json::Value)> = Vec::new();
    let mut completed_orders: Vec<String> = Vec::new();
    for (entry, reference) in credits.iter().zip(references) {
        let id = Uuid::now_v7().to_string();
        let target = reference.as_ref().and_then(|r| loaded.get(r.as_str()));
        let decision = match &reference {
            None => Decision {
                status: PaymentStatus::Unmatched,
                reason: Some(UnmatchedReason::NoReference),
                applied: Money::ZERO,
                credited: Money::ZERO,
                completes: false,
            },
            Some(reference) => {
                let current = state.get(reference.as_str());
                let decision = decide(current, entry.amount, entry.booking_date);
                if let Some(current) = current {
                    let next = current.after(&decision);
                    state.insert(reference.as_str().to_owned(), next);
                }
                decision
            }
        };
        let mut row = NewPayment {
            id: id.clone(),
            entry,
            reference: reference.clone(),
            status: decision.status,
            reason: decision.reason,
            order_id: None,
            top_up_id: None,
            account_id: None,
            applied: decision.applied,
            credited: decision.credited,
            reverses: None,
        };
        if let (Some(target), Some(reference)) = (target, &reference) {
            let (user_id, subject_id, kind) = match target {
                Loaded::Order(o) => {
                    row.order_id = Some(o.id.clone());
                    (&o.user_id, o.id.clone(), PayableKind::Order)
                }
                Loaded::TopUp(t) => {
                    row.top_up_id = Some(t.id.clone());
                    (&t.user_id, t.id.clone(), PayableKind::TopUp)
                }
            };
            let owner = owners.get(user_id);
            if decision.credited.is_positive() {
                let account_id = match target {
                    Loaded::TopUp(t) => Some(t.account_id.clone()),
                    Loaded::Order(_) => owner.and_then(|o| o.account_id.clone()),
                };
                let account_id = account_id
                    .ok_or_else(|| anyhow::anyhow!("user {user_id} has no prepaid account"))?;
                let (entry_kind, description) = match (kind, decision.status) {
                    (PayableKind::TopUp, _) => (EntryKind::TopUp, "Ricarica con versamento"),
                    (_, PaymentStatus::Duplicate) => {
                        (EntryKind::OverpaymentCredit, "Pagamento duplicato")
                    }
                    _ => (EntryKind::OverpaymentCredit, "Eccedenza di pagamento"),
                };
                postings.push((
                    account_id.clone(),
                    decision.credited,
                    entry_kind,
                    description,
                    id.clone(),
                ));
                row.account_id = Some(account_id);
            }
            if decision.completes && kind == PayableKind::Order {
                completed_orders.push(subject_id.clone());
            }
            let notice = match (kind, decision.status) {
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
                (_, PaymentStatus::Partial) => {
                    let now_state = state[reference.as_str()];
                    Some(Notice {
                        partial_missing: Some(now_state.due - now_state.received),
                        ..Notice::default()
                    })
                }
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
            };
            if let (Some(notice), Some(owner)) = (notice, owner) {
                emails.push(payment_email(
                    brand,
                    &owner.name,
                    &owner.email,
                    &subject_id,
                    entry,
                    reference,
                    notice,
                ));
            }
        }
        audits.push((
            "payment.imported",
            "payment",
            id.clone(),
            json!({
                "status": decision.status.as_str(),
                "reason": decision.reason.map(|r| r.as_str()),
                "amount": entry.amount.to_string(),
                "reference": reference.as_ref().map(|r| r.as_str()),
                "order_id": row.order_id, "top_up_id": row.top_up_id,
                "applied": decision.applied.to_string(), "credited": decision.credited.to_string(),
            }),
        ));
        rows.push(row);
    }

    insert_payments(conn, &brand.id, statement_id, &rows, now)?;
    // Top-ups and orders that received money without completing (or completed top-ups).
    for (code, target) in &loaded {
        let after = state[code.as_str()];
        let before = payable(target);
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
                diesel::update(orders::table.filter(orders::id.eq(&o.id)))
                    .set((
                        orders::received_cents.eq(after.received.cents()),
                        orders::status.eq(OrderStatus::AwaitingPayment.as_str()),
                        orders::closed_at.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(conn)?;
            }
            Loaded::Order(_) => {} // fulfilled below, with its invoice number
        }
    }
    let completed: Vec<&Order> = completed_orders
        .iter()
        .filter_map(|id| {
            loaded.values().find_map(|l| match l {
                Loaded::Order(o) if &o.id == id => Some(o.as_ref()),
                _ => None,
            })
        })
        .collect();
    let names: Vec<String> = completed
        .iter()
        .map(|o| {
            owners
                .get(&o.user_id)
                .map(|w| w.name.clone())
                .unwrap_or_default()
        })
        .collect();
    let recipients: Vec<fulfilment::Recipient<'_>> = completed
        .iter()
        .zip(&names)
        .map(|(order, name)| fulfilment::Recipient::of(order, name))
        .collect();
    fulfilment::write(
        conn,
        context.coupon_key,
        brand,
        &recipients,
        context.public_url,
        now,
    )?;
    outbox::enqueue_all(conn, &emails, now)?;
    let actor = Actor::System;
    audit::record_all(
        conn,
        audits
            .iter()
            .map(|(action, subject_type, subject_id, details)| AuditEntry {
                brand_id: Some(&brand.id),
                actor: &actor,
                action,
                subject_type,
                subject_id,
                details: details.clone(),
            })
            .collect(),
        now,
    )?;

    // Prepaid credits late, one balance update per account, accounts in id order, then
    // the invoice counter: the rows other lanes and checkouts also lock are held for the
    // shortest time, always in the same order.
    let mut credits_by_account: BTreeMap<&str, Vec<Posting<'_>>> = BTreeMap::new();
    for (account_id, amount, kind, description, payment_id) in &postings {
        credits_by_account
            .entry(account_id)
            .or_default()
            .push(Posting {
                kind: *kind,
                amount: *amount,
                description,
                reference: Some(payment_id),
                actor_id: None,
            });
    }
    for (account_id, credits) in &credits_by_account {
        prepaid::credit_many(conn, account_id, credits, now)?;
    }
    // Last: invoice numbers, and the orders' move to fulfilled in the same update.
    let paid: Vec<order_domain::invoiced::PaidOrder<'_>> = completed
        .iter()
        .map(|order| {
            let code = order.payment_reference.as_ref().map(|r| r.as_str());
            order_domain::invoiced::PaidOrder {
                id: &order.id,
                received_cents: state[code.unwrap_or_default()].received.cents(),
            }
        })
        .collect();
    order_domain::invoiced::fulfil_many(conn, &brand.id, &brand.invoice_series, now, &paid)?;
    Ok(rows.iter().map(|r| (r.status, r.entry.amount)).collect())
}

fn insert_payments(
    conn: &mut DbConnection,
    brand_id: &str,
    statement_id: &str,
    rows: &[NewPayment<'_>],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    for chunk in rows.chunks(500) {
        let values: Vec<_> = chunk
            .iter()
            .map(|p| {
                (
                    payments::id.eq(&p.id),
                    payments::brand_id.eq(brand_id),
                    payments::statement_id.eq(statement_id),
                    payments::dedup_key.eq(&p.entry.dedup_key),
                    payments::direction.eq(p.entry.direction.as_str()),
                    payments::account.eq(&p.entry.account),
                    payments::bank_reference.eq(&p.entry.bank_reference),
                    payments::booking_date.eq(p.entry.booking_date),
                    payments::value_date.eq(p.entry.value_date),
                    payments::amount_cents.eq(p.entry.amount.cents()),
                    payments::payer_name.eq(&p.entry.payer_name),
                    payments::remittance.eq(&p.entry.remittance_text),
                    payments::reference.eq(p.reference.as_ref().map(|r| r.as_str())),
                    payments::status.eq(p.status.as_str()),
                    payments::reason.eq(p.reason.map(|r| r.as_str()).unwrap_or("")),
                    payments::order_id.eq(&p.order_id),
                    payments::top_up_id.eq(&p.top_up_id),
                    payments::account_id.eq(&p.account_id),
                    payments::applied_cents.eq(p.applied.cents()),
                    payments::credited_cents.eq(p.credited.cents()),
                    payments::reverses_payment_id.eq(&p.reverses),
                    payments::created_at.eq(now.naive_utc()),
                )
            })
            .collect();
        insert_many!(conn, payments::table, values)?;
    }
    Ok(())
}

/// An earlier credit that a reversal takes back: its effects, to undo.
#[derive(Queryable)]
struct Original {
    id: String,
    status: String,
    order_id: Option<String>,
    top_up_id: Option<String>,
    account_id: Option<String>,
    applied_cents: i64,
    credited_cents: i64,
}

/// The credit a reversal takes back: same amount, same RF code (or, without one, the same
/// payment reason), not yet reversed or refunded; the most recent one.
fn find_original(
    conn: &mut DbConnection,
    brand_id: &str,
    entry: &StatementEntry,
    reference: Option<&CreditorReference>,
) -> QueryResult<Option<Original>> {
    let mut query = payments::table
        .filter(payments::brand_id.eq(brand_id.to_owned()))
        .filter(payments::direction.eq("credit"))
        .filter(payments::amount_cents.eq(entry.amount.cents()))
        .filter(payments::booking_date.le(entry.booking_date))
        .filter(payments::status.ne_all(["reversed", "refunded"]))
        .order((payments::booking_date.desc(), payments::id.desc()))
        .select((
            payments::id,
            payments::status,
            payments::order_id,
            payments::top_up_id,
            payments::account_id,
            payments::applied_cents,
            payments::credited_cents,
        ))
        .into_boxed();
    query = match reference {
        Some(reference) => query.filter(payments::reference.eq(reference.as_str().to_owned())),
        None => query
            .filter(payments::reference.is_null())
            .filter(payments::remittance.eq(entry.remittance_text.clone())),
    };
    query.first(conn).optional()
}

/// A reversal: the bank took back an earlier credit (a bounced cheque, a recalled
/// transfer). Its effects are undone: the prepaid credit debited back, the order's
/// received amount reduced and, if the order was fulfilled, its unused coupons voided.
/// When that cannot be done (no such credit, or the credit already spent), the reversal
/// waits in the queue, `unmatched`, for the back-office.
fn apply_reversal(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    statement_id: &str,
    entry: &StatementEntry,
    now: DateTime<Utc>,
) -> Result<(PaymentStatus, Money), ImportError> {
    let brand = context.brand;
    let reference = entry.creditor_reference();
    let id = Uuid::now_v7().to_string();
    let mut row = NewPayment {
        id: id.clone(),
        entry,
        reference: reference.clone(),
        status: PaymentStatus::Unmatched,
        reason: Some(UnmatchedReason::OriginalNotFound),
        order_id: None,
        top_up_id: None,
        account_id: None,
        applied: Money::ZERO,
        credited: Money::ZERO,
        reverses: None,
    };
    let Some(original) = find_original(conn, &brand.id, entry, reference.as_ref())? else {
        insert_payments(conn, &brand.id, statement_id, &[row], now)?;
        return Ok((PaymentStatus::Unmatched, entry.amount));
    };
    row.reverses = Some(original.id.clone());
    row.order_id = original.order_id.clone();
    row.top_up_id = original.top_up_id.clone();
    row.account_id = original.account_id.clone();
    // Savepoint: a refused debit must leave nothing of this reversal half-applied.
    let undone = conn.transaction(|conn| -> Result<Option<usize>, ImportError> {
        if let (Some(account_id), true) = (&original.account_id, original.credited_cents > 0) {
            let debit = prepaid::post(
                conn,
                account_id,
                Posting {
                    kind: EntryKind::Adjustment,
                    amount: -Money::from_cents(original.credited_cents),
                    description: "Storno del pagamento da parte della banca",
                    reference: Some(&id),
                    actor_id: None,
                },
                now,
            );
            match debit {
                Err(PrepaidError::InsufficientFunds { .. }) => return Ok(None),
                other => {
                    other?;
                }
            }
        }
        let mut voided = 0;
        if let Some(order_id) = &original.order_id {
            diesel::update(orders::table.filter(orders::id.eq(order_id)))
                .set(orders::received_cents.eq(orders::received_cents - original.applied_cents))
                .execute(conn)?;
            voided = crate::coupons::state::void_unused_of_order(conn, order_id, now)?;
        }
        if let Some(top_up_id) = &original.top_up_id {
            use crate::db::schema::top_ups;
            diesel::update(top_ups::table.filter(top_ups::id.eq(top_up_id)))
                .set(top_ups::received_cents.eq(top_ups::received_cents - original.applied_cents))
                .execute(conn)?;
        }
        diesel::update(payments::table.filter(payments::id.eq(&original.id)))
            .set(payments::status.eq(PaymentStatus::Reversed.as_str()))
            .execute(conn)?;
        Ok(Some(voided))
    })?;
    let Some(voided) = undone else {
        row.reason = Some(UnmatchedReason::BalanceTooLow);
        insert_payments(conn, &brand.id, statement_id, &[row], now)?;
        return Ok((PaymentStatus::Unmatched, entry.amount));
    };
    row.status = PaymentStatus::Reversal;
    row.reason = None;
    row.applied = Money::from_cents(original.applied_cents);
    row.credited = Money::from_cents(original.credited_cents);
    insert_payments(conn, &brand.id, statement_id, &[row], now)?;
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(&brand.id),
            actor: &Actor::System,
            action: "payment.reversed",
            subject_type: "payment",
            subject_id: &original.id,
            details: json!({
                "reversal": id, "previous_status": original.status,
                "order_id": original.order_id, "top_up_id": original.top_up_id,
                "debited": Money::from_cents(original.credited_cents).to_string(),
                "coupons_voided": voided,
            }),
        },
        now,
    )?;
    // The owner hears about it, if the money was theirs.
    let subject = original
        .order_id
        .as_ref()
        .map(|id| (id.clone(), true))
        .or_else(|| original.top_up_id.as_ref().map(|id| (id.clone(), false)));
    if let (Some((subject_id, is_order)), Some(reference)) = (subject, &reference) {
        let owner: Option<(String, String)> = if is_order {
            orders::table
                .inner_join(users::table.on(users::id.eq(orders::user_id)))
                .filter(orders::id.eq(&subject_id))
                .select((users::name, orders::email))
                .first(conn)
                .optional()?
        } else {
            use crate::db::schema::top_ups;
            top_ups::table
                .inner_join(users::table.on(users::id.eq(top_ups::user_id)))
                .filter(top_ups::id.eq(&subject_id))
                .select((users::name, top_ups::email))
                .first(conn)
                .optional()?
        };
        if let Some((name, email)) = owner {
            let notice = Notice {
                reversed: true,
                debited: Money::from_cents(original.credited_cents),
                voided,
                ..Notice::default()
            };
            outbox::enqueue(
                conn,
                &payment_email(brand, &name, &email, &subject_id, entry, reference, notice),
                now,
            )?;
        }
    }
    Ok((PaymentStatus::Reversal, entry.amount))
}
