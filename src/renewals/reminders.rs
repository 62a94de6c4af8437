//! Renewal reminders: each holder with an email address hears about a certificate as it
//! comes within 90, 30 and 7 days of expiry, once per threshold, with what to buy.
//!
//! One email per device and threshold lists the device's certificates due at it. A
//! certificate first seen past several thresholds (the worker was down, or the device
//! was registered late) gets only the most urgent reminder; the earlier ones are recorded
//! as handled. The (certificate, threshold) key makes each reminder go out once, however
//! many workers run: a worker sends only what its own insert recorded.
//!
//! The worker goes through the devices in bounded batches with a pause in between, so
//! that loading a whole registry, whose first round owes thousands of reminders, never
//! keeps requests from the database.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use crate::brands;
use crate::catalog;
use crate::db::schema::{certificates, devices, holders, renewal_reminders};
use crate::db::{write_transaction, DbConnection};
use crate::mail::outbox::{self, OutgoingEmail};
use crate::mail::templates::EmailKind;
use crate::registry::{CertificateKind, CertificateStatus, CodiceFiscale};

/// Days before expiry, most distant first.
pub const THRESHOLDS_DAYS: [i64; 3] = [90, 30, 7];

/// The most urgent threshold a certificate expiring at `not_after` has reached, if any.
pub fn threshold_reached(not_after: DateTime<Utc>, now: DateTime<Utc>) -> Option<i64> {
    if not_after < now {
        return None;
    }
    THRESHOLDS_DAYS
        .iter()
        .rev()
        .copied()
        .find(|days| not_after - now <= Duration::days(*days))
}

struct Due {
    certificate_id: String,
    kind: CertificateKind,
    not_after: DateTime<Utc>,
    threshold: i64,
}

/// An active certificate near its end, with its device and holder.
#[derive(Queryable)]
struct ExpiringRow {
    certificate_id: String,
    kind: CertificateKind,
    not_after: NaiveDateTime,
    serial_number: String,
    brand_id: String,
    codice_fiscale: String,
    given_name: String,
    surname: String,
    email: Option<String>,
}

/// What one batch of [`send_batch`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Reminder emails queued.
    pub queued: usize,
    /// Where the next batch starts (the last device of this one), when this one was full.
    pub next: Option<String>,
}

/// Sends every reminder due at `now`, batch after batch without pausing; returns how
/// many emails were queued. For a one-off run and for tests: the worker pauses between
/// batches (see [`run`]).
pub fn send_due(
    conn: &mut DbConnection,
    policy: &crate::renewals::RenewalPolicy,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut queued = 0;
    let mut after = None;
    loop {
        let batch = send_batch(conn, policy, now, after.as_deref(), DEFAULT_BATCH_DEVICES)?;
        queued += batch.queued;
        match batch.next {
            Some(next) => after = Some(next),
            None => return Ok(queued),
        }
    }
}

/// Devices per batch when nothing else is configured (`RINNOVO_REMINDER_BATCH_SIZE`).
pub const DEFAULT_BATCH_DEVICES: i64 = 200;

