//! A buyer's coupons as a spreadsheet file: what a registration officer keeps next to
//! the customers it renews for. The codes stay masked (the full ones are only ever in the
//! delivery emails).
//!
//! The file is made for a spreadsheet opened in Italy: columns separated by `;`, dates as
//! dd/mm/yyyy, and a UTF-8 byte-order mark so that accented product names open right.

use chrono::{DateTime, Utc};

use super::{list_for_owner, CouponView};
use crate::db::DbConnection;
use crate::spreadsheet::inert;

/// The column names, in the order written.
pub const HEADER: [&str; 10] = [
    "codice",
    "prodotto",
    "descrizione",
    "stato",
    "ordine",
    "fattura",
    "acquistato_il",
    "valido_fino_al",
    "usato_il",
    "annullato_il",
];

/// Every coupon the owner bought, newest first, as CSV.
pub fn csv_for_owner(
    conn: &mut DbConnection,
    owner_id: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<u8>> {
    let coupons = list_for_owner(conn, owner_id, None, now)?;
    let mut file = b"\xEF\xBB\xBF".to_vec();
    {
        let mut writer = csv::WriterBuilder::new()
            .delimiter(b';')
            .from_writer(&mut file);
        writer.write_record(HEADER)?;
        for coupon in &coupons {
            writer.write_record(record(coupon).map(inert))?;
        }
        writer.flush()?;
    }
    Ok(file)
}

fn record(coupon: &CouponView) -> [String; 10] {
    let day = |at: DateTime<Utc>| at.format("%d/%m/%Y").to_string();
    [
        coupon.hint.clone(),
        coupon.product_code.clone(),
        coupon.product_name.clone(),
        coupon.status.italian().to_owned(),
        coupon.order_id.clone(),
        coupon.invoice_number.clone().unwrap_or_default(),
        day(coupon.created_at),
        day(coupon.valid_until),
        coupon.redeemed_at.map(day).unwrap_or_default(),
        coupon.voided_at.map(day).unwrap_or_default(),
    ]
}
