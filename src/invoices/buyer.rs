//! Where an invoice's buyer data comes from: the buyer's billing profile
//! (`billing::profiles_of`), read as the invoice is issued, so the invoice keeps the data
//! as they were at that moment.

use std::collections::HashMap;

use diesel::prelude::*;

use super::document::{Address, Buyer, BuyerName};
use crate::billing::{self, BillingProfile, BusinessName, BuyerIdentity};
use crate::db::schema::users;
use crate::db::DbConnection;

/// The buyers of the invoices about to be issued, by user id.
///
/// Every order placed since billing data exist was placed with them (checkout refuses an
/// order without). An order placed before, and paid only now (a transfer that waited),
/// may have none: its invoice carries what the account knows (the name, the codice
/// fiscale if any) and no address, never made-up data. The SdI would refuse that file,
/// and the back-office corrects it with the buyer's data.
pub fn buyers_of(
    conn: &mut DbConnection,
    user_ids: &[&str],
) -> anyhow::Result<HashMap<String, Buyer>> {
    let mut buyers: HashMap<String, Buyer> = billing::profiles_of(conn, user_ids)?
        .iter()
        .map(|(user_id, profile)| (user_id.clone(), buyer_from_profile(profile)))
        .collect();
    let without: Vec<&str> = user_ids
        .iter()
        .copied()
        .filter(|id| !buyers.contains_key(*id))
        .collect();
    if !without.is_empty() {
        let rows: Vec<(String, String, Option<String>)> = users::table
            .filter(users::id.eq_any(&without))
            .select((users::id, users::name, users::codice_fiscale))
            .load(conn)?;
        for (id, name, codice_fiscale) in rows {
            tracing::warn!(user = %id, "invoice issued without billing data (order placed before they were required)");
            let buyer = Buyer {
                name: BuyerName::Business {
                    denominazione: name,
                },
                partita_iva: None,
                codice_fiscale,
                sede: None,
                codice_destinatario: None,
                pec: None,
            };
            buyers.insert(id, buyer);
        }
    }
    Ok(buyers)
}

/// The buyer data of one user (see [`buyers_of`]).
pub fn buyer_of(conn: &mut DbConnection, user_id: &str) -> anyhow::Result<Option<Buyer>> {
    Ok(buyers_of(conn, &[user_id])?.remove(user_id))
}

/// The FatturaPA's CessionarioCommittente of a billing profile.
pub fn buyer_from_profile(profile: &BillingProfile) -> Buyer {
    let (name, partita_iva, codice_fiscale) = match &profile.buyer {
        BuyerIdentity::Person {
            nome,
            cognome,
            codice_fiscale,
        } => (
            BuyerName::Person {
                nome: nome.as_str().to_owned(),
                cognome: cognome.as_str().to_owned(),
            },
            None,
            Some(codice_fiscale.as_str().to_owned()),
        ),
        BuyerIdentity::Business {
            name,
            partita_iva,
            codice_fiscale,
        } => (
            match name {
                BusinessName::Denominazione(denominazione) => BuyerName::Business {
                    denominazione: denominazione.as_str().to_owned(),
                },
                BusinessName::Person { nome, cognome } => BuyerName::Person {
                    nome: nome.as_str().to_owned(),
                    cognome: cognome.as_str().to_owned(),
                },
            },
            Some(partita_iva.as_str().to_owned()),
            codice_fiscale.as_ref().map(|cf| cf.to_string()),
        ),
    };
    let address = &profile.address;
    Buyer {
        name,
        partita_iva,
        codice_fiscale,
        sede: Some(Address {
            indirizzo: address.indirizzo.as_str().to_owned(),
            cap: address.document_cap().to_owned(),
            comune: address.comune.as_str().to_owned(),
            // The FatturaPA's Provincia is for Italian addresses.
            provincia: address
                .nazione
                .is_italy()
                .then(|| address.provincia.as_str().to_owned()),
            nazione: address.nazione.as_str().to_owned(),
        }),
        codice_destinatario: match profile.delivery.codice_destinatario() {
            billing::NO_CODICE_DESTINATARIO => None,
            code => Some(code.to_owned()),
        },
        pec: profile.delivery.pec().map(|pec| pec.as_str().to_owned()),
    }
}

/// The billing data a document's buyer was made from, as a form shows them: what the
/// back-office corrects when the SdI rejected the file. A buyer without a partita IVA
/// and with a denominazione (an order placed before billing data existed) has no kind.
pub fn buyer_input(buyer: &Buyer) -> billing::BillingInput {
    let mut input = billing::BillingInput {
        kind: match (&buyer.partita_iva, &buyer.name) {
            (Some(_), _) => Some("business".to_owned()),
            (None, BuyerName::Person { .. }) => Some("person".to_owned()),
            (None, BuyerName::Business { .. }) => None,
        },
        partita_iva: buyer.partita_iva.clone(),
        codice_fiscale: buyer.codice_fiscale.clone(),
        codice_destinatario: buyer.codice_destinatario.clone(),
        pec: buyer.pec.clone(),
        ..billing::BillingInput::default()
    };
    match &buyer.name {
        BuyerName::Person { nome, cognome } => {
            input.nome = Some(nome.clone());
            input.cognome = Some(cognome.clone());
        }
        BuyerName::Business { denominazione } => input.denominazione = Some(denominazione.clone()),
    }
    if let Some(sede) = &buyer.sede {
        let italy = sede.nazione == "IT";
        input.indirizzo = Some(sede.indirizzo.clone());
        // Abroad the file carries 00000, not the buyer's postal code.
        input.cap = italy.then(|| sede.cap.clone());
        input.comune = Some(sede.comune.clone());
        input.provincia = sede.provincia.clone();
        input.nazione = Some(sede.nazione.clone());
    }
    input
}
