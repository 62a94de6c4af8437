//! The registry's tables: the only place that writes holders, devices and certificates,
//! and where they are read back.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::{CertificateKind, CertificateStatus, CodiceFiscale, DeviceKind, RenewalState};
use crate::db::schema::{certificates, devices, holders, renewals};
use crate::db::DbConnection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub id: String,
    pub codice_fiscale: CodiceFiscale,
    pub given_name: String,
    pub surname: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub serial_number: String,
    pub kind: DeviceKind,
    pub brand_id: String,
    pub activated_at: DateTime<Utc>,
    pub certificates: Vec<Certificate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub id: String,
    pub kind: CertificateKind,
    pub issuer: String,
    pub serial_number: String,
    pub subject: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub status: CertificateStatus,
}

/// A holder with their devices (ordered by serial number) and, on each device, the
/// certificates in use or revoked (superseded ones are history and left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderDevices {
    pub holder: Holder,
    pub devices: Vec<Device>,
}

#[derive(Queryable)]
struct HolderRow {
    id: String,
    codice_fiscale: String,
    given_name: String,
    surname: String,
}

#[derive(Queryable)]
struct DeviceRow {
    id: String,
    serial_number: String,
    kind: DeviceKind,
    brand_id: String,
    activated_at: NaiveDateTime,
}

#[derive(Queryable)]
struct CertificateRow {
    id: String,
    kind: CertificateKind,
    issuer: String,
    serial_number: String,
    subject: String,
    not_before: NaiveDateTime,
    not_after: NaiveDateTime,
    status: CertificateStatus,
}

/// One round trip: the holder left-joined to their devices of `brand_id` and the
/// devices' current certificates. `Ok(None)` when no holder has this codice fiscale.
pub fn find_holder_devices(
    conn: &mut DbConnection,
    codice_fiscale: &CodiceFiscale,
    brand_id: &str,
) -> anyhow::Result<Option<HolderDevices>> {
    Ok(find_many_holders_devices(conn, std::slice::from_ref(codice_fiscale), brand_id)?.pop())
}

/// [`find_holder_devices`] for many holders at once, ordered by codice fiscale: one round
/// trip per few hundred holders, whatever their devices. Codici fiscali nobody holds are
/// left out.
pub fn find_many_holders_devices(
    conn: &mut DbConnection,
    codici_fiscali: &[CodiceFiscale],
    brand_id: &str,
) -> anyhow::Result<Vec<HolderDevices>> {
    let mut found = Vec::new();
    for chunk in codici_fiscali.chunks(IDS_PER_QUERY) {
        let wanted: Vec<&str> = chunk.iter().map(CodiceFiscale::as_str).collect();
        let rows: Vec<(HolderRow, Option<DeviceRow>, Option<CertificateRow>)> = holders::table
            .left_join(
                devices::table.on(devices::holder_id
                    .eq(holders::id)
                    .and(devices::brand_id.eq(brand_id.to_owned()))),
            )
            .left_join(
                certificates::table.on(certificates::device_id
                    .eq(devices::id)
                    .and(certificates::status.ne(CertificateStatus::Superseded.as_str()))),
            )
            .filter(holders::codice_fiscale.eq_any(wanted))
            .order((
                holders::codice_fiscale.asc(),
                devices::serial_number.asc(),
                certificates::kind.desc(),
            ))
            .select((
                (
                    holders::id,
                    holders::codice_fiscale,
                    holders::given_name,
                    holders::surname,
                ),
                (
                    devices::id,
                    devices::serial_number,
                    devices::kind,
                    devices::brand_id,
                    devices::activated_at,
                )
                    .nullable(),
                (
                    certificates::id,
                    certificates::kind,
                    certificates::issuer,
                    certificates::serial_number,
                    certificates::subject,
                    certificates::not_before,
                    certificates::not_after,
                    certificates::status,
                )
                    .nullable(),
            ))
            .load(conn)?;
        group_rows(rows, &mut found)?;
    }
    found.sort_by(|a, b| a.holder.codice_fiscale.cmp(&b.holder.codice_fiscale));
    Ok(found)
}

/// How many ids one query binds: well under SQLite's and PostgreSQL's limits on bound
/// parameters, and large enough that a list of a thousand takes a few round trips.
pub const IDS_PER_QUERY: usize = 500;

