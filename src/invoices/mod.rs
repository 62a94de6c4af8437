//! Invoices: their numbers, progressive per brand and year without gaps or repeats
//! (DESIGN.md, invariants), and the electronic invoice (FatturaPA) of every sale, issued
//! in the transaction that fulfils the order, however it was paid. The order keeps the
//! number it was given (`orders` owns that row); this module owns the counters, the
//! invoices, the credit notes that correct them ([`credit_coupons`]) and their files.

mod buyer;
pub use buyer::{buyer_from_profile, buyer_input};
pub mod channel;
pub mod courtesy;
mod credit;
pub mod document;
pub mod export;
pub mod fatturapa;
pub mod listing;
pub mod numbering;
pub mod receipts;
pub mod store;
pub mod transmission;
pub mod transmitter;

pub use buyer::{buyer_of, buyers_of};
pub use credit::{
    credit_coupons, CreditNoteDraft, CreditedCoupon, IssuedCreditNote, NO_INVOICE_TO_CREDIT,
};
pub use numbering::{invoice_number, take_numbers, InvoiceNumber};
pub use store::{DocumentKind, InvoiceStatus, StoredDocument, Untransmitted};

use std::collections::HashMap;

use anyhow::{ensure, Context};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::Viewer;
use crate::brands::Brand;
use crate::db::DbConnection;
use crate::money::Money;
use crate::transfer::PaymentMethod;
use document::{vat_summary, Buyer, Document, Line, PaymentMode, Seller, Settles};

/// A fulfilled sale to invoice: the order's figures as it stored them, and the number it
/// was given.
pub struct Sale<'a> {
    pub order_id: &'a str,
    pub user_id: &'a str,
    pub payment_method: PaymentMethod,
    pub lines: Vec<Line>,
    pub net_total: Money,
    pub vat_total: Money,
    pub gross_total: Money,
    pub number: &'a InvoiceNumber,
}

