//! The catalog: renewal coupons each brand sells, with net price and IVA rate, and the
//! proposal of which coupons renew a device's renewable certificates.

pub mod bulk;
pub mod quote;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

pub use quote::{quote, round_to_cent, PricedItem, Quote, QuoteLine, VatRate, VatSummary};

use crate::audit::{self, Actor, AuditEntry, Operator};
use crate::auth::Role;
use crate::db::schema::products;
use crate::db::{write_transaction, DbConnection};
use crate::lookup::{self, LookupError};
use crate::money::Money;
use crate::registry::{CertificateKind, CodiceFiscale};

text_enum!(
    /// Which certificates of a device one coupon renews.
    Covers { Signature => "signature", Authentication => "authentication", Both => "both" }
);

impl Covers {
    pub fn kinds(self) -> &'static [CertificateKind] {
        match self {
            Covers::Signature => &[CertificateKind::Signature],
            Covers::Authentication => &[CertificateKind::Authentication],
            Covers::Both => &[CertificateKind::Signature, CertificateKind::Authentication],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub brand_id: String,
    pub code: String,
    pub name: String,
    pub covers: Covers,
    pub professional: bool,
    pub net_price: Money,
    pub vat_rate: VatRate,
    pub active: bool,
    /// Temporarily unavailable: listed with this notice, and not sold.
    pub unavailable: Option<UnavailableNotice>,
}

/// Why (or until when) a product is temporarily unavailable, as the shop shows it beside
/// "momentaneamente non disponibile": one line of text, not blank, at most
/// [`UnavailableNotice::MAX_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnavailableNotice(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnavailableNoticeError {
    #[error("the notice is blank: say why the product is unavailable, or send null")]
    Blank,
    #[error(
        "the notice is longer than {} characters",
        UnavailableNotice::MAX_CHARS
    )]
    TooLong,
    #[error("the notice must be one line")]
    MultiLine,
}

impl UnavailableNotice {
    pub const MAX_CHARS: usize = 300;

    pub fn parse(text: &str) -> Result<Self, UnavailableNoticeError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(UnavailableNoticeError::Blank);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(UnavailableNoticeError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(UnavailableNoticeError::MultiLine);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl crate::validation::Rule for UnavailableNoticeError {
    /// The rule broken, as problem bodies name it.
    fn rule(&self) -> &'static str {
        match self {
            Self::Blank => "not_blank",
            Self::TooLong => "max_length",
            Self::MultiLine => "single_line",
        }
    }
}

impl Product {
    pub fn priced(&self) -> PricedItem {
        PricedItem {
            product_id: self.id.clone(),
            net_unit_price: self.net_price,
            vat_rate: self.vat_rate,
        }
    }
}

/// The most coupons a registration officer's order may hold: a full list of holders
/// looked up at once (the bulk lookup's limit, which checks at compile time that it fits),
/// each with a device of two certificates to renew, must fit one order.
pub const OFFICER_MAX_COUPONS: u32 = 2_000;

/// How many coupons one order may hold. Registration officers buy in bulk; a customer
/// buys for the devices in front of them, and a lower cap limits the damage of a stolen
/// session. Back-office operators do not buy.
pub fn max_coupons_per_order(role: Role) -> u32 {
    match role {
        Role::RegistrationOfficer => OFFICER_MAX_COUPONS,
        Role::Customer => 20,
        Role::BackOffice => 0,
    }
}

/// A line as the buyer asked for it: a product (its id or its code) and a quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedLine {
    pub product: String,
    pub quantity: u32,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum CatalogError {
        #[error("line {line}: no product '{product}' in this shop")]
        UnknownProduct { line: usize, product: String },
        #[error("line {line}: '{product}' is no longer sold")]
        InactiveProduct { line: usize, product: String },
        #[error("line {line}: '{product}' ({name}) is temporarily unavailable: {notice}")]
        UnavailableProduct {
            line: usize,
            product: String,
            name: String,
            notice: String,
        },
        #[error(
            "the same product appears on lines {first} and {second}; put the quantity on one line"
        )]
        DuplicateProduct { first: usize, second: usize },
    }
    storage from diesel::result::Error
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = products)]
struct ProductRow {
    id: String,
    brand_id: String,
    code: String,
    name: String,
    covers: Covers,
    professional: bool,
    net_price_cents: i64,
    vat_rate_basis_points: i32,
    active: bool,
    unavailable_notice: Option<String>,
}

