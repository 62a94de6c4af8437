//! The outbox table: emails are inserted in the transaction of the change that causes
//! them and leave through the dispatcher. Dispatchers claim due emails with a lease, so
//! several of them (on several machines) never send the same email in normal operation;
//! if one dies mid-send, the lease runs out and another takes over.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use std::collections::HashMap;

use super::templates::EmailKind;
use crate::db::schema::{emails, orders};
use crate::db::{self, write_transaction, DbConnection};
use crate::paging::{Page, Paged};
use crate::workers::RetryPolicy;

text_enum!(
    /// An email's life: `pending` → `sent`; `pending` → `dead` after the last retry (a
    /// back-office operator can put it back to `pending`).
    EmailStatus {
        /// Waiting to be sent (or to be retried).
        Pending => "pending",
        /// Delivered to the mail server.
        Sent => "sent",
        /// Given up after repeated failures; can be put back in the queue.
        Dead => "dead",
    }
);

/// An email to send, as the domain writes it: which template, with which values.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub brand_id: String,
    /// Which email it is: its templates, and what the back-office sees.
    pub kind: EmailKind,
    /// The order (or other subject) it is about.
    pub reference: Option<String>,
    pub sender: String,
    pub recipient: String,
    pub context: serde_json::Value,
    pub attachment: Option<Attachment>,
}

/// A file sent with an email. The outbox keeps its name and content only: every
/// attachment rinnovo sends is a CSV (a coupon list), and the dispatcher says so.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub file_name: String,
    pub content: String,
}

pub fn enqueue(
    conn: &mut DbConnection,
    email: &OutgoingEmail,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    enqueue_all(conn, std::slice::from_ref(email), now)
}

/// Writes emails to the outbox, many rows per statement.
pub fn enqueue_all(
    conn: &mut DbConnection,
    emails: &[OutgoingEmail],
    now: DateTime<Utc>,
) -> QueryResult<()> {
    insert_many!(conn, emails::table, emails, 500, |email| {
        (
            emails::id.eq(Uuid::now_v7().to_string()),
            emails::brand_id.eq(&email.brand_id),
            emails::kind.eq(email.kind.as_str()),
            emails::reference.eq(&email.reference),
            emails::sender.eq(&email.sender),
            emails::recipient.eq(&email.recipient),
            emails::context.eq(email.context.to_string()),
            emails::subject.eq(""),
            emails::attachment_name.eq(email.attachment.as_ref().map(|a| a.file_name.as_str())),
            emails::attachment_content.eq(email.attachment.as_ref().map(|a| a.content.as_str())),
            emails::status.eq(EmailStatus::Pending.as_str()),
            emails::attempts.eq(0),
            emails::next_attempt_at.eq(now.naive_utc()),
            emails::created_at.eq(now.naive_utc()),
        )
    })?;
    if !emails.is_empty() {
        super::wake::email_queued(conn)?;
    }
    Ok(())
}

/// An email a dispatcher holds the lease on.
#[derive(Debug, Clone)]
pub struct ClaimedEmail {
    pub id: String,
    pub kind: String,
    pub sender: String,
    pub recipient: String,
    pub context: String,
    pub attachment: Option<Attachment>,
    /// Including this one.
    pub attempts: i32,
    /// When the email is about an order (its `reference`): the order's invoice number,
    /// which the paying transaction assigns after writing the email.
    pub invoice_number: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = emails)]
struct ClaimedRow {
    id: String,
    kind: String,
    sender: String,
    recipient: String,
    context: String,
    attachment_name: Option<String>,
    attachment_content: Option<String>,
    attempts: i32,
    reference: Option<String>,
}

