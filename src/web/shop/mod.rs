//! The shop, as the source documents describe it: sign-in or sign-up for a brand, then
//! the purchase path: payment method → the holder's codice fiscale → the devices and the
//! proposed coupons (or the manual list) → summary → confirmation. The steps before the
//! confirmation are GET forms carrying their choices in the query string (bookmarkable,
//! no state kept on the server); only the purchase itself is a POST, with a CSRF token
//! and an idempotency key made when the summary was shown, so a double click buys once.
//!
//! One file a job: [`sign_in`], the steps before the summary in [`choose`], the summary
//! and the purchase in [`purchase`], a card order's way to the provider in [`card`], and
//! the order afterwards in [`order`]. Here: the routes and what the steps share.

pub(super) mod card;
mod choose;
mod order;
mod purchase;
mod sign_in;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{page, see_other, with_conn, Csrf, PageResult, WebError};
use crate::brands;
use crate::http::{AppState, State};
use crate::lookup::{Eligibility, RenewalStatus};
use crate::orders::PaymentMethod;

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages! { cfg;
        get  "/negozio" => home,
        get  "/negozio/stile.css" => stylesheet,
        post "/negozio/esci" => sign_in::sign_out,
        get  "/negozio/acquista" => choose::choose_method,
        get  "/negozio/acquista/titolare" => choose::holder,
        get  "/negozio/acquista/dispositivi" => choose::devices,
        get  "/negozio/acquista/coupon" => choose::manual_list,
        get  "/negozio/acquista/riepilogo" => purchase::summary,
        post "/negozio/acquista/conferma" => purchase::confirm,
        get  "/negozio/ordini/{id}" => order::show,
        get  "/negozio/fatture/{id}/xml" => order::document_xml,
        get  "/negozio/fatture/{id}/pdf" => order::document_pdf,
        post "/negozio/ordini/{id}/invia-codici" => order::resend_codes,
        post "/negozio/ordini/{id}/paga-con-carta" => card::pay_by_card,
        get  "/negozio/{brand}/accedi" => sign_in::sign_in_form,
        post "/negozio/{brand}/accedi" => sign_in::sign_in,
        get  "/negozio/{brand}/iscriviti" => sign_in::sign_up_form,
        post "/negozio/{brand}/iscriviti" => sign_in::sign_up,
    }
}

async fn home(state: State, request: HttpRequest) -> PageResult {
    let csrf = Csrf::of(&request);
    let all = with_conn(&state, |conn| Ok(brands::list(conn)?)).await?;
    let brands: Vec<Value> = all
        .iter()
        .map(|b| json!({ "id": b.id, "name": b.name }))
        .collect();
    page(
        &state,
        &csrf,
        StatusCode::OK,
        "negozio",
        // No title of its own: the layout names the site, once.
        json!({ "title": null, "brands": brands, "user": null, "brand_name": null, "csrf_token": csrf.token }),
    )
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(super::pages::STYLESHEET)
}

/// The payment methods the shop offers: the guide's (a cheque is paid like a postal
/// slip, with the order's RF code, and matched when it shows on the statement); without
/// `metodo` the shop proposes the prepaid account. Any other value is refused rather than
/// read as prepaid: a page must never charge the account for a method the
/// customer did not choose. The card only when a provider is configured: otherwise an
/// order placed by card could never be paid.
pub(crate) fn method(state: &AppState, text: Option<&String>) -> Result<PaymentMethod, WebError> {
    let chosen = match text {
        None => Some(PaymentMethod::Prepaid),
        Some(text) => PaymentMethod::parse(text),
    };
    match chosen {
        Some(PaymentMethod::Card) if state.card.is_none() => Err(unknown_method()),
        Some(method) => Ok(method),
        None => Err(unknown_method()),
    }
}

fn unknown_method() -> WebError {
    WebError::Refused {
        status: StatusCode::BAD_REQUEST,
        message: "Metodo di pagamento sconosciuto: scegli conto prepagato, bonifico \
                      bancario, bollettino postale o assegno."
            .into(),
    }
}

/// The billing form, saying why, and back to the purchase once saved.
pub(super) fn billing_first() -> HttpResponse {
    see_other(&format!("{}?dopo=acquista", super::billing::PATH))
}

pub(crate) fn status_of(renewal: &RenewalStatus) -> (&'static str, String) {
    match renewal {
        RenewalStatus::Revoked => ("revoked", "revocato".into()),
        RenewalStatus::Superseded => ("superseded", "sostituito dal suo rinnovo".into()),
        RenewalStatus::DeviceRenewedEnough { .. } => (
            "renewal-limit",
            "non rinnovabile: il dispositivo è già stato rinnovato il numero massimo di volte \
             consentito, serve un dispositivo nuovo"
                .into(),
        ),
        RenewalStatus::DeviceEndOfLife { end_of_life, years } => (
            "end-of-life",
            format!(
                "non rinnovabile: il dispositivo è a fine vita dal {} ({years} anni dalla prima \
                 attivazione), serve un dispositivo nuovo",
                end_of_life.format("%d/%m/%Y")
            ),
        ),
        RenewalStatus::RenewalPending { .. } => ("pending", "rinnovo in corso".into()),
        RenewalStatus::ReadyToInstall { .. } => ("ready", "nuovo certificato da installare".into()),
        RenewalStatus::Eligibility(Eligibility::Renewable { days_left, .. }) => (
            "renewable",
            format!("rinnovabile ora (scade tra {days_left} giorni)"),
        ),
        RenewalStatus::Eligibility(Eligibility::NotYetRenewable { window_opens_at }) => (
            "not-yet",
            format!(
                "non ancora rinnovabile (dal {})",
                window_opens_at.format("%d/%m/%Y")
            ),
        ),
        RenewalStatus::Eligibility(Eligibility::Expired { .. }) => {
            ("expired", "scaduto: non rinnovabile".into())
        }
    }
}
