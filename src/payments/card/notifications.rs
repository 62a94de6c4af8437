//! A verified notification from the provider, applied once by its event id whatever the
//! number of deliveries: the event is recorded in the transaction that applies it, so a
//! delivery that fails to apply leaves no trace and the provider's next one tries again,
//! and a redelivery finds it and is acknowledged without applying anything.

use chrono::{DateTime, Utc};

use super::settle::{self, Outcome};
use super::{CardError, Till};
use crate::card::provider::{Notification, Subject};
use crate::card::store;
use crate::db::{write_transaction, DbConnection};

/// Applies `notification` of `provider`; what it did.
pub fn receive(
    conn: &mut DbConnection,
    till: Till<'_>,
    provider: &str,
    notification: &Notification,
    now: DateTime<Utc>,
) -> Result<Outcome, CardError> {
    let event_id = &notification.event_id;
    write_transaction(conn, |conn| {
        if !store::record_event(conn, provider, event_id, &notification.kind, now)? {
            return Ok(Outcome::AlreadyApplied);
        }
        let (outcome, card_payment_id) = match &notification.subject {
            Subject::Session(session) => settle::apply_session(conn, till, provider, session, now)?,
            Subject::Refund(refund) => {
                let ours = store::record_refund_state(
                    conn,
                    &refund.id,
                    refund.reference.as_deref(),
                    refund.state.as_str(),
                    now,
                )?;
                let outcome = if ours {
                    Outcome::Refund
                } else {
                    Outcome::UnknownRefund
                };
                (outcome, None)
            }
            Subject::Other => (Outcome::Ignored, None),
        };
        store::event_outcome(
            conn,
            provider,
            event_id,
            outcome.as_str(),
            card_payment_id.as_deref(),
        )?;
        if matches!(outcome, Outcome::UnknownSession | Outcome::UnknownRefund) {
            tracing::warn!(
                event = %event_id,
                kind = %notification.kind,
                "card notification about nothing of ours: acknowledged"
            );
        }
        Ok(outcome)
    })
}
