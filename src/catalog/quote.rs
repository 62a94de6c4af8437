//! Quotes: lines of (product, quantity) → net, IVA and gross, exactly.
//!
//! IVA is computed per rate on the document's taxable total and rounded half up to the
//! cent, because that is what the Italian e-invoicing exchange (SdI) checks: for each rate,
//! tax = taxable × rate within ±0.01. Rounding per line and adding would break that on bulk
//! orders (1,000 lines of 0.004 rounding add up). Lines still show an informative gross,
//! rounded per line, which is never summed.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::money::Money;

/// A VAT rate in basis points (2200 = 22%), so it is exact and can be a map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VatRate(u32);

impl VatRate {
    pub const STANDARD: VatRate = VatRate(2200);

    pub fn from_basis_points(basis_points: u32) -> Option<Self> {
        (basis_points <= 10_000).then_some(Self(basis_points))
    }

    pub fn basis_points(self) -> u32 {
        self.0
    }

    pub fn as_fraction(self) -> Decimal {
        Decimal::new(self.0 as i64, 4)
    }

    /// "22.00" (percent), for documents.
    pub fn percent(self) -> Decimal {
        Decimal::new(self.0 as i64, 2)
    }
}

/// What a quote needs to know of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedItem {
    pub product_id: String,
    pub net_unit_price: Money,
    pub vat_rate: VatRate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteLine {
    pub product_id: String,
    pub quantity: u32,
    pub net_unit_price: Money,
    pub net_amount: Money,
    pub vat_rate: VatRate,
    /// net × (1 + rate), rounded half up on its own: information for the reader only.
    pub informative_gross: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatSummary {
    pub vat_rate: VatRate,
    pub taxable: Money,
    pub vat: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub lines: Vec<QuoteLine>,
    pub vat_summary: Vec<VatSummary>,
    pub net_total: Money,
    pub vat_total: Money,
    pub gross_total: Money,
}

/// Half up, away from zero, to the cent: the rounding of Italian invoices.
pub fn round_to_cent(amount: Decimal) -> Money {
    let rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    Money::from_decimal(rounded).expect("rounded to two decimals")
}

pub fn quote(lines: &[(PricedItem, u32)]) -> Quote {
    let mut out_lines = Vec::with_capacity(lines.len());
    let mut taxable_by_rate: BTreeMap<VatRate, Decimal> = BTreeMap::new();
    for (item, quantity) in lines {
        let net = item.net_unit_price.amount() * Decimal::from(*quantity);
        *taxable_by_rate.entry(item.vat_rate).or_default() += net;
        out_lines.push(QuoteLine {
            product_id: item.product_id.clone(),
            quantity: *quantity,
            net_unit_price: item.net_unit_price,
            net_amount: round_to_cent(net),
            vat_rate: item.vat_rate,
            informative_gross: round_to_cent(net * (Decimal::ONE + item.vat_rate.as_fraction())),
        });
    }
    let vat_summary: Vec<VatSummary> = taxable_by_rate
        .into_iter()
        .map(|(vat_rate, taxable)| VatSummary {
            vat_rate,
            taxable: round_to_cent(taxable),
            vat: round_to_cent(taxable * vat_rate.as_fraction()),
        })
        .collect();
    let net_total = vat_summary
        .iter()
        .fold(Money::ZERO, |sum, s| sum + s.taxable);
    let vat_total = vat_summary.iter().fold(Money::ZERO, |sum, s| sum + s.vat);
    Quote {
        lines: out_lines,
        vat_summary,
        net_total,
        vat_total,
        gross_total: net_total + vat_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(id: &str, cents: i64) -> PricedItem {
        PricedItem {
            product_id: id.into(),
            net_unit_price: Money::from_cents(cents),
            vat_rate: VatRate::STANDARD,
        }
    }

    #[test]
    fn one_combined_coupon() {
        let q = quote(&[(item("both", 2600), 1)]);
        assert_eq!(q.net_total.to_string(), "26.00");
        assert_eq!(q.vat_total.to_string(), "5.72");
        assert_eq!(q.gross_total.to_string(), "31.72");
        assert_eq!(q.lines[0].informative_gross.to_string(), "31.72");
    }

    #[test]
    fn a_thousand_coupons_tax_matches_taxable_times_rate() {
        // 0.99 × 22% = 0.2178: per-line rounding would give 0.22 × 1000 = 220.00;
        // the document rule gives 990.00 × 22% = 217.80.
        let q = quote(&[(item("cheap", 99), 1000)]);
        assert_eq!(q.net_total.to_string(), "990.00");
        assert_eq!(q.vat_total.to_string(), "217.80");
        assert_eq!(q.gross_total.to_string(), "1207.80");
    }

    #[test]
    fn half_cents_round_up() {
        // 0.25 × 22% = 0.055 → 0.06
        let q = quote(&[(item("x", 25), 1)]);
        assert_eq!(q.vat_total.to_string(), "0.06");
    }

    proptest! {
        #[test]
        fn tax_is_always_within_a_cent_of_taxable_times_rate(
            lines in proptest::collection::vec((1i64..100_000, 1u32..1000), 1..50)
        ) {
            let priced: Vec<(PricedItem, u32)> = lines
                .iter()
                .enumerate()
                .map(|(i, (cents, qty))| (item(&i.to_string(), *cents), *qty))
                .collect();
            let q = quote(&priced);
            let exact = q.net_total.amount() * VatRate::STANDARD.as_fraction();
            prop_assert!((q.vat_total.amount() - exact).abs() <= Decimal::new(5, 3));
            prop_assert_eq!(q.gross_total, q.net_total + q.vat_total);
            let line_sum = q.lines.iter().fold(Money::ZERO, |s, l| s + l.net_amount);
            prop_assert_eq!(line_sum, q.net_total);
        }
    }
}