/// Rows ordered by holder, then device: each new holder or device starts a new group.
fn group_rows(
    rows: Vec<(HolderRow, Option<DeviceRow>, Option<CertificateRow>)>,
    found: &mut Vec<HolderDevices>,
) -> anyhow::Result<()> {
    let mut current: Option<HolderDevices> = None;
    for (holder_row, device_row, certificate_row) in rows {
        if current.as_ref().map(|c| &c.holder.id) != Some(&holder_row.id) {
            found.extend(current.take());
            current = Some(HolderDevices {
                holder: holder_from_row(holder_row)?,
                devices: Vec::new(),
            });
        }
        let devices = &mut current.as_mut().expect("set above").devices;
        let Some(device_row) = device_row else {
            continue;
        };
        if devices.last().map(|d| &d.id) != Some(&device_row.id) {
            devices.push(device_from_row(device_row));
        }
        if let Some(certificate_row) = certificate_row {
            let device = devices.last_mut().expect("pushed above");
            device
                .certificates
                .push(certificate_from_row(certificate_row));
        }
    }
    found.extend(current);
    Ok(())
}

fn holder_from_row(row: HolderRow) -> anyhow::Result<Holder> {
    Ok(Holder {
        codice_fiscale: CodiceFiscale::parse(&row.codice_fiscale)
            .map_err(|e| anyhow::anyhow!("holder {} has an invalid codice fiscale: {e}", row.id))?,
        id: row.id,
        given_name: row.given_name,
        surname: row.surname,
    })
}

fn device_from_row(row: DeviceRow) -> Device {
    Device {
        kind: row.kind,
        id: row.id,
        serial_number: row.serial_number,
        brand_id: row.brand_id,
        activated_at: row.activated_at.and_utc(),
        certificates: Vec::new(),
    }
}

fn certificate_from_row(row: CertificateRow) -> Certificate {
    Certificate {
        kind: row.kind,
        status: row.status,
        id: row.id,
        issuer: row.issuer,
        serial_number: row.serial_number,
        subject: row.subject,
        not_before: row.not_before.and_utc(),
        not_after: row.not_after.and_utc(),
    }
}

/// A certificate's renewal still in progress (at most one per certificate).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct OpenRenewal {
    pub certificate_id: String,
    pub renewal_id: String,
    pub state: RenewalState,
}

/// The open renewal of each of these certificates, if any: what the lookup shows as
/// `renewal_pending` or `ready_to_install`.
pub fn open_renewals(
    conn: &mut DbConnection,
    certificate_ids: &[&str],
) -> QueryResult<Vec<OpenRenewal>> {
    let mut open = Vec::new();
    for chunk in certificate_ids.chunks(IDS_PER_QUERY) {
        open.extend(
            renewals::table
                .filter(renewals::certificate_id.eq_any(chunk))
                .filter(renewals::status.eq_any(RenewalState::open()))
                .order(renewals::certificate_id.asc())
                .select((renewals::certificate_id, renewals::id, renewals::status))
                .load::<OpenRenewal>(conn)?,
        );
    }
    Ok(open)
}

/// How many renewals of one kind a device has had (or has under way): what the device's
/// renewal limit counts. Renewals that gave their coupon back do not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRenewalCount {
    pub device_id: String,
    pub kind: CertificateKind,
    pub count: u32,
}

/// The counted renewals of each of these devices, per kind (kinds never renewed are left
/// out: their count is 0).
pub fn renewal_counts(
    conn: &mut DbConnection,
    device_ids: &[&str],
) -> anyhow::Result<Vec<DeviceRenewalCount>> {
    let mut rows: Vec<(String, CertificateKind, i64)> = Vec::new();
    for chunk in device_ids.chunks(IDS_PER_QUERY) {
        rows.extend(
            renewals::table
                .filter(renewals::device_id.eq_any(chunk))
                .filter(renewals::status.eq_any(RenewalState::counted()))
                .group_by((renewals::device_id, renewals::kind))
                .select((
                    renewals::device_id,
                    renewals::kind,
                    diesel::dsl::count_star(),
                ))
                .order((renewals::device_id.asc(), renewals::kind.asc()))
                .load::<(String, CertificateKind, i64)>(conn)?,
        );
    }
    Ok(rows
        .into_iter()
        .map(|(device_id, kind, count)| DeviceRenewalCount {
            kind,
            device_id,
            count: u32::try_from(count).unwrap_or(u32::MAX),
        })
        .collect())
}

/// A holder to register.
pub struct NewHolder<'a> {
    pub codice_fiscale: &'a CodiceFiscale,
    pub given_name: &'a str,
    pub surname: &'a str,
    pub email: Option<&'a str>,
    pub mobile: Option<&'a str>,
}

