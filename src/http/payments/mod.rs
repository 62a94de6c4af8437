//! The back-office's payment work: statement import (`POST /api/v1/backoffice/statements`,
//! the file as the raw body or as the `file` part of a multipart form), the imported
//! statements, the payments work queue with filters and totals, manual match and refund,
//! and the daily summary.

pub mod imports;
pub mod queue;
pub mod summary;

use chrono::NaiveDate;

use crate::http::query::QueryRule;

pub(super) fn date(text: &str) -> Result<NaiveDate, QueryRule> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| QueryRule("date", format!("'{text}' is not a date such as 2026-11-23")))
}
