//! Lookup: codice fiscale → the holder's devices → each certificate with its renewal
//! status, and per device the certificates to renew together now.

pub mod eligibility;

use chrono::{DateTime, Utc};

pub use eligibility::{eligibility, renewal_window_opens_at, Eligibility, RENEWAL_WINDOW_DAYS};

use crate::auth::Role;
use crate::db::DbConnection;
use crate::rate_limit::{self, Limit};
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
    /// No holder with a device of the brand: whether the codice fiscale is registered at
    /// all (with another brand, or with no device) is not told, nor whose it is.
    #[error("no holder with a device of this brand has this codice fiscale")]
    UnknownHolder,
    /// The caller (or their address) made too many lookups.
    #[error("too many holder lookups; retry in {retry_after_seconds} seconds")]
    TooManyLookups { retry_after_seconds: i64 },
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

/// How many holder lookups are allowed: per user, by role, and per client address, each per
/// hour and per day. A lookup names a person and tells which certificates they hold, so a
/// signed-in account must not be a way to read the registry wholesale; the numbers leave
/// room for the real work of each role (README, Lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupLimits {
    pub customer_per_hour: i64,
    pub customer_per_day: i64,
    /// Registration officers and back-office operators, who look holders up for others
    /// all day.
    pub officer_per_hour: i64,
    pub officer_per_day: i64,
    /// Every user behind one address together (an office behind one NAT).
    pub address_per_hour: i64,
    pub address_per_day: i64,
}

impl Default for LookupLimits {
    fn default() -> Self {
        Self {
            customer_per_hour: 30,
            customer_per_day: 100,
            officer_per_hour: 200,
            officer_per_day: 1000,
            address_per_hour: 600,
            address_per_day: 3000,
        }
    }
}

/// Who looks a holder up, for the limits.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub role: Role,
    /// The client address the request came from.
    pub address: String,
}

impl LookupLimits {
    fn of(&self, caller: &Caller) -> [(Limit, String); 4] {
        let hour = chrono::Duration::hours(1);
        let day = chrono::Duration::days(1);
        let (per_hour, per_day) = match caller.role {
            Role::Customer => (self.customer_per_hour, self.customer_per_day),
            Role::RegistrationOfficer | Role::BackOffice => {
                (self.officer_per_hour, self.officer_per_day)
            }
        };
        let limit = |bucket, max_hits, window| Limit {
            bucket,
            max_hits,
            window,
        };
        [
            (
                limit("holder_lookup_user_hour", per_hour, hour),
                caller.user_id.clone(),
            ),
            (
                limit("holder_lookup_user_day", per_day, day),
                caller.user_id.clone(),
            ),
            (
                limit("holder_lookup_address_hour", self.address_per_hour, hour),
                caller.address.clone(),
            ),
            (
                limit("holder_lookup_address_day", self.address_per_day, day),
                caller.address.clone(),
            ),
        ]
    }
}

/// A holder lookup by a user, within the limits: the API and the pages both look holders
/// up through here. Every lookup of a valid codice fiscale counts, found or not, since an
/// answer that someone is not a holder of the brand is worth as much to a scraper.
pub fn lookup_as(
    conn: &mut DbConnection,
    limits: &LookupLimits,
    caller: &Caller,
    codice_fiscale: &CodiceFiscale,
    brand: &str,
    now: DateTime<Utc>,
) -> Result<Lookup, LookupError> {
    let counted = limits.of(caller);
    let counted: Vec<(Limit, &str)> = counted.iter().map(|(l, s)| (*l, s.as_str())).collect();
    if let Err(retry_after_seconds) =
        rate_limit::hit_all(conn, &counted, now).map_err(anyhow::Error::from)?
    {
        return Err(LookupError::TooManyLookups {
            retry_after_seconds,
        });
    }
    lookup(conn, codice_fiscale, brand, now)
}

/// The holder and their devices issued by `brand`. A shop never shows another brand's
/// devices, nor the name of a holder who has none of its devices: for the brand, a holder
/// with no device of its own is no different from an unknown codice fiscale.
pub fn lookup(
    conn: &mut DbConnection,
    codice_fiscale: &CodiceFiscale,
    brand: &str,
    now: DateTime<Utc>,
) -> Result<Lookup, LookupError> {
    let found = registry::find_holder_devices(conn, codice_fiscale, brand)?
        .filter(|found| !found.devices.is_empty())
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
