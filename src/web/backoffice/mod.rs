//! The back-office pages (`/backoffice`): for operators of a brand. Thin handlers over
//! the same domain functions as the JSON API (`http::payments`, `http::prepaid`,
//! `http::emails`, `http::coupons`): the rules, the audit and the brand scoping stay in
//! the domain modules; here are the forms, the Italian messages and the pages.
//!
//! Every POST checks the CSRF token first, then the operator, then makes the domain call
//! in one go; a success answers 303 back to the page (`?fatto=...` says what was done), a
//! refused input or a domain refusal shows the page again with the message next to the
//! field.

mod card_payments;
mod coupons;
mod emails;
mod invoices;
mod orders;
mod payments;
mod prepaid;
mod sdi_receipts;
mod sdi_transmissions;
mod statements;
mod summary;
mod users;

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::User;
use crate::brands::{self, Brand};
use crate::db::DbConnection;
use crate::http::italian::{
    entry_kind_label, order_status_label, payment_status_label as status_label,
};
use crate::money::{MoneyError, PositiveMoney};
use crate::paging::Paged;
use crate::validation::TextError;
use crate::web::paging::{
    page_numbered, pager, query_string, rows_and_pager, state_filter, PageQuery,
};
use crate::web::{
    merge, page, see_other, signed_in_context, with_conn, CheckedForm, Csrf, Operator,
    OperatorPage, PageResult, WebError,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages! { cfg;
        get  "/backoffice" => home,
        get  "/backoffice/estratti" => statements::statements,
        post "/backoffice/estratti" => statements::import,
        get  "/backoffice/pagamenti" => payments::payments,
        // Before `/backoffice/pagamenti/{id}`, which would take `carte` for a payment id.
        get  card_payments::LIST_PATH => card_payments::list,
        get  "/backoffice/pagamenti/carte/{id}" => card_payments::payment,
        post "/backoffice/pagamenti/carte/{id}/rimborsa" => card_payments::refund,
        get  "/backoffice/pagamenti/{id}" => payments::payment,
        post "/backoffice/pagamenti/{id}/abbina" => payments::match_payment,
        post "/backoffice/pagamenti/{id}/rimborsa" => payments::refund_payment,
        get  "/backoffice/ordini" => orders::orders_page,
        get  "/backoffice/fatture" => invoices::documents_page,
        get  "/backoffice/fatture/esporta" => invoices::export_zip,
        get  "/backoffice/fatture/{id}" => invoices::document_page,
        get  "/backoffice/fatture/{id}/xml" => invoices::document_xml,
        get  "/backoffice/fatture/{id}/pdf" => invoices::document_pdf,
        get  "/backoffice/riepilogo" => summary::summary,
        get  "/backoffice/prepagati" => prepaid::accounts,
        get  "/backoffice/prepagati/{account}" => prepaid::account,
        post "/backoffice/prepagati/{account}/rettifica" => prepaid::adjust,
        get  "/backoffice/email" => emails::emails,
        post "/backoffice/email/{id}/riprova" => emails::retry_email,
        get  "/backoffice/sdi" => sdi_transmissions::transmissions,
        post "/backoffice/sdi/{id}/riprova" => sdi_transmissions::retry,
        get  "/backoffice/coupon" => coupons::coupon_form,
        post "/backoffice/coupon" => coupons::void_coupon,
        post "/backoffice/coupon/invia-codici" => coupons::resend_codes,
        get  "/backoffice/utenti" => users::users,
        get  "/backoffice/utenti/richieste" => users::applications,
        post "/backoffice/utenti/richieste/{id}/approva" => users::approve,
        post "/backoffice/utenti/richieste/{id}/rifiuta" => users::refuse,
        get  "/backoffice/utenti/{id}" => users::user,
        post "/backoffice/utenti/{id}/disattiva" => users::disable,
        post "/backoffice/utenti/{id}/riattiva" => users::enable,
        post "/backoffice/utenti/{id}/revoca-incaricato" => users::remove_officer_role,
        get  sdi_receipts::RECEIPTS_PATH => sdi_receipts::receipts,
        post sdi_receipts::RECEIPTS_PATH => sdi_receipts::import,
        get  sdi_receipts::REJECTED_PATH => sdi_receipts::rejected_queue,
        get  "/backoffice/fatture-scartate/{id}" => sdi_receipts::rejected_document,
        post "/backoffice/fatture-scartate/{id}/invia" => sdi_receipts::resend_unchanged,
        post "/backoffice/fatture-scartate/{id}/correggi" => sdi_receipts::resend_corrected,
    }
}

async fn home(_request: HttpRequest, Operator(_user): Operator) -> PageResult {
    Ok(see_other("/backoffice/pagamenti"))
}

// ---------------------------------------------------------------------------------------
// Plumbing

fn brand_of(conn: &mut DbConnection, id: &str) -> Result<Brand, WebError> {
    brands::existing(conn, id).map_err(WebError::Unexpected)
}

