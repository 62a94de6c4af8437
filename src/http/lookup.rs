//! `GET /api/v1/holders/{codice_fiscale}/devices`

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::extract::CurrentUser;
use super::responses::{TooManyLookups, UnknownHolder};
use super::{ApiError, AppState, Problem};
use crate::lookup::{self, CertificateView, DeviceView, Eligibility, RenewalStatus};
use crate::registry::{CertificateKind, CertificateStatus, CodiceFiscale, DeviceKind};

/// A holder's devices and certificates, with their renewal status
///
/// Any signed-in user (customer, registration officer, back-office); only the devices of the
/// caller's brand are shown, and a holder with none of them is answered as an unknown one.
/// Lookups are limited per user (by role) and per client address, per hour and per day.
#[utoipa::path(
    get,
    path = "/api/v1/holders/{codice_fiscale}/devices",
    tag = "lookup",
    operation_id = "lookup_holder_devices",
    params(
        ("codice_fiscale" = String, Path, description = "The holder's codice fiscale",
            example = "RSSMRA80A41H501U"),
    ),
    responses(
        (status = 200, description = "The holder and their devices", body = LookupResponse),
        (status = 400, description = "Not a valid codice fiscale (`/problems/invalid-field`)",
            body = Problem, content_type = "application/problem+json"),
        UnknownHolder,
        TooManyLookups,
    )
)]
pub async fn holder_devices(
    state: web::Data<AppState>,
    request: HttpRequest,
    user: CurrentUser,
    codice_fiscale: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let codice_fiscale = CodiceFiscale::parse(&codice_fiscale)
        .map_err(|e| ApiError::invalid_field("codice_fiscale", e.rule(), e.to_string()))?;
    let limits = state.config.lookup_limits;
    let policy = state.config.renewal_policy;
    let caller = lookup::Caller {
        user_id: user.id,
        role: user.role,
        address: super::client_address(&request),
    };
    let found = state
        .with_conn(move |conn| {
            lookup::lookup_as(
                conn,
                &policy,
                &limits,
                &caller,
                &codice_fiscale,
                &user.brand,
                Utc::now(),
            )
        })
        .await?;
    Ok(HttpResponse::Ok().json(LookupResponse::from(found)))
}

/// A certificate holder and their devices.
#[derive(Serialize, utoipa::ToSchema)]
struct LookupResponse {
    #[schema(value_type = String, example = "RSSMRA80A41H501U")]
    codice_fiscale: CodiceFiscale,
    given_name: String,
    surname: String,
    /// The instant the statuses were computed at.
    as_of: DateTime<Utc>,
    devices: Vec<DeviceResponse>,
}

/// A device (smart card or token) and its certificates.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DeviceResponse {
    serial_number: String,
    kind: DeviceKind,
    brand: String,
    activated_at: DateTime<Utc>,
    pub(super) certificates: Vec<CertificateResponse>,
    /// The certificate kinds that must be renewed together on this device.
    renew_together: Vec<CertificateKind>,
}

/// A certificate on a device, with where it stands for renewal.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CertificateResponse {
    id: String,
    pub(super) kind: CertificateKind,
    serial_number: String,
    subject: String,
    issuer: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    status: CertificateStatus,
    renewal: RenewalResponse,
}

/// Where a certificate stands for renewal, by `status`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub(super) enum RenewalResponse {
    NotYetRenewable {
        window_opens_at: DateTime<Utc>,
        window_opens_on: NaiveDate,
    },
    Renewable {
        days_left: i64,
        expires_at: DateTime<Utc>,
    },
    Expired {
        expired_at: DateTime<Utc>,
        expired_on: NaiveDate,
    },
    Revoked,
    /// A renewal is queued or being issued: `GET /agent/renewals/{renewal_id}`.
    RenewalPending {
        renewal_id: String,
    },
    /// The new certificate is issued, to download and install.
    ReadyToInstall {
        renewal_id: String,
    },
    /// Not renewable, ever, on this device: `reason` says why. The shop proposes no coupon
    /// for it, since the renewal would refuse it.
    NotRenewable {
        reason: NotRenewableReason,
        /// `device_renewal_limit`: the renewals this device's certificate of this kind had.
        #[serde(skip_serializing_if = "Option::is_none")]
        renewals: Option<u32>,
        /// `device_end_of_life`: when the device's life ended.
        #[serde(skip_serializing_if = "Option::is_none")]
        end_of_life: Option<DateTime<Utc>>,
    },
}

