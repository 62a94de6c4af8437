//! `GET /api/v1/products` and `POST /api/v1/quotes`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::auth::{BackOffice, Buyer, CurrentUser};
use super::lookup::lookup_error;
use super::{ApiError, AppState};
use crate::auth::Role;
use crate::catalog::{
    self, CatalogError, Covers, Product, ProductChangeError, ProposalError, Quote, RequestedLine,
};
use crate::money::Money;
use crate::registry::CodiceFiscale;

#[derive(Serialize)]
struct ProductResponse {
    id: String,
    code: String,
    name: String,
    covers: Covers,
    professional: bool,
    net_price: Money,
    vat_rate: String,
    active: bool,
}

impl From<Product> for ProductResponse {
    fn from(p: Product) -> Self {
        Self {
            id: p.id,
            code: p.code,
            name: p.name,
            covers: p.covers,
            professional: p.professional,
            net_price: p.net_price,
            vat_rate: format!("{:.2}", p.vat_rate.percent()),
            active: p.active,
        }
    }
}

/// The caller's brand's products; the back-office also sees deactivated ones.
pub async fn products(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let include_inactive = user.role == Role::BackOffice;
    let list = state
        .with_conn(move |conn| {
            catalog::list(conn, &user.brand, include_inactive).map_err(ApiError::storage)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "products": list.into_iter().map(ProductResponse::from).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// The product's id or its code (e.g. RIN-FIRMA).
    pub product: String,
    pub quantity: i64,
}

/// Either `lines`, or `codice_fiscale` + `device_serial` to have the coupons proposed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    #[serde(default)]
    lines: Option<Vec<LineRequest>>,
    #[serde(default)]
    codice_fiscale: Option<String>,
    #[serde(default)]
    device_serial: Option<String>,
}

/// Checks quantities and the per-order cap of the role; the lines are what was asked.
pub fn requested_lines(lines: &[LineRequest], role: Role) -> Result<Vec<RequestedLine>, ApiError> {
    if lines.is_empty() {
        return Err(ApiError::invalid_field(
            "lines",
            "not_empty",
            "an order needs at least one line",
        ));
    }
    let cap = catalog::max_coupons_per_order(role);
    let mut total: i64 = 0;
    let mut out = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        if line.quantity < 1 || line.quantity > i64::from(cap.max(1)) {
            return Err(ApiError::invalid_field(
                &format!("lines[{index}].quantity"),
                "range",
                format!("quantity must be from 1 to {}", cap.max(1)),
            ));
        }
        total += line.quantity;
        out.push(RequestedLine {
            product: line.product.trim().to_owned(),
            quantity: line.quantity as u32,
        });
    }
    if total > i64::from(cap) {
        return Err(ApiError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "order-too-large",
            "Order too large",
            format!("a {role} may buy at most {cap} coupons in one order; this one has {total}"),
        ));
    }
    Ok(out)
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        let detail = error.to_string();
        let field = |line: usize| format!("lines[{}].product", line - 1);
        match error {
            CatalogError::UnknownProduct { line, .. } => {
                ApiError::invalid_field(&field(line), "known_product", detail)
            }
            CatalogError::InactiveProduct { line, .. } => {
                ApiError::invalid_field(&field(line), "active_product", detail)
            }
            CatalogError::DuplicateProduct { second, .. } => {
                ApiError::invalid_field(&field(second), "unique_product", detail)
            }
            CatalogError::Storage(e) => ApiError::storage(e),
        }
    }
}

impl From<ProposalError> for ApiError {
    fn from(error: ProposalError) -> Self {
        match error {
            ProposalError::Lookup(e) => lookup_error(e),
            ProposalError::UnknownDevice(_) => {
                ApiError::invalid_field("device_serial", "known_device", error.to_string())
            }
            ProposalError::NothingToRenew(_) | ProposalError::NoFittingProduct => {
                ApiError::refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "nothing-to-renew",
                    "Nothing to renew",
                    error.to_string(),
                )
            }
            ProposalError::Storage(e) => ApiError::storage(e),
        }
    }
}

