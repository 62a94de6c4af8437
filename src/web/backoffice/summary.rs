//! The daily summary of what was imported and matched.

use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::invoices::transmission::{self, DEADLINE_DAYS, WARNING_DAYS};
use crate::invoices::Untransmitted;
use crate::payments::queue;
use crate::web::{euro, OperatorPage, PageResult, WebError};

use super::{date_it, filters_status, parse_date, status_label};

#[derive(Deserialize)]
pub struct SummaryQuery {
    data: Option<String>,
}

pub(super) async fn summary(visit: OperatorPage, query: web::Query<SummaryQuery>) -> PageResult {
    let typed = query.into_inner().data.unwrap_or_default();
    // No day typed: the domain's today. A wrong one: no summary, and why.
    let day = match typed.trim() {
        "" => Ok(None),
        text => parse_date(text).map(Some),
    };
    let error = day.as_ref().err().cloned();
    let now = Utc::now();
    let (brand, (summary, untransmitted)) = visit
        .read(move |conn, brand_id| {
            let summary = day
                .ok()
                .map(|day| queue::daily_summary(conn, brand_id, day, now))
                .transpose()
                .map_err(WebError::storage)?;
            let untransmitted =
                transmission::untransmitted(conn, Some(brand_id), now.date_naive())?;
            Ok((summary, untransmitted))
        })
        .await?;
    let day = summary.as_ref().map(|summary| summary.day);
    let (outcomes, total) = match &summary {
        Some(summary) => {
            let outcomes: Vec<Value> = summary
                .outcomes
                .iter()
                .map(|(status, totals)| {
                    json!({
                        "status": status.as_str(),
                        "label": status_label(*status),
                        "count": totals.count,
                        "amount": euro(totals.amount),
                    })
                })
                .collect();
            let total =
                json!({ "count": summary.total.count, "amount": euro(summary.total.amount) });
            (outcomes, total)
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
            "sdi": sdi_notice(untransmitted),
        }),
    )
}

/// What the summary says of the documents not yet transmitted to the SdI: a warning when
/// any is near the legal deadline, and how many are waiting in all.
fn sdi_notice(untransmitted: Untransmitted) -> Value {
    let Untransmitted {
        total,
        near_deadline,
    } = untransmitted;
    let warning = (near_deadline > 0).then(|| {
        let (documents, verb) = if near_deadline == 1 {
            ("1 documento emesso".to_owned(), "è stato trasmesso")
        } else {
            (format!("{near_deadline} documenti emessi"), "sono stati trasmessi")
        };
        format!(
            "{documents} da {WARNING_DAYS} giorni o più non {verb} ancora allo SdI: il termine di legge è di {DEADLINE_DAYS} giorni dalla data del documento."
        )
    });
    json!({ "warning": warning, "waiting": total })
}
