//! The desktop agent's renewals: request, follow, download, confirm (see `crate::renewals`).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, post};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract::Agent;
use super::json::JsonObject;
use super::problem::FieldErrors;
use super::responses::problem_response_type;
use super::{ApiError, ApiResult, AppState, Problem, State};
use crate::coupons::CouponCode;
use crate::registry::CertificateKind;
use crate::renewals::install::{self, InstallError, RenewalView};
use crate::renewals::request::{self, RenewalItem};
use crate::renewals::{csr, RenewalState};
use crate::validation::Rule;

/// The media type of a PEM certificate followed by its chain (RFC 8555, section 9.1).
pub const PEM_CHAIN: &str = "application/pem-certificate-chain";

problem_response_type!(
    /// An operation on one renewal of the agent's device.
    UnknownRenewal,
    404,
    "No such renewal for this device (`/problems/unknown-renewal`)."
);

/// The renewals to request, all or none: one or both certificates of the device.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AgentRenewalsRequest)]
#[serde(deny_unknown_fields)]
pub struct RenewalsBody {
    /// One or two items, each for a different certificate of the device.
    #[schema(min_items = 1, max_items = 2)]
    renewals: Vec<RenewalBody>,
}

/// One certificate to renew, with the CSR of a new key and the coupon that pays for it.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AgentRenewalItem)]
#[serde(deny_unknown_fields)]
struct RenewalBody {
    /// From `GET /agent/certificates`.
    certificate_id: String,
    /// PKCS#10, PEM: a new key (RSA ≥ 2048, EC P-256/P-384), the certificate's subject.
    csr: String,
    /// A coupon that covers this certificate's kind; one covering both may serve both items.
    coupon_code: String,
}

#[derive(Debug, thiserror::Error)]
enum ListError {
    #[error("list one or two certificates of the device")]
    Count,
}

impl Rule for ListError {
    fn rule(&self) -> &'static str {
        "one-or-two"
    }
}

struct CsrRule(csr::CsrError);

impl std::fmt::Display for CsrRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Rule for CsrRule {
    fn rule(&self) -> &'static str {
        self.0.rule()
    }
}

/// Every field's rules at once, before anything is read from the database.
fn parse_items(body: RenewalsBody) -> Result<Vec<RenewalItem>, ApiError> {
    let mut errors = FieldErrors::default();
    let count = body.renewals.len();
    errors.check(
        "renewals",
        if (1..=2).contains(&count) {
            Ok(())
        } else {
            Err(ListError::Count)
        },
    );
    let mut items = Vec::new();
    for (index, item) in body.renewals.into_iter().enumerate() {
        let coupon = errors.check(
            &format!("renewals[{index}].coupon_code"),
            CouponCode::parse(&item.coupon_code),
        );
        let csr = errors.check(
            &format!("renewals[{index}].csr"),
            csr::check(&item.csr).map_err(CsrRule),
        );
        if let (Some(coupon), Some(csr)) = (coupon, csr) {
            items.push(RenewalItem {
                certificate_id: item.certificate_id,
                csr,
                coupon,
            });
        }
    }
    errors.finish()?;
    Ok(items)
}

/// The renewals just queued.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AgentRenewals)]
struct RenewalsResponse {
    /// In the order of the request's items, each `queued`.
    renewals: Vec<RenewalResponse>,
}

/// A renewal of one certificate of the device.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AgentRenewal)]
struct RenewalResponse {
    id: String,
    /// The certificate being renewed.
    certificate_id: String,
    kind: CertificateKind,
    status: RenewalState,
    created_at: DateTime<Utc>,
    /// The new certificate, once issued (absent before).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    certificate: Option<CertificateResponse>,
    /// Once installed (absent before).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    installed_at: Option<DateTime<Utc>>,
    /// The new certificate in the registry, once installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    new_certificate_id: Option<String>,
    links: Links,
}

/// The certificate a renewal issued.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AgentIssuedCertificate)]
struct CertificateResponse {
    serial_number: String,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    issued_at: DateTime<Utc>,
    /// The new certificate, then the issuing CA's, then the root's.
    pem_chain: String,
}

