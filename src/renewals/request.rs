//! A renewal request: per certificate of the agent's device, a checked CSR and a coupon
//! code. Every rule is checked in the transaction that reserves the coupons and queues
//! the renewals, so a request is taken whole or not at all.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::state::{self, NewRenewal};
use super::{RenewalPolicy, RenewalState};
use crate::audit::{self, Actor, AuditEntry};
use crate::catalog::Covers;
use crate::coupons::{CodedCoupon, CouponCode, CouponKey, CouponStatus};
use crate::db::schema::{certificates, devices, holders, renewals};
use crate::db::{write_transaction, DbConnection};
use crate::lookup::{Eligibility, RenewalFacts, RenewalStatus};
use crate::rate_limit::{self, Limit};
use crate::registry::csr::{same_subject, CheckedCsr};
use crate::registry::{CertificateKind, CertificateStatus};

/// One certificate to renew, as the agent asks.
#[derive(Debug, Clone)]
pub struct RenewalItem {
    pub certificate_id: String,
    pub csr: CheckedCsr,
    pub coupon: CouponCode,
}

/// A renewal just queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: String,
    pub certificate_id: String,
    pub kind: CertificateKind,
}

/// An instant as the API writes it everywhere: RFC 3339, to the second, in UTC.
fn instant(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Why one item of the request was refused; the request is refused whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no certificate {0} on this device")]
    UnknownCertificate(String),
    #[error("the certificate is listed twice in the request")]
    DuplicateCertificate,
    #[error("the certificate is {0}: only an active certificate is renewed")]
    NotActive(CertificateStatus),
    #[error("too early: the renewal window opens at {} (90 days before expiry)", instant(.window_opens_at))]
    TooEarly { window_opens_at: DateTime<Utc> },
    #[error("the certificate expired at {}: an expired certificate cannot be renewed, only replaced", instant(.expired_at))]
    Expired { expired_at: DateTime<Utc> },
    #[error("a renewal of this certificate is already in progress ({renewal_id})")]
    AlreadyPending { renewal_id: String },
    #[error("this device's {kind} certificate was already renewed {count} time(s), the most a device allows")]
    DeviceRenewedEnough { kind: CertificateKind, count: u32 },
    #[error("the device reached the end of its life at {} ({years} years after first activation): a new device is needed", instant(.end_of_life))]
    DeviceEndOfLife {
        end_of_life: DateTime<Utc>,
        years: u32,
    },
    #[error("the CSR's subject must be identical to the current certificate's: {expected}")]
    SubjectMismatch { expected: String },
    #[error("the CSR's key is one this device already used: a renewal needs a new key made on the device")]
    OldKey,
    #[error("no coupon has this code")]
    UnknownCoupon,
    #[error("the coupon is for another brand's certificates")]
    CouponOtherBrand,
    #[error("the coupon expired at {}", instant(.valid_until))]
    CouponExpired { valid_until: DateTime<Utc> },
    #[error("the coupon is {0}, not available")]
    CouponNotAvailable(CouponStatus),
    #[error("the coupon renews {covers} certificates, not {kind} ones")]
    CouponWrongKind {
        covers: Covers,
        kind: CertificateKind,
    },
}

impl Refusal {
    /// The request field the refusal is about.
    pub fn field(&self) -> &'static str {
        use Refusal::*;
        match self {
            UnknownCertificate(_)
            | DuplicateCertificate
            | NotActive(_)
            | TooEarly { .. }
            | Expired { .. }
            | AlreadyPending { .. }
            | DeviceRenewedEnough { .. }
            | DeviceEndOfLife { .. } => "certificate_id",
            SubjectMismatch { .. } | OldKey => "csr",
            UnknownCoupon
            | CouponOtherBrand
            | CouponExpired { .. }
            | CouponNotAvailable(_)
            | CouponWrongKind { .. } => "coupon_code",
        }
    }
}

domain_error! {
    #[derive(Debug, thiserror::Error)]
    pub enum RequestError {
        #[error("renewals[{index}].{}: {refusal}", refusal.field())]
        Refused { index: usize, refusal: Refusal },
        #[error("too many renewal requests from this device; retry in {0} seconds")]
        TooMany(i64),
    }
    storage from diesel::result::Error
}

fn refuse<T>(index: usize, refusal: Refusal) -> Result<T, RequestError> {
    Err(RequestError::Refused { index, refusal })
}

/// The certificate to renew, with its device's first activation.
#[derive(Queryable)]
struct CertificateRow {
    kind: CertificateKind,
    status: CertificateStatus,
    subject: String,
    not_after: NaiveDateTime,
    device_activated_at: NaiveDateTime,
}

/// A device asks for a renewal once or twice in its life; a few dozen tries in ten
/// minutes is plenty for an agent that retries, and stops anyone trying coupon codes.
pub const REQUESTS: Limit = Limit {
    bucket: "agent_renewal",
    max_hits: 60,
    window: chrono::Duration::minutes(10),
};

