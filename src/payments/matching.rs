//! What a payment does, decided from the state of what its RF code pays for. Pure
//! functions: the import (`reconcile`) loads the state, asks [`decide`], and writes what
//! it says. Every case has one outcome; none drops money.

use chrono::{DateTime, NaiveDate, Utc};

use crate::money::Money;
use crate::orders::{Order, OrderStatus};
use crate::prepaid::top_ups::{TopUp, TopUpStatus};

text_enum!(
    /// What happened to a statement entry.
    PaymentStatus {
        /// Exactly what was due: the order is fulfilled (or the top-up credited).
        Matched => "matched",
        /// Less than due: counted, the order waits for the rest.
        Partial => "partial",
        /// More than due: the order is fulfilled, the excess credited to the prepaid account.
        Overpaid => "overpaid",
        /// For something already paid: credited to the prepaid account.
        Duplicate => "duplicate",
        /// Nothing to match: waits for the back-office.
        Unmatched => "unmatched",
        /// Sent back to the payer (by hand).
        Refunded => "refunded",
        /// Taken back by the bank: its effect was undone.
        Reversed => "reversed",
        /// The bank's reversal of an earlier credit.
        Reversal => "reversal",
    }
);

text_enum!(
    /// Why a payment waits for the back-office.
    UnmatchedReason {
        NoReference => "no_reference",
        UnknownReference => "unknown_reference",
        ReservationExpired => "reservation_expired",
        OrderCancelled => "order_cancelled",
        /// A reversal whose original credit is not among the imported payments.
        OriginalNotFound => "original_not_found",
        /// A reversal of money credited to a prepaid account that has since been spent.
        BalanceTooLow => "balance_too_low",
        /// Booked after today (by more than a day for time zones): a bank does not book
        /// tomorrow's money, so the file or the entry is wrong.
        BookedInFuture => "booked_in_future",
        /// Booked before the order or top-up existed (by more than a day): it cannot be
        /// the payment of an RF code that was not given out yet.
        BookedBeforeOrder => "booked_before_order",
    }
);

/// Where an order or top-up stands, as far as payments are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Open,
    Paid,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayableKind {
    Order,
    TopUp,
}

/// An order or top-up with its RF code, as matching sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payable {
    pub kind: PayableKind,
    pub standing: Standing,
    /// The order's gross total, or the top-up's announced amount.
    pub due: Money,
    pub received: Money,
    pub reserved_until: DateTime<Utc>,
    /// When the order or top-up was made, so when its RF code was given out.
    pub created_at: DateTime<Utc>,
    /// Whether the booking date is checked against today and `created_at`; an operator
    /// matching by hand has looked at the payment and decides.
    pub booking_checked: bool,
}

/// How far a booking date may stray from the UTC date of today or of the order: banks book
/// by their own (Italian) calendar day.
const DATE_TOLERANCE_DAYS: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub status: PaymentStatus,
    pub reason: Option<UnmatchedReason>,
    /// Counted towards the order or top-up (its `received`).
    pub applied: Money,
    /// Credited to the owner's prepaid account.
    pub credited: Money,
    /// The order or top-up is now fully paid (an order is fulfilled).
    pub completes: bool,
}

impl Decision {
    fn unmatched(reason: UnmatchedReason) -> Self {
        Self {
            status: PaymentStatus::Unmatched,
            reason: Some(reason),
            applied: Money::ZERO,
            credited: Money::ZERO,
            completes: false,
        }
    }
}

