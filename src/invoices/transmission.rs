//! The transmission outbox (`sdi_transmissions`), its one writer: every document file to
//! send to the SdI is written here in the transaction that issues (or corrects) the
//! document, so none is lost, and leaves through the sending worker.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::sdi_transmissions;
use crate::db::DbConnection;

text_enum!(
    /// A file's life in the outbox: `pending` → `sent`; `pending` → `dead` after the last
    /// retry (the back-office can put it back to `pending`).
    TransmissionStatus { Pending => "pending", Sent => "sent", Dead => "dead" }
);

/// A document's file to send.
#[derive(Debug, Clone, Copy)]
pub struct FileToSend<'a> {
    pub brand_id: &'a str,
    pub invoice_id: &'a str,
    pub file_name: &'a str,
    pub xml: &'a str,
}

/// Queues files for transmission, due now, many rows per statement.
pub fn enqueue_all(
    conn: &mut DbConnection,
    files: &[FileToSend<'_>],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let now = now.naive_utc();
    for chunk in files.chunks(500) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|file| {
                (
                    sdi_transmissions::id.eq(Uuid::now_v7().to_string()),
                    sdi_transmissions::brand_id.eq(file.brand_id),
                    sdi_transmissions::invoice_id.eq(file.invoice_id),
                    sdi_transmissions::file_name.eq(file.file_name),
                    sdi_transmissions::xml.eq(file.xml),
                    sdi_transmissions::status.eq(TransmissionStatus::Pending.as_str()),
                    sdi_transmissions::attempts.eq(0),
                    sdi_transmissions::next_attempt_at.eq(now),
                    sdi_transmissions::created_at.eq(now),
                )
            })
            .collect();
        insert_many!(conn, sdi_transmissions::table, rows)?;
    }
    Ok(())
}