#[derive(Serialize)]
pub struct QuoteLineResponse {
    product_id: String,
    code: String,
    name: String,
    covers: Covers,
    quantity: u32,
    net_unit_price: Money,
    net_amount: Money,
    vat_rate: String,
    informative_gross: Money,
}

#[derive(Serialize)]
pub struct VatSummaryResponse {
    vat_rate: String,
    taxable: Money,
    vat: Money,
}

#[derive(Serialize)]
pub struct QuoteResponse {
    lines: Vec<QuoteLineResponse>,
    vat_summary: Vec<VatSummaryResponse>,
    net_total: Money,
    vat_total: Money,
    gross_total: Money,
    currency: &'static str,
}

impl QuoteResponse {
    pub fn new(products: &[(Product, u32)], quote: Quote) -> Self {
        Self {
            lines: products
                .iter()
                .zip(quote.lines)
                .map(|((product, _), line)| QuoteLineResponse {
                    product_id: product.id.clone(),
                    code: product.code.clone(),
                    name: product.name.clone(),
                    covers: product.covers,
                    quantity: line.quantity,
                    net_unit_price: line.net_unit_price,
                    net_amount: line.net_amount,
                    vat_rate: format!("{:.2}", line.vat_rate.percent()),
                    informative_gross: line.informative_gross,
                })
                .collect(),
            vat_summary: quote
                .vat_summary
                .into_iter()
                .map(|s| VatSummaryResponse {
                    vat_rate: format!("{:.2}", s.vat_rate.percent()),
                    taxable: s.taxable,
                    vat: s.vat,
                })
                .collect(),
            net_total: quote.net_total,
            vat_total: quote.vat_total,
            gross_total: quote.gross_total,
            currency: "EUR",
        }
    }
}

pub fn priced(products: &[(Product, u32)]) -> Quote {
    let items: Vec<_> = products.iter().map(|(p, q)| (p.priced(), *q)).collect();
    catalog::quote(&items)
}

/// `POST /api/v1/quotes`
pub async fn create_quote(
    state: web::Data<AppState>,
    Buyer(user): Buyer,
    body: web::Json<QuoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let products = match (body.lines, body.codice_fiscale, body.device_serial) {
        (Some(lines), None, None) => {
            let requested = requested_lines(&lines, user.role)?;
            state
                .with_conn(move |conn| catalog::resolve(conn, &user.brand, &requested))
                .await?
        }
        (None, Some(cf), Some(serial)) => {
            let cf = CodiceFiscale::parse(&cf)
                .map_err(|e| ApiError::invalid_field("codice_fiscale", e.rule(), e.to_string()))?;
            state
                .with_conn(move |conn| -> Result<_, ApiError> {
                    let proposed = catalog::propose_for_device(
                        conn,
                        &user.brand,
                        &cf,
                        serial.trim(),
                        Utc::now(),
                    )?;
                    Ok(catalog::resolve(conn, &user.brand, &proposed)?)
                })
                .await?
        }
        _ => {
            return Err(ApiError::MalformedRequest(
                "send either lines, or codice_fiscale together with device_serial".into(),
            ))
        }
    };
    let quote = priced(&products);
    Ok(HttpResponse::Ok().json(QuoteResponse::new(&products, quote)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    active: bool,
}

impl From<ProductChangeError> for ApiError {
    fn from(error: ProductChangeError) -> Self {
        match error {
            ProductChangeError::NotFound => {
                ApiError::not_found("unknown-product", "Unknown product", error.to_string())
            }
            ProductChangeError::Storage(e) => ApiError::storage(e),
        }
    }
}

/// `PATCH /api/v1/backoffice/products/{id}` with `{"active": false}` takes a product off
/// sale (`true` puts it back).
pub async fn update_product(
    state: web::Data<AppState>,
    BackOffice(operator): BackOffice,
    id: web::Path<String>,
    body: web::Json<ProductPatch>,
) -> Result<HttpResponse, ApiError> {
    let active = body.active;
    let product = state
        .with_conn(move |conn| {
            catalog::set_active(conn, &operator.id, &operator.brand, &id, active, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProductResponse::from(product)))
}