/// The outcome of a credit of `amount` booked on `booking_date` for `payable` (`None`: the
/// RF code is valid but belongs to nothing of this brand), decided `today`.
///
/// A reservation counts by the day the money was booked, not the day the statement was
/// imported: a payer who paid on the last day is not penalised by a statement that
/// arrived after the expiry worker ran (the order is reopened and fulfilled). A booking
/// date that cannot be true for this code (after today, before the code was given out)
/// pays nothing by itself: the payment waits for the back-office, who can match it by hand.
pub fn decide(
    payable: Option<&Payable>,
    amount: Money,
    booking_date: NaiveDate,
    today: NaiveDate,
) -> Decision {
    let Some(payable) = payable else {
        return Decision::unmatched(UnmatchedReason::UnknownReference);
    };
    if payable.booking_checked {
        let tolerance = chrono::Duration::days(DATE_TOLERANCE_DAYS);
        if booking_date > today + tolerance {
            return Decision::unmatched(UnmatchedReason::BookedInFuture);
        }
        if booking_date < payable.created_at.date_naive() - tolerance {
            return Decision::unmatched(UnmatchedReason::BookedBeforeOrder);
        }
    }
    let in_time = booking_date <= payable.reserved_until.date_naive();
    match payable.standing {
        Standing::Cancelled => return Decision::unmatched(UnmatchedReason::OrderCancelled),
        Standing::Paid => {
            return Decision {
                status: PaymentStatus::Duplicate,
                reason: None,
                applied: Money::ZERO,
                credited: amount,
                completes: false,
            }
        }
        Standing::Open | Standing::Expired if !in_time => {
            return Decision::unmatched(UnmatchedReason::ReservationExpired)
        }
        Standing::Open | Standing::Expired => {}
    }
    let remaining = payable.due - payable.received;
    let (status, applied, excess) = if amount < remaining {
        (PaymentStatus::Partial, amount, Money::ZERO)
    } else if amount == remaining {
        (PaymentStatus::Matched, amount, Money::ZERO)
    } else {
        (PaymentStatus::Overpaid, remaining, amount - remaining)
    };
    let credited = match payable.kind {
        // A top-up's money all goes to the account, as it arrives.
        PayableKind::TopUp => amount,
        PayableKind::Order => excess,
    };
    Decision {
        status,
        reason: None,
        applied: if payable.kind == PayableKind::TopUp {
            amount
        } else {
            applied
        },
        credited,
        completes: status != PaymentStatus::Partial,
    }
}

impl Payable {
    /// Where an order stands for the money its RF code brings: the one derivation used by
    /// the statement import and by a match by hand.
    pub fn of_order(order: &Order) -> Self {
        Self {
            kind: PayableKind::Order,
            standing: match order.status {
                OrderStatus::AwaitingPayment => Standing::Open,
                OrderStatus::Paid | OrderStatus::Fulfilled => Standing::Paid,
                OrderStatus::Expired => Standing::Expired,
                OrderStatus::Cancelled => Standing::Cancelled,
            },
            due: order.gross_total,
            // A partial payment credited away when the order expired no longer counts.
            received: order.received,
            reserved_until: order.reserved_until.unwrap_or(order.created_at),
            created_at: order.created_at,
            booking_checked: true,
        }
    }

    pub fn of_top_up(top_up: &TopUp) -> Self {
        Self {
            kind: PayableKind::TopUp,
            standing: match top_up.status {
                TopUpStatus::AwaitingPayment => Standing::Open,
                TopUpStatus::Paid => Standing::Paid,
                TopUpStatus::Expired => Standing::Expired,
            },
            due: top_up.amount,
            received: top_up.received,
            reserved_until: top_up.reserved_until,
            created_at: top_up.created_at,
            booking_checked: true,
        }
    }

    /// The same, with no deadline and no check of the booking date: an operator who
    /// matches a payment by hand decided that it counts, whenever it was booked.
    pub fn deadline_waived(self) -> Self {
        Self {
            reserved_until: DateTime::<Utc>::MAX_UTC,
            booking_checked: false,
            ..self
        }
    }