/// Issues the invoices of sales of one brand just fulfilled, in the caller's transaction:
/// a ProgressivoInvio each from the brand's transmitter, the FatturaPA file, and the
/// invoice stored with the buyer (from `buyers`, read with [`buyers_of`] before the
/// numbers were taken, so the brand's counter is locked the shorter) and the seller as
/// they are now. Refused (and the
/// fulfilment with it) if the lines do not add up to the order's totals: an invoice
/// never says other figures than the order did.
pub fn issue(
    conn: &mut DbConnection,
    brand: &Brand,
    sales: &[Sale<'_>],
    buyers: &HashMap<String, Buyer>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if sales.is_empty() {
        return Ok(());
    }
    let seller = Seller::of(brand);
    let seller_json = serde_json::to_string(&seller)?;
    // The date of the same clock that chose the number's year.
    let date = now.date_naive();
    let mut issued = Vec::with_capacity(sales.len());
    let mut documents = Vec::with_capacity(sales.len());
    for sale in sales {
        let buyer = buyers.get(sale.user_id).with_context(|| {
            format!("buyer {} of order {} missing", sale.user_id, sale.order_id)
        })?;
        let summary = vat_summary(&sale.lines);
        let taxable = summary.iter().fold(Money::ZERO, |sum, s| sum + s.taxable);
        let tax = summary.iter().fold(Money::ZERO, |sum, s| sum + s.tax);
        ensure!(
            taxable == sale.net_total && tax == sale.vat_total && taxable + tax == sale.gross_total,
            "order {}: lines give {taxable} + {tax}, the order {} + {} = {}",
            sale.order_id,
            sale.net_total,
            sale.vat_total,
            sale.gross_total
        );
        documents.push((sale, buyer, summary));
    }
    // Taken last, as the invoice numbers were: the counter stays locked until commit.
    let progressives = store::take_progressives(conn, &brand.transmitter_codice, sales.len())?;
    for ((sale, buyer, summary), seq) in documents.into_iter().zip(progressives) {
        let progressivo = fatturapa::progressivo_invio(seq);
        let xml = fatturapa::to_xml(&Document {
            transmitter: &brand.transmitter_codice,
            progressivo_invio: &progressivo,
            number: &sale.number.text,
            date,
            seller: &seller,
            buyer,
            lines: &sale.lines,
            vat_summary: &summary,
            total: sale.gross_total,
            settles: Settles::Sale(PaymentMode::of(sale.payment_method)),
        });
        issued.push(store::NewInvoice {
            id: Uuid::now_v7().to_string(),
            brand_id: brand.id.clone(),
            order_id: sale.order_id.to_owned(),
            kind: DocumentKind::Invoice,
            credited_invoice_id: None,
            number: sale.number.text.clone(),
            year: sale.number.year,
            seq: sale.number.seq,
            issue_date: date,
            buyer: serde_json::to_string(buyer)?,
            seller: seller_json.clone(),
            net_cents: sale.net_total.cents(),
            vat_cents: sale.vat_total.cents(),
            gross_cents: sale.gross_total.cents(),
            transmitter_codice: brand.transmitter_codice.clone(),
            file_name: fatturapa::file_name(&brand.transmitter_codice, &progressivo),
            progressivo_invio: progressivo,
            xml,
            status: InvoiceStatus::Issued,
        });
    }
    store_and_queue(conn, &issued, now)
}

/// Stores documents just issued and queues their files for transmission, in the issuing
/// transaction: none is stored without being queued.
fn store_and_queue(
    conn: &mut DbConnection,
    documents: &[store::NewInvoice],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    store::insert_all(conn, documents, now)?;
    let files: Vec<_> = documents
        .iter()
        .map(|document| transmission::FileToSend {
            brand_id: &document.brand_id,
            invoice_id: &document.id,
            file_name: &document.file_name,
            xml: &document.xml,
        })
        .collect();
    transmission::enqueue_all(conn, &files, now)?;
    Ok(())
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum InvoiceError {
        /// No invoice of that order that the caller may see (or none yet: the order is not
        /// fulfilled).
        #[error("no such invoice")]
        NotFound,
        /// A credit note would credit what its invoice did not sell, or more than it did:
        /// units of a product, or money.
        #[error("a credit note of invoice {invoice} would credit {what}")]
        OverCredit { invoice: String, what: String },
    }
    storage from diesel::result::Error
}

/// Whether the viewer may see the documents of an order: the buyer their own, the
/// back-office any of its brand's; no one when there is no such order.
fn may_see_order(
    conn: &mut DbConnection,
    viewer: &Viewer<'_>,
    order_id: &str,
) -> Result<bool, InvoiceError> {
    use crate::db::schema::orders;
    use diesel::prelude::*;
    let owner: Option<(String, String)> = orders::table
        .filter(orders::id.eq(order_id))
        .select((orders::brand_id, orders::user_id))
        .first(conn)
        .optional()?;
    Ok(owner.is_some_and(|(brand_id, buyer_id)| viewer.may_see(&brand_id, &buyer_id)))
}

/// An order's invoice (TD01), among the documents the viewer may see of it; none yet
/// (the order is not fulfilled), or an order they may not see, is answered as unknown.
pub fn invoice_of_order(
    conn: &mut DbConnection,
    viewer: &Viewer<'_>,
    order_id: &str,
) -> Result<StoredDocument, InvoiceError> {
    documents_of_order(conn, viewer, order_id)?
        .into_iter()
        .find(|document| document.kind == DocumentKind::Invoice)
        .ok_or(InvoiceError::NotFound)
}

/// The documents (invoice, then credit notes) of an order the viewer may see; an order
/// they may not see is answered as unknown.
pub fn documents_of_order(
    conn: &mut DbConnection,
    viewer: &Viewer<'_>,
    order_id: &str,
) -> Result<Vec<StoredDocument>, InvoiceError> {
    if !may_see_order(conn, viewer, order_id)? {
        return Err(InvoiceError::NotFound);
    }
    Ok(store::documents_of_order(conn, order_id)?)
}

/// One document (invoice or credit note) by its id, if the viewer may see its order.
pub fn document(
    conn: &mut DbConnection,
    viewer: &Viewer<'_>,
    id: &str,
) -> Result<StoredDocument, InvoiceError> {
    let document = store::document(conn, id)?.ok_or(InvoiceError::NotFound)?;
    if !may_see_order(conn, viewer, &document.order_id)? {
        return Err(InvoiceError::NotFound);
    }
    Ok(document)
}

/// The courtesy copy (PDF) of one document by its id, for whoever may see the document
/// itself: the buyer their own, the back-office their brand's.
pub fn courtesy_copy(
    conn: &mut DbConnection,
    viewer: &Viewer<'_>,
    id: &str,
) -> Result<courtesy::CourtesyCopy, InvoiceError> {
    let document = document(conn, viewer, id)?;
    Ok(courtesy::of(&document)?)
}
