//! The one writer of `invoices`, `credited_coupons` and `sdi_transmission_counters`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::CreditedCoupon;
use crate::db::schema::{coupons, credited_coupons, invoices, sdi_transmission_counters};
use crate::db::{self, DbConnection};
use crate::paging::{Page, Paged};

text_enum!(
    /// Where an invoice is in its exchange with the SdI. Issued with the fulfilment; the
    /// transmission and the SdI's receipts move it on.
    InvoiceStatus {
        Issued => "issued",
        Transmitted => "transmitted",
        Delivered => "delivered",
        Rejected => "rejected",
        NotDelivered => "not_delivered",
    }
);

text_enum!(
    /// The document's type in FatturaPA (TipoDocumento): an invoice, or a credit note that
    /// corrects one.
    DocumentKind {
        Invoice => "TD01",
        CreditNote => "TD04",
    }
);

/// An invoice as stored.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub id: String,
    pub brand_id: String,
    pub order_id: String,
    pub kind: DocumentKind,
    /// The invoice a credit note corrects; `None` for an invoice.
    pub credited_invoice_id: Option<String>,
    pub number: String,
    pub year: i32,
    pub seq: i64,
    pub issue_date: NaiveDate,
    /// JSON of [`super::document::Buyer`].
    pub buyer: String,
    /// JSON of [`super::document::Seller`].
    pub seller: String,
    pub net_cents: i64,
    pub vat_cents: i64,
    pub gross_cents: i64,
    pub transmitter_codice: String,
    pub progressivo_invio: String,
    pub file_name: String,
    pub xml: String,
    pub status: InvoiceStatus,
}

/// Stores the invoices, many rows per statement.
pub fn insert_all(
    conn: &mut DbConnection,
    new: &[NewInvoice],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let now = now.naive_utc();
    insert_many!(conn, invoices::table, new, 500, |i| {
        (
            invoices::id.eq(&i.id),
            invoices::brand_id.eq(&i.brand_id),
            invoices::order_id.eq(&i.order_id),
            invoices::kind.eq(i.kind.as_str()),
            invoices::credited_invoice_id.eq(i.credited_invoice_id.as_deref()),
            invoices::number.eq(&i.number),
            invoices::year.eq(i.year),
            invoices::seq.eq(i.seq),
            invoices::issue_date.eq(i.issue_date),
            invoices::buyer.eq(&i.buyer),
            invoices::seller.eq(&i.seller),
            invoices::net_cents.eq(i.net_cents),
            invoices::vat_cents.eq(i.vat_cents),
            invoices::gross_cents.eq(i.gross_cents),
            invoices::transmitter_codice.eq(&i.transmitter_codice),
            invoices::progressivo_invio.eq(&i.progressivo_invio),
            invoices::file_name.eq(&i.file_name),
            invoices::xml.eq(&i.xml),
            invoices::status.eq(i.status.as_str()),
            invoices::created_at.eq(now),
            invoices::status_changed_at.eq(now),
        )
    })?;
    Ok(())
}

/// Takes the transmitter's next `count` ProgressivoInvio sequence numbers (at least one),
/// in order. Like the invoice counters, an upsert in the issuing transaction: the row
/// stays locked until commit, and a rollback gives the numbers back.
pub fn take_progressives(
    conn: &mut DbConnection,
    transmitter: &str,
    count: usize,
) -> QueryResult<Vec<i64>> {
    let count = count.max(1) as i64;
    use sdi_transmission_counters as counters;
    let last: i64 = upsert!(
        conn,
        counters::table,
        (
            counters::transmitter_codice.eq(transmitter),
            counters::last_seq.eq(count),
        ),
        on counters::transmitter_codice,
        set counters::last_seq.eq(counters::last_seq + count),
        returning counters::last_seq
    )?;
    Ok((last - count + 1..=last).collect())
}

/// What an SdI receipt does to the document whose current file it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptEffect {
    /// Ricevuta di consegna.
    Delivered,
    /// Notifica di scarto.
    Rejected,
    /// Notifica di mancata consegna.
    NotDelivered,
}

impl ReceiptEffect {
    fn status(self) -> InvoiceStatus {
        match self {
            Self::Delivered => InvoiceStatus::Delivered,
            Self::Rejected => InvoiceStatus::Rejected,
            Self::NotDelivered => InvoiceStatus::NotDelivered,
        }
    }
}

/// The states a receipt moves a document from: waiting to be transmitted (the receipt
/// may be imported before the sending worker recorded the transmission) or transmitted.
/// Never from a final state: a delivered document is never moved back.
const AWAITING_RECEIPT: [&str; 2] = ["issued", "transmitted"];

