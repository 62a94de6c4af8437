//! Nothing left behind: the worker asks the provider about card payments still waiting
//! a while after their page opened (at growing intervals), and applies the answer through
//! the same function as a notification, so that an order paid at the provider is
//! fulfilled even if every notification is lost. A page never opened (the provider was
//! down when the buyer ordered, and no one came back) ends when its time is up. It also
//! sends the refunds due.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};

use super::settle::{self, Outcome};
use super::{refunds, sessions, CardError, Till};
use crate::card::provider::SessionState;
use crate::card::{store, CardSettings};
use crate::coupons::CouponKey;
use crate::db::{write_transaction, Pool};
use crate::workers::{backoff, RetryPolicy};

/// What the worker needs.
#[derive(Clone)]
pub struct CardWorker {
    pub pool: Pool,
    pub card: CardSettings,
    pub coupon_key: std::sync::Arc<CouponKey>,
    pub public_url: String,
    /// The first pause between two questions about the same page (doubled each time).
    pub check_interval: Duration,
    pub refund_retry: RetryPolicy,
    /// The pause after a round that found work, before the next (see
    /// [`crate::workers::keep_draining`]).
    pub batch_pause: StdDuration,
}

/// Runs the worker until the task is dropped.
pub async fn run(worker: CardWorker, idle: StdDuration) {
    loop {
        let wait = match worker.round().await {
            Ok(n) if n > 0 => worker.batch_pause,
            Ok(_) => idle,
            Err(error) => {
                tracing::warn!(error = %error, "card payments: will retry");
                idle
            }
        };
        tokio::time::sleep(wait).await;
    }
}

impl CardWorker {
    /// One round: the waiting payments due for a question, then the refunds due; how many
    /// it handled.
    pub async fn round(&self) -> Result<usize, CardError> {
        let checked = self.check_due().await?;
        let refunded =
            refunds::send_due(&self.pool, self.card.provider.as_ref(), self.refund_retry).await?;
        Ok(checked + refunded)
    }

    /// Asks the provider about the waiting payments due; how many it asked about.
    pub async fn check_due(&self) -> Result<usize, CardError> {
        let now = Utc::now();
        let due = sessions::blocking(&self.pool, move |conn| {
            Ok(store::due_for_check(conn, now, 50)?)
        })
        .await?;
        let count = due.len();
        for (id, session_id, checks) in due {
            let state = match &session_id {
                Some(session_id) => match self.card.provider.session(session_id).await {
                    Ok(session) => Some(session),
                    Err(error) => {
                        tracing::warn!(card_payment = %id, %error, "card payment: provider not asked");
                        None
                    }
                },
                None => None,
            };
            let key = self.coupon_key.clone();
            let public_url = self.public_url.clone();
            let next = now + backoff(self.check_interval, checks + 1);
            let outcome = sessions::blocking(&self.pool, move |conn| {
                write_transaction(conn, |conn| {
                    let Some(payment) = store::lock(conn, &id)? else {
                        return Ok(Outcome::AlreadyApplied);
                    };
                    let till = Till {
                        coupon_key: &key,
                        public_url: &public_url,
                    };
                    let outcome = match (&state, &payment.session_id) {
                        (Some(session), _) => settle::apply_locked(
                            conn,
                            till,
                            &payment,
                            session.state,
                            Some(session),
                            now,
                        )?,
                        // Never opened, and its time is up: no one can pay it any more.
                        (None, None) if sessions::page_over(payment.expires_at, now) => {
                            settle::apply_locked(
                                conn,
                                till,
                                &payment,
                                SessionState::Expired,
                                None,
                                now,
                            )?
                        }
                        (None, _) => Outcome::Waiting,
                    };
                    if outcome == Outcome::Waiting {
                        store::check_later(conn, &payment.id, next, now)?;
                    }
                    Ok(outcome)
                })
            })
            .await?;
            if outcome != Outcome::Waiting {
                tracing::info!(outcome = %outcome, "card payment settled by the worker");
            }
        }
        Ok(count)
    }
}
