//! What the agent reads about its renewal, and its confirmation that the new certificate
//! is installed on the device: the registry then swaps the certificates and the coupon
//! is redeemed, in one transaction. Confirming twice changes nothing the second time.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::notify::{self, Notice};
use super::state;
use super::RenewalState;
use crate::audit::{self, Actor, AuditEntry};
use crate::db::schema::{certificates, renewals};
use crate::db::{write_transaction, DbConnection};
use crate::registry::{self, CertificateKind, CertificateStatus, NewCertificate};

/// A renewal as its device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalView {
    pub id: String,
    pub certificate_id: String,
    pub kind: CertificateKind,
    pub status: RenewalState,
    pub created_at: DateTime<Utc>,
    pub issued: Option<IssuedCertificate>,
    pub installed_at: Option<DateTime<Utc>>,
    /// The new certificate's id in the registry, once installed.
    pub new_certificate_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub pem: String,
    pub serial_number: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum InstallError {
        #[error("no renewal {0} for this device")]
        NotFound(String),
        #[error("the renewal is {0}: its certificate is not issued")]
        NotIssued(RenewalState),
    }
    storage from diesel::result::Error
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = renewals)]
struct RenewalRow {
    id: String,
    certificate_id: String,
    kind: CertificateKind,
    status: RenewalState,
    created_at: NaiveDateTime,
    certificate_pem: Option<String>,
    issued_serial_number: Option<String>,
    issued_not_before: Option<NaiveDateTime>,
    issued_not_after: Option<NaiveDateTime>,
    issued_at: Option<NaiveDateTime>,
    installed_at: Option<NaiveDateTime>,
    new_certificate_id: Option<String>,
}

/// Renewal `renewal_id` of device `device_id`, refused as unknown if the device has no
/// such renewal (another device's renewal is as unknown as a made-up id).
pub fn find(
    conn: &mut DbConnection,
    device_id: &str,
    renewal_id: &str,
) -> Result<RenewalView, InstallError> {
    let row: RenewalRow = renewals::table
        .filter(renewals::id.eq(renewal_id))
        .filter(renewals::device_id.eq(device_id))
        .select(RenewalRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| InstallError::NotFound(renewal_id.into()))?;
    Ok(view(row))
}

fn view(row: RenewalRow) -> RenewalView {
    let issued = match (
        row.certificate_pem,
        row.issued_serial_number,
        row.issued_not_before,
        row.issued_not_after,
        row.issued_at,
    ) {
        (Some(pem), Some(serial_number), Some(not_before), Some(not_after), Some(issued_at)) => {
            Some(IssuedCertificate {
                pem,
                serial_number,
                not_before: not_before.and_utc(),
                not_after: not_after.and_utc(),
                issued_at: issued_at.and_utc(),
            })
        }
        _ => None,
    };
    RenewalView {
        id: row.id,
        kind: row.kind,
        status: row.status,
        certificate_id: row.certificate_id,
        created_at: row.created_at.and_utc(),
        issued,
        installed_at: row.installed_at.map(|t| t.and_utc()),
        new_certificate_id: row.new_certificate_id,
    }
}

/// What installing a renewal needs besides its view: the subject of the certificate it
/// renews, and the issued certificate's issuer, key and coupon.
#[derive(Queryable)]
struct InstallFrom {
    subject: String,
    issuer: Option<String>,
    coupon_id: String,
    public_key_sha256: String,
}

/// The agent installed the certificate of renewal `renewal_id`: it becomes the device's
/// active certificate, the old one is superseded, the coupon redeemed, the holder told.
pub fn confirm_installed(
    conn: &mut DbConnection,
    device_id: &str,
    renewal_id: &str,
    now: DateTime<Utc>,
) -> Result<RenewalView, InstallError> {
    write_transaction(conn, |conn| {
        let current = find(conn, device_id, renewal_id)?;
        match current.status {
            RenewalState::Installed => return Ok(current),
            RenewalState::Issued => {}
            other => return Err(InstallError::NotIssued(other)),
        }
        let Some(issued) = current.issued.clone() else {
            return Err(
                anyhow::anyhow!("renewal {renewal_id} is issued without a certificate").into(),
            );
        };
        // The conditional move makes a concurrent confirmation a no-op.
        if !state::install(conn, renewal_id, now)? {
            return find(conn, device_id, renewal_id);
        }
        let InstallFrom {
            subject,
            issuer,
            coupon_id,
            public_key_sha256,
        } = renewals::table
            .inner_join(certificates::table.on(certificates::id.eq(renewals::certificate_id)))
            .filter(renewals::id.eq(renewal_id))
            .select((
                certificates::subject,
                renewals::issued_issuer,
                renewals::coupon_id,
                renewals::public_key_sha256,
            ))
            .first(conn)?;
        let new_certificate_id = registry::activate_renewed(
            conn,
            &current.certificate_id,
            &NewCertificate {
                device_id,
                kind: current.kind,
                issuer: &issuer.unwrap_or_default(),
                serial_number: &issued.serial_number,
                subject: &subject,
                not_before: issued.not_before,
                not_after: issued.not_after,
                status: CertificateStatus::Active,
                public_key_sha256: Some(&public_key_sha256),
            },
            now,
        )?;
        state::link_new_certificate(conn, renewal_id, &new_certificate_id)?;
        // A coupon covering both certificates is redeemed by the first installed.
        crate::coupons::state::redeem(conn, &coupon_id, now)?;
        audit::record(
            conn,
            AuditEntry {
                brand_id: None,
                actor: &Actor::Device(device_id.to_owned()),
                action: "renewal.installed",
                subject_type: "renewal",
                subject_id: renewal_id,
                details: json!({
                    "old_certificate_id": current.certificate_id,
                    "new_certificate_id": new_certificate_id,
                    "coupon_id": coupon_id,
                }),
            },
            now,
        )?;
        notify::enqueue(
            conn,
            renewal_id,
            Notice::Installed {
                serial_number: &issued.serial_number,
                not_after: issued.not_after,
            },
            now,
        )?;
        find(conn, device_id, renewal_id)
    })
}
