//! Where an invoice's buyer data comes from: the one place to read it.

use std::collections::HashMap;

use diesel::prelude::*;

use super::document::{Buyer, BuyerName};
use crate::db::schema::users;
use crate::db::DbConnection;

/// The buyers of the invoices about to be issued, by user id.
///
/// SOURCE TO REPLACE: the billing profile (`billing_profiles`: person or business,
/// partita IVA, address, codice destinatario or PEC) is the source of these data. Until
/// it is here, the account is all there is: its name (as the denominazione, since the
/// account does not split nome and cognome) and its codice fiscale where it has one. No
/// address, no codice destinatario, no PEC: the invoice carries only what is known,
/// never made-up data, and a file without the buyer's Sede is not yet one the SdI
/// accepts.
pub fn buyers_of(
    conn: &mut DbConnection,
    user_ids: &[&str],
) -> QueryResult<HashMap<String, Buyer>> {
    let rows: Vec<(String, String, Option<String>)> = users::table
        .filter(users::id.eq_any(user_ids))
        .order(users::id.asc())
        .select((users::id, users::name, users::codice_fiscale))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, codice_fiscale)| {
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
            (id, buyer)
        })
        .collect())
}

/// The buyer data of one user (see [`buyers_of`]).
pub fn buyer_of(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<Buyer>> {
    Ok(buyers_of(conn, &[user_id])?.remove(user_id))
}