fn from_row(row: ProductRow) -> anyhow::Result<Product> {
    let (id, rate) = (row.id, row.vat_rate_basis_points);
    Ok(Product {
        covers: row.covers,
        vat_rate: u32::try_from(rate)
            .ok()
            .and_then(VatRate::from_basis_points)
            .ok_or_else(|| anyhow::anyhow!("product {id} has VAT rate {rate}"))?,
        net_price: Money::from_cents(row.net_price_cents),
        id,
        brand_id: row.brand_id,
        code: row.code,
        name: row.name,
        professional: row.professional,
        active: row.active,
        // Stored only once parsed: a notice that no longer parses is still shown.
        unavailable: row
            .unavailable_notice
            .map(|text| UnavailableNotice::parse(&text).unwrap_or(UnavailableNotice(text))),
    })
}

/// The brand's products in shop order; inactive ones only when asked.
pub fn list(
    conn: &mut DbConnection,
    brand_id: &str,
    include_inactive: bool,
) -> anyhow::Result<Vec<Product>> {
    let mut query = products::table
        .filter(products::brand_id.eq(brand_id.to_owned()))
        .order((products::sort_order.asc(), products::code.asc()))
        .select(ProductRow::as_select())
        .into_boxed();
    if !include_inactive {
        query = query.filter(products::active.eq(true));
    }
    query
        .load::<ProductRow>(conn)?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Resolves requested lines to the brand's active products, in request order.
pub fn resolve(
    conn: &mut DbConnection,
    brand_id: &str,
    lines: &[RequestedLine],
) -> Result<Vec<(Product, u32)>, CatalogError> {
    let all = list(conn, brand_id, true)?;
    let mut by_key: HashMap<&str, &Product> = HashMap::new();
    for product in &all {
        by_key.insert(product.id.as_str(), product);
        by_key.insert(product.code.as_str(), product);
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut resolved = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        let product =
            by_key
                .get(line.product.as_str())
                .ok_or_else(|| CatalogError::UnknownProduct {
                    line: number,
                    product: line.product.clone(),
                })?;
        if !product.active {
            return Err(CatalogError::InactiveProduct {
                line: number,
                product: line.product.clone(),
            });
        }
        if let Some(notice) = &product.unavailable {
            return Err(CatalogError::UnavailableProduct {
                line: number,
                product: product.code.clone(),
                name: product.name.clone(),
                notice: notice.as_str().to_owned(),
            });
        }
        if let Some(first) = seen.insert(product.id.as_str(), number) {
            return Err(CatalogError::DuplicateProduct {
                first,
                second: number,
            });
        }
        resolved.push(((*product).clone(), line.quantity));
    }
    Ok(resolved)
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum ProductChangeError {
        #[error("no product with this id in your brand's catalog")]
        NotFound,
        #[error("nothing to change: send active, unavailable_notice, or both")]
        NothingToChange,
    }
    storage from diesel::result::Error
}

/// A product of the operator's brand, as a back-office operator names it.
#[derive(Clone, Copy)]
struct ProductOfBrand<'a> {
    operator_id: &'a str,
    brand_id: &'a str,
    product_id: &'a str,
}

/// The two switches of a product an operator flips on its own. Taken off sale
/// (`Active(false)`), a product can no longer be quoted or ordered, and coupons already
/// sold stay valid; unavailable (`Unavailable(Some(notice))`), it stays listed with its
/// notice and can be neither quoted, proposed nor ordered.
enum Switch<'a> {
    Active(bool),
    Unavailable(Option<&'a UnavailableNotice>),
}

