//! The back-office's view of the brand's documents: found by state, type, issue date,
//! number and buyer, each with its transmissions and the SdI's receipts. Reads only: the
//! documents, the outbox and the receipts each have their own writer.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::document::{Buyer, BuyerName};
use super::receipts::StoredReceipt;
use super::store::StoredDocument;
use super::transmission::TransmissionStatus;
use super::{DocumentKind, InvoiceError, InvoiceStatus};
use crate::db::schema::{invoices, sdi_transmissions};
use crate::db::search::{contains_pattern, lower};
use crate::db::{self, DbConnection};
use crate::paging::{Page, Paged};

/// The search text of the number and buyer filters.
pub type SearchText = crate::validation::Text<1, 100>;

/// What to find; every filter given must hold.
#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    pub status: Option<InvoiceStatus>,
    pub kind: Option<DocumentKind>,
    /// Issued on or after.
    pub issued_from: Option<NaiveDate>,
    /// Issued on or before.
    pub issued_to: Option<NaiveDate>,
    /// A piece of the number, any case.
    pub number: Option<SearchText>,
    /// A piece of the buyer's data as the document has them (name, codice fiscale,
    /// partita IVA, address, PEC), any case.
    pub buyer: Option<SearchText>,
}

/// A file handed to the transmission outbox, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sdi_transmissions)]
pub struct Transmission {
    #[diesel(column_name = invoice_id)]
    pub document_id: String,
    pub file_name: String,
    pub status: TransmissionStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub channel: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// A document as the back-office lists it.
#[derive(Debug, Clone)]
pub struct ListedDocument {
    pub document: StoredDocument,
    /// The buyer's name as the document has it.
    pub buyer_name: String,
    pub transmissions: Vec<Transmission>,
    pub receipts: Vec<StoredReceipt>,
}

/// The brand's documents that match `filter`, newest first: one page, and how many match
/// over every page.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    filter: &DocumentFilter,
    page: Page,
) -> Result<Paged<ListedDocument>, InvoiceError> {
    let query = || {
        let mut query = invoices::table
            .filter(invoices::brand_id.eq(brand_id.to_owned()))
            .into_boxed();
        if let Some(status) = filter.status {
            query = query.filter(invoices::status.eq(status.as_str()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(invoices::kind.eq(kind.as_str()));
        }
        if let Some(from) = filter.issued_from {
            query = query.filter(invoices::issue_date.ge(from));
        }
        if let Some(to) = filter.issued_to {
            query = query.filter(invoices::issue_date.le(to));
        }
        if let Some(number) = &filter.number {
            let pattern = contains_pattern(number.as_str());
            query = query.filter(lower(invoices::number).like(pattern).escape('\\'));
        }
        if let Some(buyer) = &filter.buyer {
            let pattern = contains_pattern(buyer.as_str());
            query = query.filter(lower(invoices::buyer).like(pattern).escape('\\'));
        }
        query
    };
    let documents: Paged<(StoredDocument, String)> = db::load_page(conn, page, query, |query| {
        query
            .order((
                invoices::issue_date.desc(),
                invoices::created_at.desc(),
                invoices::id.desc(),
            ))
            .select((StoredDocument::as_select(), invoices::buyer))
    })?;
    Ok(Paged {
        items: with_exchange(conn, documents.items)?,
        total: documents.total,
    })
}

/// One document of the brand with its exchange with the SdI; another brand's, or none,
/// is unknown.
pub fn find(
    conn: &mut DbConnection,
    brand_id: &str,
    id: &str,
) -> Result<ListedDocument, InvoiceError> {
    let row: Option<(StoredDocument, String)> = invoices::table
        .filter(invoices::id.eq(id))
        .filter(invoices::brand_id.eq(brand_id))
        .select((StoredDocument::as_select(), invoices::buyer))
        .first(conn)
        .optional()?;
    let (document, buyer) = row.ok_or(InvoiceError::NotFound)?;
    let mut found = with_exchange(conn, vec![(document, buyer)])?;
    Ok(found.remove(0))
}

/// The documents with their transmissions and receipts, two queries for all of them.
fn with_exchange(
    conn: &mut DbConnection,
    documents: Vec<(StoredDocument, String)>,
) -> Result<Vec<ListedDocument>, InvoiceError> {
    let ids: Vec<&str> = documents.iter().map(|(d, _)| d.id.as_str()).collect();
    let mut transmissions: HashMap<String, Vec<Transmission>> = HashMap::new();
    for transmission in sdi_transmissions::table
        .filter(sdi_transmissions::invoice_id.eq_any(&ids))
        .order((
            sdi_transmissions::created_at.asc(),
            sdi_transmissions::id.asc(),
        ))
        .select(Transmission::as_select())
        .load(conn)?
    {
        transmissions
            .entry(transmission.document_id.clone())
            .or_default()
            .push(transmission);
    }
    let mut receipts: HashMap<String, Vec<StoredReceipt>> = HashMap::new();
    for receipt in super::receipts::of_documents(conn, &ids)? {
        if let Some(document_id) = receipt.invoice_id.clone() {
            receipts.entry(document_id).or_default().push(receipt);
        }
    }
    documents
        .into_iter()
        .map(|(document, buyer)| {
            Ok(ListedDocument {
                buyer_name: buyer_name(&buyer)
                    .map_err(|e| anyhow::anyhow!("invoice {}: its buyer: {e}", document.id))?,
                transmissions: transmissions.remove(&document.id).unwrap_or_default(),
                receipts: receipts.remove(&document.id).unwrap_or_default(),
                document,
            })
        })
        .collect()
}

/// The buyer's name out of the stored buyer.
fn buyer_name(json: &str) -> serde_json::Result<String> {
    let buyer: Buyer = serde_json::from_str(json)?;
    Ok(match buyer.name {
        BuyerName::Person { nome, cognome } => format!("{nome} {cognome}"),
        BuyerName::Business { denominazione } => denominazione,
    })
}
