//! The brands sharing one installation (Visura, Lextel): each has its own customers,
//! catalog, invoice numbering, sender address and bank details.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::brands;
use crate::db::DbConnection;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Serialize)]
pub struct Brand {
    pub id: String,
    pub name: String,
    pub sender_address: String,
    pub iban: String,
    pub postal_account: String,
    pub invoice_series: String,
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Brand>> {
    brands::table
        .filter(brands::id.eq(id))
        .select((
            brands::id,
            brands::name,
            brands::sender_address,
            brands::iban,
            brands::postal_account,
            brands::invoice_series,
        ))
        .first(conn)
        .optional()
}

/// Every brand, by name: the shop's front page offers each one's sign-in.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Brand>> {
    brands::table
        .order(brands::name.asc())
        .select((
            brands::id,
            brands::name,
            brands::sender_address,
            brands::iban,
            brands::postal_account,
            brands::invoice_series,
        ))
        .load(conn)
}
