//! The prepaid account ("conto prepagato"): money the customer paid in advance.
//!
//! The balance changes only together with an append-only ledger entry, through
//! [`post`]: one conditional UPDATE that moves the balance only if it stays at or above
//! zero, and returns the new balance and the entry's sequence number; then the entry is
//! inserted with that balance. No read-then-write, so concurrent debits can never
//! overdraw: on PostgreSQL the UPDATE waits for the row lock and re-checks the condition;
//! on SQLite writers are serialised by `BEGIN IMMEDIATE`.

pub mod top_ups;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::audit::Operator;
use crate::db::schema::{prepaid_accounts, prepaid_entries, users};
use crate::db::{write_transaction, DbConnection};
use crate::email_address::{ConfirmedEmail, EmailAddress};
use crate::money::{Money, PositiveMoney};
use crate::validation::Reason;

/// Who is buying, coupons or prepaid credit, as the checkout and a top-up need them. Made
/// from a user by `Buyer::of` (in `auth::confirmation`, which alone knows an address is
/// proven), so nobody buys with an unconfirmed address.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub user_id: String,
    pub brand_id: String,
    pub name: String,
    /// Where the codes, the receipt, the invoice or the payment instructions go.
    pub email: ConfirmedEmail,
}

text_enum!(
    /// Why the balance moved.
    EntryKind {
        TopUp => "top_up",
        OrderDebit => "order_debit",
        Refund => "refund",
        OverpaymentCredit => "overpayment_credit",
        Adjustment => "adjustment",
    }
);

text_enum!(
    /// The direction of a manual adjustment.
    Direction { Credit => "credit", Debit => "debit" }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub brand_id: String,
    pub owner_id: String,
    pub owner_email: EmailAddress,
    pub balance: Money,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub seq: i64,
    pub kind: EntryKind,
    /// Positive: credit; negative: debit.
    pub amount: Money,
    pub balance_after: Money,
    pub description: String,
    pub reference: Option<String>,
    pub actor_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One movement of the balance, as the caller wants it recorded.
#[derive(Debug, Clone)]
pub struct Posting<'a> {
    pub kind: EntryKind,
    pub amount: Money,
    pub description: &'a str,
    pub reference: Option<&'a str>,
    pub actor_id: Option<&'a str>,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum PrepaidError {
        #[error("the prepaid balance is {balance} euro, {requested} euro are needed")]
        InsufficientFunds { balance: Money, requested: Money },
        #[error("no such prepaid account")]
        UnknownAccount,
        #[error("the prepaid account belongs to another brand")]
        OtherBrand,
        #[error(transparent)]
        MethodNotOffered(#[from] top_ups::MethodNotOffered),
    }
    storage from diesel::result::Error
}