/// Queues a renewal per item for the agent's device `device_id` of `brand_id`.
pub fn request(
    conn: &mut DbConnection,
    coupon_key: &CouponKey,
    policy: &RenewalPolicy,
    device_id: &str,
    brand_id: &str,
    items: &[RenewalItem],
    now: DateTime<Utc>,
) -> Result<Vec<Queued>, RequestError> {
    if let Err(retry_after) = rate_limit::hit(conn, REQUESTS, device_id, now)? {
        return Err(RequestError::TooMany(retry_after));
    }
    for (index, item) in items.iter().enumerate() {
        if items[..index]
            .iter()
            .any(|earlier| earlier.certificate_id == item.certificate_id)
        {
            return refuse(index, Refusal::DuplicateCertificate);
        }
        if items[..index]
            .iter()
            .any(|earlier| earlier.csr.public_key_sha256 == item.csr.public_key_sha256)
        {
            // Each certificate of a device has a key of its own.
            return refuse(index, Refusal::OldKey);
        }
    }
    write_transaction(conn, |conn| {
        // The keys the device ever had, or asked for: none may come back.
        let mut used_keys: Vec<String> = certificates::table
            .filter(certificates::device_id.eq(device_id))
            .filter(certificates::public_key_sha256.is_not_null())
            .select(certificates::public_key_sha256.assume_not_null())
            .load(conn)?;
        used_keys.extend(
            renewals::table
                .filter(renewals::device_id.eq(device_id))
                .filter(renewals::status.eq_any(RenewalState::counted()))
                .select(renewals::public_key_sha256)
                .load::<String>(conn)?,
        );
        // Coupons reserved by this request: a coupon covering both kinds serves both.
        let mut reserved: HashSet<String> = HashSet::new();
        let mut queued = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let row: Option<CertificateRow> = certificates::table
                .inner_join(devices::table.inner_join(holders::table))
                .filter(certificates::id.eq(&item.certificate_id))
                .filter(devices::id.eq(device_id))
                .filter(devices::brand_id.eq(brand_id))
                .select((
                    certificates::kind,
                    certificates::status,
                    certificates::subject,
                    certificates::not_after,
                    devices::activated_at,
                ))
                .first(conn)
                .optional()?;
            let Some(CertificateRow {
                kind,
                status,
                subject,
                not_after,
                device_activated_at,
            }) = row
            else {
                return refuse(
                    index,
                    Refusal::UnknownCertificate(item.certificate_id.clone()),
                );
            };
            let open: Option<(String, RenewalState)> = renewals::table
                .filter(renewals::certificate_id.eq(&item.certificate_id))
                .filter(renewals::status.eq_any(RenewalState::open()))
                .select((renewals::id, renewals::status))
                .first(conn)
                .optional()?;
            let earlier: i64 = renewals::table
                .filter(renewals::device_id.eq(device_id))
                .filter(renewals::kind.eq(kind.as_str()))
                .filter(renewals::status.eq_any(RenewalState::counted()))
                .count()
                .get_result(conn)?;
            // The same rules the lookup shows and the shop proposes by.
            let facts = RenewalFacts {
                status,
                not_after: not_after.and_utc(),
                device_activated_at: device_activated_at.and_utc(),
                open_renewal: open.as_ref().map(|(id, state)| (id.as_str(), *state)),
                device_renewals_of_kind: u32::try_from(earlier).unwrap_or(u32::MAX),
            };
            let refusal = match RenewalStatus::of(facts, policy, now) {
                RenewalStatus::Eligibility(Eligibility::Renewable { .. }) => None,
                RenewalStatus::Revoked => Some(Refusal::NotActive(CertificateStatus::Revoked)),
                RenewalStatus::Superseded => {
                    Some(Refusal::NotActive(CertificateStatus::Superseded))
                }
                RenewalStatus::RenewalPending { renewal_id }
                | RenewalStatus::ReadyToInstall { renewal_id } => {
                    Some(Refusal::AlreadyPending { renewal_id })
                }
                RenewalStatus::DeviceRenewedEnough { count } => {
                    Some(Refusal::DeviceRenewedEnough { kind, count })
                }
                RenewalStatus::DeviceEndOfLife { end_of_life, years } => {
                    Some(Refusal::DeviceEndOfLife { end_of_life, years })
                }
                RenewalStatus::Eligibility(Eligibility::NotYetRenewable { window_opens_at }) => {
                    Some(Refusal::TooEarly { window_opens_at })
                }
                RenewalStatus::Eligibility(Eligibility::Expired { expired_at }) => {
                    Some(Refusal::Expired { expired_at })
                }
            };
            if let Some(refusal) = refusal {
                return refuse(index, refusal);
            }
            if !same_subject(&item.csr.subject, &subject) {
                return refuse(index, Refusal::SubjectMismatch { expected: subject });
            }
            if used_keys.contains(&item.csr.public_key_sha256) {
                return refuse(index, Refusal::OldKey);
            }

            let (coupon_id, to_reserve) = match check_coupon(
                conn,
                coupon_key,
                brand_id,
                device_id,
                &item.coupon,
                kind,
                &reserved,
                now,
            )? {
                Ok(coupon) => coupon,
                Err(refusal) => return refuse(index, refusal),
            };
            if to_reserve && !reserved.contains(&coupon_id) {
                // A conditional update: of concurrent requests with one coupon, exactly
                // one flips it; the others find it reserved and are refused.
                if !crate::coupons::state::reserve(conn, &coupon_id, now)? {
                    return refuse(index, Refusal::CouponNotAvailable(CouponStatus::Reserved));
                }
                reserved.insert(coupon_id.clone());
            }

            let queued_renewal = state::queue(
                conn,
                &NewRenewal {
                    brand_id,
                    device_id,
                    certificate_id: &item.certificate_id,
                    kind,
                    coupon_id: &coupon_id,
                    csr_pem: &item.csr.pem,
                    public_key: &item.csr.public_key_base64(),
                    public_key_sha256: &item.csr.public_key_sha256,
                },
                now,
            );
            let id = match queued_renewal {
                Ok(id) => id,
                // The one-open-renewal-per-certificate index: a concurrent request for
                // the same certificate committed first.
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => {
                    return refuse(
                        index,
                        Refusal::AlreadyPending {
                            renewal_id: "(just requested)".into(),
                        },
                    )
                }
                Err(e) => return Err(e.into()),
            };
            audit::record(
                conn,
                AuditEntry {
                    brand_id: Some(brand_id),
                    actor: &Actor::Device(device_id.to_owned()),
                    action: "renewal.requested",
                    subject_type: "renewal",
                    subject_id: &id,
                    details: json!({
                        "certificate_id": item.certificate_id,
                        "kind": kind.as_str(),
                        "coupon_id": coupon_id,
                        "public_key_sha256": item.csr.public_key_sha256,
                    }),
                },
                now,
            )?;
            queued.push(Queued {
                id,
                certificate_id: item.certificate_id.clone(),
                kind,
            });
        }
        Ok(queued)
    })
}