/// Sends the reminders due at `now` for at most `devices` devices, the first ones by id
/// after `after`: one email per device and threshold, each in its own short write
/// transaction.
///
/// Only devices that owe a reminder are picked, by the query itself: an active
/// certificate inside the 90 days whose most urgent reached threshold has no reminder
/// yet, of a holder with an email address. A registry of a million holders, most without
/// an address, costs a read per batch that returns only what is owed (not a million rows
/// loaded), and never an email that cannot be delivered.
pub fn send_batch(
    conn: &mut DbConnection,
    policy: &crate::renewals::RenewalPolicy,
    now: DateTime<Utc>,
    after: Option<&str>,
    devices: i64,
) -> anyhow::Result<Batch> {
    use diesel::dsl::{exists, not};
    let horizon = now + Duration::days(THRESHOLDS_DAYS[0]);
    let day = |days: i64| (now + Duration::days(days)).naive_utc();
    let not_reminded_at = |days: i64| {
        not(exists(
            renewal_reminders::table
                .filter(renewal_reminders::certificate_id.eq(certificates::id))
                .filter(renewal_reminders::threshold_days.eq(days as i32)),
        ))
    };
    let [far, near, last] = THRESHOLDS_DAYS;
    // The threshold a certificate has reached is the band its expiry falls in (see
    // `threshold_reached`): what is owed is that band's reminder.
    let owed = certificates::not_after
        .le(day(last))
        .and(not_reminded_at(last))
        .or(certificates::not_after
            .gt(day(last))
            .and(certificates::not_after.le(day(near)))
            .and(not_reminded_at(near)))
        .or(certificates::not_after
            .gt(day(near))
            .and(not_reminded_at(far)));
    let page: Vec<String> = certificates::table
        .inner_join(devices::table.inner_join(holders::table))
        .filter(certificates::status.eq(CertificateStatus::Active.as_str()))
        .filter(certificates::not_after.ge(now.naive_utc()))
        .filter(certificates::not_after.le(horizon.naive_utc()))
        .filter(holders::email.is_not_null())
        .filter(holders::email.ne(""))
        .filter(owed)
        .filter(devices::id.gt(after.unwrap_or("")))
        .select(devices::id)
        .distinct()
        .order(devices::id)
        .limit(devices)
        .load(conn)?;
    let next = (page.len() as i64 == devices)
        .then(|| page.last().cloned())
        .flatten();
    // Every certificate of the page's devices inside the window: one email per device and
    // threshold lists all that are due at it.
    let rows: Vec<ExpiringRow> = certificates::table
        .inner_join(devices::table.inner_join(holders::table))
        .filter(devices::id.eq_any(&page))
        .filter(certificates::status.eq(CertificateStatus::Active.as_str()))
        .filter(certificates::not_after.ge(now.naive_utc()))
        .filter(certificates::not_after.le(horizon.naive_utc()))
        .order((devices::id, certificates::id))
        .select((
            certificates::id,
            certificates::kind,
            certificates::not_after,
            devices::serial_number,
            devices::brand_id,
            holders::codice_fiscale,
            holders::given_name,
            holders::surname,
            holders::email,
        ))
        .load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.certificate_id.as_str()).collect();
    let handled: Vec<(String, i32)> = renewal_reminders::table
        .filter(renewal_reminders::certificate_id.eq_any(&ids))
        .select((
            renewal_reminders::certificate_id,
            renewal_reminders::threshold_days,
        ))
        .load(conn)?;
    // Per device: the certificates whose most urgent reached threshold is not handled.
    let mut by_device: BTreeMap<(String, i64), (ExpiringRow, Vec<Due>)> = BTreeMap::new();
    for row in rows {
        let not_after = row.not_after.and_utc();
        let Some(threshold) = threshold_reached(not_after, now) else {
            continue;
        };
        if handled
            .iter()
            .any(|(id, t)| *id == row.certificate_id && i64::from(*t) == threshold)
        {
            continue;
        }
        let due = Due {
            certificate_id: row.certificate_id.clone(),
            kind: row.kind,
            not_after,
            threshold,
        };
        by_device
            .entry((row.serial_number.clone(), threshold))
            .or_insert_with(|| (row, Vec::new()))
            .1
            .push(due);
    }
    let mut sent = 0;
    for ((serial, threshold), (device, due)) in by_device {
        let ExpiringRow {
            brand_id,
            codice_fiscale,
            given_name,
            surname,
            email,
            ..
        } = device;
        let Some(email) = email else { continue };
        let queued = write_transaction(conn, |conn| -> anyhow::Result<bool> {
            // Record every reached threshold; send only if this worker recorded the
            // most urgent one for at least one certificate.
            let mut fresh = Vec::new();
            for certificate in &due {
                let mut mine = false;
                for days in THRESHOLDS_DAYS
                    .iter()
                    .filter(|d| **d >= certificate.threshold)
                {
                    let inserted =
                        record_reminder(conn, &certificate.certificate_id, *days as i32, now)?;
                    mine |= inserted && *days == certificate.threshold;
                }
                if mine {
                    fresh.push(certificate);
                }
            }
            if fresh.is_empty() {
                return Ok(false);
            }
            let brand = brands::existing(conn, &brand_id)?;
            let products = catalog::list(conn, &brand_id, false)?;
            let cf = CodiceFiscale::parse(&codice_fiscale)
                .map_err(|e| anyhow::anyhow!("holder {codice_fiscale}: {e}"))?;
            let to_buy: Vec<_> =
                catalog::propose_for_device(conn, policy, &brand_id, &cf, &serial, now)
                    .map(|lines| {
                        lines
                            .iter()
                            .filter_map(|line| products.iter().find(|p| p.id == line.product))
                            .map(|p| json!({ "code": p.code, "name": p.name }))
                            .collect()
                    })
                    .unwrap_or_default();
            let certificates: Vec<_> = fresh
                .iter()
                .map(|c| {
                    json!({
                        "kind": c.kind.italian(),
                        "expires_on": c.not_after.format("%d/%m/%Y").to_string(),
                    })
                })
                .collect();
            outbox::enqueue_all(
                conn,
                &[OutgoingEmail {
                    brand_id: brand.id.clone(),
                    kind: EmailKind::RenewalReminder,
                    reference: Some(serial.clone()),
                    sender: brand.sender_address.clone(),
                    recipient: email.clone(),
                    context: json!({
                        "name": format!("{given_name} {surname}"),
                        "brand": brand.name,
                        "device": serial,
                        "days": threshold,
                        "certificates": certificates,
                        "to_buy": to_buy,
                        "has_products": !to_buy.is_empty(),
                    }),
                    attachment: None,
                }],
                now,
            )?;
            Ok(true)
        })?;
        sent += usize::from(queued);
    }
    Ok(Batch { queued: sent, next })
}

