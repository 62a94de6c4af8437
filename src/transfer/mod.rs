//! Paying by transfer (bank transfer, postal slip, cheque) with an ISO 11649 creditor
//! reference ("RF code"): how an order or top-up is paid, the code itself, and the
//! reservation that gives an order or top-up its code and tells the payer how to pay.
//!
//! It sits below `orders`, `prepaid` and `payments`: orders and top-ups reserve codes
//! here, and the statement import (`payments`) finds them by the code.

pub mod creditor_reference;
pub mod reservation;

pub use creditor_reference::{CreditorReference, CreditorReferenceError};

text_enum!(
    PaymentMethod {
        Prepaid => "prepaid",
        BankTransfer => "bank_transfer",
        PostalSlip => "postal_slip",
        Cheque => "cheque",
        /// By card on the payment provider's hosted page (`card`).
        Card => "card",
    }
);

impl PaymentMethod {
    /// Paid by money that arrives later with an RF code (bank transfer, postal slip,
    /// cheque), rather than at once from the prepaid account.
    pub fn is_transfer(self) -> bool {
        matches!(
            self,
            PaymentMethod::BankTransfer | PaymentMethod::PostalSlip | PaymentMethod::Cheque
        )
    }

    pub fn italian(self) -> &'static str {
        match self {
            PaymentMethod::Prepaid => "conto prepagato",
            PaymentMethod::BankTransfer => "bonifico bancario",
            PaymentMethod::PostalSlip => "bollettino postale",
            PaymentMethod::Cheque => "assegno",
            PaymentMethod::Card => "carta di credito",
        }
    }
}

/// Working days a payment by transfer takes, once made, to show on the statement we
/// import (a bank transfer is credited the next working day, a postal slip or a cheque
/// may take one more): the guide advises against a transfer "in caso di scadenze
/// ravvicinate" for this reason.
pub const CLEARING_WORKING_DAYS: u32 = 2;

impl PaymentMethod {
    /// The latest a payment by this method, made within the order's reservation
    /// (`reservation` from now), is surely on the statement, so that its coupons are sent:
    /// a certificate that expires before then may expire before the coupon arrives.
    /// `None` for the methods paid at once.
    pub fn paid_at_latest(
        self,
        reservation: chrono::Duration,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.is_transfer()
            .then(|| after_working_days(now + reservation, CLEARING_WORKING_DAYS))
    }
}

/// `days` working days (Monday to Friday) after `from`.
fn after_working_days(
    from: chrono::DateTime<chrono::Utc>,
    days: u32,
) -> chrono::DateTime<chrono::Utc> {
    use chrono::Datelike;
    let mut at = from;
    let mut left = days;
    while left > 0 {
        at += chrono::Duration::days(1);
        if !matches!(at.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
            left -= 1;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn a_transfer_is_paid_at_latest_after_the_reservation_and_two_working_days() {
        // Thursday 3 December 2026 + 10 days = Sunday 13: then Monday 14, Tuesday 15.
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
        let expected = Utc.with_ymd_and_hms(2026, 12, 15, 9, 0, 0).unwrap();
        for method in [
            PaymentMethod::BankTransfer,
            PaymentMethod::PostalSlip,
            PaymentMethod::Cheque,
        ] {
            assert_eq!(
                method.paid_at_latest(Duration::days(10), now),
                Some(expected)
            );
        }
        // A Wednesday: Thursday and Friday.
        let wednesday = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        assert_eq!(
            PaymentMethod::BankTransfer.paid_at_latest(Duration::zero(), wednesday),
            Some(Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap())
        );
    }

    #[test]
    fn paid_at_once_has_no_deadline() {
        let now = Utc::now();
        assert_eq!(
            PaymentMethod::Prepaid.paid_at_latest(Duration::days(10), now),
            None
        );
        assert_eq!(
            PaymentMethod::Card.paid_at_latest(Duration::days(10), now),
            None
        );
    }
}
