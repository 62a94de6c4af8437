//! The back-office's manual actions on payments: matching an unmatched payment by hand to
//! an order or a prepaid account ([`match_by_hand`], the one function the JSON API and the
//! back-office page both call, so they cannot disagree on which target is meant), and marking one refunded. Every manual action needs a
//! reason, takes the brand's payments lock (as the import does), and is in the audit log.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::listing::{find, PaymentView};
use super::matching::{decide, Payable, PaymentStatus, Standing};
use super::statement::EntryDirection;
use super::store;
use crate::audit::Operator;
use crate::brands;
use crate::coupons::CouponKey;
use crate::db::{write_transaction, DbConnection};
use crate::money::Money;
use crate::orders::{self as order_domain, Order, OrderStatus};
use crate::prepaid::{self, EntryKind, Posting, PrepaidError};
use crate::validation::Reason;

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum ManualError {
        #[error("no payment of your brand has this id")]
        UnknownPayment,
        #[error("no order of your brand has this id")]
        UnknownOrder,
        #[error("only an unmatched credit can be matched by hand; this payment is {0}")]
        NotUnmatched(PaymentStatus),
        #[error(
            "only an unmatched, duplicate or overpaid credit can be refunded; this payment is {0}"
        )]
        NotRefundable(PaymentStatus),
        #[error("the order is {0}: only an order awaiting payment, expired or already paid can take a payment")]
        OrderNotPayable(OrderStatus),
        #[error(transparent)]
        Prepaid(#[from] PrepaidError),
    }
    storage from diesel::result::Error, order_domain::OrderError
}

/// An operator's decision by hand: who decides, in their brand, and why (the payment's
/// note and the audit log keep the reason).
pub struct ByHand<'a> {
    pub operator: Operator<'a>,
    pub reason: &'a Reason,
}

fn locked_payment(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    payment_id: &str,
) -> Result<PaymentView, ManualError> {
    super::reconcile::lock_payments_of_brand(conn, by.operator.brand_id)?;
    find(conn, by.operator.brand_id, payment_id)?.ok_or(ManualError::UnknownPayment)
}

/// Records what a manual action (`action`, as the audit log names it) made of the payment.
fn resolve(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    payment: &PaymentView,
    action: &'static str,
    changes: Resolution,
    now: DateTime<Utc>,
) -> Result<PaymentView, ManualError> {
    store::resolve_by_hand(
        conn,
        &payment.id,
        &store::Resolution {
            status: changes.status,
            order_id: changes.order_id.as_deref().or(payment.order_id.as_deref()),
            account_id: changes
                .account_id
                .as_deref()
                .or(payment.account_id.as_deref()),
            applied: changes.applied,
            credited: changes.credited,
            operator_id: by.operator.id,
            note: by.reason.as_str(),
        },
        now,
    )?;
    by.operator.record(
        conn,
        action,
        ("payment", &payment.id),
        json!({
            "reason": by.reason.as_str(),
            "previous_status": payment.status.as_str(),
            "status": changes.status.as_str(),
            "order_id": changes.order_id, "account_id": changes.account_id,
            "applied": changes.applied.to_string(), "credited": changes.credited.to_string(),
        }),
        now,
    )?;
    // Read back as the operator will see it in the queue.
    find(conn, by.operator.brand_id, &payment.id)?.ok_or(ManualError::UnknownPayment)
}

/// What a manual action decided, as the payment row and the audit log keep it.
struct Resolution {
    status: PaymentStatus,
    order_id: Option<String>,
    account_id: Option<String>,
    applied: Money,
    credited: Money,
}

/// A prepaid ledger entry a manual action writes: its kind and the text the customer reads
/// on their statement, with the amount.
enum ManualEntry {
    /// An unmatched payment matched to the account: a top-up.
    TopUp(Money),
    /// What a payment matched to an order brought beyond the order's price.
    Excess(Money),
    /// What had been credited of a payment now refunded, taken back (negative).
    Refund(Money),
}

