//! The back-office's work queue of payments, as the front ends call it: what to look at
//! ([`super::listing`]) and what to do about it ([`super::manual`]). The two live apart so
//! that the manual actions can read a payment without a loop between the files.

pub use super::listing::{
    count_by_status, daily_summary, find, list, statements, DailySummary, Filter, PaymentView,
    StatementView, Totals,
};
pub use super::manual::{refund, ByHand, ManualError};
