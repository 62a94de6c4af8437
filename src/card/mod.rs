//! Payments by card through a provider's hosted page (Stripe Checkout first): card data
//! never reaches rinnovo. This module sits below `orders` and `prepaid`, as `transfer`
//! does for RF codes: the checkout of an order or a top-up by card stores its card
//! payment here in its own transaction ([`store::open`]). What the provider then says
//! (a notification, or the worker's question) is applied above, in `payments::card`,
//! which moves the order or top-up on through their named state changes.
//!
//! - [`provider`]: what rinnovo asks of a provider, behind a trait;
//! - [`stripe`]: the Stripe implementation, with [`signature`] for its notifications;
//! - [`store`]: the one writer of `card_payments`, `card_events` and `card_refunds`.

pub mod provider;
pub mod signature;
pub mod store;
pub mod stripe;

use chrono::{DateTime, Utc};

use crate::money::Money;

pub use provider::{CardProvider, ProviderError};

text_enum!(
    /// Where a card payment stands (see the migration `card_payments`).
    CardStatus {
        Opening => "opening",
        Open => "open",
        Paid => "paid",
        Held => "held",
        Expired => "expired",
        Failed => "failed",
    }
);

impl CardStatus {
    /// Still waiting for the buyer (or the provider) to pay.
    pub fn is_waiting(self) -> bool {
        matches!(self, CardStatus::Opening | CardStatus::Open)
    }

    pub fn italian(self) -> &'static str {
        match self {
            CardStatus::Opening => "in apertura",
            CardStatus::Open => "in attesa del pagamento",
            CardStatus::Paid => "pagato",
            CardStatus::Held => "trattenuto per verifica",
            CardStatus::Expired => "scaduto",
            CardStatus::Failed => "non riuscito",
        }
    }
}

/// What a card payment pays for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardTarget {
    Order(String),
    TopUp(String),
}

/// A card payment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPayment {
    pub id: String,
    pub brand_id: String,
    pub user_id: String,
    pub target: CardTarget,
    pub provider: String,
    pub amount: Money,
    /// ISO 4217, upper case.
    pub currency: String,
    pub status: CardStatus,
    pub session_id: Option<String>,
    pub checkout_url: Option<String>,
    pub provider_payment_id: Option<String>,
    pub paid_cents: Option<i64>,
    pub paid_currency: Option<String>,
    pub refunded: Money,
    pub note: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CardPayment {
    pub fn order_id(&self) -> Option<&str> {
        match &self.target {
            CardTarget::Order(id) => Some(id),
            CardTarget::TopUp(_) => None,
        }
    }

    pub fn top_up_id(&self) -> Option<&str> {
        match &self.target {
            CardTarget::TopUp(id) => Some(id),
            CardTarget::Order(_) => None,
        }
    }

    /// What the provider took and has not been asked to give back.
    pub fn refundable(&self) -> Money {
        let paid = Money::from_cents(self.paid_cents.unwrap_or(0));
        if paid > self.refunded {
            paid - self.refunded
        } else {
            Money::ZERO
        }
    }
}

/// How card payments are offered: the provider, and how long its page waits for the
/// buyer. `None` in the settings when no provider is configured: the card is then not
/// offered at all.
#[derive(Clone)]
pub struct CardSettings {
    pub provider: std::sync::Arc<dyn CardProvider>,
    /// How long a session stays open at the provider (Stripe: 30 minutes to 24 hours).
    pub session_lifetime: chrono::Duration,
}

impl std::fmt::Debug for CardSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSettings")
            .field("provider", &self.provider.name())
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}