/// Moves the document `id` as the receipt `effect` says, if `file_name` is still its
/// current file and it awaits a receipt; keeps the SdI's identifier of the file. Whether
/// it moved: a second receipt, or one about an earlier file, changes nothing.
pub fn apply_receipt(
    conn: &mut DbConnection,
    id: &str,
    file_name: &str,
    effect: ReceiptEffect,
    identificativo_sdi: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let moved = diesel::update(
        invoices::table
            .filter(invoices::id.eq(id))
            .filter(invoices::file_name.eq(file_name))
            .filter(invoices::status.eq_any(AWAITING_RECEIPT)),
    )
    .set((
        invoices::status.eq(effect.status().as_str()),
        invoices::identificativo_sdi.eq(identificativo_sdi),
        invoices::status_changed_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    Ok(moved == 1)
}

/// A rejected document's new file: the same document (number, date, lines), a new
/// ProgressivoInvio and file name, the buyer as corrected (or as it was).
pub struct ResentFile<'a> {
    pub progressivo_invio: &'a str,
    pub file_name: &'a str,
    pub xml: &'a str,
    /// JSON of [`super::document::Buyer`].
    pub buyer: &'a str,
}

/// Gives the rejected document `id` its new file and puts it back to `issued` (waiting to
/// be transmitted); the SdI's identifier belonged to the rejected file. Whether it was
/// still rejected (a concurrent re-send took it first otherwise).
pub fn replace_rejected_file(
    conn: &mut DbConnection,
    id: &str,
    file: &ResentFile<'_>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let replaced = diesel::update(
        invoices::table
            .filter(invoices::id.eq(id))
            .filter(invoices::status.eq(InvoiceStatus::Rejected.as_str())),
    )
    .set((
        invoices::progressivo_invio.eq(file.progressivo_invio),
        invoices::file_name.eq(file.file_name),
        invoices::xml.eq(file.xml),
        invoices::buyer.eq(file.buyer),
        invoices::status.eq(InvoiceStatus::Issued.as_str()),
        invoices::identificativo_sdi.eq(None::<String>),
        invoices::status_changed_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    Ok(replaced == 1)
}

/// What a re-send starts from: the document's transmitter and its buyer as stored (JSON of
/// [`super::document::Buyer`]), read with the row locked until the transaction ends.
pub fn lock_for_resend(conn: &mut DbConnection, id: &str) -> QueryResult<Option<(String, String)>> {
    let query = invoices::table
        .filter(invoices::id.eq(id))
        .select((invoices::transmitter_codice, invoices::buyer));
    for_update!(conn, query, |q, c| q.first(c).optional())
}

/// The buyer stored on the document `id` (JSON of [`super::document::Buyer`]).
pub fn buyer_json(conn: &mut DbConnection, id: &str) -> QueryResult<Option<String>> {
    invoices::table
        .filter(invoices::id.eq(id))
        .select(invoices::buyer)
        .first(conn)
        .optional()
}

/// The brand's document whose current file is `file_name`.
pub fn document_with_file(
    conn: &mut DbConnection,
    brand_id: &str,
    file_name: &str,
) -> QueryResult<Option<StoredDocument>> {
    invoices::table
        .filter(invoices::brand_id.eq(brand_id))
        .filter(invoices::file_name.eq(file_name))
        .select(StoredDocument::as_select())
        .first(conn)
        .optional()
}

/// The brand's documents in `status`, oldest change first.
pub fn documents_in_status(
    conn: &mut DbConnection,
    brand_id: &str,
    status: InvoiceStatus,
    page: Page,
) -> QueryResult<Paged<StoredDocument>> {
    let query = || {
        invoices::table
            .filter(invoices::brand_id.eq(brand_id.to_owned()))
            .filter(invoices::status.eq(status.as_str()))
            .into_boxed()
    };
    db::load_page(conn, page, query, |query| {
        query
            .order((invoices::status_changed_at.asc(), invoices::id.asc()))
            .select(StoredDocument::as_select())
    })
}

/// A stored document (invoice or credit note), as shown and downloaded: the row as read.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = invoices)]
pub struct StoredDocument {
    pub id: String,
    pub brand_id: String,
    pub order_id: String,
    pub kind: DocumentKind,
    /// The invoice a credit note corrects.
    pub credited_invoice_id: Option<String>,
    pub number: String,
    pub issue_date: NaiveDate,
    pub net_cents: i64,
    pub vat_cents: i64,
    pub gross_cents: i64,
    pub file_name: String,
    pub xml: String,
    pub status: InvoiceStatus,
    pub identificativo_sdi: Option<String>,
    pub created_at: NaiveDateTime,
    pub status_changed_at: NaiveDateTime,
}

/// A document by its id.
pub fn document(conn: &mut DbConnection, id: &str) -> QueryResult<Option<StoredDocument>> {
    invoices::table
        .filter(invoices::id.eq(id))
        .select(StoredDocument::as_select())
        .first(conn)
        .optional()
}

/// The documents of an order: its invoice first, then its credit notes in the order they
/// were issued.
pub fn documents_of_order(
    conn: &mut DbConnection,
    order_id: &str,
) -> QueryResult<Vec<StoredDocument>> {
    invoices::table
        .filter(invoices::order_id.eq(order_id))
        .order((invoices::kind.asc(), invoices::seq.asc()))
        .select(StoredDocument::as_select())
        .load(conn)
}

/// An order's invoice about to be credited: what a credit note takes from it.
#[derive(Debug, Clone, Queryable)]
pub struct InvoiceToCredit {
    pub id: String,
    pub brand_id: String,
    pub number: String,
    pub issue_date: NaiveDate,
    /// JSON of [`super::document::Buyer`], as it was at issue.
    pub buyer: String,
    pub gross_cents: i64,
}

/// The order's invoice (TD01), its row locked until the transaction ends (PostgreSQL;
/// SQLite's writer lock already excludes every other writer), so that the credit notes
/// of one invoice are counted one after the other; `None` for an order without one.
pub fn lock_invoice_of_order(
    conn: &mut DbConnection,
    order_id: &str,
) -> QueryResult<Option<InvoiceToCredit>> {
    let query = invoices::table
        .filter(invoices::order_id.eq(order_id))
        .filter(invoices::kind.eq(DocumentKind::Invoice.as_str()))
        .select((
            invoices::id,
            invoices::brand_id,
            invoices::number,
            invoices::issue_date,
            invoices::buyer,
            invoices::gross_cents,
        ));
    for_update!(conn, query, |q, c| q.first(c).optional())
}

/// What an invoice's credit notes have credited so far.
#[derive(Debug, Clone, Default)]
pub struct CreditedSoFar {
    pub coupons: Vec<CreditedCoupon>,
    /// The credit notes' gross total.
    pub gross_cents: i64,
}

/// What the invoice's credit notes have credited so far.
pub fn credited_so_far(conn: &mut DbConnection, invoice_id: &str) -> QueryResult<CreditedSoFar> {
    let coupons = credited_coupons::table
        .inner_join(coupons::table)
        .filter(credited_coupons::invoice_id.eq(invoice_id))
        .select((
            coupons::id,
            coupons::product_id,
            coupons::net_unit_cents,
            coupons::vat_rate_basis_points,
        ))
        .load(conn)?;
    let gross: Vec<i64> = invoices::table
        .filter(invoices::credited_invoice_id.eq(invoice_id))
        .select(invoices::gross_cents)
        .load(conn)?;
    Ok(CreditedSoFar {
        coupons,
        gross_cents: gross.into_iter().sum(),
    })
}

/// Records the coupons a credit note credits. A coupon already credited fails the
/// insert (its key), and the credit note with it.
pub fn record_credited_coupons(
    conn: &mut DbConnection,
    credit_note_id: &str,
    invoice_id: &str,
    coupon_ids: &[String],
) -> QueryResult<()> {
    insert_many!(
        conn,
        credited_coupons::table,
        coupon_ids,
        500,
        |coupon_id| {
            (
                credited_coupons::coupon_id.eq(coupon_id),
                credited_coupons::credit_note_id.eq(credit_note_id),
                credited_coupons::invoice_id.eq(invoice_id),
            )
        }
    )?;
    Ok(())
}
/// `issued` → `transmitted`, once its file `file_name` has left for the SdI. Only from
/// `issued`, and only for the document's current file: a receipt already recorded, or a
/// file superseded by a corrected one, is not undone. True if it moved.
pub fn mark_transmitted(
    conn: &mut DbConnection,
    id: &str,
    file_name: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(
        invoices::table
            .filter(invoices::id.eq(id))
            .filter(invoices::file_name.eq(file_name))
            .filter(invoices::status.eq(InvoiceStatus::Issued.as_str())),
    )
    .set((
        invoices::status.eq(InvoiceStatus::Transmitted.as_str()),
        invoices::status_changed_at.eq(now.naive_utc()),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Documents not transmitted yet (`issued`), of one brand or all: how many, and how many
/// of them are dated `near_deadline` or earlier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Untransmitted {
    pub total: i64,
    pub near_deadline: i64,
}

pub fn untransmitted(
    conn: &mut DbConnection,
    brand_id: Option<&str>,
    near_deadline: NaiveDate,
) -> QueryResult<Untransmitted> {
    let waiting = || {
        let mut query = invoices::table
            .filter(invoices::status.eq(InvoiceStatus::Issued.as_str()))
            .into_boxed();
        if let Some(brand_id) = brand_id {
            query = query.filter(invoices::brand_id.eq(brand_id));
        }
        query
    };
    Ok(Untransmitted {
        total: waiting().count().get_result(conn)?,
        near_deadline: waiting()
            .filter(invoices::issue_date.le(near_deadline))
            .count()
            .get_result(conn)?,
    })
}
