//! Fixed rate limits counted in the database, so that several service processes share
//! them: at most `limit` hits per `window` for one subject (a client address) in one bucket
//! (what is being limited). The hit is recorded and counted in one transaction.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::rate_limit_hits;
use crate::db::{write_transaction, DbConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub bucket: &'static str,
    pub max_hits: i64,
    pub window: Duration,
}

/// `Ok(Err(seconds))`: over the limit, retry after that many seconds (the hit is not kept,
/// so hammering does not extend the wait).
pub fn hit(
    conn: &mut DbConnection,
    limit: Limit,
    subject: &str,
    now: DateTime<Utc>,
) -> QueryResult<Result<(), i64>> {
    hit_all(conn, &[(limit, subject)], now)
}

/// One hit counted against several limits at once (per user and per address, per hour
/// and per day): either every limit has room and the hit is recorded in each, or none is
/// recorded and `Ok(Err(seconds))` says when all of them will have room again.
pub fn hit_all(
    conn: &mut DbConnection,
    limits: &[(Limit, &str)],
    now: DateTime<Utc>,
) -> QueryResult<Result<(), i64>> {
    write_transaction(conn, |conn| {
        let mut retry_after: Option<i64> = None;
        for (limit, subject) in limits {
            if let Some(wait) = over(conn, *limit, subject, now)? {
                retry_after = Some(retry_after.map_or(wait, |w| w.max(wait)));
            }
        }
        if let Some(retry_after) = retry_after {
            return Ok(Err(retry_after));
        }
        for (limit, subject) in limits {
            record(conn, *limit, subject, now)?;
        }
        Ok(Ok(()))
    })
}

/// How long until `subject` has room under `limit`, if it has none now.
fn over(
    conn: &mut DbConnection,
    limit: Limit,
    subject: &str,
    now: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
    let window_start = (now - limit.window).naive_utc();
    let in_window = || {
        rate_limit_hits::table
            .filter(rate_limit_hits::bucket.eq(limit.bucket))
            .filter(rate_limit_hits::subject.eq(subject))
            .filter(rate_limit_hits::hit_at.ge(window_start))
    };
    let counted: i64 = in_window().count().get_result(conn)?;
    if counted < limit.max_hits {
        return Ok(None);
    }
    // Room comes back when the oldest of the last `max_hits` hits leaves the window.
    let oldest_counted: chrono::NaiveDateTime = in_window()
        .order(rate_limit_hits::hit_at.desc())
        .select(rate_limit_hits::hit_at)
        .offset(limit.max_hits - 1)
        .first(conn)?;
    Ok(Some(
        (oldest_counted.and_utc() + limit.window - now)
            .num_seconds()
            .max(1),
    ))
}

fn record(
    conn: &mut DbConnection,
    limit: Limit,
    subject: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let window_start = (now - limit.window).naive_utc();
    diesel::insert_into(rate_limit_hits::table)
        .values((
            rate_limit_hits::id.eq(Uuid::now_v7().to_string()),
            rate_limit_hits::bucket.eq(limit.bucket),
            rate_limit_hits::subject.eq(subject),
            rate_limit_hits::hit_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    // Keep the table small: this subject's hits that left the window go.
    diesel::delete(
        rate_limit_hits::table
            .filter(rate_limit_hits::bucket.eq(limit.bucket))
            .filter(rate_limit_hits::subject.eq(subject))
            .filter(rate_limit_hits::hit_at.lt(window_start)),
    )
    .execute(conn)?;
    Ok(())
}
