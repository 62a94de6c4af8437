//! Fixed rate limits counted in the database, so that several service processes share
//! them: at most `limit` hits per `window` for one subject (a client address) in one bucket
//! (what is being limited). The hit is recorded and counted in one transaction.
//!
//! Hits are counted in slots of a sixtieth of the window (`rate_limit_slots`, one row per
//! subject and slot), so that counting costs the same however busy the subject is: with
//! a row per hit, every request of a subject near a daily limit of thousands counted
//! thousands of rows (the lookup benchmark fell to 164 requests a second).

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::rate_limit_slots;
use crate::db::{write_transaction_unflushed, DbConnection};

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
///
/// Requests of one subject take turns (a lock on each of its limits for the transaction),
/// which commits without waiting for the flush: the turn is short.
pub fn hit_all_times(
    conn: &mut DbConnection,
    limits: &[(Limit, &str)],
    hits: i64,
    now: DateTime<Utc>,
) -> QueryResult<Result<(), i64>> {
    // A crash may forget the last fraction of a second of hits, which costs nothing;
    // waiting for the flush would make every request of one client queue on its slot.
    write_transaction_unflushed(conn, |conn| {
        // The count and the hit of one request are never split by another's: without
        // this, on PostgreSQL, requests at once all read the same count and all pass
        // (SQLite's write transaction already takes them one at a time). The keys are
        // taken in one order, so two requests never wait for each other in a circle.
        let mut keys: Vec<String> = limits
            .iter()
            .map(|(limit, subject)| format!("rinnovo.rate_limit.{}.{subject}", limit.bucket))
            .collect();
        keys.sort();
        keys.dedup();
        for key in &keys {
            crate::db::lock_key(conn, key)?;
        }
        let mut retry_after: Option<i64> = None;
        let mut new_slot = Vec::new();
        for (limit, subject) in limits {
            let slot = slot_seconds(limit.window);
            let counted = counted_slots(conn, *limit, subject, now)?;
            if let Some(wait) = wait_for_room(&counted, *limit, hits, now) {
                retry_after = Some(retry_after.map_or(wait, |w| w.max(wait)));
            }
            let current = slot_of(now, slot).naive_utc();
            if counted.last().map(|(start, _)| *start) != Some(current) {
                new_slot.push((*limit, *subject));
            }
        }
        if let Some(retry_after) = retry_after {
            return Ok(Err(retry_after));
        }
        // Keep the table small: the first hit of a slot clears the subject's slots that
        // left the window (once a slot, not at every hit).
        for (limit, subject) in new_slot {
            forget_left(conn, limit, subject, now)?;
        }
        add(conn, limits, hits, now)?;
        Ok(Ok(()))
    })
}

/// A window is counted in this many slots: the current one and the ones before it that
/// make up the window. A hit is counted for the window less at most one slot (a sixtieth
/// of it), so a subject may get that sixtieth more in a burst; the count never reads
/// more than this many rows.
const SLOTS_PER_WINDOW: i64 = 60;

/// The length of one slot of `window`, in seconds (at least one).
fn slot_seconds(window: Duration) -> i64 {
    (window.num_seconds() / SLOTS_PER_WINDOW).max(1)
}

