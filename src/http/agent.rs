//! The desktop agent's sign-in: challenges and sessions (see `crate::agent`).

use actix_web::{get, post};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract::Agent;
use super::json::JsonObject;
use super::lookup::DeviceResponse;
use super::{ApiError, ApiResult, Problem, State};
use crate::agent::{self};
use crate::auth::tokens::AGENT_TTL_MINUTES;

/// A nonce for the agent to sign with the key of a certificate on the device.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AgentChallenge)]
struct ChallengeResponse {
    /// Sign its ASCII bytes; usable once (a failed sign-in uses it up).
    nonce: String,
    /// Two minutes after it was made.
    expires_at: DateTime<Utc>,
}

/// Get a single-use nonce to sign for an agent session
///
/// No body. At most 60 challenges per client address per 10 minutes.
#[utoipa::path(
    operation_id = "agent_challenge",
    security(()),
    responses(
        (status = 201, description = "A nonce, valid for 2 minutes, usable once.",
            body = ChallengeResponse),
        (status = 429, description = "Too many challenges from this address \
            (`/problems/too-many-requests`).",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds before trying again."))),
    ),
)]
#[post("/api/v1/agent/challenges")]
pub async fn challenge(state: State, request: HttpRequest) -> ApiResult {
    let client = super::client_address(&request);
    let challenge = state
        .with_conn(move |conn| agent::new_challenge(conn, &client, Utc::now()))
        .await?;
    Ok(HttpResponse::Created().json(ChallengeResponse {
        nonce: challenge.nonce,
        expires_at: challenge.expires_at,
    }))
}

/// The signed challenge and the certificate whose key signed it.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = AgentSessionRequest)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// PEM, or base64 of the DER.
    certificate: String,
    /// The nonce of `POST /api/v1/agent/challenges`.
    nonce: String,
    /// base64 of the signature over the nonce's bytes.
    signature: String,
}

/// An agent token, scoped to the device of the certificate.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AgentSession)]
struct SessionResponse {
    /// JWT (issuer `rinnovo-agent-auth`, audience `rinnovo-agent`): send it as
    /// `Authorization: Bearer <token>`. Not an access token for the rest of the API.
    token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds the token is valid for.
    #[schema(example = 900)]
    expires_in: i64,
    device_id: String,
    certificate_id: String,
}

/// Sign in as a device's agent with a signed challenge
///
/// The certificate must be the device's authentication certificate (never the qualified
/// signature one, whose keyUsage has nonRepudiation), issued by a CA the service trusts,
/// valid now, in the registry and active; the signature over the nonce must verify with its key (RSA PKCS#1 v1.5 or PSS with
/// SHA-256, or ECDSA P-256 with SHA-256).
#[utoipa::path(
    operation_id = "agent_session",
    security(()),
    request_body = SessionRequest,
    responses(
        (status = 201, description = "An agent token (15 minutes) for the device.",
            body = SessionResponse),
        (status = 400, description = "Body not JSON or of the wrong shape \
            (`/problems/malformed-request`), or certificate or signature unreadable \
            (`/problems/invalid-field`: `certificate`/`x509`, `signature`/`base64`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Sign-in refused: nonce unknown, expired or used \
            (`/problems/agent-challenge`); certificate not issued by a trusted CA \
            (`/problems/untrusted-certificate`); the qualified signature certificate \
            (keyUsage nonRepudiation), which never signs in \
            (`/problems/signature-certificate-sign-in`); expired or not yet valid \
            (`/problems/certificate-not-valid-now`); not in the registry \
            (`/problems/unknown-certificate`); revoked or superseded \
            (`/problems/certificate-not-active`); signature does not verify \
            (`/problems/bad-signature`).",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/api/v1/agent/sessions")]
pub async fn session(state: State, body: JsonObject<SessionRequest>) -> ApiResult {
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

/// The agent's device as the lookup shows it, and the coupons that renew its certificates.
#[derive(Serialize, utoipa::ToSchema)]
struct AgentDeviceResponse {
    /// The instant the statuses were computed at.
    as_of: DateTime<Utc>,
    device: DeviceResponse,
    /// Per certificate kind, the codes of the coupons on sale that renew it.
    #[schema(example = json!({"signature": ["RIN-FIRMA", "RIN-FIRMA-CNS"]}))]
    coupons_that_fit: std::collections::BTreeMap<&'static str, Vec<String>>,
}

/// The agent's device, its certificates' renewal statuses and the coupons that fit
#[utoipa::path(
    operation_id = "agent_certificates",
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The device, as of now.", body = AgentDeviceResponse),
        (status = 404, description = "The device is no longer in the registry \
            (`/problems/unknown-device`).",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/agent/certificates")]
pub async fn certificates(state: State, Agent(claims): Agent) -> ApiResult {
    let now = Utc::now();
    let policy = state.config.renewal_policy;
    let (device, products) = state
        .with_conn(move |conn| -> Result<_, ApiError> {
            let device = agent::own_device(conn, &policy, &claims.sub, &claims.brand, now)?;
            let products =
                crate::catalog::list(conn, &claims.brand, false).map_err(ApiError::storage)?;
            Ok((device, products))
        })
        .await?;
    let device = DeviceResponse::from(device);
    let mut coupons_that_fit = std::collections::BTreeMap::new();
    for certificate in &device.certificates {
        let codes = crate::catalog::codes_covering(&products, certificate.kind);
        coupons_that_fit.insert(certificate.kind.as_str(), codes);
    }
    Ok(HttpResponse::Ok().json(AgentDeviceResponse {
        as_of: now,
        device,
        coupons_that_fit,
    }))
}
