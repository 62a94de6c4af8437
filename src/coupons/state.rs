//! The coupon's state machine (DESIGN.md): stored `available` ([`insert_all`]), then
//! `available` → `reserved` → `redeemed`;
//! `reserved` → `available` (released); any unused → `voided`. Every move is a
//! conditional update from the state it leaves, so of two racing moves exactly one
//! happens; each returns whether it did. The only writer of the `coupons` table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{CouponKey, CouponStatus, NewCoupon};
use crate::db::schema::coupons;
use crate::db::DbConnection;
use crate::invoices::CreditedCoupon;

/// Stores coupons, many rows per statement (a bulk order or a statement import can make
/// thousands). Only the keyed hash of each code is stored.
pub fn insert_all(
    conn: &mut DbConnection,
    key: &CouponKey,
    new: &[NewCoupon],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    insert_many!(conn, coupons::table, new, 1000, |c| {
        (
            coupons::id.eq(&c.id),
            coupons::brand_id.eq(&c.brand_id),
            coupons::order_id.eq(&c.order_id),
            coupons::owner_id.eq(&c.owner_id),
            coupons::product_id.eq(&c.product_id),
            coupons::code_hash.eq(key.hash(&c.code)),
            coupons::code_hint.eq(c.code.hint()),
            coupons::status.eq(CouponStatus::Available.as_str()),
            coupons::net_unit_cents.eq(c.net_unit_cents),
            coupons::vat_rate_basis_points.eq(c.vat_rate_basis_points),
            coupons::valid_until.eq(c.valid_until.naive_utc()),
            coupons::created_at.eq(now.naive_utc()),
        )
    })?;
    Ok(())
}

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

/// Voids the coupons of an order not yet used, all of them (the money that paid the order
/// was taken back by the bank) or only those among `chosen` (a card refund of some of its
/// coupons); returns those it voided, for the credit note that credits them. Reserved or
/// redeemed ones are left alone: a caller that chose compares the count with what it asked.
pub fn void_unused_of_order(
    conn: &mut DbConnection,
    order_id: &str,
    chosen: Option<&[String]>,
    now: DateTime<Utc>,
) -> QueryResult<Vec<CreditedCoupon>> {
    let mut unused = diesel::update(
        coupons::table
            .filter(coupons::order_id.eq(order_id))
            .filter(coupons::status.eq(CouponStatus::Available.as_str())),
    )
    .into_boxed();
    if let Some(ids) = chosen {
        unused = unused.filter(coupons::id.eq_any(ids));
    }
    unused
        .set((
            coupons::status.eq(CouponStatus::Voided.as_str()),
            coupons::voided_at.eq(Some(now.naive_utc())),
        ))
        .returning(CREDITED)
        .get_results(conn)
}

/// The columns of [`CREDITED`].
pub(super) type Credited = (
    coupons::id,
    coupons::product_id,
    coupons::net_unit_cents,
    coupons::vat_rate_basis_points,
);

/// What a credit note needs of a coupon it credits.
pub(super) const CREDITED: Credited = (
    coupons::id,
    coupons::product_id,
    coupons::net_unit_cents,
    coupons::vat_rate_basis_points,
);

/// The coupon's status, its row locked until the transaction ends (PostgreSQL; SQLite's
/// writer lock already excludes every other writer); `None` for an unknown id.
pub fn lock(conn: &mut DbConnection, coupon_id: &str) -> QueryResult<Option<CouponStatus>> {
    let query = coupons::table
        .filter(coupons::id.eq(coupon_id))
        .select(coupons::status);
    for_update!(conn, query, |q, c| q.first(c).optional())
}

/// An unused coupon just voided to be replaced: what its replacement keeps.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Replaced {
    pub id: String,
    pub product_id: String,
    pub net_unit_cents: i64,
    pub vat_rate_basis_points: i32,
    pub valid_until: chrono::NaiveDateTime,
}

/// `available` → `voided` for every unused, unexpired coupon of an order whose codes are to
/// be sent again ([`crate::orders::resend`]). One conditional update: of two racing
/// resends, each coupon is voided, and so replaced, by exactly one.
pub fn void_unused_for_reissue(
    conn: &mut DbConnection,
    order_id: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<Replaced>> {
    diesel::update(
        coupons::table
            .filter(coupons::order_id.eq(order_id))
            .filter(coupons::status.eq(CouponStatus::Available.as_str()))
            .filter(coupons::valid_until.gt(now.naive_utc())),
    )
    .set((
        coupons::status.eq(CouponStatus::Voided.as_str()),
        coupons::voided_at.eq(Some(now.naive_utc())),
    ))
    .returning((
        coupons::id,
        coupons::product_id,
        coupons::net_unit_cents,
        coupons::vat_rate_basis_points,
        coupons::valid_until,
    ))
    .get_results(conn)
}
