//! The transmission outbox (`sdi_transmissions`), its one writer: every document file to
//! send to the SdI is written here in the transaction that issues (or corrects) the
//! document, so none is lost, and leaves through the sending worker.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::channel::OutgoingFile;
use super::store::{self, Untransmitted};
use crate::db::schema::{brands, invoices, sdi_transmissions};
use crate::db::{self, write_transaction, DbConnection};
use crate::paging::{Page, Paged};
use crate::workers::RetryPolicy;

/// The law gives 12 days from a document's date to transmit it (art. 21 DPR 633/72);
/// the back-office is warned from the 10th, while there is still time to act.
pub const DEADLINE_DAYS: u64 = 12;
pub const WARNING_DAYS: u64 = 10;

/// The documents of a brand (or of all) not transmitted yet on `today`, and how many of
/// them are `WARNING_DAYS` or more old.
pub fn untransmitted(
    conn: &mut DbConnection,
    brand_id: Option<&str>,
    today: NaiveDate,
) -> QueryResult<Untransmitted> {
    let near_deadline = today - chrono::Days::new(WARNING_DAYS);
    store::untransmitted(conn, brand_id, near_deadline)
}

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
    insert_many!(conn, sdi_transmissions::table, files, 500, |file| {
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
    })?;
    Ok(())
}

leased_outbox!(sdi_transmissions, TransmissionStatus, retried as "sdi_transmission" refused as TransmissionError);

/// A file a transmitter holds the lease on.
#[derive(Debug, Clone)]
pub struct ClaimedFile {
    pub id: String,
    pub brand_id: String,
    pub invoice_id: String,
    pub file_name: String,
    pub xml: String,
    /// Including this one.
    pub attempts: i32,
    /// The brand's PEC mailbox (empty if it has none).
    pub brand_pec_address: String,
}

impl ClaimedFile {
    pub fn outgoing(&self) -> OutgoingFile<'_> {
        OutgoingFile {
            id: &self.id,
            file_name: &self.file_name,
            xml: &self.xml,
            brand_pec_address: &self.brand_pec_address,
        }
    }
}

/// What a claimed file's sending needs of its row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = sdi_transmissions)]
struct ClaimedRow {
    id: String,
    brand_id: String,
    invoice_id: String,
    file_name: String,
    xml: String,
    attempts: i32,
}

/// Takes the lease on up to `limit` due files (see [`lease_due`]), with what sending
/// them needs.
pub fn claim_due(
    conn: &mut DbConnection,
    limit: i64,
    lease: Duration,
    now: DateTime<Utc>,
) -> QueryResult<Vec<ClaimedFile>> {
    write_transaction(conn, |conn| {
        let ids = lease_due(conn, limit, lease, now)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ClaimedRow> = sdi_transmissions::table
            .filter(sdi_transmissions::id.eq_any(&ids))
            .order(sdi_transmissions::id.asc())
            .select(ClaimedRow::as_select())
            .load(conn)?;
        let brand_ids: Vec<&String> = rows.iter().map(|row| &row.brand_id).collect();
        let pec_addresses: HashMap<String, String> = brands::table
            .filter(brands::id.eq_any(brand_ids))
            .select((brands::id, brands::sdi_pec_address))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect();
        Ok(rows
            .into_iter()
            .map(|row| ClaimedFile {
                brand_pec_address: pec_addresses
                    .get(&row.brand_id)
                    .cloned()
                    .unwrap_or_default(),
                id: row.id,
                brand_id: row.brand_id,
                invoice_id: row.invoice_id,
                file_name: row.file_name,
                xml: row.xml,
                attempts: row.attempts,
            })
            .collect())
    })
}