/// Where to follow and confirm the renewal.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AgentRenewalLinks)]
struct Links {
    /// `GET` it for the status and, once issued, the certificate.
    #[serde(rename = "self")]
    #[schema(example = "/api/v1/agent/renewals/0193a1b2-0000-7000-8000-000000000001")]
    this: String,
    /// `POST` to it once the certificate is on the device.
    #[schema(example = "/api/v1/agent/renewals/0193a1b2-0000-7000-8000-000000000001/installed")]
    installed: String,
}

fn links(id: &str) -> Links {
    Links {
        this: format!("/api/v1/agent/renewals/{id}"),
        installed: format!("/api/v1/agent/renewals/{id}/installed"),
    }
}

fn respond(view: RenewalView, chain: &str) -> RenewalResponse {
    RenewalResponse {
        links: links(&view.id),
        certificate: view.issued.map(|issued| CertificateResponse {
            serial_number: issued.serial_number,
            not_before: issued.not_before,
            not_after: issued.not_after,
            issued_at: issued.issued_at,
            pem_chain: format!("{}{chain}", issued.pem),
        }),
        id: view.id,
        certificate_id: view.certificate_id,
        kind: view.kind,
        status: view.status,
        created_at: view.created_at,
        installed_at: view.installed_at,
        new_certificate_id: view.new_certificate_id,
    }
}

fn retry_after(state: &AppState) -> HeaderValue {
    HeaderValue::from(state.config.issuance_interval.as_secs().max(1))
}

/// Queue renewals of the device's certificates, reserving their coupons
///
/// All items or none, in one transaction. Every refusal names the field at fault in
/// `errors[].field` (`renewals[i].certificate_id`, `renewals[i].csr`,
/// `renewals[i].coupon_code`) and the rule. At most 60 requests per device per 10 minutes.
#[utoipa::path(
    operation_id = "renewals_request_renewals",
    security(("agent_token" = [])),
    request_body = RenewalsBody,
    responses(
        (status = 201, description = "Queued; the coupons are reserved.",
            body = RenewalsResponse,
            headers(
                ("Location" = String, description = "The first renewal (`GET` it to follow)."),
                ("Retry-After" = u64,
                    description = "Seconds before asking for the status (the issuance batch interval)."),
            )),
        (status = 400, description = "Body not JSON or of the wrong shape \
            (`/problems/malformed-request`), or fields breaking their rules \
            (`/problems/invalid-field`: `renewals`/`one-or-two`; `csr`/`pkcs10-pem`, \
            `proof-of-possession`, `key-strength`; `coupon_code`/the code's rule; \
            `certificate_id`/`unique`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "A certificate not on this device \
            (`/problems/unknown-certificate`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A certificate revoked or superseded \
            (`/problems/certificate-not-active`), outside its renewal window \
            (`/problems/outside-renewal-window`) or with a renewal in progress \
            (`/problems/renewal-pending`); the device renewed already \
            (`/problems/device-renewal-limit`) or past its life \
            (`/problems/device-end-of-life`); the coupon reserved, redeemed or voided \
            (`/problems/coupon-not-available`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "CSR subject differs from the certificate's \
            (`/problems/csr-subject-mismatch`) or reuses a key (`/problems/csr-old-key`); \
            coupon unknown (`/problems/unknown-coupon`), of another brand \
            (`/problems/coupon-other-brand`), past its validity (`/problems/coupon-expired`) \
            or for another kind of certificate (`/problems/coupon-wrong-kind`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many renewal requests from this device \
            (`/problems/too-many-requests`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds before trying again."))),
    ),
)]
#[post("/api/v1/agent/renewals")]
pub async fn request_renewals(
    state: State,
    Agent(claims): Agent,
    body: JsonObject<RenewalsBody>,
) -> ApiResult {
    let items = parse_items(body.into_inner())?;
    let coupon_key = state.coupon_key.clone();
    let policy = state.config.renewal_policy;
    let queued = state
        .with_conn(move |conn| -> Result<_, ApiError> {
            let now = Utc::now();
            let queued = request::request(
                conn,
                &coupon_key,
                &policy,
                &claims.sub,
                &claims.brand,
                &items,
                now,
            )?;
            let mut views = Vec::new();
            for queued in &queued {
                views.push(install::find(conn, &claims.sub, &queued.id)?);
            }
            Ok(views)
        })
        .await?;
    let location = links(&queued[0].id).this;
    let renewals: Vec<RenewalResponse> = queued.into_iter().map(|v| respond(v, "")).collect();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::RETRY_AFTER, retry_after(&state)))
        .json(RenewalsResponse { renewals }))
}

