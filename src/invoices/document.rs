//! What an invoice says, as plain data: the seller, the buyer, the lines and the VAT
//! summary. [`super::fatturapa`] writes it as a FatturaPA file; the store keeps the
//! seller and the buyer as JSON, as they were when the invoice was issued.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::brands::Brand;
use crate::catalog::round_to_cent;
use crate::money::Money;
use crate::transfer::PaymentMethod;

/// An address as FatturaPA has it (Sede): the file is written from it, and the courtesy
/// copy reads it back into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub indirizzo: String,
    /// Five digits.
    pub cap: String,
    pub comune: String,
    /// Two-letter code, for addresses in Italy.
    pub provincia: Option<String>,
    /// ISO 3166 alpha-2.
    pub nazione: String,
}

/// The seller (CedentePrestatore).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seller {
    pub denominazione: String,
    /// Without the IT prefix.
    pub partita_iva: String,
    pub codice_fiscale: Option<String>,
    /// RF01 for the regime ordinario.
    pub regime_fiscale: String,
    pub sede: Address,
    pub rea: Option<Rea>,
}

/// The seller's entry in the Repertorio Economico Amministrativo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rea {
    /// The provincia of the chamber of commerce.
    pub ufficio: String,
    pub numero: String,
}

impl Seller {
    /// The brand's seller data.
    pub fn of(brand: &Brand) -> Self {
        let optional = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        Self {
            denominazione: brand.seller_name.clone(),
            partita_iva: brand.seller_partita_iva.clone(),
            codice_fiscale: optional(&brand.seller_codice_fiscale),
            regime_fiscale: brand.seller_regime_fiscale.clone(),
            sede: Address {
                indirizzo: brand.seller_indirizzo.clone(),
                cap: brand.seller_cap.clone(),
                comune: brand.seller_comune.clone(),
                provincia: optional(&brand.seller_provincia),
                nazione: brand.seller_nazione.clone(),
            },
            rea: match (
                optional(&brand.seller_rea_ufficio),
                optional(&brand.seller_rea_numero),
            ) {
                (Some(ufficio), Some(numero)) => Some(Rea { ufficio, numero }),
                _ => None,
            },
        }
    }
}

/// Who the buyer is: a person (nome, cognome) or a business or professional
/// (denominazione).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BuyerName {
    Person { nome: String, cognome: String },
    Business { denominazione: String },
}

/// The buyer (CessionarioCommittente) and how the SdI reaches them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    pub name: BuyerName,
    /// A business's partita IVA, without the IT prefix.
    pub partita_iva: Option<String>,
    pub codice_fiscale: Option<String>,
    /// Required by the SdI; `None` only for an order placed before billing data were
    /// required (see [`super::buyers_of`]).
    pub sede: Option<Address>,
    /// Seven characters; `None` for a consumer or when a PEC is given (`0000000`).
    pub codice_destinatario: Option<String>,
    pub pec: Option<String>,
}

/// A line of the invoice (DettaglioLinee).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub description: String,
    pub quantity: i32,
    pub unit_price: Money,
    /// unit price × quantity: the order stores it.
    pub total: Money,
    pub vat_rate_basis_points: i32,
}

/// One VAT rate's totals (DatiRiepilogo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VatSummary {
    pub vat_rate_basis_points: i32,
    pub taxable: Money,
    pub tax: Money,
}

/// The VAT summary of the lines: per rate, the taxable total and its tax rounded half up
/// to the cent, the rule of the checkout's quote, so the invoice says what the order did.
pub fn vat_summary(lines: &[Line]) -> Vec<VatSummary> {
    let mut taxable_by_rate: BTreeMap<i32, Money> = BTreeMap::new();
    for line in lines {
        let taxable = taxable_by_rate
            .entry(line.vat_rate_basis_points)
            .or_insert(Money::ZERO);
        *taxable = *taxable + line.total;
    }
    taxable_by_rate
        .into_iter()
        .map(|(rate, taxable)| VatSummary {
            vat_rate_basis_points: rate,
            taxable,
            tax: round_to_cent(taxable.amount() * Decimal::new(rate as i64, 4)),
        })
        .collect()
}

