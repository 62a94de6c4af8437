//! The brands sharing one installation (Visura, Lextel): each has its own customers,
//! catalog, invoice numbering, sender address and bank details.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::schema::brands;
use crate::db::DbConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = brands)]
pub struct Brand {
    pub id: String,
    pub name: String,
    pub sender_address: String,
    pub iban: String,
    pub postal_account: String,
    pub invoice_series: String,
    /// The seller on the brand's invoices (CedentePrestatore): denominazione.
    pub seller_name: String,
    pub seller_partita_iva: String,
    pub seller_codice_fiscale: String,
    /// RF01 for the regime ordinario.
    pub seller_regime_fiscale: String,
    pub seller_indirizzo: String,
    pub seller_cap: String,
    pub seller_comune: String,
    /// Two-letter code.
    pub seller_provincia: String,
    /// ISO 3166 alpha-2.
    pub seller_nazione: String,
    /// REA registration (office's provincia, number); empty where it does not apply.
    pub seller_rea_ufficio: String,
    pub seller_rea_numero: String,
    /// The codice fiscale of who sends the brand's files to the SdI (IdTrasmittente, IT).
    pub transmitter_codice: String,
    /// The brand's PEC mailbox: it sends the brand's files to the SdI on the PEC channel
    /// and receives the SdI's receipts.
    pub sdi_pec_address: String,
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Brand>> {
    brands::table
        .filter(brands::id.eq(id))
        .select(Brand::as_select())
        .first(conn)
        .optional()
}

/// The brand a stored row names. Rows only name brands that exist (a foreign key), so a
/// missing one is a storage fault, not a refusal: callers that take a brand id from a
/// request use [`find`] and refuse an unknown one themselves.
pub fn existing(conn: &mut DbConnection, id: &str) -> anyhow::Result<Brand> {
    find(conn, id)?.ok_or_else(|| anyhow::anyhow!("brand {id} missing"))
}

/// Every brand, by name: the shop's front page offers each one's sign-in.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Brand>> {
    brands::table
        .order(brands::name.asc())
        .select(Brand::as_select())
        .load(conn)
}

/// Adds `brand` if it is missing; returns true if added. An existing brand keeps what an
/// operator set: only its fields still empty (added by a later migration) are filled.
pub fn add_or_fill_in(
    conn: &mut DbConnection,
    brand: &Brand,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let exists: i64 = brands::table
        .filter(brands::id.eq(&brand.id))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        diesel::insert_into(brands::table)
            .values((
                brands::id.eq(&brand.id),
                brands::name.eq(&brand.name),
                brands::sender_address.eq(&brand.sender_address),
                brands::iban.eq(&brand.iban),
                brands::postal_account.eq(&brand.postal_account),
                brands::invoice_series.eq(&brand.invoice_series),
                brands::seller_name.eq(&brand.seller_name),
                brands::seller_partita_iva.eq(&brand.seller_partita_iva),
                brands::seller_codice_fiscale.eq(&brand.seller_codice_fiscale),
                brands::seller_regime_fiscale.eq(&brand.seller_regime_fiscale),
                brands::seller_indirizzo.eq(&brand.seller_indirizzo),
                brands::seller_cap.eq(&brand.seller_cap),
                brands::seller_comune.eq(&brand.seller_comune),
                brands::seller_provincia.eq(&brand.seller_provincia),
                brands::seller_nazione.eq(&brand.seller_nazione),
                brands::seller_rea_ufficio.eq(&brand.seller_rea_ufficio),
                brands::seller_rea_numero.eq(&brand.seller_rea_numero),
                brands::transmitter_codice.eq(&brand.transmitter_codice),
                brands::sdi_pec_address.eq(&brand.sdi_pec_address),
                brands::created_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
        return Ok(true);
    }
    macro_rules! fill_if_blank {
        ($($column:ident),+) => {$(
            diesel::update(
                brands::table
                    .filter(brands::id.eq(&brand.id))
                    .filter(brands::$column.eq("")),
            )
            .set(brands::$column.eq(&brand.$column))
            .execute(conn)?;
        )+};
    }
    fill_if_blank!(
        sender_address,
        iban,
        postal_account,
        invoice_series,
        seller_name,
        seller_partita_iva,
        seller_codice_fiscale,
        seller_regime_fiscale,
        seller_indirizzo,
        seller_cap,
        seller_comune,
        seller_provincia,
        seller_nazione,
        seller_rea_ufficio,
        seller_rea_numero,
        transmitter_codice,
        sdi_pec_address
    );
    Ok(false)
}
