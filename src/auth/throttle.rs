//! The password throttle, for signing in and for confirming the current password before
//! changing it. Three counts of failed attempts in a 15-minute window:
//!
//! - one account from one client address: 5 ([`PAIR_LIMIT`]). This is the count that
//!   stops a guesser, and it is theirs alone: failures from one address never lock the
//!   owner out of the same account from another address.
//! - one client address, whatever the accounts: 20 ([`ADDRESS_LIMIT`]). Stops one address
//!   trying a few passwords on many accounts; higher than the pair's, because an office
//!   behind one NAT address shares it.
//! - one account, from all addresses together: 50 ([`ACCOUNT_LIMIT`]). Slows many addresses
//!   guessing one account (at most 50 guesses every 15 minutes, whatever their number). It
//!   is the one count an attack can push the owner into, and it takes at least 10
//!   addresses to do it, instead of one.
//!
//! When any count is at its limit, further attempts are refused (429) until the oldest of
//! the failures that make it up leaves the window. Attempts are rows in the database, so
//! every service process sees the same counts.
//!
//! An attempt is recorded *before* the password is checked and counted together with the
//! others; concurrent guesses therefore cannot all slip in under the limit. A success
//! deletes its own attempt and clears the failures of its account from its address only
//! (the owner signing in does not hand a guesser elsewhere a fresh allowance); a refused
//! (throttled) attempt deletes its own row, so hammering a throttled account does not
//! extend the wait.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::login_attempts;
use crate::db::{write_transaction, DbConnection};

/// Failures of one account from one client address.
pub const PAIR_LIMIT: usize = 5;
/// Failures from one client address, any accounts.
pub const ADDRESS_LIMIT: usize = 20;
/// Failures of one account, all client addresses together.
pub const ACCOUNT_LIMIT: usize = 50;
pub const WINDOW_MINUTES: i64 = 15;

/// An attempt in progress, to be closed with [`succeeded`] or [`failed`].
#[derive(Debug, Clone)]
pub struct Attempt {
    id: String,
    account_key: String,
    client_address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_seconds: i64,
}

/// The key of an account for the throttle: brand and the address as typed (normalised),
/// whether or not such a user exists, so the throttle does not reveal that either.
pub fn account_key(brand: &str, email_as_typed: &str) -> String {
    format!("{brand}:{}", email_as_typed.trim().to_lowercase())
}

/// Which failures a count takes in.
#[derive(Clone, Copy)]
enum Count {
    Pair,
    Address,
    Account,
}

pub fn begin(
    conn: &mut DbConnection,
    account_key: &str,
    client_address: &str,
    now: DateTime<Utc>,
) -> QueryResult<Result<Attempt, Throttled>> {
    let window_start = (now - Duration::minutes(WINDOW_MINUTES)).naive_utc();
    write_transaction(conn, |conn| {
        let id = Uuid::now_v7().to_string();
        diesel::insert_into(login_attempts::table)
            .values((
                login_attempts::id.eq(&id),
                login_attempts::account_key.eq(account_key),
                login_attempts::client_address.eq(client_address),
                login_attempts::attempted_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;

        let mut retry_at = None;
        for (count, limit) in [
            (Count::Pair, PAIR_LIMIT),
            (Count::Address, ADDRESS_LIMIT),
            (Count::Account, ACCOUNT_LIMIT),
        ] {
            let base = login_attempts::table
                .filter(login_attempts::attempted_at.ge(window_start))
                .filter(login_attempts::id.ne(&id))
                .into_boxed();
            let filtered = match count {
                Count::Pair => base
                    .filter(login_attempts::account_key.eq(account_key))
                    .filter(login_attempts::client_address.eq(client_address)),
                Count::Address => base.filter(login_attempts::client_address.eq(client_address)),
                Count::Account => base.filter(login_attempts::account_key.eq(account_key)),
            };
            // Most recent first: the limit-th of them is the one whose leaving the window
            // brings the count back under the limit.
            let times: Vec<chrono::NaiveDateTime> = filtered
                .order(login_attempts::attempted_at.desc())
                .select(login_attempts::attempted_at)
                .limit(limit as i64)
                .load(conn)?;
            if times.len() >= limit {
                let free_at = times[limit - 1].and_utc() + Duration::minutes(WINDOW_MINUTES);
                retry_at = retry_at.max(Some(free_at));
            }
        }
        match retry_at {
            Some(at) => {
                diesel::delete(login_attempts::table.filter(login_attempts::id.eq(&id)))
                    .execute(conn)?;
                Ok(Err(Throttled {
                    retry_after_seconds: (at - now).num_seconds().max(1),
                }))
            }
            None => Ok(Ok(Attempt {
                id,
                account_key: account_key.to_owned(),
                client_address: client_address.to_owned(),
            })),
        }
    })
}

/// The password was right: this account starts again from zero failures from this
/// address (failures from elsewhere still count towards the account's limit).
pub fn succeeded(conn: &mut DbConnection, attempt: &Attempt) -> QueryResult<()> {
    diesel::delete(
        login_attempts::table.filter(
            login_attempts::id
                .eq(&attempt.id)
                .or(login_attempts::account_key
                    .eq(&attempt.account_key)
                    .and(login_attempts::client_address.eq(&attempt.client_address))),
        ),
    )
    .execute(conn)?;
    Ok(())
}

/// Nothing to undo: the attempt stays recorded as a failure. Attempts older than a day
/// (of anyone) are swept here, so the table stays small without a separate job.
pub fn failed(conn: &mut DbConnection, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::delete(
        login_attempts::table
            .filter(login_attempts::attempted_at.lt((now - Duration::days(1)).naive_utc())),
    )
    .execute(conn)?;
    Ok(())
}

/// The account's password was reset: its failures, from every address, were guesses at a
/// password that no longer exists, and must not keep the owner waiting.
pub fn forgive_account(conn: &mut DbConnection, account_key: &str) -> QueryResult<()> {
    diesel::delete(login_attempts::table.filter(login_attempts::account_key.eq(account_key)))
        .execute(conn)?;
    Ok(())
}
