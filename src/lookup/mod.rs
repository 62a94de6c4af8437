//! Lookup: codice fiscale → the holder's devices → each certificate with its renewal
//! status, and per device the certificates to renew together now.

pub mod eligibility;

use chrono::{DateTime, Utc};

pub use eligibility::{eligibility, renewal_window_opens_at, Eligibility, RENEWAL_WINDOW_DAYS};

use crate::db::DbConnection;
use crate::registry::{
    self, Certificate, CertificateKind, CertificateStatus, CodiceFiscale, Device, Holder,
};

/// Where a certificate stands for renewal, as the shop and the agent show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalStatus {
    Eligibility(Eligibility),
    /// Revoked certificates are never renewable, whatever their dates.
    Revoked,
}

impl RenewalStatus {
    pub fn of(certificate: &Certificate, now: DateTime<Utc>) -> Self {
        match certificate.status {
            CertificateStatus::Revoked => Self::Revoked,
            CertificateStatus::Active | CertificateStatus::Superseded => {
                Self::Eligibility(eligibility(now, certificate.not_after))
            }
        }
    }

    pub fn is_renewable(&self) -> bool {
        matches!(self, Self::Eligibility(Eligibility::Renewable { .. }))
    }
}

#[derive(Debug, Clone)]
pub struct CertificateView {
    pub certificate: Certificate,
    pub renewal: RenewalStatus,
}

#[derive(Debug, Clone)]
pub struct DeviceView {
    pub device: Device,
    pub certificates: Vec<CertificateView>,
    /// The kinds renewable now. The two certificates of a device are renewed in one
    /// request (one trip to the desktop agent, one PIN), so they are proposed together.
    pub renew_together: Vec<CertificateKind>,
}

#[derive(Debug, Clone)]
pub struct Lookup {
    pub holder: Holder,
    pub as_of: DateTime<Utc>,
    pub devices: Vec<DeviceView>,
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no holder is registered with this codice fiscale")]
    UnknownHolder,
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

/// The holder and their devices issued by `brand`: a shop never shows another brand's
/// devices (a holder with devices of the other brand only has an empty list here).
pub fn lookup(
    conn: &mut DbConnection,
    codice_fiscale: &CodiceFiscale,
    brand: &str,
    now: DateTime<Utc>,
) -> Result<Lookup, LookupError> {
    let found = registry::find_holder_devices(conn, codice_fiscale, brand)?
        .ok_or(LookupError::UnknownHolder)?;
    Ok(Lookup {
        holder: found.holder,
        as_of: now,
        devices: found
            .devices
            .into_iter()
            .map(|device| view_device(device, now))
            .collect(),
    })
}

pub fn view_device(mut device: Device, now: DateTime<Utc>) -> DeviceView {
    let certificates: Vec<CertificateView> = std::mem::take(&mut device.certificates)
        .into_iter()
        .map(|certificate| CertificateView {
            renewal: RenewalStatus::of(&certificate, now),
            certificate,
        })
        .collect();
    let renew_together = certificates
        .iter()
        .filter(|c| c.renewal.is_renewable())
        .map(|c| c.certificate.kind)
        .collect();
    DeviceView {
        device,
        certificates,
        renew_together,
    }
}