/// Flips one switch of a product of the brand, audited, and answers the product as it is
/// now: both switches change, are refused and are logged the same way.
fn flip(
    conn: &mut DbConnection,
    product: ProductOfBrand<'_>,
    switch: Switch<'_>,
    now: DateTime<Utc>,
) -> Result<Product, ProductChangeError> {
    let ProductOfBrand {
        operator_id,
        brand_id,
        product_id,
    } = product;
    write_transaction(conn, |conn| {
        let row = products::table
            .filter(products::id.eq(product_id))
            .filter(products::brand_id.eq(brand_id));
        let (changed, action, details) = match switch {
            Switch::Active(active) => (
                diesel::update(row)
                    .set(products::active.eq(active))
                    .execute(conn)?,
                if active {
                    "product.activated"
                } else {
                    "product.deactivated"
                },
                serde_json::json!({ "active": active }),
            ),
            Switch::Unavailable(notice) => (
                diesel::update(row)
                    .set(products::unavailable_notice.eq(notice.map(UnavailableNotice::as_str)))
                    .execute(conn)?,
                if notice.is_some() {
                    "product.unavailable"
                } else {
                    "product.available"
                },
                serde_json::json!({ "notice": notice.map(UnavailableNotice::as_str) }),
            ),
        };
        if changed == 0 {
            return Err(ProductChangeError::NotFound);
        }
        audit::record(
            conn,
            AuditEntry {
                brand_id: Some(brand_id),
                actor: &Actor::User(operator_id.to_owned()),
                action,
                subject_type: "product",
                subject_id: product_id,
                details,
            },
            now,
        )?;
        let row: ProductRow = products::table
            .filter(products::id.eq(product_id))
            .select(ProductRow::as_select())
            .first(conn)?;
        Ok(from_row(row)?)
    })
}

/// What a back-office operator changes of a product; a part left `None` is kept.
#[derive(Debug, Clone, Default)]
pub struct ProductChange {
    pub active: Option<bool>,
    /// `Some(None)`: available again.
    pub unavailable: Option<Option<UnavailableNotice>>,
}

/// Makes `change` to the product, whole or not at all.
pub fn change(
    conn: &mut DbConnection,
    operator: Operator<'_>,
    product_id: &str,
    change: &ProductChange,
    now: DateTime<Utc>,
) -> Result<Product, ProductChangeError> {
    let Operator {
        id: operator_id,
        brand_id,
    } = operator;
    let product = ProductOfBrand {
        operator_id,
        brand_id,
        product_id,
    };
    write_transaction(conn, |conn| {
        let mut changed = None;
        if let Some(active) = change.active {
            changed = Some(flip(conn, product, Switch::Active(active), now)?);
        }
        if let Some(notice) = &change.unavailable {
            let switch = Switch::Unavailable(notice.as_ref());
            changed = Some(flip(conn, product, switch, now)?);
        }
        changed.ok_or(ProductChangeError::NothingToChange)
    })
}

/// A product as the catalog seed lists it.
pub struct NewProduct<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub covers: Covers,
    pub professional: bool,
    pub net_price_cents: i64,
    pub vat_rate_basis_points: i32,
    /// Place in the shop's list.
    pub sort_order: i32,
}

