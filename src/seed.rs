//! Loads `seeds/`: the brands every installation needs, and (on request) the demo
//! registry. The files are compiled into the binary, so `rinnovo seed` works wherever
//! the binary runs. Loading is idempotent: rows are found by their natural keys (brand
//! id, codice fiscale, device serial, certificate issuer + serial) and only missing ones
//! are inserted; demo certificates get their dates refreshed, so a demo that was loaded
//! weeks ago shows every status again after `rinnovo seed --demo`.

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use crate::catalog::Covers;
use crate::db::schema::{brands, certificates, devices, holders, products};
use crate::db::{write_transaction, DbConnection};
use crate::money::PositiveMoney;
use crate::registry::{CertificateKind, CertificateStatus, CodiceFiscale, DeviceKind};

const BRANDS: &str = include_str!("../seeds/brands.json");
const DEMO: &str = include_str!("../seeds/demo.json");
const CATALOG: &str = include_str!("../seeds/catalog.json");

#[derive(Deserialize)]
struct CatalogFile {
    products: Vec<ProductSeed>,
    brands: Vec<String>,
    vat_rate_basis_points: i32,
}

#[derive(Deserialize)]
struct ProductSeed {
    code: String,
    name: String,
    covers: Covers,
    professional: bool,
    net_price: PositiveMoney,
}

#[derive(Deserialize)]
struct BrandsFile {
    brands: Vec<BrandSeed>,
}

#[derive(Deserialize)]
struct BrandSeed {
    id: String,
    name: String,
    sender_address: String,
    iban: String,
    postal_account: String,
    invoice_series: String,
}

#[derive(Deserialize)]
struct DemoFile {
    issuer: String,
    holders: Vec<HolderSeed>,
}

#[derive(Deserialize)]
struct HolderSeed {
    codice_fiscale: CodiceFiscale,
    given_name: String,
    surname: String,
    email: Option<String>,
    mobile: Option<String>,
    devices: Vec<DeviceSeed>,
}

#[derive(Deserialize)]
struct DeviceSeed {
    serial_number: String,
    kind: DeviceKind,
    brand: String,
    activated_days_ago: i64,
    certificates: Vec<CertificateSeed>,
}

#[derive(Deserialize)]
struct CertificateSeed {
    kind: CertificateKind,
    serial_number: String,
    issued_days_ago: i64,
    expires_in_days: i64,
    #[serde(default = "active")]
    status: CertificateStatus,
}

fn active() -> CertificateStatus {
    CertificateStatus::Active
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub brands_added: usize,
    pub products_added: usize,
    pub holders_added: usize,
    pub devices_added: usize,
    pub certificates_added: usize,
    pub certificates_refreshed: usize,
}

/// The brands and their catalogs, needed by every installation. Existing brands keep what an operator set;
/// only fields still empty (added by a later migration) are filled from the seed.
pub fn load_base(conn: &mut DbConnection) -> anyhow::Result<SeedReport> {
    let file: BrandsFile = serde_json::from_str(BRANDS)?;
    let now = Utc::now().naive_utc();
    write_transaction(conn, |conn| {
        let mut report = SeedReport::default();
        for brand in &file.brands {
            let exists: i64 = brands::table
                .filter(brands::id.eq(&brand.id))
                .count()
                .get_result(conn)?;
            if exists == 0 {
                diesel::insert_into(brands::table)
                    .values((
                        brands::id.eq(&brand.id),
                        brands::name.eq(&brand.name),
                        brands::sender_address.eq(&brand.sender_address),
                        brands::iban.eq(&brand.iban),
                        brands::postal_account.eq(&brand.postal_account),
                        brands::invoice_series.eq(&brand.invoice_series),
                        brands::created_at.eq(now),
                    ))
                    .execute(conn)?;
                report.brands_added += 1;
                continue;
            }
            let this = || brands::table.filter(brands::id.eq(&brand.id));
            diesel::update(this().filter(brands::sender_address.eq("")))
                .set(brands::sender_address.eq(&brand.sender_address))
                .execute(conn)?;
            diesel::update(this().filter(brands::iban.eq("")))
                .set(brands::iban.eq(&brand.iban))
                .execute(conn)?;
            diesel::update(this().filter(brands::postal_account.eq("")))
                .set(brands::postal_account.eq(&brand.postal_account))
                .execute(conn)?;
            diesel::update(this().filter(brands::invoice_series.eq("")))
                .set(brands::invoice_series.eq(&brand.invoice_series))
                .execute(conn)?;
        }
        let catalog: CatalogFile = serde_json::from_str(CATALOG)?;
        for brand in &catalog.brands {
            for (position, product) in catalog.products.iter().enumerate() {
                let exists: i64 = products::table
                    .filter(products::brand_id.eq(brand))
                    .filter(products::code.eq(&product.code))
                    .count()
                    .get_result(conn)?;
                if exists > 0 {
                    continue;
                }
                diesel::insert_into(products::table)
                    .values((
                        products::id.eq(Uuid::now_v7().to_string()),
                        products::brand_id.eq(brand),
                        products::code.eq(&product.code),
                        products::name.eq(&product.name),
                        products::covers.eq(product.covers.as_str()),
                        products::professional.eq(product.professional),
                        products::net_price_cents.eq(product.net_price.cents()),
                        products::vat_rate_basis_points.eq(catalog.vat_rate_basis_points),
                        products::active.eq(true),
                        products::sort_order.eq(position as i32),
                        products::created_at.eq(now),
                    ))
                    .execute(conn)?;
                report.products_added += 1;
            }
        }
        Ok(report)
    })
}