/// How the worker paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// How often it looks for due reminders.
    pub interval: std::time::Duration,
    /// Devices per batch.
    pub batch_devices: i64,
    /// The pause between two batches of one round, with no connection held, so that
    /// requests get the database (on SQLite, its single writer lock) in between.
    pub pause: std::time::Duration,
}

/// The worker: every `pacing.interval`, sends the due reminders in batches, until the
/// task is dropped.
pub async fn run(pool: crate::db::Pool, policy: crate::renewals::RenewalPolicy, pacing: Pacing) {
    loop {
        let now = Utc::now();
        let mut after: Option<String> = None;
        let mut queued = 0;
        loop {
            let pool = pool.clone();
            let from = after.clone();
            let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<Batch> {
                let mut conn = pool.get()?;
                send_batch(
                    &mut conn,
                    &policy,
                    now,
                    from.as_deref(),
                    pacing.batch_devices,
                )
            })
            .await;
            match outcome {
                Ok(Ok(batch)) => {
                    queued += batch.queued;
                    match batch.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "renewal reminders: will retry");
                    break;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "renewal reminders task failed");
                    break;
                }
            }
            tokio::time::sleep(pacing.pause).await;
        }
        if queued > 0 {
            tracing::info!(queued, "renewal reminders queued");
        }
        tokio::time::sleep(pacing.interval).await;
    }
}

/// Records that a renewal reminder was handled; `false` if another worker already did
/// (the row exists). An insert that ignores the conflict, on both backends.
fn record_reminder(
    conn: &mut DbConnection,
    certificate_id: &str,
    threshold_days: i32,
    now: chrono::DateTime<chrono::Utc>,
) -> diesel::QueryResult<bool> {
    use crate::db::schema::renewal_reminders as r;
    use diesel::{ExpressionMethods, RunQueryDsl};
    let row = (
        r::certificate_id.eq(certificate_id),
        r::threshold_days.eq(threshold_days),
        r::sent_at.eq(now.naive_utc()),
    );
    let inserted = insert_or_skip!(conn, r::table, row)?;
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_urgent_threshold_reached_counts() {
        let now = Utc::now();
        let at = |days: i64| now + Duration::days(days);
        assert_eq!(threshold_reached(at(91), now), None);
        assert_eq!(threshold_reached(at(90), now), Some(90));
        assert_eq!(threshold_reached(at(31), now), Some(90));
        assert_eq!(threshold_reached(at(30), now), Some(30));
        assert_eq!(threshold_reached(at(7), now), Some(7));
        assert_eq!(threshold_reached(now, now), Some(7));
        assert_eq!(threshold_reached(now - Duration::seconds(1), now), None);
    }
}
