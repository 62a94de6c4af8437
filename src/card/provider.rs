//! What rinnovo asks of a card payment provider. Stripe is the first implementation
//! ([`super::stripe`]); a bank gateway such as Nexi XPay has the same four moves: open a
//! hosted payment page for an amount, tell how a payment stands, refund part of it, and
//! send signed notifications that this side verifies before believing them.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use crate::money::Money;

/// What a hosted payment page is opened for.
#[derive(Debug, Clone)]
pub struct SessionRequest {
    /// The same key for the same card payment: a retry gets the same session back.
    pub idempotency_key: String,
    /// Ours (the card payment's id), carried by the provider in its notifications.
    pub reference: String,
    pub amount: Money,
    /// ISO 4217, upper case.
    pub currency: String,
    /// What the buyer reads on the provider's page.
    pub description: String,
    pub customer_email: String,
    /// Where the provider sends the buyer back: never proof of payment.
    pub success_url: String,
    pub cancel_url: String,
    pub expires_at: DateTime<Utc>,
}

/// Where a payment stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// The buyer has not paid (yet).
    Open,
    /// Completed, the money not yet confirmed (a delayed method): wait.
    Processing,
    Paid,
    /// The payment was attempted and failed for good.
    Failed,
    /// The page expired unpaid.
    Expired,
}

/// A hosted payment page and what the provider says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub url: Option<String>,
    pub state: SessionState,
    /// What the provider says the buyer paid (or is to pay), in cents of `currency`.
    pub amount_cents: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    /// The provider's payment, what a refund refers to (once paid).
    pub payment_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A refund asked of the provider.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// Our refund's id: a retry never refunds twice.
    pub idempotency_key: String,
    pub payment_id: String,
    pub amount: Money,
}

text_enum!(
    /// What the provider says of a refund.
    RefundState {
        Pending => "pending",
        Succeeded => "succeeded",
        Failed => "failed",
        Canceled => "canceled",
    }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub state: RefundState,
    pub amount_cents: i64,
    /// Our refund's id, when the provider carries it back.
    pub reference: Option<String>,
}

/// A verified notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The provider's id of the event: each is applied once.
    pub event_id: String,
    /// The provider's name of the event (`checkout.session.completed`).
    pub kind: String,
    pub subject: Subject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Session(Session),
    Refund(Refund),
    /// An event rinnovo has no use for: acknowledged, not applied.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No answer, a timeout, or the provider's own failure: worth trying again.
    #[error("the payment provider did not answer: {0}")]
    Unavailable(String),
    /// The provider refused the request (it would refuse it again).
    #[error("the payment provider refused the request: {0}")]
    Refused(String),
    #[error("the payment provider's answer could not be read: {0}")]
    Malformed(String),
}

impl ProviderError {
    pub fn is_temporary(&self) -> bool {
        matches!(self, ProviderError::Unavailable(_))
    }
}

/// Why a notification was not believed; nothing is stored for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("the notification carries no signature")]
    Unsigned,
    #[error("the signature header cannot be read")]
    MalformedSignature,
    #[error("the signature does not match the body under any configured secret")]
    BadSignature,
    #[error("the signature's timestamp is outside the tolerance window")]
    Stale,
    #[error("the body is not a notification")]
    MalformedBody,
}

/// A card payment provider. The calls return boxed futures so that the provider can be
/// chosen at start-up (`Arc<dyn CardProvider>`).
pub trait CardProvider: Send + Sync {
    /// The provider's name as stored with each payment (`stripe`).
    fn name(&self) -> &'static str;

    fn create_session<'a>(
        &'a self,
        request: &'a SessionRequest,
    ) -> BoxFuture<'a, Result<Session, ProviderError>>;

    fn session<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<Session, ProviderError>>;

    fn refund<'a>(
        &'a self,
        request: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<Refund, ProviderError>>;

    /// Verifies a notification on its raw body and reads it. `header` looks up a request
    /// header by name.
    fn notification(
        &self,
        header: &dyn Fn(&str) -> Option<String>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Notification, NotificationError>;
}
