//! The daily summary of what was imported and matched.

use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::money::Money;
use crate::payments::queue;
use crate::web::{euro, OperatorPage, WebError};

use super::{date_it, filters_status, parse_date, status_label};

#[derive(Deserialize)]
pub struct SummaryQuery {
    data: Option<String>,
}

pub(super) async fn summary(
    visit: OperatorPage,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, WebError> {
    let typed = query.into_inner().data.unwrap_or_default();
    let (day, error) = match typed.trim() {
        "" => (Some(Utc::now().date_naive()), None),
        text => match parse_date(text) {
            Ok(day) => (Some(day), None),
            Err(message) => (None, Some(message)),
        },
    };
    let (brand, rows) = visit
        .read(move |conn, brand_id| {
            day.map(|day| queue::daily_summary(conn, brand_id, day))
                .transpose()
                .map_err(WebError::storage)
        })
        .await?;
    let (outcomes, total) = match &rows {
        Some(rows) => {
            let (mut count, mut amount) = (0, Money::ZERO);
            let outcomes: Vec<Value> = rows
                .iter()
                .map(|(status, totals)| {
                    count += totals.count;
                    amount = amount + totals.amount;
                    json!({
                        "status": status.as_str(),
                        "label": status_label(*status),
                        "count": totals.count,
                        "amount": euro(totals.amount),
                    })
                })
                .collect();
            (outcomes, json!({ "count": count, "amount": euro(amount) }))
        }
        None => (Vec::new(), Value::Null),
    };
    visit.render(
        &brand,
        "Riepilogo giornaliero",
        filters_status(error.is_none()),
        "bo_riepilogo",
        json!({
            "data": day.map_or_else(|| typed.trim().to_owned(), |d| d.to_string()),
            "day_label": day.map(date_it),
            "error": error,
            "outcomes": outcomes,
            "total": total,
        }),
    )
}
