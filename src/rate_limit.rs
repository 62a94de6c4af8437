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
    let window_start = (now - limit.window).naive_utc();
    write_transaction(conn, |conn| {
        let recent: Vec<chrono::NaiveDateTime> = rate_limit_hits::table
            .filter(rate_limit_hits::bucket.eq(limit.bucket))
            .filter(rate_limit_hits::subject.eq(subject))
            .filter(rate_limit_hits::hit_at.ge(window_start))
            .order(rate_limit_hits::hit_at.desc())
            .select(rate_limit_hits::hit_at)
            .limit(limit.max_hits)
            .load(conn)?;
        if recent.len() as i64 >= limit.max_hits {
            let oldest_counted = recent[recent.len() - 1].and_utc();
            let retry_after = (oldest_counted + limit.window - now).num_seconds().max(1);
            return Ok(Err(retry_after));
        }
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
        Ok(Ok(()))
    })
}
