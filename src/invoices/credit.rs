//! Credit notes (nota di credito, TD04): every coupon sold and then voided with its money
//! given back (a void with a refund to the prepaid account, a reversal by the bank, a card
//! refund) is credited by a credit note that refers to the order's invoice, issued in the
//! transaction that voids the coupons, numbered in the brand's own credit note series.
//!
//! The buyer is the one stored on the invoice (the credit note corrects that document,
//! whatever the profile says now); the seller is the brand as it is now. An invoice's
//! credit notes never credit a coupon twice, more units of a product than the invoice
//! sold, or more money than it said.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::document::{
    credit_vat_summary, Buyer, CreditedInvoice, Document, Line, Seller, Settles, VatSummary,
};
use super::store::{self, DocumentKind, InvoiceStatus, InvoiceToCredit, NewInvoice};
use super::{fatturapa, numbering, InvoiceError};
use crate::brands::Brand;
use crate::db::schema::order_lines;
use crate::db::DbConnection;
use crate::money::Money;

/// Why coupons voided have no credit note, as the audit log and the log say it.
pub const NO_INVOICE_TO_CREDIT: &str =
    "the order was fulfilled before invoices were issued: no invoice to credit";

/// A coupon to credit, as `coupons` stores it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct CreditedCoupon {
    pub id: String,
    pub product_id: String,
    pub net_unit_cents: i64,
    pub vat_rate_basis_points: i32,
}

/// A credit note issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCreditNote {
    pub id: String,
    pub number: String,
    pub total: Money,
}

/// Credits `coupons` of the order, just voided: the credit note is issued and queued for
/// transmission in the caller's transaction. `None` when there is nothing to credit: no
/// coupons, or an order fulfilled before invoices were issued (it has no invoice to
/// correct). A caller that moves money between knowing the credit note's total and its
/// numbering uses [`CreditNoteDraft`] instead, as the void does.
pub fn credit_coupons(
    conn: &mut DbConnection,
    brand: &Brand,
    order_id: &str,
    coupons: &[CreditedCoupon],
    now: DateTime<Utc>,
) -> Result<Option<IssuedCreditNote>, InvoiceError> {
    CreditNoteDraft::of(conn, brand, order_id, coupons)?
        .map(|draft| draft.issue(conn, now))
        .transpose()
}

/// A credit note with its figures, not yet numbered. Its invoice stays locked until the
/// transaction ends, so the figures hold until it is issued.
#[derive(Debug)]
pub struct CreditNoteDraft<'a> {
    brand: &'a Brand,
    order_id: String,
    invoice: InvoiceToCredit,
    lines: Vec<Line>,
    summary: Vec<VatSummary>,
    net: Money,
    vat: Money,
    gross: Money,
    coupon_ids: Vec<String>,
}

impl<'a> CreditNoteDraft<'a> {
    /// The credit note of `coupons` of the order (see [`credit_coupons`]), refused if the
    /// invoice's credit notes would credit more than it sold.
    pub fn of(
        conn: &mut DbConnection,
        brand: &'a Brand,
        order_id: &str,
        coupons: &[CreditedCoupon],
    ) -> Result<Option<Self>, InvoiceError> {
        if coupons.is_empty() {
            return Ok(None);
        }
        let Some(invoice) = store::lock_invoice_of_order(conn, order_id)? else {
            tracing::warn!(
                order = order_id,
                coupons = coupons.len(),
                "no credit note: {NO_INVOICE_TO_CREDIT}"
            );
            return Ok(None);
        };
        if invoice.brand_id != brand.id {
            return Err(anyhow::anyhow!(
                "order {order_id}'s invoice is of brand {}, not {}",
                invoice.brand_id,
                brand.id
            )
            .into());
        }
        let sold = sold_units(conn, order_id)?;
        let so_far = store::credited_so_far(conn, &invoice.id)?;
        let over = |what: String| InvoiceError::OverCredit {
            invoice: invoice.number.clone(),
            what,
        };
        if let Some(twice) = coupons
            .iter()
            .find(|c| so_far.coupons.iter().any(|earlier| earlier.id == c.id))
        {
            return Err(over(format!("coupon {} again", twice.id)));
        }
        let earlier = units_per_kind(&sold, &so_far.coupons).map_err(over)?;
        let crediting = units_per_kind(&sold, coupons).map_err(over)?;
        for ((kind, before), adding) in sold.iter().zip(&earlier).zip(&crediting) {
            if before + adding > kind.quantity {
                return Err(over(format!(
                    "{adding} units of \"{}\" after {before} already credited, of {} sold",
                    kind.description, kind.quantity
                )));
            }
        }
        let earlier_lines = lines(&sold, &earlier);
        let lines = lines(&sold, &crediting);
        let summary = credit_vat_summary(&earlier_lines, &lines);
        let net = summary.iter().fold(Money::ZERO, |sum, s| sum + s.taxable);
        let vat = summary.iter().fold(Money::ZERO, |sum, s| sum + s.tax);
        let gross = net + vat;
        if so_far.gross_cents + gross.cents() > invoice.gross_cents {
            return Err(over(format!(
                "{gross} after {} already credited, of {} invoiced",
                Money::from_cents(so_far.gross_cents),
                Money::from_cents(invoice.gross_cents)
            )));
        }
        Ok(Some(Self {
            brand,
            order_id: order_id.to_owned(),
            invoice,
            lines,
            summary,
            net,
            vat,
            gross,
            coupon_ids: coupons.iter().map(|c| c.id.clone()).collect(),
        }))
    }

