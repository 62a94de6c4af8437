//! Reading the registry from the database.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

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
    kind: String,
    brand_id: String,
    activated_at: NaiveDateTime,
}

#[derive(Queryable)]
struct CertificateRow {
    id: String,
    kind: String,
    issuer: String,
    serial_number: String,
    subject: String,
    not_before: NaiveDateTime,
    not_after: NaiveDateTime,
    status: String,
}

/// One round trip: the holder left-joined to their devices of `brand_id` and the
/// devices' current certificates. `Ok(None)` when no holder has this codice fiscale.
pub fn find_holder_devices(
    conn: &mut DbConnection,
    codice_fiscale: &CodiceFiscale,
    brand_id: &str,
) -> anyhow::Result<Option<HolderDevices>> {
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
        .filter(holders::codice_fiscale.eq(codice_fiscale.as_str()))
        .order((devices::serial_number.asc(), certificates::kind.desc()))
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

    let Some((first, _, _)) = rows.first() else {
        return Ok(None);
    };
    let holder = Holder {
        id: first.id.clone(),
        codice_fiscale: CodiceFiscale::parse(&first.codice_fiscale).map_err(|e| {
            anyhow::anyhow!("holder {} has an invalid codice fiscale: {e}", first.id)
        })?,
        given_name: first.given_name.clone(),
        surname: first.surname.clone(),
    };

    let mut devices: Vec<Device> = Vec::new();
    for (_, device_row, certificate_row) in rows {
        let Some(device_row) = device_row else {
            continue;
        };
        // Rows arrive ordered by device, so a new device starts a new group.
        if devices.last().map(|d| &d.id) != Some(&device_row.id) {
            devices.push(device_from_row(device_row)?);
        }
        if let Some(certificate_row) = certificate_row {
            let device = devices.last_mut().expect("pushed above");
            device
                .certificates
                .push(certificate_from_row(certificate_row)?);
        }
    }
    Ok(Some(HolderDevices { holder, devices }))
}

fn device_from_row(row: DeviceRow) -> anyhow::Result<Device> {
    Ok(Device {
        kind: DeviceKind::parse(&row.kind)
            .ok_or_else(|| anyhow::anyhow!("device {} has unknown kind {}", row.id, row.kind))?,
        id: row.id,
        serial_number: row.serial_number,
        brand_id: row.brand_id,
        activated_at: row.activated_at.and_utc(),
        certificates: Vec::new(),
    })
}

fn certificate_from_row(row: CertificateRow) -> anyhow::Result<Certificate> {
    Ok(Certificate {
        kind: CertificateKind::parse(&row.kind).ok_or_else(|| {
            anyhow::anyhow!("certificate {} has unknown kind {}", row.id, row.kind)
        })?,
        status: CertificateStatus::parse(&row.status).ok_or_else(|| {
            anyhow::anyhow!("certificate {} has unknown status {}", row.id, row.status)
        })?,
        id: row.id,
        issuer: row.issuer,
        serial_number: row.serial_number,
        subject: row.subject,
        not_before: row.not_before.and_utc(),
        not_after: row.not_after.and_utc(),
    })
}

/// A certificate's renewal still in progress (at most one per certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    let rows: Vec<(String, String, String)> = renewals::table
        .filter(renewals::certificate_id.eq_any(certificate_ids))
        .filter(renewals::status.eq_any(RenewalState::OPEN))
        .select((renewals::certificate_id, renewals::id, renewals::status))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(certificate_id, renewal_id, status)| {
            RenewalState::parse(&status).map(|state| OpenRenewal {
                certificate_id,
                renewal_id,
                state,
            })
        })
        .collect())
}
