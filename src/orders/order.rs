//! An order and its lines as the rest of the crate sees them, and the states of its
//! state machine (DESIGN.md, States); [`super::state`] makes the moves.

use chrono::{DateTime, Utc};

use crate::money::Money;
use crate::transfer::{CreditorReference, PaymentMethod};

text_enum!(
    OrderStatus {
        AwaitingPayment => "awaiting_payment",
        Paid => "paid",
        Fulfilled => "fulfilled",
        Expired => "expired",
        Cancelled => "cancelled",
    }
);

impl OrderStatus {
    /// Whether the order's unused codes may be sent again: only once they exist, when the
    /// order is fulfilled.
    pub fn resends_codes(self) -> bool {
        self == OrderStatus::Fulfilled
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub line_number: i32,
    pub product_id: String,
    pub product_code: String,
    pub product_name: String,
    pub quantity: i32,
    pub net_unit_price: Money,
    pub vat_rate_basis_points: i32,
    pub net_amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub brand_id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub payment_method: PaymentMethod,
    pub net_total: Money,
    pub vat_total: Money,
    pub gross_total: Money,
    pub invoice_number: Option<String>,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub fulfilled_at: Option<DateTime<Utc>>,
    pub lines: Vec<OrderLine>,
    pub coupon_count: i64,
    /// The RF code to quote when paying by transfer.
    pub payment_reference: Option<CreditorReference>,
    /// Until when a transfer order waits for its money.
    pub reserved_until: Option<DateTime<Utc>>,
    /// What transfers have brought so far (partial payments add up).
    pub received: Money,
}

impl Order {
    /// What is still to pay: zero once paid, never negative.
    pub fn amount_due(&self) -> Money {
        match self.status {
            OrderStatus::AwaitingPayment if self.received < self.gross_total => {
                self.gross_total - self.received
            }
            _ => Money::ZERO,
        }
    }
}