/// The coupon `code` names, if this renewal may use it: of this brand, unexpired, covering
/// `kind`, and available (or reserved by an earlier item of this request). With the
/// coupon's id, whether it still has to be reserved: a coupon covering both certificates
/// whose one renewal went through and whose other failed serves that other one again,
/// already reserved or redeemed (see [`second_use_allowed`]).
#[allow(clippy::too_many_arguments)]
fn check_coupon(
    conn: &mut DbConnection,
    coupon_key: &CouponKey,
    brand_id: &str,
    device_id: &str,
    code: &CouponCode,
    kind: CertificateKind,
    reserved_here: &HashSet<String>,
    now: DateTime<Utc>,
) -> anyhow::Result<Result<(String, bool), Refusal>> {
    let Some(CodedCoupon {
        id: coupon_id,
        brand_id: coupon_brand,
        status,
        covers,
        valid_until,
    }) = crate::coupons::by_code(conn, coupon_key, code)?
    else {
        return Ok(Err(Refusal::UnknownCoupon));
    };
    if coupon_brand != brand_id {
        return Ok(Err(Refusal::CouponOtherBrand));
    }
    if !covers.kinds().contains(&kind) {
        return Ok(Err(Refusal::CouponWrongKind { covers, kind }));
    }
    let to_reserve = status == CouponStatus::Available;
    let usable = to_reserve
        // Reserved by an earlier item of this very request (a coupon covering both kinds).
        || reserved_here.contains(&coupon_id)
        || (covers.kinds().len() > 1 && second_use_allowed(conn, &coupon_id, device_id, kind)?);
    if !usable {
        return Ok(Err(Refusal::CouponNotAvailable(status)));
    }
    if valid_until < now {
        return Ok(Err(Refusal::CouponExpired { valid_until }));
    }
    Ok(Ok((coupon_id, to_reserve)))
}

/// Whether a coupon covering both certificates, no longer available, may still serve
/// this device's certificate of `kind`: it was bought for both, and the renewal of `kind`
/// it paid for failed (or was rejected) while the other went through. It may if every
/// renewal holding it, or that used it, is of this device and none is of `kind`. The
/// coupon is locked first (`crate::coupons::state::lock`): a release of it counts under the same
/// lock. Two requests for the same certificate are kept apart by the unique index of open
/// renewals, and a device has one certificate of each kind in use.
fn second_use_allowed(
    conn: &mut DbConnection,
    coupon_id: &str,
    device_id: &str,
    kind: CertificateKind,
) -> anyhow::Result<bool> {
    let status = crate::coupons::state::lock(conn, coupon_id)?
        .ok_or_else(|| anyhow::anyhow!("coupon {coupon_id} vanished"))?;
    if !matches!(status, CouponStatus::Reserved | CouponStatus::Redeemed) {
        return Ok(false);
    }
    let holders: Vec<(String, String)> = renewals::table
        .filter(renewals::coupon_id.eq(coupon_id))
        .filter(renewals::status.eq_any(RenewalState::counted()))
        .select((renewals::device_id, renewals::kind))
        .load(conn)?;
    Ok(!holders.is_empty()
        && holders
            .iter()
            .all(|(device, held_kind)| device == device_id && held_kind != kind.as_str()))
}