impl OperatorPage {
    /// The operator's brand and what `work` reads for it (given the brand's id), in one go.
    async fn read<T, F>(&self, work: F) -> Result<(Brand, T), WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &str) -> Result<T, WebError> + Send + 'static,
    {
        let brand_id = self.user.brand_id.clone();
        with_conn(&self.state, move |conn| {
            let brand = brand_of(conn, &brand_id)?;
            let found = work(conn, &brand_id)?;
            Ok((brand, found))
        })
        .await
    }

    /// What `work` reads for a list page of the operator's brand, or an empty list when
    /// one of the page's filters could not be read (the page shows why instead).
    async fn read_list<T, F>(&self, valid: bool, work: F) -> Result<(Brand, Paged<T>), WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &str) -> Result<Paged<T>, WebError> + Send + 'static,
    {
        self.read(move |conn, brand_id| match valid {
            true => work(conn, brand_id),
            false => Ok(Paged {
                items: Vec::new(),
                total: 0,
            }),
        })
        .await
    }

    /// What `work` does as the operator, on the blocking pool.
    async fn as_operator<T, F>(&self, work: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &User) -> Result<T, WebError> + Send + 'static,
    {
        let operator = self.user.clone();
        with_conn(&self.state, move |conn| work(conn, &operator)).await
    }

    /// The page `name` titled `title`: the layout's context (who, brand, nav, CSRF token)
    /// and `extra`.
    fn render(
        &self,
        brand: &Brand,
        title: &str,
        status: StatusCode,
        name: &str,
        extra: Value,
    ) -> PageResult {
        let context = merge(
            signed_in_context(&self.user, &brand.name, &self.csrf),
            // `desk`: the back-office's wide layout, for tables read on a desktop screen.
            merge(json!({ "title": title, "desk": true }), extra),
        );
        page(&self.state, &self.csrf, status, name, context)
    }
}

/// A list page answers 422 when one of its filters could not be read.
fn filters_status(valid: bool) -> StatusCode {
    if valid {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

/// The operator of a POSTed form, once the form's token has been checked: the token
/// first, so a forged form learns nothing about the session.
async fn operator_of(
    request: &HttpRequest,
    submitted_token: &str,
) -> Result<OperatorPage, WebError> {
    Csrf::check(request, submitted_token)?;
    OperatorPage::extract(request).await
}

/// A form POSTed from a back-office page: its fields, and the page's opening once the
/// form's CSRF token has been checked (the token first, as [`operator_of`]).
pub struct OperatorForm<F> {
    visit: OperatorPage,
    fields: F,
}

impl<F: DeserializeOwned + 'static> FromRequest for OperatorForm<F> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let form = CheckedForm::<F>::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let CheckedForm(fields) = form.await?;
            let visit = OperatorPage::extract(&request).await?;
            Ok(Self { visit, fields })
        })
    }
}

/// What `?fatto=` says was done, in words.
fn done_message(fatto: Option<&str>) -> Value {
    match fatto {
        Some("abbinato") => json!("Pagamento abbinato."),
        Some("rimborsato") => json!("Pagamento segnato come rimborsato."),
        Some("rettificato") => json!("Rettifica registrata."),
        Some("riprova") => json!("L'email è di nuovo in coda di invio."),
        Some("reinviata") => json!(
            "Il documento ha un nuovo file, con lo stesso numero e la stessa data: è in coda di trasmissione al SdI."
        ),
        Some("rimborso-carta") => json!(
            "Rimborso richiesto: il suo stato presso il circuito di pagamento è nell'elenco dei rimborsi."
        ),
        Some("ritrasmetti") => json!("Il file è di nuovo in coda di trasmissione allo SdI."),
        _ => Value::Null,
    }
}

/// Back to the page at `path`, saying what was done (see [`done_message`]).
fn done_redirect(path: &str, fatto: &str) -> HttpResponse {
    see_other(&format!("{path}?fatto={fatto}"))
}

#[derive(Deserialize)]
pub struct DoneQuery {
    fatto: Option<String>,
    /// The page of a list page (see [`page_numbered`]).
    #[serde(default)]
    pagina: String,
}

fn date_it(date: NaiveDate) -> String {
    date.format("%d/%m/%Y").to_string()
}

fn time_it(time: DateTime<Utc>) -> String {
    time.format("%d/%m/%Y %H:%M UTC").to_string()
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("«{}» non è una data come 2026-11-23.", text.trim()))
}

/// What a back-office form says next to a refused reason (kept in the audit log).
fn reason_error(error: &TextError) -> String {
    crate::http::italian::text_rule("il motivo", error)
}

/// An amount typed the Italian way ("1.464,50") or the other ("1464.50").
fn parse_amount(text: &str) -> Result<PositiveMoney, String> {
    let text = text.trim();
    let normal = if text.contains(',') {
        text.replace('.', "").replace(',', ".")
    } else {
        text.to_owned()
    };
    PositiveMoney::parse(&normal).map_err(|e| match e {
        MoneyError::NotANumber(_) => {
            format!("«{text}» non è un importo: scrivilo come 12,50.")
        }
        MoneyError::TooPrecise(_) => "L'importo può avere al massimo due decimali.".into(),
        MoneyError::TooLarge(_) => "L'importo è troppo grande.".into(),
        MoneyError::NotPositive(_) => "L'importo deve essere maggiore di zero.".into(),
    })
}

fn unmatched_reason_label(reason: &str) -> String {
    match reason {
        "no_reference" => "senza codice RF".into(),
        "unknown_reference" => "codice RF sconosciuto".into(),
        "reservation_expired" => "prenotazione scaduta".into(),
        "order_cancelled" => "ordine annullato".into(),
        "original_not_found" => "accredito originale non trovato".into(),
        "balance_too_low" => "credito prepagato già speso".into(),
        "booked_in_future" => "data di contabile futura".into(),
        "booked_before_order" => "contabilizzato prima dell'ordine".into(),
        other => other.into(),
    }
}

/// `camt.053.001.08`, `postal-csv-1`: the version says the format too; the CBI envelope's
/// does not.
fn format_label(format: &str, version: &str) -> String {
    if version.starts_with("camt.") || version.starts_with("postal-csv") {
        version.to_owned()
    } else {
        format!("{format} ({version})")
    }
}

fn or_dash(text: Option<String>) -> String {
    text.filter(|t| !t.is_empty())
        .unwrap_or_else(|| "—".to_owned())
}

/// An id as a path segment of a redirect (ids are UUIDs, but a Location is no place to
/// trust that).
fn url_segment(text: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}
