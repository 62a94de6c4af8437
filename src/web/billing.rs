//! "Dati di fatturazione": the buyer's billing data, from the profile, and the stop on the
//! way to the first purchase (`?dopo=acquista` goes back to it once saved).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{see_other, BuyerPage, CheckedForm, PageResult, Query};
use crate::billing::{self, BillingError, BillingInput, InvalidField};
use crate::http::italian::billing_field;

pub const PATH: &str = "/negozio/profilo/fatturazione";

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages! { cfg;
        get  PATH => form,
        post PATH => save,
    }
}

/// Where the buyer goes once the data is saved: back to the purchase they started, or
/// the form again with "saved".
fn after_saving(next: Option<&str>) -> String {
    match next {
        Some("acquista") => "/negozio/acquista".to_owned(),
        _ => format!("{PATH}?salvato=1"),
    }
}

fn render(
    shop: &BuyerPage,
    status: StatusCode,
    values: &BillingInput,
    errors: BTreeMap<&str, String>,
    next: Option<&str>,
    saved: bool,
) -> PageResult {
    shop.render(
        status,
        "fatturazione",
        json!({
            "title": "Dati di fatturazione",
            "values": form_values(values),
            "errors": errors,
            "saved": saved,
            "before_purchase": next == Some("acquista"),
            "next": next,
        }),
    )
}

/// The values of the billing fields (`campi_fatturazione`) as typed.
pub(crate) fn form_values(values: &BillingInput) -> Value {
    let text = |v: &Option<String>| json!(v.clone().unwrap_or_default());
    let kind = values.kind.clone().unwrap_or_else(|| "person".to_owned());
    json!({
        "business": kind == "business",
        "denominazione": text(&values.denominazione),
        "nome": text(&values.nome),
        "cognome": text(&values.cognome),
        "codice_fiscale": text(&values.codice_fiscale),
        "partita_iva": text(&values.partita_iva),
        "indirizzo": text(&values.indirizzo),
        "cap": text(&values.cap),
        "comune": text(&values.comune),
        "provincia": text(&values.provincia),
        "nazione": json!(values.nazione.clone().unwrap_or_else(|| "IT".to_owned())),
        "codice_destinatario": text(&values.codice_destinatario),
        "pec": text(&values.pec),
    })
}

/// The message next to each refused billing field.
pub(crate) fn form_errors(fields: &[InvalidField]) -> BTreeMap<&'static str, String> {
    fields
        .iter()
        .map(|f| (f.field, billing_field(f.field, &f.error)))
        .collect()
}

/// The form shows both kinds' fields: only the chosen kind's are kept.
pub(crate) fn chosen_kind_only(mut values: BillingInput) -> BillingInput {
    if values.kind.as_deref() == Some("person") {
        values.denominazione = None;
        values.partita_iva = None;
    }
    values
}

async fn form(shop: BuyerPage, query: Query) -> PageResult {
    let stored = shop
        .read(|conn, user| Ok(billing::profile_of(conn, &user.id)?))
        .await?;
    let values = stored.map(|p| p.to_input()).unwrap_or_default();
    let next = query.get("dopo").map(String::as_str);
    let saved = query.contains_key("salvato");
    render(&shop, StatusCode::OK, &values, BTreeMap::new(), next, saved)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BillingForm {
    #[serde(flatten)]
    values: BillingInput,
    dopo: Option<String>,
}

async fn save(shop: BuyerPage, CheckedForm(form): CheckedForm<BillingForm>) -> PageResult {
    let BillingForm { values, dopo } = form;
    let values = chosen_kind_only(values);
    let input = values.clone();
    let outcome = shop
        .read(move |conn, user| {
            match billing::update(conn, &user.id, &user.brand_id, &input, Utc::now()) {
                Ok(_) => Ok(Ok(())),
                Err(BillingError::Invalid(fields)) => Ok(Err(fields)),
                Err(other) => Err(other.into()),
            }
        })
        .await?;
    match outcome {
        Ok(()) => Ok(see_other(&after_saving(dopo.as_deref()))),
        Err(fields) => {
            let errors = form_errors(&fields);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render(&shop, status, &values, errors, dopo.as_deref(), false)
        }
    }
}
