//! The SdI's receipts (`sdi_receipts`, which this module alone writes): the back-office
//! imports the notification files the SdI sent about the brand's documents; each is kept
//! once, matched to its document by the file it is about, and moves the document on
//! through the document's owner ([`super::store::apply_receipt`]). A rejected document
//! waits in a queue until it is sent again ([`rejected`]).

pub mod notification;
mod rejected;

pub use notification::{Notification, NotificationKind, NotificationRefused, SdiError};
pub use rejected::{rejected_document, rejected_queue, resend, RejectedDocument, Resent};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::store::{self, ReceiptEffect, StoredDocument};
use super::{DocumentKind, InvoiceStatus};
use crate::audit::{self, Actor, AuditEntry};
use crate::billing::InvalidField;
use crate::brands::Brand;
use crate::db::schema::{invoices, orders, sdi_receipts, sdi_transmissions, users};
use crate::db::{self, lock_key, write_transaction, DbConnection};
use crate::mail::outbox::{self, OutgoingEmail};
use crate::mail::templates::EmailKind;
use crate::paging::{Page, Paged};

/// At most this many files in one import (a day's notifications of a busy brand fit).
pub const MAX_FILES: usize = 100;
/// A notification file is a few kilobytes; a larger one is not a notification.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum ReceiptError {
        #[error("no notification file was sent")]
        NoFile,
        #[error("at most {MAX_FILES} notification files are imported at once")]
        TooManyFiles,
        #[error("the notification's file name is missing: send it as the file_name parameter or as the form part's file name")]
        NoFileName,
        #[error(
            "'{0}' is not a notification's file name: at most 100 letters, digits, '_', '-' and '.'"
        )]
        BadFileName(String),
        /// A file that is not a notification this service reads; nothing was imported.
        #[error(transparent)]
        Refused(#[from] NotificationRefused),
        #[error("{0}: a different notification with this file name was already imported")]
        FileNameTaken(String),
        /// No document of the operator's brand has this id.
        #[error("no document of the brand has this id")]
        UnknownDocument,
        #[error("the document is {0}: only a rejected document is sent again")]
        NotRejected(InvoiceStatus),
        /// The corrected buyer data break these rules (the billing data's own).
        #[error("invalid buyer data: {}", crate::billing::rules(.0).join(", "))]
        InvalidBuyer(Vec<InvalidField>),
    }
    storage from diesel::result::Error, serde_json::Error
}

/// A notification file as uploaded.
#[derive(Debug, Clone)]
pub struct NotificationFile {
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// Who imports, for which brand.
pub struct ImportContext<'a> {
    pub brand_id: &'a str,
    pub operator_id: &'a str,
    /// The shop's address, for the link in the buyer's email.
    pub public_url: &'a str,
}

text_enum!(
    /// What importing a notification did.
    ReceiptResult {
        /// Its document moved on (delivered, rejected, not delivered).
        Applied => "applied",
        /// Imported before: nothing changed.
        AlreadyImported => "already_imported",
        /// No document of the brand has the file it is about: kept, and shown.
        Unmatched => "unmatched",
        /// About an earlier file of a document sent again since: kept, no effect.
        EarlierFile => "earlier_file",
        /// Its document was not waiting for it (already delivered, say): kept, no effect.
        NoEffect => "no_effect",
        /// A kind that moves no document (esito, decorrenza termini, metadati...): kept.
        Informational => "informational",
    }
);

/// What the import of one file did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportedReceipt {
    #[schema(example = "IT01234567897_00001_RC_001.xml")]
    pub file_name: String,
    /// `RC`, `NS`, `MC`, `NE`, `DT`, `AT` or `MT`.
    #[schema(value_type = String, example = "RC")]
    pub kind: NotificationKind,
    /// The document file it is about (NomeFile).
    #[schema(example = "IT01234567897_00001.xml")]
    pub invoice_file_name: String,
    pub identificativo_sdi: String,
    #[schema(value_type = String, example = "applied")]
    pub result: ReceiptResult,
    /// The document it is about; `null` when unmatched.
    pub invoice_id: Option<String>,
    pub invoice_number: Option<String>,
    /// The document's state after the import.
    #[schema(value_type = Option<String>, example = "delivered")]
    pub invoice_status: Option<InvoiceStatus>,
}

