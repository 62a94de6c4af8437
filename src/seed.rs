//! Loads `seeds/`: the brands every installation needs, and (on request) the demo
//! registry. The files are compiled into the binary, so `rinnovo seed` works wherever
//! the binary runs. Loading is idempotent: rows are found by their natural keys (brand
//! id, codice fiscale, device serial, certificate issuer + serial) and only missing ones
//! are inserted; demo certificates get their dates refreshed, so a demo that was loaded
//! weeks ago shows every status again after `rinnovo seed --demo`.

use chrono::{DateTime, Duration, Timelike, Utc};
use diesel::prelude::*;
use serde::Deserialize;

use crate::brands::{self, Brand};
use crate::catalog::{self, Covers, NewProduct};
use crate::db::{write_transaction, DbConnection};
use crate::money::PositiveMoney;
use crate::registry::{
    self, CertificateKind, CertificateStatus, CodiceFiscale, DeviceKind, NewCertificate, NewDevice,
    NewHolder,
};

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
    brands: Vec<Brand>,
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
    let now = Utc::now();
    write_transaction(conn, |conn| {
        let mut report = SeedReport::default();
        for brand in &file.brands {
            if brands::add_or_fill_in(conn, brand, now)? {
                report.brands_added += 1;
            }
        }
        let catalog: CatalogFile = serde_json::from_str(CATALOG)?;
        for brand in &catalog.brands {
            for (position, product) in catalog.products.iter().enumerate() {
                let product = NewProduct {
                    code: &product.code,
                    name: &product.name,
                    covers: product.covers,
                    professional: product.professional,
                    net_price_cents: product.net_price.cents(),
                    vat_rate_basis_points: catalog.vat_rate_basis_points,
                    sort_order: position as i32,
                };
                if catalog::add_if_missing(conn, brand, &product, now)? {
                    report.products_added += 1;
                }
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
    let at = |days: i64| now + Duration::days(days);
    write_transaction(conn, |conn| {
        let mut report = SeedReport::default();
        for holder in &file.holders {
            let existing = registry::find_holder(conn, &holder.codice_fiscale)?.map(|h| h.id);
            let holder_id = existing_or_added(existing, &mut report.holders_added, || {
                registry::add_holder(
                    conn,
                    &NewHolder {
                        codice_fiscale: &holder.codice_fiscale,
                        given_name: &holder.given_name,
                        surname: &holder.surname,
                        email: holder.email.as_deref(),
                        mobile: holder.mobile.as_deref(),
                    },
                    now,
                )
            })?;
            for device in &holder.devices {
                let existing = registry::find_device_id(conn, &device.serial_number)?;
                let device_id = existing_or_added(existing, &mut report.devices_added, || {
                    registry::add_device(
                        conn,
                        &NewDevice {
                            holder_id: &holder_id,
                            brand_id: &device.brand,
                            serial_number: &device.serial_number,
                            kind: device.kind,
                            activated_at: at(-device.activated_days_ago),
                        },
                        now,
                    )
                })?;
                for certificate in &device.certificates {
                    let not_before = at(-certificate.issued_days_ago);
                    let not_after = at(certificate.expires_in_days);
                    let refreshed = registry::redate_certificate(
                        conn,
                        &file.issuer,
                        &certificate.serial_number,
                        not_before,
                        not_after,
                    )?;
                    if refreshed > 0 {
                        report.certificates_refreshed += refreshed;
                        continue;
                    }
                    registry::add_certificate(
                        conn,
                        &NewCertificate {
                            device_id: &device_id,
                            kind: certificate.kind,
                            issuer: &file.issuer,
                            serial_number: &certificate.serial_number,
                            subject: &demo_subject(holder),
                            not_before,
                            not_after,
                            status: certificate.status,
                            public_key_sha256: None,
                        },
                        now,
                    )?;
                    report.certificates_added += 1;
                }
            }
        }
        Ok(report)
    })
}

/// The id of the row the seed found, or of the one `add` registers (counted in `added`).
fn existing_or_added(
    existing: Option<String>,
    added: &mut usize,
    add: impl FnOnce() -> QueryResult<String>,
) -> QueryResult<String> {
    match existing {
        Some(id) => Ok(id),
        None => {
            *added += 1;
            add()
        }
    }
}

/// The subject a demo holder's certificates name, as the CA writes it.
fn demo_subject(holder: &HolderSeed) -> String {
    crate::ca::Subject {
        codice_fiscale: holder.codice_fiscale.to_string(),
        given_name: holder.given_name.clone(),
        surname: holder.surname.clone(),
    }
    .display()
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