/// Sent: which channel took it and its reference there. Only a file still `pending`
/// (false otherwise: nothing changes).
pub fn mark_sent(
    conn: &mut DbConnection,
    id: &str,
    channel: &str,
    reference: &str,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let changed = diesel::update(
        sdi_transmissions::table
            .filter(sdi_transmissions::id.eq(id))
            .filter(sdi_transmissions::status.eq(TransmissionStatus::Pending.as_str())),
    )
    .set((
        sdi_transmissions::status.eq(TransmissionStatus::Sent.as_str()),
        sdi_transmissions::sent_at.eq(Some(now.naive_utc())),
        sdi_transmissions::claimed_until.eq(None::<NaiveDateTime>),
        sdi_transmissions::channel.eq(Some(channel)),
        sdi_transmissions::channel_reference.eq(Some(reference)),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// A failed attempt through `channel`: retried after the backoff, or `dead` after the
/// last attempt (true), the error kept.
pub fn mark_failed(
    conn: &mut DbConnection,
    file: &ClaimedFile,
    channel: &str,
    error: &str,
    retry: &RetryPolicy,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    write_transaction(conn, |conn| {
        let dead = release_failed(conn, &file.id, file.attempts, error, retry, now)?;
        diesel::update(sdi_transmissions::table.filter(sdi_transmissions::id.eq(&file.id)))
            .set((
                sdi_transmissions::failures.eq(sdi_transmissions::failures + 1),
                sdi_transmissions::channel.eq(Some(channel)),
            ))
            .execute(conn)?;
        Ok(dead)
    })
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum TransmissionError {
        /// No dead file of the operator's brand has this id.
        #[error("no dead transmission of your brand has this id")]
        NotDead,
    }
    storage from diesel::result::Error
}

/// A file of the outbox as the back-office sees it: the row joined to its document's
/// number.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sdi_transmissions)]
pub struct TransmissionSummary {
    pub id: String,
    pub invoice_id: String,
    /// The document's number.
    #[diesel(select_expression = invoices::number)]
    pub number: String,
    pub file_name: String,
    pub status: TransmissionStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub channel: Option<String>,
    pub channel_reference: Option<String>,
    pub created_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// A page of the brand's files, in one status or all, newest first, and how many there
/// are in all.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    status: Option<TransmissionStatus>,
    page: Page,
) -> anyhow::Result<Paged<TransmissionSummary>> {
    let query = || {
        let mut query = sdi_transmissions::table
            .inner_join(invoices::table)
            .filter(sdi_transmissions::brand_id.eq(brand_id.to_owned()))
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(sdi_transmissions::status.eq(status.as_str()));
        }
        query
    };
    Ok(db::load_page(conn, page, query, |query| {
        query
            .order((
                sdi_transmissions::created_at.desc(),
                sdi_transmissions::id.desc(),
            ))
            .select(TransmissionSummary::as_select())
    })?)
}

/// The outbox by channel, for the metrics: files sent and failed attempts (both only
/// grow), and files dead now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    pub sent: i64,
    pub failures: i64,
    pub dead: i64,
}

/// What the outbox holds: per channel (`none` for files never tried), and the pending
/// files.
#[derive(Debug, Clone, Default)]
pub struct OutboxStats {
    pub by_channel: BTreeMap<String, ChannelCounts>,
    pub pending: i64,
}

pub fn stats(conn: &mut DbConnection) -> QueryResult<OutboxStats> {
    let rows: Vec<(Option<String>, TransmissionStatus, i64, Option<i64>)> =
        sdi_transmissions::table
            .group_by((sdi_transmissions::channel, sdi_transmissions::status))
            .select((
                sdi_transmissions::channel,
                sdi_transmissions::status,
                diesel::dsl::count_star(),
                diesel::dsl::sum(sdi_transmissions::failures),
            ))
            .load(conn)?;
    let mut stats = OutboxStats::default();
    for (channel, status, count, failures) in rows {
        let counts = stats
            .by_channel
            .entry(channel.unwrap_or_else(|| "none".into()))
            .or_default();
        counts.failures += failures.unwrap_or(0);
        match status {
            TransmissionStatus::Sent => counts.sent += count,
            TransmissionStatus::Dead => counts.dead += count,
            TransmissionStatus::Pending => stats.pending += count,
        }
    }
    Ok(stats)
}
