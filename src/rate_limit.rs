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
    hit_all_times(conn, limits, 1, now)
}

/// `hits` hits at once (a list of holders looked up in one request counts each holder),
/// against several limits: all of them are recorded, or none. A request is never half
/// served, so room must be there for every hit; more hits than a limit allows in a whole
/// window never fit, and `Ok(Err(seconds))` then says the full window.
pub fn hit_all_times(
    conn: &mut DbConnection,
    limits: &[(Limit, &str)],
    hits: i64,
    now: DateTime<Utc>,
) -> QueryResult<Result<(), i64>> {
    write_transaction(conn, |conn| {
        let mut retry_after: Option<i64> = None;
        for (limit, subject) in limits {
            if let Some(wait) = over(conn, *limit, subject, hits, now)? {
                retry_after = Some(retry_after.map_or(wait, |w| w.max(wait)));
            }
        }
        if let Some(retry_after) = retry_after {
            return Ok(Err(retry_after));
        }
        for (limit, subject) in limits {
            record(conn, *limit, subject, hits, now)?;
        }
        Ok(Ok(()))
    })
}

/// How long until `subject` has room for `hits` more under `limit`, if it has none now.
fn over(
    conn: &mut DbConnection,
    limit: Limit,
    subject: &str,
    hits: i64,
    now: DateTime<Utc>,
) -> QueryResult<Option<i64>> {
    if hits > limit.max_hits {
        return Ok(Some(limit.window.num_seconds().max(1)));
    }
    let window_start = (now - limit.window).naive_utc();
    let in_window = || {
        rate_limit_hits::table
            .filter(rate_limit_hits::bucket.eq(limit.bucket))
            .filter(rate_limit_hits::subject.eq(subject))
            .filter(rate_limit_hits::hit_at.ge(window_start))
    };
    let counted: i64 = in_window().count().get_result(conn)?;
    if counted + hits <= limit.max_hits {
        return Ok(None);
    }
    // Room for `hits` comes back when, of the hits in the window newest first, the one at
    // `max_hits - hits` (and so every older one) has left it.
    let oldest_counted: chrono::NaiveDateTime = in_window()
        .order(rate_limit_hits::hit_at.desc())
        .select(rate_limit_hits::hit_at)
        .offset(limit.max_hits - hits)
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
    hits: i64,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let window_start = (now - limit.window).naive_utc();
    // One row a hit, so counting and the wait above stay plain; a few hundred rows per
    // statement, well within every backend's limit on bound parameters.
    let mut left = hits;
    while left > 0 {
        let rows: Vec<_> = (0..left.min(500))
            .map(|_| {
                (
                    rate_limit_hits::id.eq(Uuid::now_v7().to_string()),
                    rate_limit_hits::bucket.eq(limit.bucket),
                    rate_limit_hits::subject.eq(subject),
                    rate_limit_hits::hit_at.eq(now.naive_utc()),
                )
            })
            .collect();
        left -= rows.len() as i64;
        insert_many!(conn, rate_limit_hits::table, rows)?;
    }
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
