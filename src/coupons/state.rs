//! The coupon's state machine (DESIGN.md): `available` → `reserved` → `redeemed`;
//! `reserved` → `available` (released); any unused → `voided`. Every move is a
//! conditional update from the state it leaves, so of two racing moves exactly one
//! happens; each returns whether it did. The only writers of a coupon's status.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::CouponStatus;
use crate::db::schema::coupons;
use crate::db::DbConnection;

fn flip(
    conn: &mut DbConnection,
    coupon_id: &str,
    from: CouponStatus,
    to: CouponStatus,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let row = coupons::table
        .filter(coupons::id.eq(coupon_id))
        .filter(coupons::status.eq(from.as_str()));
    let now = Some(now.naive_utc());
    let changed = match to {
        CouponStatus::Redeemed => diesel::update(row)
            .set((
                coupons::status.eq(to.as_str()),
                coupons::redeemed_at.eq(now),
            ))
            .execute(conn)?,
        CouponStatus::Voided => diesel::update(row)
            .set((coupons::status.eq(to.as_str()), coupons::voided_at.eq(now)))
            .execute(conn)?,
        CouponStatus::Available | CouponStatus::Reserved => diesel::update(row)
            .set(coupons::status.eq(to.as_str()))
            .execute(conn)?,
    };
    Ok(changed == 1)
}

/// `available` → `reserved`, for a renewal request. Of concurrent requests with one
/// coupon exactly one gets `true`.
pub fn reserve(conn: &mut DbConnection, coupon_id: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    flip(
        conn,
        coupon_id,
        CouponStatus::Available,
        CouponStatus::Reserved,
        now,
    )
}

/// `reserved` → `available`: the renewal holding it was rejected or failed.
pub fn release(conn: &mut DbConnection, coupon_id: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    flip(
        conn,
        coupon_id,
        CouponStatus::Reserved,
        CouponStatus::Available,
        now,
    )
}

/// `reserved` → `redeemed`: the renewed certificate was installed.
pub fn redeem(conn: &mut DbConnection, coupon_id: &str, now: DateTime<Utc>) -> QueryResult<bool> {
    flip(
        conn,
        coupon_id,
        CouponStatus::Reserved,
        CouponStatus::Redeemed,
        now,
    )
}

/// `available` → `voided`: by the back-office, with a refund ([`super::void`]).
pub fn void_available(
    conn: &mut DbConnection,
    coupon_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    flip(
        conn,
        coupon_id,
        CouponStatus::Available,
        CouponStatus::Voided,
        now,
    )
}

/// Voids the coupons of an order not yet used (the money that paid the order was taken
/// back by the bank); returns how many. Reserved or redeemed ones are left alone.
pub fn void_unused_of_order(
    conn: &mut DbConnection,
    order_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        coupons::table
            .filter(coupons::order_id.eq(order_id))
            .filter(coupons::status.eq(CouponStatus::Available.as_str())),
    )
    .set((
        coupons::status.eq(CouponStatus::Voided.as_str()),
        coupons::voided_at.eq(Some(now.naive_utc())),
    ))
    .execute(conn)
}

/// The coupon's status, its row locked until the transaction ends (PostgreSQL; SQLite's
/// writer lock already excludes every other writer); `None` for an unknown id.
pub fn lock(conn: &mut DbConnection, coupon_id: &str) -> QueryResult<Option<CouponStatus>> {
    let query = coupons::table
        .filter(coupons::id.eq(coupon_id))
        .select(coupons::status);
    let status: Option<String> = for_update!(conn, query, |q, c| q.first(c).optional())?;
    Ok(status.and_then(|s| CouponStatus::parse(&s)))
}
