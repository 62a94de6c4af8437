//! Placing an order: the one use-case the JSON API and the shop's pages both call. Every
//! rule of a purchase is here: at least one line, each quantity and the order's total
//! within the buyer's role's cap, products known, sold and each on one line, prices from
//! the catalog, then payment from the prepaid account at once or by transfer later.

use chrono::{DateTime, Duration, Utc};

use super::{Buyer, Order, OrderError, PaymentMethod};
use crate::auth::Role;
use crate::billing::{self, BillingError};
use crate::card::CardSettings;
use crate::catalog::{self, CatalogError, Product, Quote, RequestedLine};
use crate::coupons::CouponKey;
use crate::db::DbConnection;

/// Why a purchase was refused before any money moved.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("an order needs at least one line")]
    NoLines,
    /// `line` counts from 0, as the request's `lines[i]`. Too many is not this: it is the
    /// cap's rule ([`Self::TooLarge`]), whether on one line or over several.
    #[error("quantity must be at least 1")]
    QuantityNotPositive { line: usize },
    #[error("a {role} may buy at most {cap} coupons in one order; this one has {total}")]
    TooLarge { role: Role, cap: u32, total: u64 },
    /// Every order is invoiced, and an invoice needs its buyer: see `billing`.
    #[error("the buyer has no billing data yet")]
    BillingDataMissing,
    /// No card payment provider is configured.
    #[error(
        "payment by card is not offered: choose prepaid, bank_transfer, postal_slip or cheque"
    )]
    CardNotOffered,
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Order(#[from] OrderError),
}

impl From<diesel::result::Error> for CheckoutError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Order(error.into())
    }
}

/// What a purchase needs besides the buyer and the lines: the settings of the shop.
pub struct Till<'a> {
    pub coupon_key: &'a CouponKey,
    pub public_url: &'a str,
    /// How long an order paid by transfer holds its prices and coupons.
    pub reservation: Duration,
    /// How cards are paid; `None` when no provider is configured.
    pub card: Option<&'a CardSettings>,
}

/// The buyer's choice, checked and priced: what a summary shows and a purchase buys.
pub struct Cart {
    pub products: Vec<(Product, u32)>,
    pub quote: Quote,
}

/// The lines `role` may buy in one order: at least one, each of at least 1 coupon, and
/// no more than the role's cap in all. One line over the cap breaks the same rule as
/// several lines over it together, so both get the same refusal.
pub fn check_lines(role: Role, lines: &[RequestedLine]) -> Result<(), CheckoutError> {
    if lines.is_empty() {
        return Err(CheckoutError::NoLines);
    }
    let cap = catalog::max_coupons_per_order(role);
    let mut total: u64 = 0;
    for (line, requested) in lines.iter().enumerate() {
        if requested.quantity < 1 {
            return Err(CheckoutError::QuantityNotPositive { line });
        }
        total += u64::from(requested.quantity);
    }
    if total > u64::from(cap) {
        return Err(CheckoutError::TooLarge { role, cap, total });
    }
    Ok(())
}

/// Checks the lines for `role` and prices them from the brand's catalog.
pub fn price(
    conn: &mut DbConnection,
    brand_id: &str,
    role: Role,
    lines: &[RequestedLine],
) -> Result<Cart, CheckoutError> {
    check_lines(role, lines)?;
    let products = catalog::resolve(conn, brand_id, lines)?;
    Ok(priced(products))
}

/// The quote of resolved products at their catalog prices.
pub fn priced(products: Vec<(Product, u32)>) -> Cart {
    let items: Vec<_> = products.iter().map(|(p, q)| (p.priced(), *q)).collect();
    let quote = catalog::quote(&items);
    Cart { products, quote }
}

/// Places `buyer`'s order of `lines`, paid by `method`: from the prepaid account at once
/// (fulfilled, coupons emailed), by transfer (waiting with an RF code), or by card
/// (waiting for the provider; the caller then opens the provider's page with
/// `payments::card::sessions`). The buyer must have given their billing data: the
/// invoice is made out from it.
#[allow(clippy::too_many_arguments)]
pub fn place_order(
    conn: &mut DbConnection,
    till: &Till<'_>,
    buyer: &Buyer,
    role: Role,
    method: PaymentMethod,
    lines: &[RequestedLine],
    now: DateTime<Utc>,
) -> Result<Order, CheckoutError> {
    let card = match (method, till.card) {
        (PaymentMethod::Card, None) => return Err(CheckoutError::CardNotOffered),
        (_, card) => card,
    };
    if billing::profile_of(conn, &buyer.user_id)?.is_none() {
        return Err(CheckoutError::BillingDataMissing);
    }
    let Cart { products, quote } = price(conn, &buyer.brand_id, role, lines)?;
    let order = if let (PaymentMethod::Card, Some(card)) = (method, card) {
        super::place_by_card(conn, buyer, card, &products, &quote, now)?.0
    } else if method.is_transfer() {
        super::place_by_transfer(
            conn,
            buyer,
            method,
            &products,
            &quote,
            till.reservation,
            now,
        )?
    } else {
        super::place_prepaid(
            conn,
            till.coupon_key,
            buyer,
            &products,
            &quote,
            till.public_url,
            now,
        )?
    };
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(product: &str, quantity: u32) -> RequestedLine {
        RequestedLine {
            product: product.into(),
            quantity,
        }
    }

    #[test]
    fn the_role_caps_the_total_of_one_line_or_many_alike() {
        assert!(matches!(
            check_lines(Role::Customer, &[]),
            Err(CheckoutError::NoLines)
        ));
        assert!(matches!(
            check_lines(Role::Customer, &[line("A", 1), line("B", 0)]),
            Err(CheckoutError::QuantityNotPositive { line: 1 })
        ));
        assert!(matches!(
            check_lines(Role::Customer, &[line("A", 21)]),
            Err(CheckoutError::TooLarge {
                cap: 20,
                total: 21,
                ..
            })
        ));
        assert!(matches!(
            check_lines(Role::Customer, &[line("A", u32::MAX), line("B", u32::MAX)]),
            Err(CheckoutError::TooLarge { .. })
        ));
        assert!(matches!(
            check_lines(Role::Customer, &[line("A", 15), line("B", 6)]),
            Err(CheckoutError::TooLarge { total: 21, .. })
        ));
        assert!(check_lines(Role::Customer, &[line("A", 15), line("B", 5)]).is_ok());
        assert!(check_lines(Role::RegistrationOfficer, &[line("A", 1000)]).is_ok());
        assert!(matches!(
            check_lines(Role::BackOffice, &[line("A", 1)]),
            Err(CheckoutError::TooLarge { cap: 0, .. })
        ));
    }
}
