//! `GET /api/v1/orders/{id}/invoice.xml`: the electronic invoice of an order.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::extract::CurrentUser;
use super::{ApiError, AppState, Problem};
use crate::invoices::{self, Viewer};

/// The order's electronic invoice (FatturaPA XML), named as the SdI names it.
///
/// Issued when the order is fulfilled. Customers and registration officers their own
/// orders, back-office operators any order of their brand; anyone else, and an order not
/// yet fulfilled, is answered as unknown.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}/invoice.xml",
    tag = "orders",
    operation_id = "orders_invoice_xml",
    params(("id" = String, Path, description = "The order's id")),
    responses(
        (status = 200, description = "The FatturaPA file (format FPR12), with its SdI file \
name in `Content-Disposition`", content_type = "application/xml", body = String),
        (status = 404, description = "No invoice of that order visible to the caller \
(`/problems/unknown-invoice`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn xml(
    state: web::Data<AppState>,
    user: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let file = state
        .with_conn(move |conn| {
            let viewer = Viewer {
                user_id: &user.id,
                brand_id: &user.brand,
                role: user.role,
            };
            Ok::<_, ApiError>(invoices::file_of_order(conn, &viewer, &id)?)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.file_name),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(file.xml))
}

/// The invoice operations' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(xml))]
pub struct Docs;