    /// The state after `decision` was applied, for the next payment to the same code in
    /// the same import.
    pub fn after(mut self, decision: &Decision) -> Self {
        self.received = self.received + decision.applied;
        if decision.completes {
            self.standing = Standing::Paid;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    fn order(standing: Standing, due: &str, received: &str) -> Payable {
        Payable {
            kind: PayableKind::Order,
            standing,
            due: money(due),
            received: money(received),
            reserved_until: Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap(),
            created_at: Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
            booking_checked: true,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    /// The day of the import, in these tests.
    fn today() -> NaiveDate {
        day(5)
    }

    #[test]
    fn exact_partial_over_and_duplicate() {
        let open = order(Standing::Open, "31.72", "0");
        let exact = decide(Some(&open), money("31.72"), day(1), today());
        assert_eq!(exact.status, PaymentStatus::Matched);
        assert!(exact.completes);
        assert_eq!(exact.credited, Money::ZERO);

        let partial = decide(Some(&open), money("20.00"), day(1), today());
        assert_eq!(partial.status, PaymentStatus::Partial);
        assert!(!partial.completes);
        let rest = decide(Some(&open.after(&partial)), money("11.72"), day(2), today());
        assert_eq!(rest.status, PaymentStatus::Matched, "payments add up");

        let over = decide(Some(&open), money("40.00"), day(1), today());
        assert_eq!(over.status, PaymentStatus::Overpaid);
        assert_eq!(over.applied, money("31.72"));
        assert_eq!(over.credited, money("8.28"));

        let paid = open.after(&exact);
        let twice = decide(Some(&paid), money("31.72"), day(2), today());
        assert_eq!(twice.status, PaymentStatus::Duplicate);
        assert_eq!(twice.credited, money("31.72"));
    }

    #[test]
    fn the_deadline_counts_by_booking_day() {
        let open = order(Standing::Open, "10.00", "0");
        assert_eq!(
            decide(Some(&open), money("10.00"), day(3), today()).status,
            PaymentStatus::Matched,
            "booked on the last day"
        );
        let late = decide(Some(&open), money("10.00"), day(4), today());
        assert_eq!(late.reason, Some(UnmatchedReason::ReservationExpired));
        let expired = order(Standing::Expired, "10.00", "0");
        assert_eq!(
            decide(Some(&expired), money("10.00"), day(2), today()).status,
            PaymentStatus::Matched,
            "paid in time, imported after the expiry"
        );
        assert_eq!(
            decide(Some(&expired), money("10.00"), day(5), today()).reason,
            Some(UnmatchedReason::ReservationExpired)
        );
        assert_eq!(
            decide(None, money("1.00"), day(1), today()).reason,
            Some(UnmatchedReason::UnknownReference)
        );
        assert_eq!(
            decide(
                Some(&order(Standing::Cancelled, "1.00", "0")),
                money("1.00"),
                day(1),
                today()
            )
            .reason,
            Some(UnmatchedReason::OrderCancelled)
        );
    }

    #[test]
    fn a_booking_date_that_cannot_be_true_pays_nothing_by_itself() {
        // The order was made on the 1st; the import runs on the 5th.
        let open = Payable {
            reserved_until: Utc.with_ymd_and_hms(2026, 12, 31, 10, 0, 0).unwrap(),
            ..order(Standing::Open, "10.00", "0")
        };
        let on = |d: NaiveDate| decide(Some(&open), money("10.00"), d, today());
        assert_eq!(
            on(day(6)).status,
            PaymentStatus::Matched,
            "a day ahead: time zones"
        );
        assert_eq!(on(day(7)).reason, Some(UnmatchedReason::BookedInFuture));
        assert_eq!(on(day(1)).status, PaymentStatus::Matched);
        let before = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(
            on(before).status,
            PaymentStatus::Matched,
            "a day before: time zones"
        );
        let long_before = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(
            on(long_before).reason,
            Some(UnmatchedReason::BookedBeforeOrder)
        );
        assert!(!on(long_before).applied.is_positive() && !on(day(7)).credited.is_positive());
        // By hand, the operator decides.
        let by_hand = open.deadline_waived();
        for d in [long_before, day(7)] {
            let decision = decide(Some(&by_hand), money("10.00"), d, today());
            assert_eq!(decision.status, PaymentStatus::Matched);
        }
    }

    #[test]
    fn top_ups_credit_what_arrives() {
        let top_up = Payable {
            kind: PayableKind::TopUp,
            ..order(Standing::Open, "100.00", "0")
        };
        let part = decide(Some(&top_up), money("60.00"), day(1), today());
        assert_eq!(part.status, PaymentStatus::Partial);
        assert_eq!(part.credited, money("60.00"));
        let over = decide(Some(&top_up.after(&part)), money("50.00"), day(1), today());
        assert_eq!(over.status, PaymentStatus::Overpaid);
        assert_eq!(over.credited, money("50.00"));
        assert!(over.completes);
    }

    proptest::proptest! {
        /// Whatever the amounts, the money of a matched payment is all accounted for:
        /// what goes to the order plus what goes to the prepaid account is the amount.
        #[test]
        fn no_cent_is_lost(due in 1i64..1_000_000, received in 0i64..1_000_000, amount in 1i64..2_000_000) {
            let received = received % due;
            let payable = order(Standing::Open, &Money::from_cents(due).to_string(), &Money::from_cents(received).to_string());
            let d = decide(Some(&payable), Money::from_cents(amount), day(1), today());
            proptest::prop_assert_eq!((d.applied + d.credited).cents(), amount);
            proptest::prop_assert!(payable.after(&d).received.cents() <= due);
            proptest::prop_assert_eq!(d.completes, received + amount >= due);
        }
    }
}
