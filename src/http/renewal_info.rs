//! `GET /api/v1/renewal-info/{cert-id}` (RFC 9773). Public, as in ACME: the CertID
//! names a certificate the caller already has.

use actix_web::get;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ApiError, ApiResult, Problem, State};
use crate::renewals::info::{self, CertId, RETRY_AFTER_SECS};

/// The renewal information of a certificate (RFC 9773, section 4.2).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RenewalInfo)]
#[serde(rename_all = "camelCase")]
struct RenewalInfoResponse {
    /// When to renew: from 90 days before expiry to 7 days before it; for a revoked
    /// certificate, open and closing now.
    suggested_window: Window,
}

/// The suggested renewal window: renew at a random instant between `start` and `end`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SuggestedWindow)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// Suggested renewal window of a certificate (RFC 9773 ARI)
#[utoipa::path(
    operation_id = "renewal_info_show",
    security(()),
    params(
        ("cert_id" = String, Path,
            description = "The RFC 9773 CertID: base64url (no padding) of the certificate's \
                Authority Key Identifier, a dot, base64url of its DER serial number.",
            example = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"),
    ),
    responses(
        (status = 200, description = "The suggested renewal window.", body = RenewalInfoResponse,
            headers(("Retry-After" = u64,
                description = "Seconds before asking again (21600: six hours)."))),
        (status = 400, description = "Malformed CertID (`/problems/invalid-field`, field \
            `cert_id`, rule `ari_cert_id`).",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No certificate of this service's CA has this CertID \
            (`/problems/unknown-certificate`).",
            body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/api/v1/renewal-info/{cert_id}")]
pub async fn show(state: State, cert_id: web::Path<String>) -> ApiResult {
    let id = CertId::parse(&cert_id)
        .map_err(|e| ApiError::invalid_field("cert_id", "ari_cert_id", e.to_string()))?;
    let ca = state.ca.clone();
    let found = state
        .with_conn(move |conn| info::renewal_info(conn, ca.as_ref(), &id, Utc::now()))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()))
        .json(RenewalInfoResponse {
            suggested_window: Window {
                start: found.start,
                end: found.end,
            },
        }))
}
