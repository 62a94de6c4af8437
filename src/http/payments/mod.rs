//! The back-office's payment work: statement import (`POST /api/v1/backoffice/statements`,
//! the file as the raw body or as the `file` part of a multipart form), the imported
//! statements, the payments work queue with filters and totals, manual match and refund,
//! and the daily summary.

pub mod imports;
pub mod queue;
pub mod summary;

use chrono::{DateTime, NaiveDate, Utc};

use crate::http::query::QueryRule;
use crate::payments::matching::PaymentStatus;

/// Count and sum of payments.
#[derive(utoipa::ToSchema)]
#[schema(as = PaymentTotals)]
#[allow(dead_code)] // documentation only: mirrors queue::Totals
pub(super) struct TotalsDoc {
    count: i64,
    /// In euro.
    #[schema(example = "126.88")]
    amount: String,
}

/// A payment read from a statement, and what became of it.
#[derive(utoipa::ToSchema)]
#[schema(as = Payment)]
#[allow(dead_code)] // documentation only: mirrors queue::PaymentView
pub(super) struct PaymentDoc {
    id: String,
    statement_id: String,
    /// `credit` (money in) or `debit` (a reversal, money out).
    #[schema(example = "credit")]
    direction: String,
    status: PaymentStatus,
    /// Why an unmatched payment waits (`no_reference`, `unknown_reference`,
    /// `reservation_expired`, `order_cancelled`, `original_not_found`, `balance_too_low`,
    /// `booked_in_future`, `booked_before_order`).
    reason: Option<String>,
    /// In euro.
    #[schema(example = "63.44")]
    amount: String,
    booking_date: NaiveDate,
    value_date: Option<NaiveDate>,
    /// The account the statement is of (IBAN or postal account).
    account: String,
    bank_reference: Option<String>,
    payer_name: Option<String>,
    /// The payment reason as sent by the payer.
    remittance: String,
    /// The RF code found in the remittance.
    #[schema(example = "RF18539007547034")]
    reference: Option<String>,
    order_id: Option<String>,
    top_up_id: Option<String>,
    /// The prepaid account credited, if any.
    account_id: Option<String>,
    /// Applied to the order, in euro.
    #[schema(example = "63.44")]
    applied: String,
    /// Credited to the prepaid account, in euro.
    #[schema(example = "0.00")]
    credited: String,
    /// For a reversal: the payment it reverses.
    reverses_payment_id: Option<String>,
    /// An earlier payment on the same account with the same bank reference but another
    /// amount, booking date or direction: the bank reused its reference; look at both.
    same_reference_as: Option<String>,
    /// The operator who matched or refunded it by hand.
    resolved_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    /// The operator's reason.
    resolution_note: Option<String>,
    created_at: DateTime<Utc>,
}

pub(super) fn date(text: &str) -> Result<NaiveDate, QueryRule> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| QueryRule("date", format!("'{text}' is not a date such as 2026-11-23")))
}

/// The back-office payment operations' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    imports::import,
    imports::statements,
    queue::list,
    summary::summary,
    queue::show,
    queue::match_by_hand,
    queue::refund
))]
pub struct Docs;
