//! Lookup: codice fiscale → the holder's devices → each certificate with its renewal
//! status, and per device the certificates to renew together now.

pub mod eligibility;

use chrono::{DateTime, Utc};

pub use eligibility::{eligibility, renewal_window_opens_at, Eligibility, RENEWAL_WINDOW_DAYS};

use crate::db::DbConnection;
use crate::registry::{
    self, Certificate, CertificateKind, CertificateStatus, CodiceFiscale, Device, Holder,
    OpenRenewal, RenewalState,
};

/// Where a certificate stands for renewal, as the shop and the agent show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalStatus {
    Eligibility(Eligibility),
    /// Revoked certificates are never renewable, whatever their dates.
    Revoked,
    /// A renewal is queued or being issued.
    RenewalPending {
        renewal_id: String,
    },
    /// The new certificate is issued: the agent can download and install it.
    ReadyToInstall {
        renewal_id: String,
    },
}

impl RenewalStatus {
    /// `open_renewal`: the certificate's renewal in progress, if any.
    pub fn of(
        certificate: &Certificate,
        open_renewal: Option<(&str, RenewalState)>,
        now: DateTime<Utc>,
    ) -> Self {
        match (certificate.status, open_renewal) {
            (CertificateStatus::Revoked, _) => Self::Revoked,
            (_, Some((id, RenewalState::Issued))) => Self::ReadyToInstall {
                renewal_id: id.to_owned(),
            },
            (_, Some((id, _))) => Self::RenewalPending {
                renewal_id: id.to_owned(),
            },
            (CertificateStatus::Active | CertificateStatus::Superseded, None) => {
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
    let ids: Vec<&str> = found
        .devices
        .iter()
        .flat_map(|d| d.certificates.iter().map(|c| c.id.as_str()))
        .collect();
    let open = registry::open_renewals(conn, &ids).map_err(anyhow::Error::from)?;
    Ok(Lookup {
        holder: found.holder,
        as_of: now,
        devices: found
            .devices
            .into_iter()
            .map(|device| view_device(device, &open, now))
            .collect(),
    })
}

/// `open`: the renewals in progress.
pub fn view_device(mut device: Device, open: &[OpenRenewal], now: DateTime<Utc>) -> DeviceView {
    let certificates: Vec<CertificateView> = std::mem::take(&mut device.certificates)
        .into_iter()
        .map(|certificate| {
            let open_renewal = open
                .iter()
                .find(|renewal| renewal.certificate_id == certificate.id)
                .map(|renewal| (renewal.renewal_id.as_str(), renewal.state));
            CertificateView {
                renewal: RenewalStatus::of(&certificate, open_renewal, now),
                certificate,
            }
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
