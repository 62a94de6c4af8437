//! Liveness (the process answers) and readiness (it can also reach its database).

use actix_web::get;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;

use super::{ApiError, ApiResult, State};

/// The answer of a health probe.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthResponse {
    /// Always `ok` when the probe succeeds.
    #[schema(example = "ok")]
    status: &'static str,
    /// `ok` when the database answered (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ok")]
    database: Option<&'static str>,
}

/// Liveness probe: the process answers
#[utoipa::path(
    operation_id = "health_live",
    security(()),
    responses(
        (status = 200, description = "The process is alive", body = HealthResponse,
            example = json!({ "status": "ok" })),
    )
)]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "ok",
        database: None,
    })
}

/// Readiness probe: the process can reach its database
#[utoipa::path(
    operation_id = "health_ready",
    security(()),
    responses(
        (status = 200, description = "Ready: the database answered", body = HealthResponse,
            example = json!({ "status": "ok", "database": "ok" })),
    )
)]
#[get("/health/ready")]
pub async fn ready(state: State) -> ApiResult {
    let pool = state.pool.clone();
    web::block(move || -> anyhow::Result<()> {
        let mut conn = pool.get_timeout(Duration::from_secs(2))?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    })
    .await
    .map_err(|e| ApiError::Unexpected(e.into()))?
    .map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(HealthResponse {
        status: "ok",
        database: Some("ok"),
    }))
}