/// The holder registered with this codice fiscale, if any.
pub fn find_holder(
    conn: &mut DbConnection,
    codice_fiscale: &CodiceFiscale,
) -> QueryResult<Option<Holder>> {
    let found: Option<(String, String, String)> = holders::table
        .filter(holders::codice_fiscale.eq(codice_fiscale.as_str()))
        .select((holders::id, holders::given_name, holders::surname))
        .first(conn)
        .optional()?;
    Ok(found.map(|(id, given_name, surname)| Holder {
        id,
        codice_fiscale: codice_fiscale.clone(),
        given_name,
        surname,
    }))
}

/// The id of the device registered with this serial number, if any.
pub fn find_device_id(conn: &mut DbConnection, serial_number: &str) -> QueryResult<Option<String>> {
    devices::table
        .filter(devices::serial_number.eq(serial_number))
        .select(devices::id)
        .first(conn)
        .optional()
}

/// Registers a holder; returns their id.
pub fn add_holder(
    conn: &mut DbConnection,
    holder: &NewHolder<'_>,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(holders::table)
        .values((
            holders::id.eq(&id),
            holders::codice_fiscale.eq(holder.codice_fiscale.as_str()),
            holders::given_name.eq(holder.given_name),
            holders::surname.eq(holder.surname),
            holders::email.eq(holder.email),
            holders::mobile.eq(holder.mobile),
            holders::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
}

/// A device to register for a holder.
pub struct NewDevice<'a> {
    pub holder_id: &'a str,
    pub brand_id: &'a str,
    pub serial_number: &'a str,
    pub kind: DeviceKind,
    pub activated_at: DateTime<Utc>,
}

/// Registers a device; returns its id.
pub fn add_device(
    conn: &mut DbConnection,
    device: &NewDevice<'_>,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(devices::table)
        .values((
            devices::id.eq(&id),
            devices::holder_id.eq(device.holder_id),
            devices::brand_id.eq(device.brand_id),
            devices::serial_number.eq(device.serial_number),
            devices::kind.eq(device.kind.as_str()),
            devices::activated_at.eq(device.activated_at.naive_utc()),
            devices::created_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
}

/// A certificate to register on a device.
pub struct NewCertificate<'a> {
    pub device_id: &'a str,
    pub kind: CertificateKind,
    pub issuer: &'a str,
    pub serial_number: &'a str,
    pub subject: &'a str,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub status: CertificateStatus,
    /// Unknown for certificates loaded without their key (the demo's).
    pub public_key_sha256: Option<&'a str>,
}

/// Registers a certificate; returns its id.
pub fn add_certificate(
    conn: &mut DbConnection,
    certificate: &NewCertificate<'_>,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    let id = Uuid::now_v7().to_string();
    diesel::insert_into(certificates::table)
        .values((
            certificates::id.eq(&id),
            certificates::device_id.eq(certificate.device_id),
            certificates::kind.eq(certificate.kind.as_str()),
            certificates::issuer.eq(certificate.issuer),
            certificates::serial_number.eq(certificate.serial_number),
            certificates::subject.eq(certificate.subject),
            certificates::not_before.eq(certificate.not_before.naive_utc()),
            certificates::not_after.eq(certificate.not_after.naive_utc()),
            certificates::status.eq(certificate.status.as_str()),
            certificates::created_at.eq(now.naive_utc()),
            certificates::public_key_sha256.eq(certificate.public_key_sha256),
        ))
        .execute(conn)?;
    Ok(id)
}

/// A renewed certificate is installed: the old one (if still active) is superseded and
/// the new one, registered `active`, takes its place. Superseded first, as a device
/// holds one active certificate per kind. Returns the new certificate's id.
pub fn activate_renewed(
    conn: &mut DbConnection,
    old_certificate_id: &str,
    renewed: &NewCertificate<'_>,
    now: DateTime<Utc>,
) -> QueryResult<String> {
    diesel::update(
        certificates::table
            .filter(certificates::id.eq(old_certificate_id))
            .filter(certificates::status.eq(CertificateStatus::Active.as_str())),
    )
    .set(certificates::status.eq(CertificateStatus::Superseded.as_str()))
    .execute(conn)?;
    add_certificate(conn, renewed, now)
}

/// Moves the validity of the certificate `issuer` + `serial_number`; returns how many
/// certificates moved (0 if none is registered). Only the demo does this, so that a demo
/// loaded weeks ago shows every renewal status again.
pub fn redate_certificate(
    conn: &mut DbConnection,
    issuer: &str,
    serial_number: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        certificates::table
            .filter(certificates::issuer.eq(issuer))
            .filter(certificates::serial_number.eq(serial_number)),
    )
    .set((
        certificates::not_before.eq(not_before.naive_utc()),
        certificates::not_after.eq(not_after.naive_utc()),
    ))
    .execute(conn)
}
