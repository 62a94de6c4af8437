//! The audit log: who did what to money, coupons and certificates. Append-only (the
//! database refuses updates and deletes), written in the same transaction as the change.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::db::schema::audit_log;
use crate::db::DbConnection;

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User(String),
    /// An administrator at the command line.
    Cli,
    /// rinnovo itself (a worker).
    System,
    /// A desktop agent, signed in with a certificate of this device.
    Device(String),
}

impl Actor {
    fn label(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::Cli => "cli".into(),
            Actor::Device(id) => format!("device:{id}"),
            Actor::System => "system".into(),
        }
    }
}

/// A back-office operator acting within their brand: the user the audit log names, and
/// the brand that bounds what they may touch. One value, so that an operator's id and
/// brand are never passed apart, nor swapped.
#[derive(Debug, Clone, Copy)]
pub struct Operator<'a> {
    pub id: &'a str,
    pub brand_id: &'a str,
}

impl Operator<'_> {
    /// The operator as the audit log's actor.
    pub fn actor(&self) -> Actor {
        Actor::User(self.id.to_owned())
    }

    /// Records this operator's act on one subject of their brand (`("coupon", id)`), as
    /// `action`; the caller has checked that the subject is of the operator's brand.
    pub fn record(
        &self,
        conn: &mut DbConnection,
        action: &str,
        subject: (&str, &str),
        details: serde_json::Value,
        now: DateTime<Utc>,
    ) -> QueryResult<()> {
        record_users_act(conn, self.brand_id, self.id, action, subject, details, now)
    }
}

pub struct AuditEntry<'a> {
    pub brand_id: Option<&'a str>,
    pub actor: &'a Actor,
    /// What happened, as `subject.verb`: `prepaid.adjusted`, `user.created`...
    pub action: &'a str,
    pub subject_type: &'a str,
    pub subject_id: &'a str,
    pub details: serde_json::Value,
}

pub fn record(
    conn: &mut DbConnection,
    entry: AuditEntry<'_>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    record_all(conn, vec![entry], now)
}

/// An entry about a user's own account made by that user (a password reset, an email
/// change, new billing data): the actor and the subject are the same user, in their brand.
pub fn record_own_account(
    conn: &mut DbConnection,
    brand_id: &str,
    user_id: &str,
    action: &str,
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    record_users_act(
        conn,
        brand_id,
        user_id,
        action,
        ("user", user_id),
        details,
        now,
    )
}

/// An entry about what a signed-in user (an operator, or a user on their own account) did
/// to one subject (`("coupon", id)`) within their brand.
fn record_users_act(
    conn: &mut DbConnection,
    brand_id: &str,
    user_id: &str,
    action: &str,
    (subject_type, subject_id): (&str, &str),
    details: serde_json::Value,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    record(
        conn,
        AuditEntry {
            brand_id: Some(brand_id),
            actor: &Actor::User(user_id.to_owned()),
            action,
            subject_type,
            subject_id,
            details,
        },
        now,
    )
}

/// Several entries in as few statements as possible (a statement import audits each
/// payment it applies).
pub fn record_all(
    conn: &mut DbConnection,
    entries: Vec<AuditEntry<'_>>,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    insert_many!(conn, audit_log::table, entries, 1000, |entry| {
        (
            audit_log::id.eq(Uuid::now_v7().to_string()),
            audit_log::brand_id.eq(entry.brand_id.map(str::to_owned)),
            audit_log::actor.eq(entry.actor.label()),
            audit_log::action.eq(entry.action.to_owned()),
            audit_log::subject_type.eq(entry.subject_type.to_owned()),
            audit_log::subject_id.eq(entry.subject_id.to_owned()),
            audit_log::details.eq(entry.details.to_string()),
            audit_log::created_at.eq(now.naive_utc()),
        )
    })
    .map(|_| ())
}