/// Posts `entry` to prepaid account `account_id` in the operator's name, the payment as
/// its reference.
fn post_by_operator(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    payment: &PaymentView,
    account_id: &str,
    entry: ManualEntry,
    now: DateTime<Utc>,
) -> Result<(), ManualError> {
    let (kind, amount, description) = match entry {
        ManualEntry::TopUp(amount) => (
            EntryKind::TopUp,
            amount,
            "Versamento abbinato dall'amministrazione",
        ),
        ManualEntry::Excess(amount) => (
            EntryKind::OverpaymentCredit,
            amount,
            "Eccedenza di pagamento (abbinato dall'amministrazione)",
        ),
        ManualEntry::Refund(amount) => (EntryKind::Adjustment, amount, "Rimborso al versante"),
    };
    let posting = Posting {
        kind,
        amount,
        description,
        reference: Some(&payment.id),
        actor_id: Some(by.operator.id),
    };
    prepaid::post(conn, account_id, posting, now)?;
    Ok(())
}

impl PaymentView {
    /// Money in (a reversal is money out).
    pub fn is_credit(&self) -> bool {
        self.direction == EntryDirection::Credit
    }

    /// Whether an operator may match it to an order or top-up by hand: an unmatched credit
    /// only.
    pub fn may_match_by_hand(&self) -> bool {
        self.is_credit() && self.status == PaymentStatus::Unmatched
    }

    /// Whether an operator may record that the money went back to the payer: a credit
    /// that is unmatched, a duplicate or an overpayment.
    pub fn may_refund_by_hand(&self) -> bool {
        self.is_credit()
            && matches!(
                self.status,
                PaymentStatus::Unmatched | PaymentStatus::Duplicate | PaymentStatus::Overpaid
            )
    }
}

/// The payment, locked, if it is an unmatched credit: the only kind matched by hand.
fn locked_unmatched_credit(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    payment_id: &str,
) -> Result<PaymentView, ManualError> {
    let payment = locked_payment(conn, by, payment_id)?;
    if !payment.may_match_by_hand() {
        return Err(ManualError::NotUnmatched(payment.status));
    }
    Ok(payment)
}

/// Credits an unmatched payment to a prepaid account of the brand (a payer who forgot
/// the RF code, a late payment the customer wants as credit); says what the payment
/// became, for [`match_by_hand`] to record.
fn match_to_account(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    payment: &PaymentView,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<Resolution, ManualError> {
    let account = prepaid::account(conn, account_id)?;
    if account.brand_id != by.operator.brand_id {
        return Err(PrepaidError::UnknownAccount.into());
    }
    let top_up = ManualEntry::TopUp(payment.amount);
    post_by_operator(conn, by, payment, account_id, top_up, now)?;
    Ok(Resolution {
        status: PaymentStatus::Matched,
        order_id: None,
        account_id: Some(account_id.to_owned()),
        applied: Money::ZERO,
        credited: payment.amount,
    })
}

/// Applies an unmatched payment to an order of the brand as if it had carried its RF code,
/// with the reservation deadline waived (the operator decided): exact → fulfilled, less →
/// partial, more → fulfilled with the excess credited, already paid → credited. Says what
/// the payment became, for [`match_by_hand`] to record.
fn match_to_order(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    key: &CouponKey,
    public_url: &str,
    payment: &PaymentView,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Resolution, ManualError> {
    let order = locked_order(conn, by, order_id)?;
    let payable = Payable::of_order(&order).deadline_waived();
    if payable.standing == Standing::Cancelled {
        return Err(ManualError::OrderNotPayable(order.status));
    }
    let decision = decide(
        Some(&payable),
        payment.amount,
        payment.booking_date,
        now.date_naive(),
    );
    let holder = prepaid::holders(conn, std::slice::from_ref(&order.user_id))?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("user {} missing", order.user_id))?;
    if decision.credited.is_positive() {
        // What the payment brought beyond the order's price goes to the buyer's
        // prepaid account.
        let account_id = holder
            .account_id
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("user {} has no prepaid account", holder.user_id))?;
        let excess = ManualEntry::Excess(decision.credited);
        post_by_operator(conn, by, payment, account_id, excess, now)?;
    }
    let received = payable.after(&decision).received;
    if decision.completes {
        fulfil(
            conn,
            by,
            (key, public_url),
            &order,
            &holder.name,
            received,
            now,
        )?;
    } else if decision.applied.is_positive() {
        order_domain::record_received(conn, order_id, received)?;
    }
    Ok(Resolution {
        status: decision.status,
        order_id: Some(order_id.to_owned()),
        account_id: decision
            .credited
            .is_positive()
            .then_some(holder.account_id)
            .flatten(),
        applied: decision.applied,
        credited: decision.credited,
    })
}

