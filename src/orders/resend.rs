//! Codes lost or deleted: an order's unused codes sent again. Codes are stored only as
//! keyed hashes, so they cannot be sent as they were: the unused ones are voided and
//! replaced by new coupons of the same product, price and validity, and the new codes go
//! to the owner's confirmed address of today, not to the one the order was placed with.
//! No money moves. One transaction, audited.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::fulfilment::{self, IssuedCode};
use super::{OrderError, OrderStatus};
use crate::audit::{self, Actor, AuditEntry};
use crate::auth::confirmation::{self, ConfirmationError};
use crate::auth::users;
use crate::brands;
use crate::coupons::{self, CouponKey, NewCoupon};
use crate::db::{write_transaction, DbConnection};
use crate::mail::outbox;
use crate::rate_limit::{self, Limit};
use crate::validation::Reason;

/// A buyer may have an order's codes sent again this often: enough for a lost email or
/// two, not enough to flood a mailbox. Operators, who act on a call and give a reason,
/// are not limited.
pub const RESENDS_PER_ORDER: Limit = Limit {
    bucket: "codes_resend",
    max_hits: 5,
    window: chrono::Duration::hours(24),
};

/// Who asks for the codes again.
pub enum Requester<'a> {
    /// The buyer, for one of their own orders.
    Owner { user_id: &'a str, brand_id: &'a str },
    /// A back-office operator of the order's brand, who says why.
    Operator {
        operator: audit::Operator<'a>,
        reason: &'a Reason,
    },
}

impl Requester<'_> {
    fn user_id(&self) -> &str {
        match self {
            Self::Owner { user_id, .. } => user_id,
            Self::Operator { operator, .. } => operator.id,
        }
    }
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum ResendError {
        /// Unknown, or not the caller's to see (answered alike).
        #[error("no such order")]
        NotFound,
        #[error("the order is {0}: codes exist only once it is fulfilled")]
        NotFulfilled(OrderStatus),
        #[error("the order has no unused codes left to send again (used, voided or expired)")]
        NothingUnused,
        #[error("codes of this order were sent again too often; retry in {0} seconds")]
        TooOften(i64),
        /// Codes go only to a confirmed address.
        #[error(transparent)]
        Confirmation(#[from] ConfirmationError),
    }
    storage from diesel::result::Error
}

impl From<OrderError> for ResendError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::NotFound => Self::NotFound,
            other => Self::Storage(other.into()),
        }
    }
}

/// What was sent: how many new codes, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resent {
    pub codes: usize,
    pub recipient: String,
}

/// Voids the order's unused, unexpired coupons and emails new codes in their place.
pub fn resend_unused_codes(
    conn: &mut DbConnection,
    key: &CouponKey,
    public_url: &str,
    requester: &Requester<'_>,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Resent, ResendError> {
    let order = super::find(conn, order_id)?.ok_or(ResendError::NotFound)?;
    let visible = match requester {
        Requester::Owner { user_id, brand_id } => {
            order.user_id == *user_id && order.brand_id == *brand_id
        }
        Requester::Operator { operator, .. } => order.brand_id == operator.brand_id,
    };
    if !visible {
        return Err(ResendError::NotFound);
    }
    if !order.status.resends_codes() {
        return Err(ResendError::NotFulfilled(order.status));
    }
    if let Requester::Owner { .. } = requester {
        if let Err(retry_after) = rate_limit::hit(conn, RESENDS_PER_ORDER, &order.id, now)? {
            return Err(ResendError::TooOften(retry_after));
        }
    }
    write_transaction(conn, |conn| {
        let replaced = coupons::state::void_unused_for_reissue(conn, &order.id, now)?;
        if replaced.is_empty() {
            return Err(ResendError::NothingUnused);
        }
        let owner = users::find(conn, &order.user_id)
            .map_err(|e| anyhow::anyhow!("owner of order {}: {e}", order.id))?
            .ok_or_else(|| anyhow::anyhow!("order {} has no owner", order.id))?;
        let recipient = confirmation::confirmed_email(&owner)?;
        let brand = brands::existing(conn, &order.brand_id)?;
        let fresh: Vec<NewCoupon> = replaced
            .iter()
            .map(|old| {
                NewCoupon::generate(
                    &order.brand_id,
                    &order.id,
                    &order.user_id,
                    &old.product_id,
                    old.net_unit_cents,
                    old.vat_rate_basis_points,
                    old.valid_until.and_utc(),
                )
            })
            .collect();
        coupons::insert_all(conn, key, &fresh, now)?;
        let issued: Vec<IssuedCode<'_>> = fresh
            .iter()
            .map(|coupon| IssuedCode {
                code: coupon.code.clone(),
                product: order
                    .lines
                    .iter()
                    .find(|line| line.product_id == coupon.product_id)
                    .map_or(coupon.product_id.as_str(), |line| &line.product_name),
                valid_until: coupon.valid_until,
            })
            .collect();
        let email = fulfilment::delivery_email(
            &brand,
            &owner.name,
            &order,
            recipient.as_str(),
            &issued,
            public_url,
            true,
        );
        outbox::enqueue(conn, &email, now)?;
        let reason = match requester {
            Requester::Operator { reason, .. } => Some(reason.as_str()),
            Requester::Owner { .. } => None,
        };
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(&order.brand_id),
                actor: &Actor::User(requester.user_id().to_owned()),
                action: "order.codes_resent",
                subject_type: "order",
                subject_id: &order.id,
                details: json!({
                    "voided": replaced.iter().map(|c| &c.id).collect::<Vec<_>>(),
                    "issued": fresh.iter().map(|c| &c.id).collect::<Vec<_>>(),
                    "reason": reason,
                }),
            },
            now,
        )?;
        Ok(Resent {
            codes: fresh.len(),
            recipient: recipient.to_string(),
        })
    })
}