/// Imports notification files: every file is read first, and one that is not a
/// notification refuses the whole import (nothing is imported); then each is stored once
/// and applied, all in one transaction, each audited.
pub fn import(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    files: &[NotificationFile],
    now: DateTime<Utc>,
) -> Result<Vec<ImportedReceipt>, ReceiptError> {
    if files.is_empty() {
        return Err(ReceiptError::NoFile);
    }
    if files.len() > MAX_FILES {
        return Err(ReceiptError::TooManyFiles);
    }
    let mut parsed = Vec::with_capacity(files.len());
    for file in files {
        let name = file
            .file_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or(ReceiptError::NoFileName)?;
        // The SdI's names are `<file>_<kind>_<progressive>.xml`; anything else (a path, a
        // control character) has no business in the records or on a page.
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if name.len() > 100 || !plain {
            return Err(ReceiptError::BadFileName(name.chars().take(100).collect()));
        }
        // The file as received, to keep; parse refuses what is not UTF-8.
        let notification = notification::parse(name, &file.bytes)?;
        let xml = String::from_utf8_lossy(&file.bytes).into_owned();
        parsed.push((name.to_owned(), notification, xml));
    }
    let brand = crate::brands::existing(conn, context.brand_id)?;
    write_transaction(conn, |conn| {
        parsed
            .iter()
            .map(|(name, notification, xml)| {
                import_one(conn, context, &brand, name, notification, xml, now)
            })
            .collect()
    })
}