/// The order, locked as the import locks it, if it is of the operator's brand.
fn locked_order(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    order_id: &str,
) -> Result<Order, ManualError> {
    order_domain::lock_many(conn, &[order_id.to_owned()])?
        .pop()
        .filter(|o| o.brand_id == by.operator.brand_id)
        .ok_or(ManualError::UnknownOrder)
}

/// The order is paid: fulfilled as the import fulfils it.
fn fulfil(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    till: (&CouponKey, &str),
    order: &Order,
    name: &str,
    received: Money,
    now: DateTime<Utc>,
) -> Result<(), ManualError> {
    let brand = brands::existing(conn, by.operator.brand_id)?;
    let (key, public_url) = till;
    order_domain::fulfil_paid(conn, key, &brand, order, name, received, public_url, now)?;
    Ok(())
}

/// The money went back to the payer (outside rinnovo). An unmatched payment simply leaves
/// the queue; for a duplicate or an overpayment, what had been credited to the prepaid
/// account is debited back (refused if the customer has spent it meanwhile).
pub fn refund(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    payment_id: &str,
    now: DateTime<Utc>,
) -> Result<PaymentView, ManualError> {
    write_transaction(conn, |conn| {
        let payment = locked_payment(conn, by, payment_id)?;
        if !payment.may_refund_by_hand() {
            return Err(ManualError::NotRefundable(payment.status));
        }
        if let (Some(account_id), true) = (&payment.account_id, payment.credited.is_positive()) {
            let refund = ManualEntry::Refund(-payment.credited);
            post_by_operator(conn, by, &payment, account_id, refund, now)?;
        }
        resolve(
            conn,
            by,
            &payment,
            "payment.refunded",
            Resolution {
                status: PaymentStatus::Refunded,
                order_id: None,
                account_id: None,
                applied: payment.applied,
                credited: Money::ZERO,
            },
            now,
        )
    })
}

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

/// Matches the unmatched credit `payment_id` to `target`, for `operator`'s brand: the
/// payment is locked and checked, and what it became recorded, here once, whichever the
/// target.
pub fn match_by_hand(
    conn: &mut DbConnection,
    by: &ByHand<'_>,
    key: &CouponKey,
    public_url: &str,
    payment_id: &str,
    target: &ManualTarget,
    now: DateTime<Utc>,
) -> Result<PaymentView, ManualError> {
    write_transaction(conn, |conn| {
        let payment = locked_unmatched_credit(conn, by, payment_id)?;
        let resolution = match target {
            ManualTarget::Order(order_id) => {
                match_to_order(conn, by, key, public_url, &payment, order_id, now)?
            }
            ManualTarget::Account(account_id) => {
                match_to_account(conn, by, &payment, account_id, now)?
            }
        };
        resolve(
            conn,
            by,
            &payment,
            "payment.matched_by_hand",
            resolution,
            now,
        )
    })
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
