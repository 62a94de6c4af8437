//! Opening the provider's page for an order or top-up placed by card. Done after the
//! checkout's transaction commits (no row is locked while the provider answers), with the
//! card payment's id as the idempotency key: two requests at once, or a retry after a
//! lost answer, get the same page.

use chrono::{DateTime, Duration, Utc};

use super::CardError;
use crate::card::provider::SessionRequest;
use crate::card::{store, CardPayment, CardSettings, CardStatus, CardTarget};
use crate::db::{DbConnection, Pool};
use crate::orders;
use crate::prepaid::top_ups;

/// Stripe opens a page for at least 30 minutes from its creation.
const SHORTEST_PAGE: Duration = Duration::minutes(31);

/// What the page says and where it sends the buyer back.
struct PageFor {
    description: String,
    email: String,
    /// The shop's page of the order or top-up, which shows its real state.
    return_path: String,
}

/// The URL of the provider's page for card payment `card_payment_id`: opened now if it
/// is not yet, the one already open otherwise. `first_check_after`: when the worker first
/// asks the provider, should no notification come.
pub async fn checkout_url(
    pool: &Pool,
    card: &CardSettings,
    public_url: &str,
    card_payment_id: &str,
    first_check_after: Duration,
) -> Result<String, CardError> {
    let id = card_payment_id.to_owned();
    let (payment, page) = blocking(pool, move |conn| {
        let payment = store::find(conn, &id)?.ok_or(CardError::UnknownPayment)?;
        let page = page_for(conn, &payment)?;
        Ok((payment, page))
    })
    .await?;
    match (payment.status, &payment.checkout_url) {
        (CardStatus::Open, Some(url)) => return Ok(url.clone()),
        (CardStatus::Opening, _) => {}
        (status, _) => return Err(CardError::NotPayable(status)),
    }
    let now = Utc::now();
    let request = SessionRequest {
        idempotency_key: format!("rinnovo-session-{}", payment.id),
        reference: payment.id.clone(),
        amount: payment.amount,
        currency: payment.currency.clone(),
        description: page.description,
        customer_email: page.email,
        success_url: format!("{public_url}{}", page.return_path),
        cancel_url: format!("{public_url}{}", page.return_path),
        expires_at: payment.expires_at.max(now + SHORTEST_PAGE),
    };
    let session = card.provider.create_session(&request).await?;
    let url = session.url.clone().ok_or_else(|| {
        CardError::Provider(crate::card::ProviderError::Malformed(
            "the session has no URL".into(),
        ))
    })?;
    let (id, session_id, stored_url) = (payment.id.clone(), session.id.clone(), url.clone());
    blocking(pool, move |conn| {
        store::session_opened(
            conn,
            &id,
            &session_id,
            &stored_url,
            now + first_check_after,
            now,
        )?;
        Ok(())
    })
    .await?;
    tracing::info!(card_payment = %payment.id, session = %session.id, "card payment page opened");
    Ok(url)
}

fn page_for(conn: &mut DbConnection, payment: &CardPayment) -> Result<PageFor, CardError> {
    Ok(match &payment.target {
        CardTarget::Order(id) => {
            let order = orders::find(conn, id)?.ok_or(CardError::UnknownPayment)?;
            let coupons: i32 = order.lines.iter().map(|l| l.quantity).sum();
            PageFor {
                description: format!(
                    "Ordine {}: {coupons} coupon di rinnovo",
                    &order.id[..8.min(order.id.len())]
                ),
                email: order.email,
                return_path: format!("/negozio/ordini/{}", order.id),
            }
        }
        CardTarget::TopUp(id) => {
            let top_up = top_ups::find(conn, id)?.ok_or(CardError::UnknownPayment)?;
            PageFor {
                description: "Ricarica del conto prepagato".into(),
                email: top_up.email,
                return_path: format!("/negozio/prepagato?ricarica={}", top_up.id),
            }
        }
    })
}

/// Database work on the blocking pool, with a connection given back at once.
pub(super) async fn blocking<T: Send + 'static>(
    pool: &Pool,
    work: impl FnOnce(&mut DbConnection) -> Result<T, CardError> + Send + 'static,
) -> Result<T, CardError> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(anyhow::Error::from)?;
        work(&mut conn)
    })
    .await
    .map_err(anyhow::Error::from)?
}

/// When a waiting payment's page ends for the worker: its expiry, and a margin for the
/// provider's clock.
pub fn page_over(payment_expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now > payment_expires_at + Duration::minutes(5)
}
