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
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Brand>> {
    brands::table
        .filter(brands::id.eq(id))
        .select(Brand::as_select())
        .first(conn)
        .optional()
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
    fill_if_blank!(sender_address, iban, postal_account, invoice_series);
    Ok(false)
}