/// The start of the slot `at` falls in.
fn slot_of(at: DateTime<Utc>, slot: i64) -> DateTime<Utc> {
    let start = at.timestamp().div_euclid(slot) * slot;
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

/// The oldest slot counted at `now`: with the current one, they span the window.
fn first_counted(window: Duration, slot: i64, now: DateTime<Utc>) -> NaiveDateTime {
    (slot_of(now, slot) - window + Duration::seconds(slot)).naive_utc()
}

/// The slots of `subject` counted under `limit` at `now`, oldest first, with their hits.
fn counted_slots(
    conn: &mut DbConnection,
    limit: Limit,
    subject: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<(NaiveDateTime, i64)>> {
    let slot = slot_seconds(limit.window);
    rate_limit_slots::table
        .filter(rate_limit_slots::bucket.eq(limit.bucket))
        .filter(rate_limit_slots::subject.eq(subject))
        .filter(rate_limit_slots::slot_start.ge(first_counted(limit.window, slot, now)))
        .order(rate_limit_slots::slot_start.asc())
        .select((rate_limit_slots::slot_start, rate_limit_slots::hits))
        .load(conn)
}

/// How long until there is room for `hits` more under `limit`, if there is none now.
/// A slot is counted until `slot_start + window`: its hits are never counted for longer
/// than their window.
fn wait_for_room(
    counted: &[(NaiveDateTime, i64)],
    limit: Limit,
    hits: i64,
    now: DateTime<Utc>,
) -> Option<i64> {
    let whole_window = limit.window.num_seconds().max(1);
    if hits > limit.max_hits {
        return Some(whole_window);
    }
    let mut total: i64 = counted.iter().map(|(_, n)| n).sum();
    if total + hits <= limit.max_hits {
        return None;
    }
    // Room for `hits` comes back when enough of the oldest slots have left the window.
    for (start, n) in counted {
        total -= n;
        if total + hits <= limit.max_hits {
            let leaves = start.and_utc() + limit.window;
            return Some((leaves - now).num_seconds().max(1));
        }
    }
    Some(whole_window)
}

/// Adds `hits` to the current slot of each limit, in one statement, in the callers'
/// order (every caller lists its limits in the same order, so two never wait in a circle).
fn add(
    conn: &mut DbConnection,
    limits: &[(Limit, &str)],
    hits: i64,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    use diesel::upsert::excluded;
    let rows: Vec<_> = limits
        .iter()
        .map(|(limit, subject)| {
            (
                rate_limit_slots::bucket.eq(limit.bucket),
                rate_limit_slots::subject.eq(*subject),
                rate_limit_slots::slot_start
                    .eq(slot_of(now, slot_seconds(limit.window)).naive_utc()),
                rate_limit_slots::hits.eq(hits),
            )
        })
        .collect();
    use rate_limit_slots as slots;
    upsert!(
        conn,
        slots::table,
        &rows,
        on (slots::bucket, slots::subject, slots::slot_start),
        set slots::hits.eq(slots::hits + excluded(slots::hits))
    )?;
    Ok(())
}

/// Removes the slots of `subject` under `limit` that have left the window.
fn forget_left(
    conn: &mut DbConnection,
    limit: Limit,
    subject: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let slot = slot_seconds(limit.window);
    diesel::delete(
        rate_limit_slots::table
            .filter(rate_limit_slots::bucket.eq(limit.bucket))
            .filter(rate_limit_slots::subject.eq(subject))
            .filter(rate_limit_slots::slot_start.lt(first_counted(limit.window, slot, now))),
    )
    .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE_AN_HOUR: Limit = Limit {
        bucket: "test",
        max_hits: 3,
        window: Duration::hours(1),
    };

    #[test]
    fn a_hit_counts_for_its_window_at_most_and_the_wait_is_when_room_comes_back() {
        let mut conn = crate::db::migrated_in_memory();
        let t0 = DateTime::parse_from_rfc3339("2026-12-02T10:00:30Z")
            .unwrap()
            .to_utc();
        let at = |minutes: i64| t0 + Duration::minutes(minutes);
        for minutes in [0, 10, 20] {
            assert_eq!(hit(&mut conn, THREE_AN_HOUR, "a", at(minutes)), Ok(Ok(())));
        }
        // Another subject has its own count.
        assert_eq!(hit(&mut conn, THREE_AN_HOUR, "b", at(30)), Ok(Ok(())));
        // The first hit's slot (10:00-10:01) leaves the window at 11:00: 29.5 minutes on.
        assert_eq!(
            hit(&mut conn, THREE_AN_HOUR, "a", at(30)),
            Ok(Err(29 * 60 + 30))
        );
        // Refused hits are not kept: at 11:00 there is room for one, not two.
        let eleven = DateTime::parse_from_rfc3339("2026-12-02T11:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(hit(&mut conn, THREE_AN_HOUR, "a", eleven), Ok(Ok(())));
        assert!(matches!(
            hit(&mut conn, THREE_AN_HOUR, "a", eleven),
            Ok(Err(wait)) if (1..=3600).contains(&wait)
        ));
        // More at once than the limit ever allows: the whole window.
        assert_eq!(
            hit_all_times(&mut conn, &[(THREE_AN_HOUR, "c")], 4, eleven),
            Ok(Err(3600))
        );
    }
}
