//! Fulfilling paid orders: one coupon per unit bought, the delivery email with the codes
//! and the receipt, written in the paying transaction. Shared by the prepaid checkout
//! (one order) and the statement import (hundreds per transaction), so everything is
//! written with multi-row inserts.

use chrono::{DateTime, Duration, Utc};
use diesel::QueryResult;
use serde_json::json;

use super::order::Order;
use crate::brands::Brand;
use crate::coupons::{self, CouponCode, CouponKey, NewCoupon};
use crate::db::DbConnection;
use crate::mail::outbox::{self, Attachment, OutgoingEmail};
use crate::mail::templates::EmailKind;

/// Above this many coupons, the delivery email also carries them as a CSV attachment.
pub const CSV_ATTACHMENT_FROM: usize = 20;

/// A paid order and the name its emails greet.
pub struct Recipient<'a> {
    pub order: &'a Order,
    pub name: &'a str,
}

impl<'a> Recipient<'a> {
    pub fn of(order: &'a Order, name: &'a str) -> Self {
        Self { order, name }
    }
}

pub struct Written {
    pub coupons: usize,
}

/// Coupons and emails of paid orders of one brand. The invoice number is not taken here:
/// the emails print it, and the dispatcher reads it from the order when sending, so the
/// caller can take the numbers last (the brand's counter is then locked the shortest).
pub fn write(
    conn: &mut DbConnection,
    key: &CouponKey,
    brand: &Brand,
    paid: &[Recipient<'_>],
    public_url: &str,
    now: DateTime<Utc>,
) -> QueryResult<Written> {
    let valid_until = now + Duration::days(coupons::VALIDITY_DAYS);
    let mut all_coupons = Vec::new();
    let mut emails = Vec::with_capacity(paid.len() * 2);
    for recipient in paid {
        let order = recipient.order;
        let mut issued: Vec<IssuedCode<'_>> = Vec::new();
        for line in &order.lines {
            for _ in 0..line.quantity {
                let coupon = NewCoupon::generate(
                    &order.brand_id,
                    &order.id,
                    &order.user_id,
                    &line.product_id,
                    line.net_unit_price.cents(),
                    line.vat_rate_basis_points,
                    valid_until,
                );
                issued.push(IssuedCode {
                    code: coupon.code.clone(),
                    product: &line.product_name,
                    valid_until,
                });
                all_coupons.push(coupon);
            }
        }
        emails.push(delivery_email(
            brand,
            recipient.name,
            order,
            &order.email,
            &issued,
            public_url,
            false,
        ));
        emails.push(receipt_email(brand, recipient.name, order));
    }
    coupons::insert_all(conn, key, &all_coupons, now)?;
    outbox::enqueue_all(conn, &emails, now)?;
    Ok(Written {
        coupons: all_coupons.len(),
    })
}

/// A code just made, as its delivery email lists it.
pub struct IssuedCode<'a> {
    pub code: CouponCode,
    pub product: &'a str,
    pub valid_until: DateTime<Utc>,
}

/// The coupon delivery (codes, how to renew), as template values: rendering happens when
/// the dispatcher sends it, which adds the order's invoice number (`reference` is the
/// order). `replaces_earlier` when these codes replace the order's earlier ones
/// ([`super::resend`]), which the email then says no longer work.
pub fn delivery_email(
    brand: &Brand,
    name: &str,
    order: &Order,
    recipient: &str,
    issued: &[IssuedCode<'_>],
    public_url: &str,
    replaces_earlier: bool,
) -> OutgoingEmail {
    let attachment = (issued.len() > CSV_ATTACHMENT_FROM).then(|| {
        let mut csv = String::from("codice,prodotto,valido_fino_al\n");
        for issued in issued {
            csv.push_str(&format!(
                "{},\"{}\",{}\n",
                issued.code,
                issued.product.replace('"', "\"\""),
                issued.valid_until.format("%d/%m/%Y")
            ));
        }
        Attachment {
            file_name: format!(
                "coupon-{}-{}.csv",
                order.created_at.format("%Y%m%d"),
                &order.id[..8]
            ),
            content: csv,
        }
    });
    let coupons_context: Vec<_> = issued
        .iter()
        .map(|issued| {
            json!({
                "code": issued.code.to_string(),
                "product": issued.product,
                "valid_until": issued.valid_until.format("%d/%m/%Y").to_string(),
            })
        })
        .collect();
    let context = json!({
        "name": name, "brand": brand.name,
        "single": issued.len() == 1, "count": issued.len(), "coupons": coupons_context,
        "attachment": attachment.as_ref().map(|a| a.file_name.clone()),
        "public_url": public_url,
        // The invoice is not attached (the outbox carries CSV attachments only): the
        // order's page lists it with its XML and the courtesy copy.
        "order_url": format!("{public_url}/negozio/ordini/{}", order.id),
        "replaces_earlier": replaces_earlier,
    });
    order_email(
        brand,
        order,
        recipient,
        EmailKind::CouponDelivery,
        context,
        attachment,
    )
}

/// The receipt (invoice number, amounts), to the order's address.
fn receipt_email(brand: &Brand, name: &str, order: &Order) -> OutgoingEmail {
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| json!({
            "product": l.product_name, "quantity": l.quantity, "net_amount": l.net_amount.to_string(),
            "vat_rate": format!("{:.2}", rust_decimal::Decimal::new(l.vat_rate_basis_points as i64, 2)),
        }))
        .collect();
    let context = json!({
        "name": name, "brand": brand.name,
        "date": order.created_at.format("%d/%m/%Y").to_string(),
        "payment_method": order.payment_method.italian(), "lines": lines,
        "net_total": order.net_total.to_string(), "vat_total": order.vat_total.to_string(),
        "gross_total": order.gross_total.to_string(),
    });
    order_email(
        brand,
        order,
        &order.email,
        EmailKind::OrderReceipt,
        context,
        None,
    )
}

/// An email from the brand about the order.
fn order_email(
    brand: &Brand,
    order: &Order,
    recipient: &str,
    kind: EmailKind,
    context: serde_json::Value,
    attachment: Option<Attachment>,
) -> OutgoingEmail {
    OutgoingEmail {
        brand_id: brand.id.clone(),
        kind,
        reference: Some(order.id.clone()),
        sender: brand.sender_address.clone(),
        recipient: recipient.to_owned(),
        context,
        attachment,
    }
}