fn import_one(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    brand: &Brand,
    file_name: &str,
    notification: &Notification,
    xml: &str,
    now: DateTime<Utc>,
) -> Result<ImportedReceipt, ReceiptError> {
    let brand_id = brand.id.as_str();
    // Two imports of the same file at once: the second waits, then finds the first's row.
    lock_key(conn, &format!("sdi-receipt:{brand_id}:{file_name}"))?;
    let earlier: Option<(Option<String>, String)> = sdi_receipts::table
        .filter(sdi_receipts::brand_id.eq(brand_id))
        .filter(sdi_receipts::file_name.eq(file_name))
        .select((sdi_receipts::invoice_id, sdi_receipts::xml))
        .first(conn)
        .optional()?;
    let outcome = |result, document: Option<&StoredDocument>| ImportedReceipt {
        file_name: file_name.to_owned(),
        kind: notification.kind,
        invoice_file_name: notification.nome_file.clone(),
        identificativo_sdi: notification.identificativo_sdi.clone(),
        result,
        invoice_id: document.map(|d| d.id.clone()),
        invoice_number: document.map(|d| d.number.clone()),
        invoice_status: document.map(|d| d.status),
    };
    if let Some((invoice_id, stored_xml)) = earlier {
        if stored_xml != xml {
            return Err(ReceiptError::FileNameTaken(file_name.to_owned()));
        }
        let document = match invoice_id {
            Some(id) => store::document(conn, &id)?,
            None => None,
        };
        return Ok(outcome(ReceiptResult::AlreadyImported, document.as_ref()));
    }

    // A signed document file is named `.xml.p7m`; ours are sent unsigned, as `.xml`.
    let document_file = notification
        .nome_file
        .strip_suffix(".p7m")
        .unwrap_or(&notification.nome_file);
    let current = store::document_with_file(conn, brand_id, document_file)?;
    let document = match current {
        Some(document) => Some((document, true)),
        None => {
            let earlier_of: Option<String> = sdi_transmissions::table
                .filter(sdi_transmissions::brand_id.eq(brand_id))
                .filter(sdi_transmissions::file_name.eq(document_file))
                .select(sdi_transmissions::invoice_id)
                .first(conn)
                .optional()?;
            match earlier_of {
                Some(id) => store::document(conn, &id)?.map(|document| (document, false)),
                None => None,
            }
        }
    };
    let received_at = notification.received_at.unwrap_or(now);
    diesel::insert_into(sdi_receipts::table)
        .values((
            sdi_receipts::id.eq(Uuid::now_v7().to_string()),
            sdi_receipts::brand_id.eq(brand_id),
            sdi_receipts::invoice_id.eq(document.as_ref().map(|(d, _)| d.id.clone())),
            sdi_receipts::kind.eq(notification.kind.as_str()),
            sdi_receipts::file_name.eq(file_name),
            sdi_receipts::invoice_file_name.eq(&notification.nome_file),
            sdi_receipts::identificativo_sdi.eq(&notification.identificativo_sdi),
            sdi_receipts::message_id.eq(&notification.message_id),
            sdi_receipts::errors.eq(serde_json::to_string(&notification.errors)?),
            sdi_receipts::xml.eq(xml),
            sdi_receipts::received_at.eq(received_at.naive_utc()),
            sdi_receipts::imported_by.eq(context.operator_id),
            sdi_receipts::imported_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;

    let effect = match notification.kind {
        NotificationKind::Delivered => Some(ReceiptEffect::Delivered),
        NotificationKind::Rejected => Some(ReceiptEffect::Rejected),
        NotificationKind::NotDelivered => Some(ReceiptEffect::NotDelivered),
        _ => None,
    };
    let (result, document) = match (document, effect) {
        (None, _) => (ReceiptResult::Unmatched, None),
        (Some((document, false)), _) => (ReceiptResult::EarlierFile, Some(document)),
        (Some((document, true)), None) => (ReceiptResult::Informational, Some(document)),
        (Some((mut document, true)), Some(effect)) => {
            let moved = store::apply_receipt(
                conn,
                &document.id,
                &document.file_name,
                effect,
                &notification.identificativo_sdi,
                now,
            )?;
            if !moved {
                (ReceiptResult::NoEffect, Some(document))
            } else {
                document = store::document(conn, &document.id)?
                    .ok_or_else(|| anyhow::anyhow!("document {} vanished", document.id))?;
                if effect == ReceiptEffect::NotDelivered {
                    tell_buyer_not_delivered(conn, context, brand, &document, now)?;
                }
                (ReceiptResult::Applied, Some(document))
            }
        }
    };
    let subject_id = match &document {
        Some(document) => document.id.clone(),
        None => file_name.to_owned(),
    };
    audit::record(
        conn,
        AuditEntry {
            brand_id: Some(brand_id),
            actor: &Actor::User(context.operator_id.to_owned()),
            action: "sdi.receipt_imported",
            subject_type: if document.is_some() {
                "invoice"
            } else {
                "sdi_receipt"
            },
            subject_id: &subject_id,
            details: json!({
                "file_name": file_name,
                "kind": notification.kind.as_str(),
                "invoice_file_name": notification.nome_file,
                "identificativo_sdi": notification.identificativo_sdi,
                "result": result.as_str(),
                "status": document.as_ref().map(|d| d.status.as_str()),
            }),
        },
        now,
    )?;
    Ok(outcome(result, document.as_ref()))
}

/// The buyer of a document the SdI could not deliver learns where it is: in their area
/// riservata of the Agenzia delle Entrate (cassetto fiscale), and the courtesy copy on
/// the order's page of the shop.
fn tell_buyer_not_delivered(
    conn: &mut DbConnection,
    context: &ImportContext<'_>,
    brand: &Brand,
    document: &StoredDocument,
    now: DateTime<Utc>,
) -> Result<(), ReceiptError> {
    let (email, user_id): (String, String) = orders::table
        .filter(orders::id.eq(&document.order_id))
        .select((orders::email, orders::user_id))
        .first(conn)?;
    let name: String = users::table
        .find(&user_id)
        .select(users::name)
        .first(conn)?;
    outbox::enqueue(
        conn,
        &OutgoingEmail {
            brand_id: brand.id.clone(),
            kind: EmailKind::InvoiceNotDelivered,
            reference: Some(document.order_id.clone()),
            sender: brand.sender_address.clone(),
            recipient: email,
            context: json!({
                "name": name,
                "brand": brand.name,
                "document": match document.kind {
                    DocumentKind::Invoice => "fattura",
                    DocumentKind::CreditNote => "nota di credito",
                },
                "number": document.number,
                "date": document.issue_date.format("%d/%m/%Y").to_string(),
                "order_url": format!(
                    "{}/negozio/ordini/{}",
                    context.public_url.trim_end_matches('/'),
                    document.order_id
                ),
            }),
            attachment: None,
        },
        now,
    )?;
    Ok(())
}

/// An imported notification, as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredReceipt {
    pub id: String,
    #[schema(example = "IT01234567897_00001_RC_001.xml")]
    pub file_name: String,
    #[schema(value_type = String, example = "RC")]
    pub kind: NotificationKind,
    pub invoice_file_name: String,
    pub identificativo_sdi: String,
    /// The document; `null` when no document of the brand has the file.
    pub invoice_id: Option<String>,
    pub invoice_number: Option<String>,
    /// The errors of a notifica di scarto.
    pub errors: Vec<SdiError>,
    /// When the SdI received the document file (DataOraRicezione); the import time for
    /// the kinds that do not say.
    pub received_at: DateTime<Utc>,
    pub imported_at: DateTime<Utc>,
}

/// A row as read, before its texts are checked.
#[derive(Queryable, Selectable)]
#[diesel(table_name = sdi_receipts)]
struct ReceiptRow {
    id: String,
    file_name: String,
    kind: NotificationKind,
    invoice_file_name: String,
    identificativo_sdi: String,
    invoice_id: Option<String>,
    errors: String,
    received_at: NaiveDateTime,
    imported_at: NaiveDateTime,
}

/// A receipt row with its document's number.
fn stored_receipt((row, number): (ReceiptRow, Option<String>)) -> anyhow::Result<StoredReceipt> {
    Ok(StoredReceipt {
        kind: row.kind,
        errors: serde_json::from_str(&row.errors)?,
        id: row.id,
        file_name: row.file_name,
        invoice_file_name: row.invoice_file_name,
        identificativo_sdi: row.identificativo_sdi,
        invoice_id: row.invoice_id,
        invoice_number: number,
        received_at: row.received_at.and_utc(),
        imported_at: row.imported_at.and_utc(),
    })
}

/// A page of the brand's imported notifications, newest import first; only those kept
/// without a document when `unmatched_only`; and how many there are in all.
pub fn recent(
    conn: &mut DbConnection,
    brand_id: &str,
    unmatched_only: bool,
    page: Page,
) -> anyhow::Result<Paged<StoredReceipt>> {
    let query = || {
        let mut query = sdi_receipts::table
            .left_join(invoices::table)
            .filter(sdi_receipts::brand_id.eq(brand_id.to_owned()))
            .into_boxed();
        if unmatched_only {
            query = query.filter(sdi_receipts::invoice_id.is_null());
        }
        query
    };
    let rows: Paged<(ReceiptRow, Option<String>)> = db::load_page(conn, page, query, |query| {
        query
            .order((sdi_receipts::imported_at.desc(), sdi_receipts::id.desc()))
            .select((ReceiptRow::as_select(), invoices::number.nullable()))
    })?;
    rows.try_map(stored_receipt)
}

/// The notifications about the documents `invoice_ids`, oldest first (the back-office's
/// list and document page).
pub fn of_documents(
    conn: &mut DbConnection,
    invoice_ids: &[&str],
) -> anyhow::Result<Vec<StoredReceipt>> {
    sdi_receipts::table
        .left_join(invoices::table)
        .filter(sdi_receipts::invoice_id.eq_any(invoice_ids))
        .order((sdi_receipts::received_at.asc(), sdi_receipts::id.asc()))
        .select((ReceiptRow::as_select(), invoices::number.nullable()))
        .load::<(ReceiptRow, Option<String>)>(conn)?
        .into_iter()
        .map(stored_receipt)
        .collect()
}

/// The newest notifica di scarto about the document's file `file_name`.
fn scarto_of(
    conn: &mut DbConnection,
    invoice_id: &str,
    file_name: &str,
) -> anyhow::Result<Option<StoredReceipt>> {
    sdi_receipts::table
        .left_join(invoices::table)
        .filter(sdi_receipts::invoice_id.eq(invoice_id))
        .filter(sdi_receipts::invoice_file_name.eq(file_name))
        .filter(sdi_receipts::kind.eq(NotificationKind::Rejected.as_str()))
        .order((sdi_receipts::received_at.desc(), sdi_receipts::id.desc()))
        .select((ReceiptRow::as_select(), invoices::number.nullable()))
        .first::<(ReceiptRow, Option<String>)>(conn)
        .optional()?
        .map(stored_receipt)
        .transpose()
}