    /// What the credit note gives back, VAT included.
    pub fn total(&self) -> Money {
        self.gross
    }

    /// Numbers the credit note (taken last: the counters stay locked until commit),
    /// writes its file, stores it with the coupons it credits, and queues the file.
    pub fn issue(
        self,
        conn: &mut DbConnection,
        now: DateTime<Utc>,
    ) -> Result<IssuedCreditNote, InvoiceError> {
        let brand = self.brand;
        let buyer: Buyer = serde_json::from_str(&self.invoice.buyer)
            .map_err(|e| anyhow::anyhow!("buyer of invoice {}: {e}", self.invoice.number))?;
        let seller = Seller::of(brand);
        // The date of the same clock that chose the number's year.
        let date = now.date_naive();
        let number =
            numbering::take_credit_note_number(conn, &brand.id, &brand.invoice_series, now.year())?;
        let progressivo = fatturapa::progressivo_invio(
            store::take_progressives(conn, &brand.transmitter_codice, 1)?[0],
        );
        let xml = fatturapa::to_xml(&Document {
            transmitter: &brand.transmitter_codice,
            progressivo_invio: &progressivo,
            number: &number.text,
            date,
            seller: &seller,
            buyer: &buyer,
            lines: &self.lines,
            vat_summary: &self.summary,
            total: self.gross,
            settles: Settles::Credit(CreditedInvoice {
                number: &self.invoice.number,
                date: self.invoice.issue_date,
            }),
        });
        let note = NewInvoice {
            id: Uuid::now_v7().to_string(),
            brand_id: brand.id.clone(),
            order_id: self.order_id,
            kind: DocumentKind::CreditNote,
            credited_invoice_id: Some(self.invoice.id.clone()),
            number: number.text.clone(),
            year: number.year,
            seq: number.seq,
            issue_date: date,
            buyer: self.invoice.buyer,
            seller: serde_json::to_string(&seller).map_err(anyhow::Error::from)?,
            net_cents: self.net.cents(),
            vat_cents: self.vat.cents(),
            gross_cents: self.gross.cents(),
            transmitter_codice: brand.transmitter_codice.clone(),
            file_name: fatturapa::file_name(&brand.transmitter_codice, &progressivo),
            progressivo_invio: progressivo,
            xml,
            status: InvoiceStatus::Issued,
        };
        super::store_and_queue(conn, std::slice::from_ref(&note), now)?;
        store::record_credited_coupons(conn, &note.id, &self.invoice.id, &self.coupon_ids)?;
        Ok(IssuedCreditNote {
            id: note.id,
            number: note.number,
            total: self.gross,
        })
    }
}

/// What the invoice sold of one kind of coupon: a product at a net unit price and VAT
/// rate, as the order's lines (the invoice's) have it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = order_lines)]
struct SoldUnits {
    product_id: String,
    net_unit_cents: i64,
    vat_rate_basis_points: i32,
    #[diesel(column_name = product_name)]
    description: String,
    quantity: i32,
}

/// The kinds of coupon the order sold, in the order of its lines.
fn sold_units(conn: &mut DbConnection, order_id: &str) -> QueryResult<Vec<SoldUnits>> {
    let lines: Vec<SoldUnits> = order_lines::table
        .filter(order_lines::order_id.eq(order_id))
        .order(order_lines::line_number.asc())
        .select(SoldUnits::as_select())
        .load(conn)?;
    let mut sold: Vec<SoldUnits> = Vec::new();
    for line in lines {
        let same = sold.iter_mut().find(|s| {
            (&s.product_id, s.net_unit_cents, s.vat_rate_basis_points)
                == (
                    &line.product_id,
                    line.net_unit_cents,
                    line.vat_rate_basis_points,
                )
        });
        match same {
            Some(units) => units.quantity += line.quantity,
            None => sold.push(line),
        }
    }
    Ok(sold)
}

/// How many of the coupons are of each kind sold; an error naming a coupon the invoice
/// did not sell.
fn units_per_kind(sold: &[SoldUnits], coupons: &[CreditedCoupon]) -> Result<Vec<i32>, String> {
    let mut counts = vec![0; sold.len()];
    let mut index: HashMap<(&str, i64, i32), usize> = HashMap::new();
    for (i, kind) in sold.iter().enumerate() {
        index.insert(
            (
                &kind.product_id,
                kind.net_unit_cents,
                kind.vat_rate_basis_points,
            ),
            i,
        );
    }
    for coupon in coupons {
        let kind = (
            coupon.product_id.as_str(),
            coupon.net_unit_cents,
            coupon.vat_rate_basis_points,
        );
        let i = index.get(&kind).ok_or_else(|| {
            format!(
                "coupon {} (product {} at {} net, VAT {} basis points), which it did not sell",
                coupon.id,
                coupon.product_id,
                Money::from_cents(coupon.net_unit_cents),
                coupon.vat_rate_basis_points
            )
        })?;
        counts[*i] += 1;
    }
    Ok(counts)
}

/// The credit note's lines: one per kind with units to credit, grouped as the invoice's.
fn lines(sold: &[SoldUnits], counts: &[i32]) -> Vec<Line> {
    sold.iter()
        .zip(counts)
        .filter(|(_, &count)| count > 0)
        .map(|(kind, &count)| {
            let unit_price = Money::from_cents(kind.net_unit_cents);
            Line {
                description: kind.description.clone(),
                quantity: count,
                unit_price,
                total: Money::from_cents(kind.net_unit_cents * count as i64),
                vat_rate_basis_points: kind.vat_rate_basis_points,
            }
        })
        .collect()
}
