//! The files sent to the SdI ("Trasmissioni SdI"): waiting, sent, given up, and sending a
//! dead one again.

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::italian::transmission_status_label;
use crate::invoices::transmission::{self, TransmissionStatus};
use crate::paging::Page;
use crate::web::{refusal, NoFields, OperatorPage, PageResult, WebError};

use super::{
    done_message, done_redirect, filters_status, or_dash, page_numbered, rows_and_pager, time_it,
    OperatorForm,
};

#[derive(Deserialize)]
pub struct SdiQuery {
    stato: Option<String>,
    fatto: Option<String>,
    #[serde(default)]
    pagina: String,
}

async fn sdi_page(
    visit: &OperatorPage,
    typed_status: &str,
    page: Page,
    done: Value,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let (filter, filter_error) = match typed_status.trim() {
        "" => (None, None),
        text => match TransmissionStatus::parse(text) {
            Some(status) => (Some(status), None),
            None => (
                None,
                Some("Scegli uno stato dell'elenco: in attesa, inviato o non riuscito.".to_owned()),
            ),
        },
    };
    let status = if filter_error.is_some() {
        filters_status(false)
    } else {
        status
    };
    let (brand, list) = visit
        .read(move |conn, brand_id| {
            transmission::list(conn, brand_id, filter, page).map_err(WebError::storage)
        })
        .await?;
    let shown_status = filter.map(TransmissionStatus::as_str).unwrap_or_default();
    let (transmissions, pager) = rows_and_pager(
        "/backoffice/sdi",
        &[("stato", shown_status)],
        page,
        list,
        |t| {
            json!({
                "id": t.id,
                "created_at": time_it(t.created_at.and_utc()),
                "number": t.number,
                "file_name": t.file_name,
                "status": t.status.as_str(),
                "status_label": transmission_status_label(t.status),
                "dead": t.status == TransmissionStatus::Dead,
                "attempts": t.attempts,
                "last_error": or_dash(t.last_error),
                "channel": or_dash(t.channel),
                "sent_at": t.sent_at.map(|s| time_it(s.and_utc())).unwrap_or_else(|| "—".into()),
                "next_attempt_at": (t.status == TransmissionStatus::Pending)
                    .then(|| time_it(t.next_attempt_at.and_utc())),
            })
        },
    );
    let statuses: Vec<Value> = TransmissionStatus::ALL
        .iter()
        .map(|s| {
            json!({
                "value": s.as_str(),
                "label": transmission_status_label(*s),
                "selected": filter == Some(*s),
            })
        })
        .collect();
    let context = json!({
        "done": done,
        "error": error,
        "filter_error": filter_error,
        "statuses": statuses,
        "transmissions": transmissions,
        "pager": pager,
    });
    visit.render(&brand, "Trasmissioni SdI", status, "bo_sdi", context)
}

pub(super) async fn transmissions(visit: OperatorPage, query: web::Query<SdiQuery>) -> PageResult {
    let query = query.into_inner();
    let done = done_message(query.fatto.as_deref());
    let typed = query.stato.unwrap_or_default();
    let page = page_numbered(&query.pagina);
    sdi_page(&visit, &typed, page, done, None, StatusCode::OK).await
}

pub(super) async fn retry(
    OperatorForm { visit, .. }: OperatorForm<NoFields>,
    id: web::Path<String>,
) -> PageResult {
    let id = id.into_inner();
    let outcome = visit
        .as_operator(move |conn, operator| {
            Ok(transmission::retry(
                conn,
                operator.acting(),
                &id,
                Utc::now(),
            ))
        })
        .await?;
    match outcome {
        Ok(()) => Ok(done_redirect("/backoffice/sdi", "ritrasmetti")),
        Err(error) => {
            // As for an email: the row's button names the file, nothing typed is wrong.
            let identity = refusal(error)?;
            let page = Page::default();
            sdi_page(
                &visit,
                "",
                page,
                Value::Null,
                Some(identity.italian),
                identity.kind.status,
            )
            .await
        }
    }
}