/// A renewal's status and, once issued, its certificate (JSON or PEM chain)
#[utoipa::path(
    operation_id = "renewals_renewal",
    security(("agent_token" = [])),
    params(
        ("id" = String, Path, description = "The renewal's id (`renewals[].id`)."),
        ("Accept" = Option<String>, Header,
            description = "`application/pem-certificate-chain` for the PEM chain alone \
                (409 before the renewal is issued); anything else for JSON.",
            example = "application/pem-certificate-chain"),
    ),
    responses(
        (status = 200, description = "JSON: the renewal, with `certificate` once issued. \
            PEM (`Accept: application/pem-certificate-chain`): the new certificate, then the \
            issuing CA's, then the root's.",
            content(
                (RenewalResponse = "application/json"),
                (String = "application/pem-certificate-chain"),
            ),
            headers(("Retry-After" = u64,
                description = "While `queued` or `issuing` (JSON only): seconds before asking again."))),
        UnknownRenewal,
        (status = 409, description = "PEM asked for before the renewal is issued \
            (`/problems/renewal-not-issued`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64,
                description = "While `queued` or `issuing`: seconds before asking again."))),
    ),
)]
#[get("/api/v1/agent/renewals/{id}")]
pub async fn renewal(
    state: State,
    Agent(claims): Agent,
    id: web::Path<String>,
    request: HttpRequest,
) -> ApiResult {
    let id = id.into_inner();
    let view = state
        .with_conn(move |conn| install::find(conn, &claims.sub, &id))
        .await?;
    let waiting = matches!(view.status, RenewalState::Queued | RenewalState::Issuing);
    let wants_pem = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(PEM_CHAIN));
    if wants_pem {
        let Some(issued) = &view.issued else {
            let mut response =
                ApiError::from(InstallError::NotIssued(view.status)).error_response();
            if waiting {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry_after(&state));
            }
            return Ok(response);
        };
        return Ok(HttpResponse::Ok().content_type(PEM_CHAIN).body(format!(
            "{}{}",
            issued.pem,
            state.ca.chain_pem()
        )));
    }
    let mut response = HttpResponse::Ok();
    if waiting {
        response.insert_header((header::RETRY_AFTER, retry_after(&state)));
    }
    Ok(response.json(respond(view, &state.ca.chain_pem())))
}

/// Confirm the new certificate is installed on the device
///
/// No body. The new certificate becomes `active`, the old one `superseded`, the coupon
/// `redeemed`, and the holder gets an email. Idempotent: confirming again answers the same.
#[utoipa::path(
    operation_id = "renewals_installed",
    security(("agent_token" = [])),
    params(("id" = String, Path, description = "The renewal's id (`renewals[].id`).")),
    responses(
        (status = 200, description = "The renewal, `installed`, with `new_certificate_id`.",
            body = RenewalResponse),
        UnknownRenewal,
        (status = 409, description = "The renewal is not issued (yet, or it was rejected or \
            failed) (`/problems/renewal-not-issued`).",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/api/v1/agent/renewals/{id}/installed")]
pub async fn installed(state: State, Agent(claims): Agent, id: web::Path<String>) -> ApiResult {
    let id = id.into_inner();
    let view = state
        .with_conn(move |conn| install::confirm_installed(conn, &claims.sub, &id, Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(respond(view, &state.ca.chain_pem())))
}