pub fn open_account(
    conn: &mut DbConnection,
    brand_id: &str,
    owner_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(prepaid_accounts::table)
        .values((
            prepaid_accounts::id.eq(&id),
            prepaid_accounts::brand_id.eq(brand_id),
            prepaid_accounts::owner_id.eq(owner_id),
            prepaid_accounts::balance_cents.eq(0i64),
            prepaid_accounts::entry_count.eq(0i64),
            prepaid_accounts::created_at.eq(now.naive_utc()),
            prepaid_accounts::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Moves the balance by `posting.amount` and appends the entry, atomically (a savepoint
/// if the caller already has a transaction, its own transaction otherwise).
pub fn post(
    conn: &mut DbConnection,
    account_id: &str,
    posting: Posting<'_>,
    now: DateTime<Utc>,
) -> Result<Entry, PrepaidError> {
    let delta = posting.amount.cents();
    assert!(delta != 0, "a ledger entry moves money");
    write_transaction(conn, |conn| {
        let moved: Option<(i64, i64)> = diesel::update(
            prepaid_accounts::table
                .filter(prepaid_accounts::id.eq(account_id))
                .filter(prepaid_accounts::balance_cents.ge(-delta)),
        )
        .set((
            prepaid_accounts::balance_cents.eq(prepaid_accounts::balance_cents + delta),
            prepaid_accounts::entry_count.eq(prepaid_accounts::entry_count + 1),
            prepaid_accounts::updated_at.eq(now.naive_utc()),
        ))
        .returning((
            prepaid_accounts::balance_cents,
            prepaid_accounts::entry_count,
        ))
        .get_result(conn)
        .optional()?;
        let Some((balance_after, seq)) = moved else {
            let balance: Option<i64> = prepaid_accounts::table
                .filter(prepaid_accounts::id.eq(account_id))
                .select(prepaid_accounts::balance_cents)
                .first(conn)
                .optional()?;
            return Err(match balance {
                None => PrepaidError::UnknownAccount,
                Some(balance) => PrepaidError::InsufficientFunds {
                    balance: Money::from_cents(balance),
                    requested: -posting.amount,
                },
            });
        };
        let entry = Entry {
            id: Uuid::now_v7().to_string(),
            seq,
            kind: posting.kind,
            amount: posting.amount,
            balance_after: Money::from_cents(balance_after),
            description: posting.description.to_owned(),
            reference: posting.reference.map(str::to_owned),
            actor_id: posting.actor_id.map(str::to_owned),
            created_at: now,
        };
        diesel::insert_into(prepaid_entries::table)
            .values((
                prepaid_entries::id.eq(&entry.id),
                prepaid_entries::account_id.eq(account_id),
                prepaid_entries::seq.eq(seq),
                prepaid_entries::kind.eq(entry.kind.as_str()),
                prepaid_entries::amount_cents.eq(delta),
                prepaid_entries::balance_after_cents.eq(balance_after),
                prepaid_entries::description.eq(&entry.description),
                prepaid_entries::reference.eq(&entry.reference),
                prepaid_entries::actor_id.eq(&entry.actor_id),
                prepaid_entries::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        Ok(entry)
    })
}

/// Credits several postings to one account with one balance update and one insert: the
/// statement import credits hundreds of overpayments and top-ups per transaction, often to
/// the same few accounts. Credits only, so no balance check can fail half-way; the entries
/// get consecutive sequence numbers and running balances in the order given.
pub fn credit_many(
    conn: &mut DbConnection,
    account_id: &str,
    postings: &[Posting<'_>],
    now: DateTime<Utc>,
) -> Result<(), PrepaidError> {
    assert!(
        postings.iter().all(|p| p.amount.is_positive()),
        "credit_many only credits"
    );
    if postings.is_empty() {
        return Ok(());
    }
    let total: i64 = postings.iter().map(|p| p.amount.cents()).sum();
    let count = postings.len() as i64;
    write_transaction(conn, |conn| {
        let (balance_after, last_seq): (i64, i64) =
            diesel::update(prepaid_accounts::table.filter(prepaid_accounts::id.eq(account_id)))
                .set((
                    prepaid_accounts::balance_cents.eq(prepaid_accounts::balance_cents + total),
                    prepaid_accounts::entry_count.eq(prepaid_accounts::entry_count + count),
                    prepaid_accounts::updated_at.eq(now.naive_utc()),
                ))
                .returning((
                    prepaid_accounts::balance_cents,
                    prepaid_accounts::entry_count,
                ))
                .get_result(conn)
                .optional()?
                .ok_or(PrepaidError::UnknownAccount)?;
        let mut balance = balance_after - total;
        let mut seq = last_seq - count;
        // 10 columns a row: 1,000 rows stay well inside both backends' bind limits.
        insert_many!(conn, prepaid_entries::table, postings, 1000, |posting| {
            balance += posting.amount.cents();
            seq += 1;
            (
                prepaid_entries::id.eq(Uuid::now_v7().to_string()),
                prepaid_entries::account_id.eq(account_id),
                prepaid_entries::seq.eq(seq),
                prepaid_entries::kind.eq(posting.kind.as_str()),
                prepaid_entries::amount_cents.eq(posting.amount.cents()),
                prepaid_entries::balance_after_cents.eq(balance),
                prepaid_entries::description.eq(posting.description),
                prepaid_entries::reference.eq(posting.reference),
                prepaid_entries::actor_id.eq(posting.actor_id),
                prepaid_entries::created_at.eq(now.naive_utc()),
            )
        })?;
        Ok(())
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = prepaid_accounts)]
struct AccountRow {
    id: String,
    brand_id: String,
    owner_id: String,
    #[diesel(select_expression = users::email)]
    owner_email: String,
    balance_cents: i64,
    updated_at: NaiveDateTime,
}

fn account_from_row(row: AccountRow) -> Account {
    Account {
        id: row.id,
        brand_id: row.brand_id,
        owner_id: row.owner_id,
        owner_email: EmailAddress::from_stored(row.owner_email),
        balance: Money::from_cents(row.balance_cents),
        updated_at: row.updated_at.and_utc(),
    }
}

/// How an account is looked up.
enum AccountKey<'a> {
    Id(&'a str),
    Owner(&'a str),
}

fn find_account(conn: &mut DbConnection, key: AccountKey<'_>) -> Result<Account, PrepaidError> {
    let query = prepaid_accounts::table
        .inner_join(users::table)
        .select(AccountRow::as_select())
        .into_boxed();
    let query = match key {
        AccountKey::Id(id) => query.filter(prepaid_accounts::id.eq(id)),
        AccountKey::Owner(owner_id) => query.filter(prepaid_accounts::owner_id.eq(owner_id)),
    };
    query
        .first(conn)
        .optional()?
        .map(account_from_row)
        .ok_or(PrepaidError::UnknownAccount)
}

pub fn account(conn: &mut DbConnection, id: &str) -> Result<Account, PrepaidError> {
    find_account(conn, AccountKey::Id(id))
}

/// An account of the operator's brand; another brand's is refused.
pub fn account_of_brand(
    conn: &mut DbConnection,
    brand_id: &str,
    id: &str,
) -> Result<Account, PrepaidError> {
    let account = account(conn, id)?;
    if account.brand_id != brand_id {
        return Err(PrepaidError::OtherBrand);
    }
    Ok(account)
}

pub fn account_of_owner(conn: &mut DbConnection, owner_id: &str) -> Result<Account, PrepaidError> {
    find_account(conn, AccountKey::Owner(owner_id))
}

/// A user as a payment's emails and credits need them: the name the emails greet, and
/// the prepaid account, if the user has one.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct Holder {
    #[diesel(column_name = id)]
    pub user_id: String,
    pub name: String,
    #[diesel(select_expression = prepaid_accounts::id.nullable())]
    pub account_id: Option<String>,
}

/// The holders among `user_ids` (in no particular order; unknown ids are left out).
pub fn holders(conn: &mut DbConnection, user_ids: &[String]) -> QueryResult<Vec<Holder>> {
    users::table
        .left_join(prepaid_accounts::table.on(prepaid_accounts::owner_id.eq(users::id)))
        .filter(users::id.eq_any(user_ids))
        .select(Holder::as_select())
        .load(conn)
}

/// The brand's accounts whose owner's email is `email` (back-office search).
pub fn find_by_email(
    conn: &mut DbConnection,
    brand_id: &str,
    email: &EmailAddress,
) -> Result<Vec<Account>, PrepaidError> {
    Ok(prepaid_accounts::table
        .inner_join(users::table)
        .filter(prepaid_accounts::brand_id.eq(brand_id))
        .filter(users::email.eq(email.as_str()))
        .select(AccountRow::as_select())
        .order(prepaid_accounts::id.asc())
        .load::<AccountRow>(conn)?
        .into_iter()
        .map(account_from_row)
        .collect())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = prepaid_entries)]
struct EntryRow {
    id: String,
    seq: i64,
    kind: EntryKind,
    amount_cents: i64,
    balance_after_cents: i64,
    description: String,
    reference: Option<String>,
    actor_id: Option<String>,
    created_at: NaiveDateTime,
}

/// How many entries the account's statement has.
pub fn entry_count(conn: &mut DbConnection, account_id: &str) -> Result<i64, PrepaidError> {
    Ok(prepaid_entries::table
        .filter(prepaid_entries::account_id.eq(account_id.to_owned()))
        .count()
        .get_result(conn)?)
}

/// Entries newest first, at most `limit`, those with `seq < before` when given.
pub fn entries(
    conn: &mut DbConnection,
    account_id: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Entry>, PrepaidError> {
    let mut query = prepaid_entries::table
        .filter(prepaid_entries::account_id.eq(account_id.to_owned()))
        .select(EntryRow::as_select())
        .order(prepaid_entries::seq.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(prepaid_entries::seq.lt(before));
    }
    Ok(query
        .load::<EntryRow>(conn)?
        .into_iter()
        .map(|row| Entry {
            kind: row.kind,
            id: row.id,
            seq: row.seq,
            amount: Money::from_cents(row.amount_cents),
            balance_after: Money::from_cents(row.balance_after_cents),
            description: row.description,
            reference: row.reference,
            actor_id: row.actor_id,
            created_at: row.created_at.and_utc(),
        })
        .collect())
}

/// The sum of all entries of an account: equal to its balance, always (tests check it).
pub fn ledger_sum(conn: &mut DbConnection, account_id: &str) -> Result<Money, PrepaidError> {
    // Summed here rather than in SQL: SUM(BIGINT) is NUMERIC on PostgreSQL and
    // INTEGER on SQLite, and this is an audit check, not a hot path.
    let amounts: Vec<i64> = prepaid_entries::table
        .filter(prepaid_entries::account_id.eq(account_id))
        .select(prepaid_entries::amount_cents)
        .load(conn)?;
    Ok(Money::from_cents(amounts.iter().sum()))
}

/// A back-office operator's manual credit or debit, with the reason in the ledger and the
/// audit log.
pub struct Adjustment {
    pub direction: Direction,
    pub amount: PositiveMoney,
    pub reason: Reason,
}

pub fn adjust(
    conn: &mut DbConnection,
    operator: Operator<'_>,
    account_id: &str,
    adjustment: Adjustment,
    now: DateTime<Utc>,
) -> Result<Entry, PrepaidError> {
    let Operator {
        id: operator_id,
        brand_id: operator_brand,
    } = operator;
    write_transaction(conn, |conn| {
        // Only an account of the operator's brand is adjusted.
        account_of_brand(conn, operator_brand, account_id)?;
        let amount = match adjustment.direction {
            Direction::Credit => adjustment.amount.money(),
            Direction::Debit => -adjustment.amount.money(),
        };
        let entry = post(
            conn,
            account_id,
            Posting {
                kind: EntryKind::Adjustment,
                amount,
                description: adjustment.reason.as_str(),
                reference: None,
                actor_id: Some(operator_id),
            },
            now,
        )?;
        operator.record(
            conn,
            "prepaid.adjusted",
            ("prepaid_account", account_id),
            json!({
                "direction": adjustment.direction.as_str(),
                "amount": adjustment.amount.money().to_string(),
                "reason": adjustment.reason.as_str(),
                "entry_id": entry.id,
                "balance_after": entry.balance_after.to_string(),
            }),
            now,
        )?;
        Ok(entry)
    })
}