/// The demo registry, with dates relative to `now`. Needs the brands.
pub fn load_demo(conn: &mut DbConnection, now: DateTime<Utc>) -> anyhow::Result<SeedReport> {
    let file: DemoFile = serde_json::from_str(DEMO)?;
    // Whole seconds, as in real certificates (and PostgreSQL keeps only microseconds).
    let now = now.with_nanosecond(0).expect("0 is a valid nanosecond");
    let at = |days: i64| -> NaiveDateTime { (now + Duration::days(days)).naive_utc() };
    write_transaction(conn, |conn| {
        let mut report = SeedReport::default();
        for holder in &file.holders {
            let cf = holder.codice_fiscale.as_str();
            let existing: Option<String> = holders::table
                .filter(holders::codice_fiscale.eq(cf))
                .select(holders::id)
                .first(conn)
                .optional()?;
            let holder_id = match existing {
                Some(id) => id,
                None => {
                    let id = Uuid::now_v7().to_string();
                    diesel::insert_into(holders::table)
                        .values((
                            holders::id.eq(&id),
                            holders::codice_fiscale.eq(cf),
                            holders::given_name.eq(&holder.given_name),
                            holders::surname.eq(&holder.surname),
                            holders::email.eq(&holder.email),
                            holders::mobile.eq(&holder.mobile),
                            holders::created_at.eq(now.naive_utc()),
                        ))
                        .execute(conn)?;
                    report.holders_added += 1;
                    id
                }
            };
            for device in &holder.devices {
                let existing: Option<String> = devices::table
                    .filter(devices::serial_number.eq(&device.serial_number))
                    .select(devices::id)
                    .first(conn)
                    .optional()?;
                let device_id = match existing {
                    Some(id) => id,
                    None => {
                        let id = Uuid::now_v7().to_string();
                        diesel::insert_into(devices::table)
                            .values((
                                devices::id.eq(&id),
                                devices::holder_id.eq(&holder_id),
                                devices::brand_id.eq(&device.brand),
                                devices::serial_number.eq(&device.serial_number),
                                devices::kind.eq(device.kind.as_str()),
                                devices::activated_at.eq(at(-device.activated_days_ago)),
                                devices::created_at.eq(now.naive_utc()),
                            ))
                            .execute(conn)?;
                        report.devices_added += 1;
                        id
                    }
                };
                for certificate in &device.certificates {
                    let not_before = at(-certificate.issued_days_ago);
                    let not_after = at(certificate.expires_in_days);
                    let refreshed = diesel::update(
                        certificates::table
                            .filter(certificates::issuer.eq(&file.issuer))
                            .filter(certificates::serial_number.eq(&certificate.serial_number)),
                    )
                    .set((
                        certificates::not_before.eq(not_before),
                        certificates::not_after.eq(not_after),
                    ))
                    .execute(conn)?;
                    if refreshed > 0 {
                        report.certificates_refreshed += refreshed;
                        continue;
                    }
                    diesel::insert_into(certificates::table)
                        .values((
                            certificates::id.eq(Uuid::now_v7().to_string()),
                            certificates::device_id.eq(&device_id),
                            certificates::kind.eq(certificate.kind.as_str()),
                            certificates::issuer.eq(&file.issuer),
                            certificates::serial_number.eq(&certificate.serial_number),
                            certificates::subject.eq(demo_subject(holder)),
                            certificates::not_before.eq(not_before),
                            certificates::not_after.eq(not_after),
                            certificates::status.eq(certificate.status.as_str()),
                            certificates::created_at.eq(now.naive_utc()),
                        ))
                        .execute(conn)?;
                    report.certificates_added += 1;
                }
            }
        }
        Ok(report)
    })
}

/// The subject of a qualified certificate for a natural person (ETSI EN 319 412-2):
/// the codice fiscale goes in `serialNumber` with the `TINIT-` prefix.
fn demo_subject(holder: &HolderSeed) -> String {
    format!(
        "C=IT, SN={surname}, GN={given}, serialNumber=TINIT-{cf}, CN={surname} {given}",
        surname = holder.surname.to_uppercase(),
        given = holder.given_name.to_uppercase(),
        cf = holder.codice_fiscale,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_files_parse() {
        let demo: DemoFile = serde_json::from_str(DEMO).unwrap();
        assert!(demo.holders.iter().any(|h| h.devices.is_empty()));
        let brands: BrandsFile = serde_json::from_str(BRANDS).unwrap();
        for device in demo.holders.iter().flat_map(|h| &h.devices) {
            assert!(brands.brands.iter().any(|b| b.id == device.brand));
        }
    }
}
