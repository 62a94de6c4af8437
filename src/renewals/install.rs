//! What the agent reads about its renewal, and its confirmation that the new certificate
//! is installed on the device: the registry then swaps the certificates and the coupon
//! is redeemed, in one transaction. Confirming twice changes nothing the second time.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::notify::{self, Notice};
use super::RenewalState;
use crate::audit::{self, Actor, AuditEntry};
use crate::db::schema::{certificates, renewals};
use crate::db::{write_transaction, DbConnection};
use crate::registry::{CertificateKind, CertificateStatus};

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

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("no renewal {0} for this device")]
    NotFound(String),
    #[error("the renewal is {0}: only an issued certificate can be installed")]
    NotIssued(RenewalState),
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

impl From<diesel::result::Error> for InstallError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Storage(error.into())
    }
}

type Row = (
    String,
    String,
    String,
    String,
    NaiveDateTime,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    Option<String>,
);

/// Renewal `renewal_id` of device `device_id`; `None` if the device has no such renewal
/// (another device's renewal is as unknown as a made-up id).
pub fn find(
    conn: &mut DbConnection,
    device_id: &str,
    renewal_id: &str,
) -> anyhow::Result<Option<RenewalView>> {
    let row: Option<Row> = renewals::table
        .filter(renewals::id.eq(renewal_id))
        .filter(renewals::device_id.eq(device_id))
        .select((
            renewals::id,
            renewals::certificate_id,
            renewals::kind,
            renewals::status,
            renewals::created_at,
            renewals::certificate_pem,
            renewals::issued_serial_number,
            renewals::issued_not_before,
            renewals::issued_not_after,
            renewals::issued_at,
            renewals::installed_at,
            renewals::new_certificate_id,
        ))
        .first(conn)
        .optional()?;
    row.map(view).transpose()
}

fn view(row: Row) -> anyhow::Result<RenewalView> {
    let (
        id,
        certificate_id,
        kind,
        status,
        created_at,
        pem,
        serial_number,
        not_before,
        not_after,
        issued_at,
        installed_at,
        new_certificate_id,
    ) = row;
    let issued = match (pem, serial_number, not_before, not_after, issued_at) {
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
    Ok(RenewalView {
        kind: CertificateKind::parse(&kind)
            .ok_or_else(|| anyhow::anyhow!("renewal {id}: kind {kind}"))?,
        status: RenewalState::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("renewal {id}: status {status}"))?,
        id,
        certificate_id,
        created_at: created_at.and_utc(),
        issued,
        installed_at: installed_at.map(|t| t.and_utc()),
        new_certificate_id,
    })
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
        let current =
            find(conn, device_id, renewal_id)?.ok_or(InstallError::NotFound(renewal_id.into()))?;
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
        // The conditional flip makes a concurrent confirmation a no-op.
        let new_certificate_id = Uuid::now_v7().to_string();
        let flipped = diesel::update(
            renewals::table
                .filter(renewals::id.eq(renewal_id))
                .filter(renewals::status.eq(RenewalState::Issued.as_str())),
        )
        .set((
            renewals::status.eq(RenewalState::Installed.as_str()),
            renewals::installed_at.eq(Some(now.naive_utc())),
            renewals::closed_at.eq(Some(now.naive_utc())),
        ))
        .execute(conn)?;
        if flipped == 0 {
            return find(conn, device_id, renewal_id)?
                .ok_or(InstallError::NotFound(renewal_id.into()));
        }
        let (subject, issuer, coupon_id, public_key_sha256): (
            String,
            Option<String>,
            String,
            String,
        ) = renewals::table
            .inner_join(certificates::table.on(certificates::id.eq(renewals::certificate_id)))
            .filter(renewals::id.eq(renewal_id))
            .select((
                certificates::subject,
                renewals::issued_issuer,
                renewals::coupon_id,
                renewals::public_key_sha256,
            ))
            .first(conn)?;
        // Superseded first: a device holds one active certificate per kind.
        diesel::update(
            certificates::table
                .filter(certificates::id.eq(&current.certificate_id))
                .filter(certificates::status.eq(CertificateStatus::Active.as_str())),
        )
        .set(certificates::status.eq(CertificateStatus::Superseded.as_str()))
        .execute(conn)?;
        diesel::insert_into(certificates::table)
            .values((
                certificates::id.eq(&new_certificate_id),
                certificates::device_id.eq(device_id),
                certificates::kind.eq(current.kind.as_str()),
                certificates::issuer.eq(issuer.unwrap_or_default()),
                certificates::serial_number.eq(&issued.serial_number),
                certificates::subject.eq(&subject),
                certificates::not_before.eq(issued.not_before.naive_utc()),
                certificates::not_after.eq(issued.not_after.naive_utc()),
                certificates::status.eq(CertificateStatus::Active.as_str()),
                certificates::created_at.eq(now.naive_utc()),
                certificates::public_key_sha256.eq(Some(&public_key_sha256)),
            ))
            .execute(conn)?;
        diesel::update(renewals::table.filter(renewals::id.eq(renewal_id)))
            .set(renewals::new_certificate_id.eq(Some(&new_certificate_id)))
            .execute(conn)?;
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
        find(conn, device_id, renewal_id)?.ok_or(InstallError::NotFound(renewal_id.into()))
    })
}
