//! The daily summary of what was imported and matched.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::money::Money;
use crate::payments::queue;
use crate::web::{euro, merge, page, with_conn, OperatorPage, WebError};

use super::{base, brand_of, date_it, parse_date, status_label};

#[derive(Deserialize)]
pub struct SummaryQuery {
    data: Option<String>,
}

pub(super) async fn summary(
    visit: OperatorPage,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, WebError> {
    let OperatorPage { state, user, csrf } = visit;
    let typed = query.into_inner().data.unwrap_or_default();
    let (day, error) = match typed.trim() {
        "" => (Some(Utc::now().date_naive()), None),
        text => match parse_date(text) {
            Ok(day) => (Some(day), None),
            Err(message) => (None, Some(message)),
        },
    };
    let brand_id = user.brand_id.clone();
    let (brand, rows) = with_conn(&state, move |conn| {
        let brand = brand_of(conn, &brand_id)?;
        let rows = match day {
            Some(day) => {
                Some(queue::daily_summary(conn, &brand_id, day).map_err(WebError::storage)?)
            }
            None => None,
        };
        Ok((brand, rows))
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
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let context = merge(
        base(&user, &brand, &csrf, "Riepilogo giornaliero"),
        json!({
            "data": day.map_or_else(|| typed.trim().to_owned(), |d| d.to_string()),
            "day_label": day.map(date_it),
            "error": error,
            "outcomes": outcomes,
            "total": total,
        }),
    );
    page(&state, &csrf, status, "bo_riepilogo", context)
}
