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

/// Where a purchase paid by card (an order or a top-up) stands, as its buyer is told. A
/// return from the provider's page proves nothing: this is what the provider has told
/// rinnovo, for the order's page and the prepaid statement alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardProgress {
    /// Not paid yet, and it still may be.
    pub waiting: bool,
    /// Waiting on the back-office, not on the provider: the payment was held.
    pub held: bool,
    /// Never to be paid: the purchase lapsed, or the provider's page expired or failed.
    pub ended: bool,
    /// Waiting on the buyer: the provider's page can be opened (again).
    pub page_open: bool,
}

impl CardProgress {
    /// `awaiting`: the purchase still awaits its payment; `lapsed`: it expired or was
    /// cancelled; `payment`: its card payment, once there is one.
    pub fn of(awaiting: bool, lapsed: bool, payment: Option<&CardPayment>) -> Self {
        let status = payment.map(|p| p.status);
        let ended = lapsed || matches!(status, Some(CardStatus::Expired | CardStatus::Failed));
        let waiting = awaiting && !ended;
        Self {
            waiting,
            held: waiting && status == Some(CardStatus::Held),
            ended,
            page_open: waiting && status.is_some_and(CardStatus::is_waiting),
        }
    }

    /// The buyer's page asks again by itself: the provider's answer may still come. A held
    /// payment waits for the back-office instead.
    pub fn may_still_change(self) -> bool {
        self.waiting && !self.held
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn payment(status: CardStatus) -> CardPayment {
        CardPayment {
            id: "p".into(),
            brand_id: "b".into(),
            user_id: "u".into(),
            target: CardTarget::Order("o".into()),
            provider: "fake".into(),
            amount: crate::money::Money::from_cents(5000),
            currency: "EUR".into(),
            status,
            session_id: None,
            checkout_url: None,
            provider_payment_id: None,
            paid_cents: None,
            paid_currency: None,
            refunded: crate::money::Money::ZERO,
            note: None,
            expires_at: Utc::now(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_purchase_by_card_is_told_as_the_provider_left_it() {
        // Awaiting, the provider's page open: the buyer may pay, the page asks again.
        let open = CardProgress::of(true, false, Some(&payment(CardStatus::Open)));
        assert!(open.waiting && open.page_open && !open.held && !open.ended);
        assert!(open.may_still_change());

        // Held: still waiting, but on the back-office; no page, no asking again.
        let held = CardProgress::of(true, false, Some(&payment(CardStatus::Held)));
        assert!(held.waiting && held.held && !held.page_open);
        assert!(!held.may_still_change());

        // A failed or expired page ends it, though the purchase itself still awaits.
        for status in [CardStatus::Failed, CardStatus::Expired] {
            let ended = CardProgress::of(true, false, Some(&payment(status)));
            assert!(ended.ended && !ended.waiting && !ended.may_still_change());
        }

        // A lapsed purchase ended, whatever its payment says.
        let lapsed = CardProgress::of(false, true, Some(&payment(CardStatus::Open)));
        assert!(lapsed.ended && !lapsed.waiting && !lapsed.page_open);

        // Paid: no longer awaiting, not ended either.
        let paid = CardProgress::of(false, false, Some(&payment(CardStatus::Paid)));
        assert_eq!(
            paid,
            CardProgress {
                waiting: false,
                held: false,
                ended: false,
                page_open: false
            }
        );
    }
}