/// The VAT summary of a credit note's `lines`, given the `earlier` lines the invoice's
/// earlier credit notes credited. Per rate, the taxable is the lines' own; the tax is
/// what brings the tax credited so far to that of [`vat_summary`] on everything credited
/// so far. The first credit note's tax is exactly [`vat_summary`]'s; a later one's may
/// differ from it by a cent, within the SdI's tolerance on Imposta, so that the credit
/// notes of an invoice crediting all its coupons, one by one or in any grouping, give
/// back exactly its tax and never more (the rounding of each unit's tax on its own would
/// add up, per unit, to more than the invoice's rounding of the whole).
pub fn credit_vat_summary(earlier: &[Line], lines: &[Line]) -> Vec<VatSummary> {
    let before = vat_summary(earlier);
    let after = vat_summary(&[earlier, lines].concat());
    let tax_at = |summary: &[VatSummary], rate: i32| {
        summary
            .iter()
            .find(|s| s.vat_rate_basis_points == rate)
            .map_or(Money::ZERO, |s| s.tax)
    };
    vat_summary(lines)
        .into_iter()
        .map(|own| VatSummary {
            tax: tax_at(&after, own.vat_rate_basis_points)
                - tax_at(&before, own.vat_rate_basis_points),
            ..own
        })
        .collect()
}

/// How the invoice says it was paid (ModalitaPagamento).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMode {
    /// MP22, trattenuta su somme già riscosse: the price is taken from the buyer's
    /// prepaid balance, money the seller already received (the top-up is not invoiced).
    FromPrepaidBalance,
    /// MP05, bonifico.
    BankTransfer,
    /// MP18, bollettino di c/c postale.
    PostalSlip,
    /// MP02, assegno.
    Cheque,
    /// MP08, carta di pagamento.
    Card,
}

impl PaymentMode {
    pub fn of(method: PaymentMethod) -> Self {
        match method {
            PaymentMethod::Prepaid => Self::FromPrepaidBalance,
            PaymentMethod::BankTransfer => Self::BankTransfer,
            PaymentMethod::PostalSlip => Self::PostalSlip,
            PaymentMethod::Cheque => Self::Cheque,
            PaymentMethod::Card => Self::Card,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::FromPrepaidBalance => "MP22",
            Self::BankTransfer => "MP05",
            Self::PostalSlip => "MP18",
            Self::Cheque => "MP02",
            Self::Card => "MP08",
        }
    }
}

/// What the document settles or corrects: an invoice says how it was paid
/// (DatiPagamento); a credit note names the invoice it corrects (DatiFattureCollegate) and
/// has no payment: it settles nothing by itself (a void refunds to the prepaid account, a
/// reversal follows money the bank already took back).
#[derive(Debug, Clone, Copy)]
pub enum Settles<'a> {
    /// TD01.
    Sale(PaymentMode),
    /// TD04.
    Credit(CreditedInvoice<'a>),
}

/// The invoice a credit note corrects (DatiFattureCollegate).
#[derive(Debug, Clone, Copy)]
pub struct CreditedInvoice<'a> {
    pub number: &'a str,
    pub date: chrono::NaiveDate,
}

