//! Matching a payment by hand: the back-office names either an order or a prepaid
//! account, and the payment goes there. The one function the JSON API and the
//! back-office page both call, so they cannot disagree on which target is meant.

use chrono::{DateTime, Utc};

use super::queue::{self, ManualError, Operator, PaymentView};
use crate::coupons::CouponKey;
use crate::db::DbConnection;

/// Where a payment matched by hand goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualTarget {
    /// An order (by id): it is paid, invoiced and fulfilled as by a matched transfer.
    Order(String),
    /// A prepaid account (by id): the payment becomes a top-up.
    Account(String),
}

/// The operator named no target, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("give either order_id or account_id (one of them)")]
    Neither,
    #[error("give either order_id or account_id (one of them)")]
    Both,
}

impl crate::validation::Rule for TargetError {
    fn rule(&self) -> &'static str {
        "one_of"
    }
}

impl ManualTarget {
    /// Exactly one of an order id and an account id; blank counts as not given (a form
    /// sends both fields, one of them empty).
    pub fn choose(order_id: Option<&str>, account_id: Option<&str>) -> Result<Self, TargetError> {
        match (given(order_id), given(account_id)) {
            (Some(order), None) => Ok(Self::Order(order.to_owned())),
            (None, Some(account)) => Ok(Self::Account(account.to_owned())),
            (None, None) => Err(TargetError::Neither),
            (Some(_), Some(_)) => Err(TargetError::Both),
        }
    }
}

fn given(id: Option<&str>) -> Option<&str> {
    id.map(str::trim).filter(|id| !id.is_empty())
}

/// Matches the unmatched credit `payment_id` to `target`, for `operator`'s brand.
pub fn match_by_hand(
    conn: &mut DbConnection,
    operator: &Operator<'_>,
    key: &CouponKey,
    public_url: &str,
    payment_id: &str,
    target: &ManualTarget,
    now: DateTime<Utc>,
) -> Result<PaymentView, ManualError> {
    match target {
        ManualTarget::Order(order_id) => {
            queue::match_to_order(conn, operator, key, public_url, payment_id, order_id, now)
        }
        ManualTarget::Account(account_id) => {
            queue::match_to_account(conn, operator, payment_id, account_id, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_target_is_taken() {
        assert_eq!(
            ManualTarget::choose(Some(" o1 "), Some("")),
            Ok(ManualTarget::Order("o1".into()))
        );
        assert_eq!(
            ManualTarget::choose(None, Some("a1")),
            Ok(ManualTarget::Account("a1".into()))
        );
        assert_eq!(
            ManualTarget::choose(Some(" "), None),
            Err(TargetError::Neither)
        );
        assert_eq!(
            ManualTarget::choose(Some("o1"), Some("a1")),
            Err(TargetError::Both)
        );
    }
}
