//! `GET /api/v1/holders/{codice_fiscale}/devices` and `POST /api/v1/holders/bulk-lookup`.

use actix_web::http::header;
use actix_web::{get, post};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::extract::CurrentUser;
use super::json::JsonObject;
use super::responses::{TooManyLookups, UnknownHolder};
use super::{ApiError, ApiResult, AppState, Problem, State};
use crate::catalog::bulk::{self, BulkLookup, HolderList};
use crate::lookup::{self, CertificateView, DeviceView, Eligibility, RenewalStatus};
use crate::registry::{CertificateKind, CertificateStatus, CodiceFiscale, DeviceKind};

/// A holder's devices and certificates, with their renewal status
///
/// Any signed-in user (customer, registration officer, back-office); only the devices of the
/// caller's brand are shown, and a holder with none of them is answered as an unknown one.
/// Lookups are limited per user (by role) and per client address, per hour and per day.
#[utoipa::path(
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
#[get("/api/v1/holders/{codice_fiscale}/devices")]
pub async fn holder_devices(
    state: State,
    request: HttpRequest,
    user: CurrentUser,
    codice_fiscale: web::Path<String>,
) -> ApiResult {
    let codice_fiscale = CodiceFiscale::parse(&codice_fiscale)
        .map_err(|e| ApiError::broken_field("codice_fiscale", e))?;
    let asker = asker(&state, &user, &request);
    let found = state
        .with_conn(move |conn| {
            lookup::lookup_as(conn, &asker, &codice_fiscale, &user.brand, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(LookupResponse::from(found)))
}

/// Who looks holders up with this request: the signed-in user, from the address the
/// request came from, within the configured limits and policy.
pub(super) fn asker(state: &AppState, user: &CurrentUser, request: &HttpRequest) -> lookup::Asker {
    state.lookup_asker(lookup::Caller {
        user_id: user.id.clone(),
        role: user.role,
        address: super::client_address(request),
    })
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

/// A list of holders: either `codici_fiscali`, or `list`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkLookupRequest {
    /// The codici fiscali, one per element (element `i` is line `i + 1` in refusals).
    #[serde(default)]
    #[schema(example = json!(["RSSMRA80A01H501U", "BNCLRA85T52F205E"]))]
    codici_fiscali: Option<Vec<String>>,
    /// The text of a list as pasted or as a text or CSV file: one codice fiscale a line
    /// (of a CSV line, the first field; a first line `codice_fiscale` is a header).
    #[serde(default)]
    list: Option<String>,
}

/// Look up many holders at once, with the coupons proposed for all of them
///
/// Any signed-in user; only the devices of the caller's brand are shown. Up to 1,000
/// holders (repeats are looked up once); every invalid line is named
/// (`errors[].field` = `codici_fiscali[i]`, with the rule) and then nothing is looked up.
/// Each holder counts as one lookup against the caller's limits; a list that does not fit
/// them is refused whole (429 with `Retry-After`). `order_lines` is the order that buys
/// every proposed coupon: post it as the `lines` of `POST /api/v1/orders`.
/// With `Accept: text/csv` the answer is a spreadsheet file, one row per certificate.
#[utoipa::path(
    operation_id = "lookup_many_holders",
    request_body = BulkLookupRequest,
    responses(
        (status = 200, description = "Every holder of the list, their devices and the \
            coupons proposed (JSON; `text/csv` when asked with `Accept: text/csv`)",
            content(
                (BulkLookupResponse = "application/json"),
                (String = "text/csv", example = "riga;codice_fiscale;titolare;dispositivo;tipo_dispositivo;certificato;scadenza;stato;motivo;coupon_proposto;prezzo_coupon\n1;RSSMRA80A01H501U;Mario Rossi;1205100000;smart_card;signature;15/01/2027;rinnovabile;scade tra 44 giorni;RIN-FIRMA;11,00\n"),
            )),
        (status = 400, description = "An invalid line (`/problems/invalid-field`, every one in \
            `errors`), an empty list or more than 1,000 holders (`/problems/invalid-field`), \
            or a malformed body, or neither or both of `codici_fiscali` and `list` \
            (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        TooManyLookups,
    )
)]
#[post("/api/v1/holders/bulk-lookup")]
pub async fn bulk_lookup(
    state: State,
    request: HttpRequest,
    user: CurrentUser,
    body: JsonObject<BulkLookupRequest>,
) -> ApiResult {
    let list = match body.into_inner() {
        BulkLookupRequest {
            codici_fiscali: Some(items),
            list: None,
        } => HolderList::from_items(&items)?,
        BulkLookupRequest {
            codici_fiscali: None,
            list: Some(text),
        } => HolderList::parse(&text)?,
        _ => {
            return Err(ApiError::MalformedRequest(
                "send either codici_fiscali (an array) or list (text, one per line)".into(),
            ))
        }
    };
    let asker = asker(&state, &user, &request);
    let found = state
        .with_conn(move |conn| bulk::lookup_many_as(conn, &asker, &list, &user.brand, Utc::now()))
        .await?;
    if wants_csv(&request) {
        let file = found.csv().map_err(ApiError::storage)?;
        return Ok(super::coupons::csv_file("titolari", file));
    }
    Ok(HttpResponse::Ok().json(BulkLookupResponse::from(found)))
}

/// Whether the client asked for CSV rather than JSON.
fn wants_csv(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"))
}

/// Every holder of a list, their devices and the coupons proposed.
#[derive(Serialize, utoipa::ToSchema)]
struct BulkLookupResponse {
    /// The instant the statuses were computed at.
    as_of: DateTime<Utc>,
    /// In the order of the list, each holder once.
    holders: Vec<ListedHolderResponse>,
    /// Every proposed coupon summed per product: the `lines` of the order that buys them.
    order_lines: Vec<ProposedLine>,
    summary: BulkSummary,
}

/// The counts of a list's answer.
#[derive(Serialize, utoipa::ToSchema)]
struct BulkSummary {
    /// Holders looked up (and counted against the limits).
    holders: usize,
    /// Of them, holders with a device of the brand.
    found: usize,
    devices: usize,
    /// Devices with coupons proposed.
    devices_to_renew: usize,
    /// Coupons proposed in all.
    coupons: u32,
}

/// One holder of the list.
#[derive(Serialize, utoipa::ToSchema)]
struct ListedHolderResponse {
    /// The line of the list (from 1) that first named the holder.
    line: usize,
    #[schema(value_type = String, example = "RSSMRA80A41H501U")]
    codice_fiscale: CodiceFiscale,
    /// `false`: no holder with a device of this brand has this codice fiscale (whether it
    /// is registered otherwise is not told); no name, no devices.
    found: bool,
    given_name: Option<String>,
    surname: Option<String>,
    devices: Vec<ListedDeviceResponse>,
}

/// A device with the coupons proposed to renew it now.
#[derive(Serialize, utoipa::ToSchema)]
struct ListedDeviceResponse {
    #[serde(flatten)]
    device: DeviceResponse,
    /// Empty when nothing is renewable now, or no coupon of the shop fits
    /// (`no_fitting_product`).
    proposed: Vec<ProposedLine>,
    no_fitting_product: bool,
}

/// A product (by code) and how many coupons of it.
#[derive(Serialize, utoipa::ToSchema)]
struct ProposedLine {
    #[schema(example = "RIN-FIRMA")]
    product: String,
    quantity: u32,
}

impl From<BulkLookup> for BulkLookupResponse {
    fn from(found: BulkLookup) -> Self {
        let code = |line: &crate::catalog::RequestedLine| ProposedLine {
            product: found
                .products
                .iter()
                .find(|p| p.id == line.product)
                .map_or_else(|| line.product.clone(), |p| p.code.clone()),
            quantity: line.quantity,
        };
        let devices = found.holders.iter().flat_map(|h| &h.devices);
        let summary = BulkSummary {
            holders: found.holders.len(),
            found: found.found(),
            devices: devices.clone().count(),
            devices_to_renew: devices.filter(|d| !d.proposed.is_empty()).count(),
            coupons: found.coupons(),
        };
        let order_lines = found.proposed.iter().map(code).collect();
        let holders = found
            .holders
            .iter()
            .map(|h| ListedHolderResponse {
                line: h.line,
                codice_fiscale: h.codice_fiscale.clone(),
                found: h.holder.is_some(),
                given_name: h.holder.as_ref().map(|h| h.given_name.clone()),
                surname: h.holder.as_ref().map(|h| h.surname.clone()),
                devices: h
                    .devices
                    .iter()
                    .map(|d| ListedDeviceResponse {
                        no_fitting_product: d.no_fitting_product(),
                        proposed: d.proposed.iter().map(code).collect(),
                        device: DeviceResponse::from(d.view.clone()),
                    })
                    .collect(),
            })
            .collect();
        Self {
            as_of: found.as_of,
            holders,
            order_lines,
            summary,
        }
    }
}
