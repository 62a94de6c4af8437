//! The desktop agent's sign-in: challenges and sessions (see `crate::agent`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::auth::Agent;
use super::lookup::DeviceResponse;
use super::{ApiError, AppState};
use crate::agent::{self, AgentAuthError};
use crate::auth::tokens::AGENT_TTL_MINUTES;
use crate::rate_limit::{self, Limit};

/// Challenges cost a row each and are free to ask for: a few per minute per address is
/// plenty for agents behind one office's NAT.
const CHALLENGES: Limit = Limit {
    bucket: "agent_challenge",
    max_hits: 60,
    window: Duration::minutes(10),
};

impl From<AgentAuthError> for ApiError {
    fn from(error: AgentAuthError) -> Self {
        let detail = error.to_string();
        let unauthorized = |problem, title| {
            ApiError::refused(StatusCode::UNAUTHORIZED, problem, title, detail.clone())
        };
        match error {
            AgentAuthError::Storage(e) => ApiError::storage(e.into()),
            AgentAuthError::MalformedCertificate(_) => {
                ApiError::invalid_field("certificate", "x509", detail)
            }
            AgentAuthError::MalformedSignature => {
                ApiError::invalid_field("signature", "base64", detail)
            }
            AgentAuthError::Challenge => unauthorized("agent-challenge", "Challenge not valid"),
            AgentAuthError::Untrusted => {
                unauthorized("untrusted-certificate", "Certificate not trusted")
            }
            AgentAuthError::OutsideValidity { .. } => {
                unauthorized("certificate-not-valid-now", "Certificate not valid now")
            }
            AgentAuthError::UnknownCertificate => {
                unauthorized("unknown-certificate", "Certificate not in the registry")
            }
            AgentAuthError::NotActive(_) => unauthorized(
                "certificate-not-active",
                "Certificate revoked or superseded",
            ),
            AgentAuthError::Signature => unauthorized("bad-signature", "Signature not valid"),
        }
    }
}

#[derive(Serialize)]
struct ChallengeResponse {
    nonce: String,
    expires_at: DateTime<Utc>,
}

/// `POST /api/v1/agent/challenges`: a single-use nonce to sign.
pub async fn challenge(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let client = super::client_address(&request);
    let challenge = state
        .with_conn(move |conn| -> Result<_, ApiError> {
            let now = Utc::now();
            if let Err(retry_after_seconds) = rate_limit::hit(conn, CHALLENGES, &client, now)? {
                return Err(ApiError::TooManyRequests {
                    retry_after_seconds,
                    detail: format!("too many challenges; retry in {retry_after_seconds} seconds"),
                });
            }
            agent::new_challenge(conn, now).map_err(|e| ApiError::storage(e.into()))
        })
        .await?;
    Ok(HttpResponse::Created().json(ChallengeResponse {
        nonce: challenge.nonce,
        expires_at: challenge.expires_at,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// PEM, or base64 of the DER.
    certificate: String,
    nonce: String,
    /// base64 of the signature over the nonce's bytes.
    signature: String,
}

#[derive(Serialize)]
struct SessionResponse {
    token: String,
    token_type: &'static str,
    expires_in: i64,
    device_id: String,
    certificate_id: String,
}

/// `POST /api/v1/agent/sessions`: the signed challenge and the certificate → an agent
/// token scoped to that device.
pub async fn session(
    state: web::Data<AppState>,
    body: web::Json<SessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let SessionRequest {
        certificate,
        nonce,
        signature,
    } = body.into_inner();
    let ca = state.ca.clone();
    let now = Utc::now();
    let identity = state
        .with_conn(move |conn| {
            agent::authenticate(conn, ca.as_ref(), &certificate, &nonce, &signature, now)
        })
        .await?;
    let token = state.tokens.issue_agent(
        &identity.device_id,
        &identity.certificate_id,
        &identity.brand_id,
        now,
    );
    tracing::info!(device = %identity.device_id, certificate = %identity.certificate_id, "agent signed in");
    Ok(HttpResponse::Created().json(SessionResponse {
        token,
        token_type: "Bearer",
        expires_in: AGENT_TTL_MINUTES * 60,
        device_id: identity.device_id,
        certificate_id: identity.certificate_id,
    }))
}

#[derive(Serialize)]
struct AgentDeviceResponse {
    /// The instant the statuses were computed at.
    as_of: DateTime<Utc>,
    device: DeviceResponse,
    /// Per certificate kind, the codes of the coupons on sale that renew it.
    coupons_that_fit: std::collections::BTreeMap<&'static str, Vec<String>>,
}

/// `GET /api/v1/agent/certificates`: the agent's device, with the lookup's statuses,
/// and the coupons that fit each certificate.
pub async fn certificates(
    state: web::Data<AppState>,
    Agent(claims): Agent,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let (device, products) = state
        .with_conn(move |conn| -> Result<_, ApiError> {
            let device = agent::own_device(conn, &claims.sub, &claims.brand, now)
                .map_err(ApiError::storage)?
                .ok_or_else(|| {
                    ApiError::not_found(
                        "unknown-device",
                        "Unknown device",
                        "the device is no longer in the registry",
                    )
                })?;
            let products =
                crate::catalog::list(conn, &claims.brand, false).map_err(ApiError::storage)?;
            Ok((device, products))
        })
        .await?;
    let device = DeviceResponse::from(device);
    let mut coupons_that_fit = std::collections::BTreeMap::new();
    for certificate in &device.certificates {
        let codes = products
            .iter()
            .filter(|p| p.active && p.covers.kinds().contains(&certificate.kind))
            .map(|p| p.code.clone())
            .collect();
        coupons_that_fit.insert(certificate.kind.as_str(), codes);
    }
    Ok(HttpResponse::Ok().json(AgentDeviceResponse {
        as_of: now,
        device,
        coupons_that_fit,
    }))
}