/// Takes the lease on up to `limit` due emails (see [`lease_due`]).
pub fn claim_due(
    conn: &mut DbConnection,
    limit: i64,
    lease: Duration,
    now: DateTime<Utc>,
) -> QueryResult<Vec<ClaimedEmail>> {
    write_transaction(conn, |conn| {
        let ids = lease_due(conn, limit, lease, now)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<ClaimedRow> = emails::table
            .filter(emails::id.eq_any(&ids))
            .order(emails::id.asc())
            .select(ClaimedRow::as_select())
            .load(conn)?;
        let references: Vec<&String> = rows.iter().filter_map(|r| r.reference.as_ref()).collect();
        let invoice_numbers: HashMap<String, Option<String>> = orders::table
            .filter(orders::id.eq_any(references))
            .select((orders::id, orders::invoice_number))
            .load::<(String, Option<String>)>(conn)?
            .into_iter()
            .collect();
        Ok(rows
            .into_iter()
            .map(|row| ClaimedEmail {
                invoice_number: row
                    .reference
                    .and_then(|r| invoice_numbers.get(&r).cloned().flatten()),
                id: row.id,
                kind: row.kind,
                sender: row.sender,
                recipient: row.recipient,
                context: row.context,
                attachment: row
                    .attachment_name
                    .zip(row.attachment_content)
                    .map(|(file_name, content)| Attachment { file_name, content }),
                attempts: row.attempts,
            })
            .collect())
    })
}

/// Sent: the subject is kept for the record; the context and attachment are cleared,
/// since they may carry coupon codes that must not sit in the database once delivered.
pub fn mark_sent(
    conn: &mut DbConnection,
    id: &str,
    subject: &str,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(emails::table.filter(emails::id.eq(id)))
        .set((
            emails::status.eq(EmailStatus::Sent.as_str()),
            emails::sent_at.eq(Some(now.naive_utc())),
            emails::claimed_until.eq(None::<NaiveDateTime>),
            emails::subject.eq(subject),
            emails::context.eq("{}"),
            emails::attachment_content.eq(None::<String>),
            emails::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

leased_outbox!(emails, EmailStatus, retried as "email" refused as RetryError);

pub fn mark_failed(
    conn: &mut DbConnection,
    email: &ClaimedEmail,
    error: &str,
    max_attempts: i32,
    retry_base: Duration,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let retry = RetryPolicy {
        max_attempts,
        base: retry_base,
    };
    release_failed(conn, &email.id, email.attempts, error, &retry, now)?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = emails)]
pub struct EmailSummary {
    pub id: String,
    pub kind: String,
    pub reference: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub status: EmailStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A page of the emails of the brand in a status, oldest first (the back-office's
/// dead-letter list), and how many are in that status.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    status: EmailStatus,
    page: Page,
) -> QueryResult<Paged<EmailSummary>> {
    let query = || {
        emails::table
            .filter(emails::brand_id.eq(brand_id.to_owned()))
            .filter(emails::status.eq(status.as_str()))
            .into_boxed()
    };
    db::load_page(conn, page, query, |query| {
        query
            .order((emails::created_at.asc(), emails::id.asc()))
            .select(EmailSummary::as_select())
    })
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum RetryError {
        /// No dead email of the operator's brand has this id (perhaps another operator put it
        /// back in the queue first).
        #[error("no dead email of your brand has this id")]
        NotDead,
    }
    storage from diesel::result::Error
}

/// What the outbox holds now (for the metrics): pending and dead emails, and when the
/// oldest pending one was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub dead: i64,
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// Two small queries on the `(status, next_attempt_at)` index; sent emails are not read.
pub fn stats(conn: &mut DbConnection) -> QueryResult<OutboxStats> {
    let counts: Vec<(EmailStatus, i64)> = emails::table
        .filter(
            emails::status
                .eq_any([EmailStatus::Pending, EmailStatus::Dead].map(EmailStatus::as_str)),
        )
        .group_by(emails::status)
        .select((emails::status, diesel::dsl::count_star()))
        .load(conn)?;
    let oldest: Option<NaiveDateTime> = emails::table
        .filter(emails::status.eq(EmailStatus::Pending.as_str()))
        .select(diesel::dsl::min(emails::created_at))
        .first(conn)?;
    Ok(OutboxStats {
        pending: db::count_of(&counts, EmailStatus::Pending),
        dead: db::count_of(&counts, EmailStatus::Dead),
        oldest_pending: oldest.map(|t| t.and_utc()),
    })
}
