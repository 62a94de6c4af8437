//! The rejected queue: documents the SdI refused (notifica di scarto), each with the SdI's
//! errors and the day by which it should be sent again, and the re-send itself.
//!
//! A rejected file counts as never issued. The Agenzia delle Entrate's rule (circolari
//! 13/E of 2018 and 14/E of 2019) is to send it again within five days of the scarto,
//! with the same number and date: here, a new file of the same document (new
//! ProgressivoInvio and file name), with the buyer's data corrected if they were the
//! cause. Later than that the re-send is still allowed (it is the fix the SdI expects)
//! and is marked late in the audit log.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use super::notification::italian_date;
use super::{scarto_of, ReceiptError, SdiError};
use crate::audit::Operator;
use crate::billing::{self, BillingInput};
use crate::db::{write_transaction, DbConnection};
use crate::invoices::document::Buyer;
use crate::invoices::store::{self, ResentFile, StoredDocument};
use crate::invoices::transmission::{self, FileToSend};
use crate::invoices::{buyer_from_profile, fatturapa, InvoiceStatus};
use crate::paging::{Page, Paged};

/// Days after the scarto within which the document is sent again.
pub const RESEND_DAYS: i64 = 5;

/// A rejected document as the queue shows it.
#[derive(Debug, Clone)]
pub struct RejectedDocument {
    pub document: StoredDocument,
    /// The notifica di scarto's file, its errors and when the SdI received the rejected
    /// file; `None` only if the scarto was not imported here (never, today).
    pub scarto_file_name: Option<String>,
    pub errors: Vec<SdiError>,
    pub rejected_at: DateTime<Utc>,
    /// The last day to send it again. The notification does not carry its own date, so
    /// the five days are counted from the day the SdI received the rejected file: never
    /// later than the real deadline.
    pub resend_by: NaiveDate,
    pub overdue: bool,
    /// Whole days from today (in Italy) to `resend_by`; 0 on that day and once overdue.
    pub days_left: i64,
}

fn queued(
    conn: &mut DbConnection,
    document: StoredDocument,
    today: NaiveDate,
) -> anyhow::Result<RejectedDocument> {
    let scarto = scarto_of(conn, &document.id, &document.file_name)?;
    let rejected_at = scarto
        .as_ref()
        .map_or(document.status_changed_at.and_utc(), |s| s.received_at);
    let resend_by = italian_date(rejected_at) + Duration::days(RESEND_DAYS);
    Ok(RejectedDocument {
        scarto_file_name: scarto.as_ref().map(|s| s.file_name.clone()),
        errors: scarto.map(|s| s.errors).unwrap_or_default(),
        rejected_at,
        resend_by,
        overdue: today > resend_by,
        days_left: (resend_by - today).num_days().max(0),
        document,
    })
}

/// A page of the brand's rejected documents, longest waiting first.
pub fn rejected_queue(
    conn: &mut DbConnection,
    brand_id: &str,
    page: Page,
    now: DateTime<Utc>,
) -> anyhow::Result<Paged<RejectedDocument>> {
    let today = italian_date(now);
    let found = store::documents_in_status(conn, brand_id, InvoiceStatus::Rejected, page)?;
    let items = found
        .items
        .into_iter()
        .map(|document| queued(conn, document, today))
        .collect::<anyhow::Result<_>>()?;
    Ok(Paged {
        items,
        total: found.total,
    })
}

/// One rejected document of the brand, and its buyer as the file had them (what a
/// correction starts from).
pub fn rejected_document(
    conn: &mut DbConnection,
    brand_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(RejectedDocument, BillingInput), ReceiptError> {
    let document = store::document(conn, id)?
        .filter(|d| d.brand_id == brand_id)
        .ok_or(ReceiptError::UnknownDocument)?;
    if document.status != InvoiceStatus::Rejected {
        return Err(ReceiptError::NotRejected(document.status));
    }
    let buyer: Buyer =
        serde_json::from_str(&store::buyer_json(conn, id)?.ok_or(ReceiptError::UnknownDocument)?)?;
    let queued = queued(conn, document, italian_date(now))?;
    Ok((queued, crate::invoices::buyer_input(&buyer)))
}

/// A document sent again.
#[derive(Debug, Clone)]
pub struct Resent {
    pub id: String,
    pub number: String,
    pub file_name: String,
    pub progressivo_invio: String,
    /// The file it replaces.
    pub previous_file_name: String,
    /// Whether the buyer's data were corrected.
    pub corrected: bool,
    /// Sent again after the five days.
    pub late: bool,
}

/// Sends the rejected document `id` of the brand again: with `corrected` buyer data
/// (checked by the billing data's rules) or as it was. The document gets a new file
/// (same number and date, new ProgressivoInvio and file name), queued for transmission,
/// and is `issued` again; receipts about the rejected file no longer touch it. One
/// transaction, audited.
pub fn resend(
    conn: &mut DbConnection,
    operator: Operator<'_>,
    id: &str,
    corrected: Option<&BillingInput>,
    now: DateTime<Utc>,
) -> Result<Resent, ReceiptError> {
    let brand_id = operator.brand_id;
    let corrected_buyer = corrected
        .map(|input| billing::parse(input).map(|profile| buyer_from_profile(&profile)))
        .transpose()
        .map_err(ReceiptError::InvalidBuyer)?;
    write_transaction(conn, |conn| {
        let Some((transmitter, stored_buyer)) = store::lock_for_resend(conn, id)? else {
            return Err(ReceiptError::UnknownDocument);
        };
        let document = store::document(conn, id)?
            .filter(|d| d.brand_id == brand_id)
            .ok_or(ReceiptError::UnknownDocument)?;
        if document.status != InvoiceStatus::Rejected {
            return Err(ReceiptError::NotRejected(document.status));
        }
        let queued = queued(conn, document, italian_date(now))?;
        let document = &queued.document;
        let buyer: Buyer = match &corrected_buyer {
            Some(buyer) => buyer.clone(),
            None => serde_json::from_str(&stored_buyer)?,
        };
        let seq = store::take_progressives(conn, &transmitter, 1)?[0];
        let progressivo = fatturapa::progressivo_invio(seq);
        let file_name = fatturapa::file_name(&transmitter, &progressivo);
        let xml = fatturapa::resent_file(&document.xml, &transmitter, &progressivo, &buyer)?;
        let file = ResentFile {
            progressivo_invio: &progressivo,
            file_name: &file_name,
            xml: &xml,
            buyer: &serde_json::to_string(&buyer)?,
        };
        if !store::replace_rejected_file(conn, id, &file, now)? {
            return Err(ReceiptError::NotRejected(InvoiceStatus::Issued));
        }
        transmission::enqueue_all(
            conn,
            &[FileToSend {
                brand_id,
                invoice_id: id,
                file_name: &file_name,
                xml: &xml,
            }],
            now,
        )?;
        operator.record(
            conn,
            "invoice.resent",
            ("invoice", id),
            json!({
                "number": document.number,
                "previous_file_name": document.file_name,
                "file_name": file_name,
                "buyer_corrected": corrected_buyer.is_some(),
                "late": queued.overdue,
                "resend_by": queued.resend_by,
            }),
            now,
        )?;
        Ok(Resent {
            id: id.to_owned(),
            number: document.number.clone(),
            previous_file_name: document.file_name.clone(),
            file_name: file_name.clone(),
            progressivo_invio: progressivo.clone(),
            corrected: corrected_buyer.is_some(),
            late: queued.overdue,
        })
    })
}
