//! A customer's application for the registration-officer role, from the profile: its
//! status on the profile page, and the form (`/negozio/profilo/incaricato`).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{form_status, refusal, see_other, BuyerPage, CheckedForm, PageResult, WebError};
use crate::auth::officer_applications::{
    self, ApplicationForm, ApplicationStatus, CompanyName, PhoneNumber,
};
use crate::auth::{Role, User};
use crate::db::DbConnection;
use crate::email_address::EmailAddress;
use crate::http::italian::{partita_iva_rule, text_rule};
use crate::partita_iva::PartitaIva;

pub fn configure(cfg: &mut web::ServiceConfig) {
    pages! { cfg;
        get  "/negozio/profilo/incaricato" => form_page,
        post "/negozio/profilo/incaricato" => apply,
    }
}

/// The profile's section on the role: what the user is, their latest application, and
/// whether they may apply.
pub fn status_on_profile(conn: &mut DbConnection, user: &User) -> Result<Value, WebError> {
    let officer_applications::Standing { latest, may_apply } =
        officer_applications::standing(conn, user)?;
    Ok(json!({
        "is_officer": user.role == Role::RegistrationOfficer,
        "can_apply": may_apply,
        "application": latest.map(|a| json!({
            "status": match a.status {
                ApplicationStatus::Pending => "in attesa di esame",
                ApplicationStatus::Approved => "accolta",
                ApplicationStatus::Refused => "respinta",
            },
            "company_name": a.company_name,
            "vat_number": a.vat_number.as_str(),
            "created_at": a.created_at.format("%d/%m/%Y").to_string(),
            "refusal_reason": a.refusal_reason,
        })),
    }))
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct OfficerFields {
    company_name: String,
    vat_number: String,
    contact_email: String,
    phone: String,
    note: String,
}

fn render(
    shop: &BuyerPage,
    status: StatusCode,
    fields: &OfficerFields,
    errors: BTreeMap<&str, String>,
    error: Option<String>,
) -> PageResult {
    shop.render(
        status,
        "incaricato",
        json!({
            "title": "Diventa incaricato alla registrazione",
            "form": {
                "company_name": fields.company_name,
                "vat_number": fields.vat_number,
                "contact_email": fields.contact_email,
                "phone": fields.phone,
                "note": fields.note,
            },
            "errors": errors,
            "error": error,
        }),
    )
}

async fn form_page(shop: BuyerPage) -> PageResult {
    let fields = OfficerFields {
        contact_email: shop.user.email.to_string(),
        ..OfficerFields::default()
    };
    render(&shop, StatusCode::OK, &fields, BTreeMap::new(), None)
}

async fn apply(shop: BuyerPage, CheckedForm(fields): CheckedForm<OfficerFields>) -> PageResult {
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    let company_name = CompanyName::parse(&fields.company_name)
        .map_err(|e| errors.insert("company_name", text_rule("la ragione sociale", &e)))
        .ok();
    let vat_number = PartitaIva::parse(&fields.vat_number)
        .map_err(|e| errors.insert("vat_number", partita_iva_rule(&e).into()))
        .ok();
    let contact_email = EmailAddress::parse(&fields.contact_email)
        .map_err(|_| {
            errors.insert(
                "contact_email",
                "Indica la PEC o l'email dell'azienda, come nome@pec.it.".into(),
            )
        })
        .ok();
    let phone = match fields.phone.trim() {
        "" => None,
        typed => PhoneNumber::parse(typed)
            .map_err(|_| {
                errors.insert(
                    "phone",
                    "Il telefono ha da 6 a 20 cifre (spazi, + e trattini ammessi).".into(),
                )
            })
            .ok(),
    };
    let note = officer_applications::note(&fields.note)
        .map_err(|e| errors.insert("note", text_rule("la nota", &e)))
        .ok();
    let form = match (company_name, vat_number, contact_email, note) {
        // The phone is optional, so only `errors` tells whether a typed one was refused.
        (Some(company_name), Some(vat_number), Some(contact_email), Some(note))
            if errors.is_empty() =>
        {
            ApplicationForm {
                company_name,
                vat_number,
                contact_email,
                phone,
                note: Some(note),
            }
        }
        _ => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render(&shop, status, &fields, errors, None);
        }
    };
    let outcome = shop
        .read(move |conn, user| {
            match officer_applications::apply(conn, &user.id, form, Utc::now()) {
                Ok(_) => Ok(Ok(())),
                Err(refused) => Ok(Err(refusal(refused)?)),
            }
        })
        .await?;
    match outcome {
        Ok(()) => Ok(see_other("/negozio/profilo?richiesta=1")),
        Err(identity) => {
            let status = form_status(&identity);
            render(
                &shop,
                status,
                &fields,
                BTreeMap::new(),
                Some(identity.italian),
            )
        }
    }
}
