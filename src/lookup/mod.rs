//! Lookup: codice fiscale → the holder's devices → each certificate with its renewal
//! status, and per device the certificates to renew together now.

pub mod eligibility;

use chrono::{DateTime, Months, Utc};

pub use eligibility::{eligibility, renewal_window_opens_at, Eligibility, RENEWAL_WINDOW_DAYS};

use crate::auth::Role;
use crate::db::DbConnection;
use crate::rate_limit::{self, Limit};
use crate::registry::{
    self, Certificate, CertificateKind, CertificateStatus, CodiceFiscale, Device,
    DeviceRenewalCount, Holder, OpenRenewal, RenewalState,
};

/// How many times, and for how long, a device may be renewed, and for how long the
/// certificates it gets are valid. Here, below both the lookup and the renewals, because
/// the lookup must refuse to propose what the renewal would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPolicy {
    /// Renewals per certificate kind over the device's life (1: renewable once).
    pub max_renewals_per_device: u32,
    /// Years after first activation past which the device is not renewed.
    pub device_life_years: u32,
    /// Validity of the certificates issued.
    pub validity_days: i64,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            max_renewals_per_device: 1,
            device_life_years: 6,
            validity_days: 3 * 365,
        }
    }
}

impl RenewalPolicy {
    pub fn device_end_of_life(&self, activated_at: DateTime<Utc>) -> DateTime<Utc> {
        activated_at
            .checked_add_months(Months::new(self.device_life_years * 12))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Where a certificate stands for renewal, as the shop and the agent show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewalStatus {
    Eligibility(Eligibility),
    /// Revoked certificates are never renewable, whatever their dates.
    Revoked,
    /// Replaced by its renewal: the new certificate is the one to renew.
    Superseded,
    /// A renewal is queued or being issued.
    RenewalPending {
        renewal_id: String,
    },
    /// The new certificate is issued: the agent can download and install it.
    ReadyToInstall {
        renewal_id: String,
    },
    /// The device's certificates of this kind were renewed `count` times, the most the
    /// policy allows.
    DeviceRenewedEnough {
        count: u32,
    },
    /// The device is past its life (`years` after first activation): a new one is needed.
    DeviceEndOfLife {
        end_of_life: DateTime<Utc>,
        years: u32,
    },
}

/// What decides whether a certificate can be renewed: the certificate, its device and
/// the renewals it and its device already had.
#[derive(Debug, Clone, Copy)]
pub struct RenewalFacts<'a> {
    pub status: CertificateStatus,
    pub not_after: DateTime<Utc>,
    pub device_activated_at: DateTime<Utc>,
    /// The certificate's renewal in progress, if any.
    pub open_renewal: Option<(&'a str, RenewalState)>,
    /// The device's counted renewals of the certificate's kind.
    pub device_renewals_of_kind: u32,
}

impl RenewalStatus {
    /// Every rule a renewal request applies to the certificate (its coupon and CSR aside),
    /// in one place: the lookup and the shop's proposals use it to never offer what the
    /// request ([`crate::renewals::request`]) would refuse, and the request uses it to refuse.
    /// Rules that will never change are told before the renewal window, so a holder whose
    /// device is worn out is not told to come back when the window opens.
    pub fn of(facts: RenewalFacts<'_>, policy: &RenewalPolicy, now: DateTime<Utc>) -> Self {
        match (facts.status, facts.open_renewal) {
            (CertificateStatus::Revoked, _) => return Self::Revoked,
            (CertificateStatus::Superseded, _) => return Self::Superseded,
            (_, Some((id, RenewalState::Issued))) => {
                return Self::ReadyToInstall {
                    renewal_id: id.to_owned(),
                }
            }
            (_, Some((id, _))) => {
                return Self::RenewalPending {
                    renewal_id: id.to_owned(),
                }
            }
            (CertificateStatus::Active, None) => {}
        }
        let end_of_life = policy.device_end_of_life(facts.device_activated_at);
        if now > end_of_life {
            return Self::DeviceEndOfLife {
                end_of_life,
                years: policy.device_life_years,
            };
        }
        if facts.device_renewals_of_kind >= policy.max_renewals_per_device {
            return Self::DeviceRenewedEnough {
                count: facts.device_renewals_of_kind,
            };
        }
        Self::Eligibility(eligibility(now, facts.not_after))
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
    /// A list of more holders than the caller may look up in a whole window: waiting does
    /// not help, a shorter list (or a role made for the work) does.
    #[error(
        "the list names {holders} holders, more than the {allowance} lookups your limits \
         allow in a whole window; send a shorter list"
    )]
    ListOverAllowance {
        holders: usize,
        allowance: i64,
        retry_after_seconds: i64,
    },
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
        // An officer works through lists of clients (up to `catalog::bulk::MAX_HOLDERS` at once,
        // each holder counted): one full list must fit an hour with room for single
        // lookups, a few lists a day. The address limits stay above one officer's, for an
        // office behind one NAT, and still cap throwaway customer accounts from one place.
        Self {
            customer_per_hour: 30,
            customer_per_day: 100,
            officer_per_hour: 1500,
            officer_per_day: 5000,
            address_per_hour: 2000,
            address_per_day: 6000,
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

/// A user's lookups with what they run by: the caller, whose lookups count against
/// `limits`, and the renewal `policy` the answer is worked out with. The API and the pages
/// make one for a request and hand it to whichever lookup the request makes (one holder,
/// a list, or a proposal, which looks the holder up), so no caller can pair a lookup with
/// another's limits or policy.
#[derive(Debug, Clone)]
pub struct Asker {
    pub caller: Caller,
    pub limits: LookupLimits,
    pub policy: RenewalPolicy,
}

impl LookupLimits {
    pub(crate) fn of(&self, caller: &Caller) -> [(Limit, String); 4] {
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
    asker: &Asker,
    codice_fiscale: &CodiceFiscale,
    brand: &str,
    now: DateTime<Utc>,
) -> Result<Lookup, LookupError> {
    let counted = asker.limits.of(&asker.caller);
    let counted: Vec<(Limit, &str)> = counted.iter().map(|(l, s)| (*l, s.as_str())).collect();
    if let Err(retry_after_seconds) =
        rate_limit::hit_all(conn, &counted, now).map_err(anyhow::Error::from)?
    {
        return Err(LookupError::TooManyLookups {
            retry_after_seconds,
        });
    }
    lookup(conn, &asker.policy, codice_fiscale, brand, now)
}

/// The holder and their devices issued by `brand`. A shop never shows another brand's
/// devices, nor the name of a holder who has none of its devices: for the brand, a holder
/// with no device of its own is no different from an unknown codice fiscale.
pub fn lookup(
    conn: &mut DbConnection,
    policy: &RenewalPolicy,
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
    let device_ids: Vec<&str> = found.devices.iter().map(|d| d.id.as_str()).collect();
    let counts = registry::renewal_counts(conn, &device_ids)?;
    Ok(Lookup {
        holder: found.holder,
        as_of: now,
        devices: found
            .devices
            .into_iter()
            .map(|device| view_device(device, &open, &counts, policy, now))
            .collect(),
    })
}

/// `open`: the renewals in progress; `counts`: the devices' counted renewals per kind.
pub fn view_device(
    mut device: Device,
    open: &[OpenRenewal],
    counts: &[DeviceRenewalCount],
    policy: &RenewalPolicy,
    now: DateTime<Utc>,
) -> DeviceView {
    let device_id = device.id.clone();
    let activated_at = device.activated_at;
    let certificates: Vec<CertificateView> = std::mem::take(&mut device.certificates)
        .into_iter()
        .map(|certificate| {
            let open_renewal = open
                .iter()
                .find(|renewal| renewal.certificate_id == certificate.id)
                .map(|renewal| (renewal.renewal_id.as_str(), renewal.state));
            let device_renewals_of_kind = counts
                .iter()
                .find(|c| c.device_id == device_id && c.kind == certificate.kind)
                .map_or(0, |c| c.count);
            let facts = RenewalFacts {
                status: certificate.status,
                not_after: certificate.not_after,
                device_activated_at: activated_at,
                open_renewal,
                device_renewals_of_kind,
            };
            CertificateView {
                renewal: RenewalStatus::of(facts, policy, now),
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn facts(now: DateTime<Utc>) -> RenewalFacts<'static> {
        RenewalFacts {
            status: CertificateStatus::Active,
            not_after: now + Duration::days(30),
            device_activated_at: now - Duration::days(3 * 365),
            open_renewal: None,
            device_renewals_of_kind: 0,
        }
    }

    #[test]
    fn renewable_only_when_every_rule_of_the_renewal_allows_it() {
        let now = Utc::now();
        let policy = RenewalPolicy::default();
        assert!(RenewalStatus::of(facts(now), &policy, now).is_renewable());

        let renewed = RenewalFacts {
            device_renewals_of_kind: 1,
            ..facts(now)
        };
        assert_eq!(
            RenewalStatus::of(renewed, &policy, now),
            RenewalStatus::DeviceRenewedEnough { count: 1 }
        );
        let twice = RenewalPolicy {
            max_renewals_per_device: 2,
            ..policy
        };
        assert!(RenewalStatus::of(renewed, &twice, now).is_renewable());

        let old = RenewalFacts {
            device_activated_at: now - Duration::days(7 * 365),
            ..facts(now)
        };
        assert!(matches!(
            RenewalStatus::of(old, &policy, now),
            RenewalStatus::DeviceEndOfLife { years: 6, .. }
        ));

        let pending = RenewalFacts {
            open_renewal: Some(("r1", RenewalState::Queued)),
            ..facts(now)
        };
        assert_eq!(
            RenewalStatus::of(pending, &policy, now),
            RenewalStatus::RenewalPending {
                renewal_id: "r1".into()
            }
        );
        let revoked = RenewalFacts {
            status: CertificateStatus::Revoked,
            ..facts(now)
        };
        assert_eq!(
            RenewalStatus::of(revoked, &policy, now),
            RenewalStatus::Revoked
        );
    }

    #[test]
    fn a_device_renewed_enough_is_told_so_rather_than_when_its_window_opens() {
        let now = Utc::now();
        let renewed = RenewalFacts {
            not_after: now + Duration::days(1000),
            device_renewals_of_kind: 1,
            ..facts(now)
        };
        assert_eq!(
            RenewalStatus::of(renewed, &RenewalPolicy::default(), now),
            RenewalStatus::DeviceRenewedEnough { count: 1 }
        );
    }
}
