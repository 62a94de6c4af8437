//! The daily summary: count and sum per outcome of the payments booked on one day.

use actix_web::get;
use std::collections::BTreeMap;

use actix_web::HttpResponse;
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::http::extract::BackOffice;
use crate::http::query::Params;
use crate::http::responses::NotOperator;
use crate::http::{ApiError, ApiResult, Problem, State};
use crate::payments::matching::PaymentStatus;
use crate::payments::queue::{self, Totals};

use super::date;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// The booking day (default today, UTC).
    #[param(value_type = Option<NaiveDate>, example = "2026-11-23")]
    date: Option<String>,
}

/// Count and sum per outcome of the payments booked on one day.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SummaryResponse {
    date: NaiveDate,
    /// Per outcome (`matched`, `partial`, `overpaid`, `duplicate`, `unmatched`...); only
    /// outcomes that occurred.
    #[schema(value_type = BTreeMap<String, Totals>)]
    outcomes: BTreeMap<PaymentStatus, Totals>,
    /// Over every outcome.
    total: Totals,
}

/// Daily summary: count and sum per outcome of the payments booked on a day
///
/// Back-office operators only; the payments of the operator's brand.
#[utoipa::path(
    operation_id = "payments_summary",
    params(SummaryQuery),
    responses(
        (status = 200, description = "The day's summary", body = SummaryResponse),
        (status = 400, description = "`date` is not a date such as 2026-11-23, or a parameter \
the summary does not take (rule `unknown_parameter`) (`/problems/invalid-field`), or the query string does not fit (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotOperator,
    )
)]
#[get("/api/v1/backoffice/payments/summary")]
pub async fn summary(
    state: State,
    BackOffice(operator): BackOffice,
    query: Params<SummaryQuery>,
) -> ApiResult {
    let day = query
        .0
        .date
        .map(|text| date(&text).map_err(|e| ApiError::invalid_field("date", e.0, e.1)))
        .transpose()?;
    let summary = state
        .with_conn(move |conn| {
            queue::daily_summary(conn, &operator.brand, day, Utc::now()).map_err(ApiError::storage)
        })
        .await?;
    Ok(HttpResponse::Ok().json(SummaryResponse {
        date: summary.day,
        outcomes: summary.outcomes.into_iter().collect(),
        total: summary.total,
    }))
}
