//! Payments by card, above `orders` and `prepaid` as the rest of `payments` is: opening
//! the provider's page for an order or top-up placed by card ([`sessions`]), applying
//! what the provider says of it, whether a notification brings it ([`notifications`]) or
//! the worker asks ([`worker`]), through one function ([`settle`]); and the back-office's
//! refunds ([`refunds`]). A paid order is fulfilled by `orders::fulfil_paid`, as a
//! payment matched by hand is; a paid top-up is credited as a statement credits it.

pub mod notifications;
pub mod refunds;
pub mod sessions;
pub mod settle;
pub mod worker;

use crate::card::provider::ProviderError;
use crate::card::store::{self, RefundRow};
use crate::card::{CardPayment, CardStatus};
use crate::coupons::CouponKey;
use crate::db::DbConnection;
use crate::invoices::InvoiceError;
use crate::prepaid::PrepaidError;

/// What applying a card payment needs besides the payment: the shop's settings.
#[derive(Clone, Copy)]
pub struct Till<'a> {
    pub coupon_key: &'a CouponKey,
    pub public_url: &'a str,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum CardError {
        /// The service has no card payment provider configured.
        #[error("no card payment provider is configured")]
        Off,
        #[error("no card payment of your brand has this id")]
        UnknownPayment,
        #[error("the card payment is {0}: its page can no longer be opened")]
        NotPayable(CardStatus),
        #[error("only a paid or held card payment can be refunded; this one is {0}")]
        NotRefundable(CardStatus),
        #[error("a top-up paid by card is refunded by adjusting the prepaid account, not here")]
        TopUpNotRefundable,
        #[error("coupon {0} is not an unused coupon of this order")]
        CouponNotRefundable(String),
        #[error("nothing is left to refund: every coupon of the order is used, voided or refunded")]
        NothingToRefund,
        #[error("this card payment has no given-up (dead) refund with this id")]
        UnknownDeadRefund,
        #[error(transparent)]
        Provider(#[from] ProviderError),
        #[error(transparent)]
        Prepaid(#[from] PrepaidError),
        #[error(transparent)]
        Invoice(#[from] InvoiceError),
    }
    storage from diesel::result::Error, crate::orders::OrderError
}

/// A card payment of the operator's brand, with its refunds oldest first, as the
/// back-office shows it; another brand's is as unknown as a made-up id.
pub fn of_brand(
    conn: &mut DbConnection,
    brand_id: &str,
    id: &str,
) -> Result<(CardPayment, Vec<RefundRow>), CardError> {
    let payment = store::find(conn, id)?
        .filter(|payment| payment.brand_id == brand_id)
        .ok_or(CardError::UnknownPayment)?;
    let refunds = store::refunds_of(conn, &payment.id)?;
    Ok((payment, refunds))
}
