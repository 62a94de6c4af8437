//! `GET /api/v1/renewal-info/{cert-id}` (RFC 9773). Public, as in ACME: the CertID
//! names a certificate the caller already has.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::renewals::info::{self, CertId, RETRY_AFTER_SECS};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenewalInfoResponse {
    suggested_window: Window,
}

#[derive(Serialize)]
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

pub async fn show(
    state: web::Data<AppState>,
    cert_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = CertId::parse(&cert_id)
        .map_err(|e| ApiError::invalid_field("cert_id", "ari_cert_id", e.to_string()))?;
    let ca = state.ca.clone();
    let found = state
        .with_conn(move |conn| info::renewal_info(conn, ca.as_ref(), &id, Utc::now()))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown-certificate",
                "Unknown certificate",
                "no certificate of this service's CA has this CertID",
            )
        })?;
    Ok(HttpResponse::Ok()
        .insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()))
        .json(RenewalInfoResponse {
            suggested_window: Window {
                start: found.start,
                end: found.end,
            },
        }))
}
