//! The login throttle: after 5 failed attempts in 15 minutes, for one account or from one
//! client address, further attempts are refused (429) until the oldest of those failures
//! leaves the window. Attempts are rows in the database, so every service process sees
//! the same count.
//!
//! An attempt is recorded *before* the password is checked and counted together with the
//! others; concurrent guesses therefore cannot all slip in under the limit. A successful
//! login deletes its own attempt and clears the account's failures; a refused (throttled)
//! attempt deletes its own row, so hammering a locked account does not extend the lock.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::login_attempts;
use crate::db::{write_transaction, DbConnection};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW_MINUTES: i64 = 15;

/// An attempt in progress, to be closed with [`succeeded`] or [`failed`].
#[derive(Debug, Clone)]
pub struct Attempt {
    id: String,
    account_key: String,
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
        for (by_account, key) in [(true, account_key), (false, client_address)] {
            let base = login_attempts::table
                .filter(login_attempts::attempted_at.ge(window_start))
                .filter(login_attempts::id.ne(&id))
                .into_boxed();
            let filtered = if by_account {
                base.filter(login_attempts::account_key.eq(key))
            } else {
                base.filter(login_attempts::client_address.eq(key))
            };
            // Most recent first: the MAX_FAILURES-th of them is the one whose leaving the
            // window brings the count back under the limit.
            let times: Vec<chrono::NaiveDateTime> = filtered
                .order(login_attempts::attempted_at.desc())
                .select(login_attempts::attempted_at)
                .limit(MAX_FAILURES as i64)
                .load(conn)?;
            if times.len() >= MAX_FAILURES {
                let free_at = times[MAX_FAILURES - 1].and_utc() + Duration::minutes(WINDOW_MINUTES);
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
            })),
        }
    })
}

/// The password was right: this account starts again from zero failures.
pub fn succeeded(conn: &mut DbConnection, attempt: &Attempt) -> QueryResult<()> {
    diesel::delete(
        login_attempts::table.filter(
            login_attempts::id
                .eq(&attempt.id)
                .or(login_attempts::account_key.eq(&attempt.account_key)),
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