/// Why a certificate can never be renewed on its device (as the renewal would refuse it:
/// `/problems/device-renewal-limit`, `/problems/device-end-of-life`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum NotRenewableReason {
    /// Renewed already the most times a device allows (`RINNOVO_DEVICE_MAX_RENEWALS`).
    DeviceRenewalLimit,
    /// The device is past its life after first activation (`RINNOVO_DEVICE_LIFE_YEARS`).
    DeviceEndOfLife,
    /// Replaced by its renewal.
    Superseded,
}

impl From<lookup::Lookup> for LookupResponse {
    fn from(found: lookup::Lookup) -> Self {
        Self {
            codice_fiscale: found.holder.codice_fiscale,
            given_name: found.holder.given_name,
            surname: found.holder.surname,
            as_of: found.as_of,
            devices: found
                .devices
                .into_iter()
                .map(DeviceResponse::from)
                .collect(),
        }
    }
}

impl From<DeviceView> for DeviceResponse {
    fn from(view: DeviceView) -> Self {
        Self {
            serial_number: view.device.serial_number,
            kind: view.device.kind,
            brand: view.device.brand_id,
            activated_at: view.device.activated_at,
            certificates: view
                .certificates
                .into_iter()
                .map(CertificateResponse::from)
                .collect(),
            renew_together: view.renew_together,
        }
    }
}

impl From<CertificateView> for CertificateResponse {
    fn from(view: CertificateView) -> Self {
        let c = view.certificate;
        Self {
            id: c.id,
            kind: c.kind,
            serial_number: c.serial_number,
            subject: c.subject,
            issuer: c.issuer,
            not_before: c.not_before,
            not_after: c.not_after,
            status: c.status,
            renewal: match view.renewal {
                RenewalStatus::Revoked => RenewalResponse::Revoked,
                RenewalStatus::Superseded => RenewalResponse::NotRenewable {
                    reason: NotRenewableReason::Superseded,
                    renewals: None,
                    end_of_life: None,
                },
                RenewalStatus::DeviceRenewedEnough { count } => RenewalResponse::NotRenewable {
                    reason: NotRenewableReason::DeviceRenewalLimit,
                    renewals: Some(count),
                    end_of_life: None,
                },
                RenewalStatus::DeviceEndOfLife { end_of_life, .. } => {
                    RenewalResponse::NotRenewable {
                        reason: NotRenewableReason::DeviceEndOfLife,
                        renewals: None,
                        end_of_life: Some(end_of_life),
                    }
                }
                RenewalStatus::RenewalPending { renewal_id } => {
                    RenewalResponse::RenewalPending { renewal_id }
                }
                RenewalStatus::ReadyToInstall { renewal_id } => {
                    RenewalResponse::ReadyToInstall { renewal_id }
                }
                RenewalStatus::Eligibility(Eligibility::NotYetRenewable { window_opens_at }) => {
                    RenewalResponse::NotYetRenewable {
                        window_opens_at,
                        window_opens_on: window_opens_at.date_naive(),
                    }
                }
                RenewalStatus::Eligibility(Eligibility::Renewable {
                    days_left,
                    expires_at,
                }) => RenewalResponse::Renewable {
                    days_left,
                    expires_at,
                },
                RenewalStatus::Eligibility(Eligibility::Expired { expired_at }) => {
                    RenewalResponse::Expired {
                        expired_at,
                        expired_on: expired_at.date_naive(),
                    }
                }
            },
        }
    }
}

/// The holder lookup's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(holder_devices))]
pub struct Docs;