/// Puts `product` on sale in `brand_id`'s shop unless the brand already has a product
/// with its code (whatever an operator changed since is kept). True if added.
pub fn add_if_missing(
    conn: &mut DbConnection,
    brand_id: &str,
    product: &NewProduct<'_>,
    now: DateTime<Utc>,
) -> QueryResult<bool> {
    let exists: i64 = products::table
        .filter(products::brand_id.eq(brand_id))
        .filter(products::code.eq(product.code))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    diesel::insert_into(products::table)
        .values((
            products::id.eq(uuid::Uuid::now_v7().to_string()),
            products::brand_id.eq(brand_id),
            products::code.eq(product.code),
            products::name.eq(product.name),
            products::covers.eq(product.covers.as_str()),
            products::professional.eq(product.professional),
            products::net_price_cents.eq(product.net_price_cents),
            products::vat_rate_basis_points.eq(product.vat_rate_basis_points),
            products::active.eq(true),
            products::sort_order.eq(product.sort_order),
            products::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(true)
}

#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("the holder has no device {0} in this shop")]
    UnknownDevice(String),
    #[error("no certificate of device {0} can be renewed now")]
    NothingToRenew(String),
    #[error("this shop sells no coupon for what the device needs")]
    NoFittingProduct,
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

/// The coupons that renew every certificate of the device renewable now, at the lowest
/// price: the combined coupon when it costs less than the single ones, else one each.
/// Professional products are never proposed (they need a choice the lookup cannot make).
pub fn propose_for_device(
    conn: &mut DbConnection,
    policy: &lookup::RenewalPolicy,
    brand_id: &str,
    codice_fiscale: &CodiceFiscale,
    device_serial: &str,
    now: DateTime<Utc>,
) -> Result<Vec<RequestedLine>, ProposalError> {
    let found = lookup::lookup(conn, policy, codice_fiscale, brand_id, now)?;
    propose_from(conn, brand_id, found, device_serial)
}

/// [`propose_for_device`] asked by a user: the holder lookup it makes counts against the
/// caller's lookup limits, as a lookup does, so that quotes are no way around them.
pub fn propose_for_caller(
    conn: &mut DbConnection,
    asker: &lookup::Asker,
    brand_id: &str,
    codice_fiscale: &CodiceFiscale,
    device_serial: &str,
    now: DateTime<Utc>,
) -> Result<Vec<RequestedLine>, ProposalError> {
    let found = lookup::lookup_as(conn, asker, codice_fiscale, brand_id, now)?;
    propose_from(conn, brand_id, found, device_serial)
}

fn propose_from(
    conn: &mut DbConnection,
    brand_id: &str,
    found: lookup::Lookup,
    device_serial: &str,
) -> Result<Vec<RequestedLine>, ProposalError> {
    let device = found
        .devices
        .into_iter()
        .find(|d| d.device.serial_number == device_serial)
        .ok_or_else(|| ProposalError::UnknownDevice(device_serial.to_owned()))?;
    propose(&proposable(conn, brand_id)?, &device)
}

/// A holder's devices, and the coupons that renew the ones renewable now.
pub struct HolderProposal {
    pub found: lookup::Lookup,
    /// Every renewable device's coupons ([`propose`]), summed per product in catalog order.
    pub proposed: Vec<RequestedLine>,
    /// The products the proposal chose from ([`proposable`]), to name its lines.
    pub products: Vec<Product>,
}

/// The holder's devices looked up as the caller (counted against their lookup limits, as
/// every lookup is), and the coupons that renew every device renewable now: the shop's
/// proposal for one holder, as the bulk lookup makes it for a list.
pub fn propose_for_holder(
    conn: &mut DbConnection,
    asker: &lookup::Asker,
    brand_id: &str,
    codice_fiscale: &CodiceFiscale,
    now: DateTime<Utc>,
) -> Result<HolderProposal, ProposalError> {
    let found = lookup::lookup_as(conn, asker, codice_fiscale, brand_id, now)?;
    let products = proposable(conn, brand_id)?;
    let mut lines = Vec::new();
    for device in found
        .devices
        .iter()
        .filter(|d| !d.renew_together.is_empty())
    {
        lines.extend(propose(&products, device)?);
    }
    Ok(HolderProposal {
        proposed: summed(&products, lines.iter()),
        found,
        products,
    })
}

/// The lines summed per product, in the order of `products`.
pub(crate) fn summed<'a>(
    products: &[Product],
    lines: impl Iterator<Item = &'a RequestedLine>,
) -> Vec<RequestedLine> {
    let mut quantities: HashMap<&str, u32> = HashMap::new();
    for line in lines {
        *quantities.entry(line.product.as_str()).or_default() += line.quantity;
    }
    products
        .iter()
        .filter_map(|p| {
            quantities
                .get(p.id.as_str())
                .map(|&quantity| RequestedLine {
                    product: p.id.clone(),
                    quantity,
                })
        })
        .collect()
}

/// The brand's products as a user of `role` sees them: the back-office every one, inactive
/// ones included (it manages them); buyers and agents the ones on sale.
pub fn visible_to(
    conn: &mut DbConnection,
    brand_id: &str,
    role: Role,
) -> anyhow::Result<Vec<Product>> {
    list(conn, brand_id, role == Role::BackOffice)
}

/// The codes of the products, out of `products`, on sale and covering a certificate of
/// `kind`: the coupons that renew it.
pub fn codes_covering(products: &[Product], kind: CertificateKind) -> Vec<String> {
    products
        .iter()
        .filter(|p| p.active && p.covers.kinds().contains(&kind))
        .map(|p| p.code.clone())
        .collect()
}

/// The brand's products a proposal chooses from. An unavailable product is never
/// proposed: the order would refuse it.
pub fn proposable(conn: &mut DbConnection, brand_id: &str) -> anyhow::Result<Vec<Product>> {
    Ok(list(conn, brand_id, false)?
        .into_iter()
        .filter(|p| !p.professional && p.unavailable.is_none())
        .collect())
}

/// The coupons, out of `products` ([`proposable`]), that renew every certificate of the
/// device renewable now.
pub fn propose(
    products: &[Product],
    device: &lookup::DeviceView,
) -> Result<Vec<RequestedLine>, ProposalError> {
    if device.renew_together.is_empty() {
        return Err(ProposalError::NothingToRenew(
            device.device.serial_number.clone(),
        ));
    }
    cheapest_cover(products, &device.renew_together).ok_or(ProposalError::NoFittingProduct)
}

/// The cheapest set of products that covers exactly `needed` (one or both kinds).
fn cheapest_cover(products: &[Product], needed: &[CertificateKind]) -> Option<Vec<RequestedLine>> {
    let cheapest = |covers: Covers| {
        products
            .iter()
            .filter(|p| p.covers == covers)
            .min_by_key(|p| p.net_price)
    };
    let line = |p: &Product| RequestedLine {
        product: p.id.clone(),
        quantity: 1,
    };
    let single = |kind: CertificateKind| match kind {
        CertificateKind::Signature => cheapest(Covers::Signature),
        CertificateKind::Authentication => cheapest(Covers::Authentication),
    };
    if needed.len() == 1 {
        return single(needed[0]).map(|p| vec![line(p)]);
    }
    let separate = match (
        single(CertificateKind::Signature),
        single(CertificateKind::Authentication),
    ) {
        (Some(a), Some(b)) => Some((a.net_price + b.net_price, vec![line(a), line(b)])),
        _ => None,
    };
    let combined = cheapest(Covers::Both).map(|p| (p.net_price, vec![line(p)]));
    match (separate, combined) {
        (Some(s), Some(c)) => Some(if c.0 < s.0 { c.1 } else { s.1 }),
        (Some(s), None) => Some(s.1),
        (None, Some(c)) => Some(c.1),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: &str, covers: Covers, cents: i64) -> Product {
        Product {
            id: id.into(),
            brand_id: "visura".into(),
            code: id.into(),
            name: id.into(),
            covers,
            professional: false,
            net_price: Money::from_cents(cents),
            vat_rate: VatRate::STANDARD,
            active: true,
            unavailable: None,
        }
    }

    #[test]
    fn an_unavailable_notice_is_one_line_of_text() {
        assert_eq!(
            UnavailableNotice::parse("  Disponibile dal 15 gennaio ")
                .unwrap()
                .as_str(),
            "Disponibile dal 15 gennaio"
        );
        assert_eq!(
            UnavailableNotice::parse(" "),
            Err(UnavailableNoticeError::Blank)
        );
        assert_eq!(
            UnavailableNotice::parse("a\nb"),
            Err(UnavailableNoticeError::MultiLine)
        );
        assert_eq!(
            UnavailableNotice::parse(&"x".repeat(301)),
            Err(UnavailableNoticeError::TooLong)
        );
    }

    fn ids(lines: Option<Vec<RequestedLine>>) -> Vec<String> {
        lines.unwrap().into_iter().map(|l| l.product).collect()
    }

    #[test]
    fn the_combined_coupon_only_where_cheaper() {
        let both = [CertificateKind::Signature, CertificateKind::Authentication];
        let catalog = [
            product("sig", Covers::Signature, 1100),
            product("cns", Covers::Authentication, 1100),
            product("both", Covers::Both, 2600),
        ];
        assert_eq!(ids(cheapest_cover(&catalog, &both)), ["sig", "cns"]);
        let discounted = [
            product("sig", Covers::Signature, 1100),
            product("cns", Covers::Authentication, 1100),
            product("both", Covers::Both, 2000),
        ];
        assert_eq!(ids(cheapest_cover(&discounted, &both)), ["both"]);
        assert_eq!(
            ids(cheapest_cover(&catalog, &[CertificateKind::Authentication])),
            ["cns"]
        );
        assert!(cheapest_cover(&catalog[..1], &[CertificateKind::Authentication]).is_none());
    }
}