/// Everything the FatturaPA file of one invoice or credit note holds (a credit note's
/// amounts positive, its buyer as stored on the invoice it credits).
#[derive(Debug, Clone)]
pub struct Document<'a> {
    /// IdCodice of the transmitter (IdPaese IT).
    pub transmitter: &'a str,
    pub progressivo_invio: &'a str,
    pub number: &'a str,
    pub date: chrono::NaiveDate,
    pub seller: &'a Seller,
    pub buyer: &'a Buyer,
    pub lines: &'a [Line],
    pub vat_summary: &'a [VatSummary],
    pub total: Money,
    pub settles: Settles<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(unit_cents: i64, quantity: i32, rate: i32) -> Line {
        Line {
            description: "x".into(),
            quantity,
            unit_price: Money::from_cents(unit_cents),
            total: Money::from_cents(unit_cents * quantity as i64),
            vat_rate_basis_points: rate,
        }
    }

    #[test]
    fn tax_is_per_rate_on_the_taxable_total_rounded_half_up() {
        // 22%: 3 × 0.13 + 1 × 0.12 = 0.51 → 0.1122 → 0.11; per line it would be
        // 0.0858 → 0.09 and 0.0264 → 0.03, 0.12 in all.
        // 10%: 0.05 → 0.005 → 0.01 (half up, not to even).
        // 4%: 10.00 + 2.50 = 12.50 → 0.50.
        let lines = [
            line(13, 3, 2200),
            line(12, 1, 2200),
            line(5, 1, 1000),
            line(1000, 1, 400),
            line(250, 1, 400),
        ];
        let summary = vat_summary(&lines);
        let figures: Vec<(i32, i64, i64)> = summary
            .iter()
            .map(|s| (s.vat_rate_basis_points, s.taxable.cents(), s.tax.cents()))
            .collect();
        assert_eq!(figures, vec![(400, 1250, 50), (1000, 5, 1), (2200, 51, 11)]);
    }

    #[test]
    fn credit_notes_together_give_back_exactly_the_invoices_tax() {
        // 12.35 at 22% is 2.717 → 2.72 alone; two of them, 24.70, 5.434 → 5.43.
        let unit = line(1235, 1, 2200);
        let first = credit_vat_summary(&[], std::slice::from_ref(&unit));
        assert_eq!(first, vat_summary(std::slice::from_ref(&unit)));
        assert_eq!(first[0].tax.cents(), 272);
        let second = credit_vat_summary(std::slice::from_ref(&unit), std::slice::from_ref(&unit));
        assert_eq!(
            (second[0].taxable.cents(), second[0].tax.cents()),
            (1235, 271)
        );
        assert_eq!(vat_summary(&[line(1235, 2, 2200)])[0].tax.cents(), 543);
        // A rate first credited now counts from nothing.
        let other = credit_vat_summary(&[unit], &[line(5, 1, 1000)]);
        assert_eq!(other, vat_summary(&[line(5, 1, 1000)]));
    }

    #[test]
    fn the_summary_matches_the_checkouts_quote() {
        use crate::catalog::{quote, PricedItem, VatRate};
        let items = [(1999, 7, 2200), (333, 3, 2200), (1001, 2, 1000)];
        let priced: Vec<(PricedItem, u32)> = items
            .iter()
            .map(|&(cents, quantity, rate)| {
                (
                    PricedItem {
                        product_id: format!("p{cents}"),
                        net_unit_price: Money::from_cents(cents),
                        vat_rate: VatRate::from_basis_points(rate).unwrap(),
                    },
                    quantity,
                )
            })
            .collect();
        let quoted = quote(&priced);
        let lines: Vec<Line> = items
            .iter()
            .map(|&(cents, quantity, rate)| line(cents, quantity as i32, rate as i32))
            .collect();
        let summary = vat_summary(&lines);
        let tax: i64 = summary.iter().map(|s| s.tax.cents()).sum();
        let taxable: i64 = summary.iter().map(|s| s.taxable.cents()).sum();
        assert_eq!(tax, quoted.vat_total.cents());
        assert_eq!(taxable, quoted.net_total.cents());
    }
}

#[cfg(test)]
mod seed_tests {
    use crate::partita_iva::PartitaIva;

    /// The seeded seller data are what the SdI checks: a partita IVA with its check digit,
    /// a CAP of five digits, a regime fiscale, a transmitter's codice fiscale.
    #[test]
    fn every_seeded_brand_has_valid_seller_data() {
        let seeds: serde_json::Value =
            serde_json::from_str(include_str!("../../seeds/brands.json")).unwrap();
        for brand in seeds["brands"].as_array().unwrap() {
            let field = |name: &str| brand[name].as_str().unwrap().to_owned();
            PartitaIva::parse(&field("seller_partita_iva")).unwrap();
            PartitaIva::parse(&field("seller_codice_fiscale")).unwrap();
            PartitaIva::parse(&field("transmitter_codice")).unwrap();
            let cap = field("seller_cap");
            assert!(cap.len() == 5 && cap.chars().all(|c| c.is_ascii_digit()));
            assert_eq!(field("seller_regime_fiscale"), "RF01");
            assert_eq!(field("seller_provincia").len(), 2);
            assert_eq!(field("seller_nazione"), "IT");
        }
    }
}
