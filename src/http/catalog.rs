//! `GET /api/v1/products` and `POST /api/v1/quotes`.

use actix_web::{get, patch, post};
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::extract::{Buyer, CurrentUser};
use super::json::JsonObject;
use super::operation::{backoffice_action, Acting};
use super::responses::{MalformedBody, NotBuyer, NotOperator, TooManyLookups, UnknownHolder};
use super::{ApiError, ApiResult, Problem, State};
use crate::catalog::{
    self, Covers, Product, ProductChange, Quote, RequestedLine, UnavailableNotice,
};
use crate::money::Money;
use crate::orders::checkout::{self, Cart};
use crate::registry::CodiceFiscale;

/// A coupon on sale.
#[derive(Serialize, utoipa::ToSchema)]
struct ProductResponse {
    id: String,
    #[schema(example = "RIN-FIRMA")]
    code: String,
    name: String,
    covers: Covers,
    /// Sold to professionals (registration officers) only.
    professional: bool,
    /// Net unit price, in euro.
    #[schema(value_type = String, example = "31.72")]
    net_price: Money,
    /// VAT rate in percent.
    #[schema(example = "22.00")]
    vat_rate: String,
    /// `false`: off sale (only the back-office sees such products).
    active: bool,
    /// Set: temporarily unavailable ("momentaneamente non disponibile"), with this
    /// notice; listed, but neither quoted nor sold (`/problems/invalid-field`, rule
    /// `available_product`).
    unavailable_notice: Option<String>,
}

/// The brand's products.
#[derive(Serialize, utoipa::ToSchema)]
struct ProductsResponse {
    products: Vec<ProductResponse>,
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
            unavailable_notice: p.unavailable.map(|n| n.as_str().to_owned()),
        }
    }
}

/// The products of the caller's brand
///
/// Any signed-in user. Customers and registration officers see the products on sale; the
/// back-office also sees deactivated ones.
#[utoipa::path(
    operation_id = "catalog_products",
    responses(
        (status = 200, description = "The products", body = ProductsResponse),
    )
)]
#[get("/api/v1/products")]
pub async fn products(state: State, user: CurrentUser) -> ApiResult {
    let list = state
        .with_conn(move |conn| {
            catalog::visible_to(conn, &user.brand, user.role).map_err(ApiError::storage)
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProductsResponse {
        products: list.into_iter().map(ProductResponse::from).collect(),
    }))
}

/// A product and how many coupons of it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// The product's id or its code (e.g. RIN-FIRMA).
    #[schema(example = "RIN-FIRMA")]
    pub product: String,
    /// At least 1; the role caps the order's total, this line's alone too.
    #[schema(minimum = 1, example = 2)]
    pub quantity: i64,
}

/// Either `lines`, or `codice_fiscale` + `device_serial` to have the coupons proposed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// The products and quantities wanted (without `codice_fiscale`/`device_serial`).
    #[serde(default)]
    lines: Option<Vec<LineRequest>>,
    /// The holder whose device needs renewing (with `device_serial`, without `lines`).
    #[serde(default)]
    #[schema(example = "RSSMRA80A41H501U")]
    codice_fiscale: Option<String>,
    /// The device's serial number (with `codice_fiscale`, without `lines`).
    #[serde(default)]
    device_serial: Option<String>,
}

/// The lines as the domain takes them; `orders::checkout` checks quantities and the
/// role's cap. A quantity outside `u32` is clamped (0 or the largest), so it is refused
/// (below 1, or over the cap) rather than wrapped.
pub fn requested_lines(lines: &[LineRequest]) -> Vec<RequestedLine> {
    lines
        .iter()
        .map(|line| RequestedLine {
            product: line.product.trim().to_owned(),
            quantity: u32::try_from(line.quantity.max(0)).unwrap_or(u32::MAX),
        })
        .collect()
}

/// One priced line of a quote.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteLineResponse {
    product_id: String,
    #[schema(example = "RIN-FIRMA")]
    code: String,
    name: String,
    covers: Covers,
    quantity: u32,
    #[schema(value_type = String, example = "31.72")]
    net_unit_price: Money,
    #[schema(value_type = String, example = "63.44")]
    net_amount: Money,
    /// VAT rate in percent.
    #[schema(example = "22.00")]
    vat_rate: String,
    /// The line's gross amount, for information: VAT is computed on the summary.
    #[schema(value_type = String, example = "77.40")]
    informative_gross: Money,
}

/// Taxable amount and VAT of one VAT rate.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VatSummaryResponse {
    /// VAT rate in percent.
    #[schema(example = "22.00")]
    vat_rate: String,
    #[schema(value_type = String, example = "63.44")]
    taxable: Money,
    #[schema(value_type = String, example = "13.96")]
    vat: Money,
}

/// The price of a set of coupons, without buying them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteResponse {
    lines: Vec<QuoteLineResponse>,
    vat_summary: Vec<VatSummaryResponse>,
    #[schema(value_type = String, example = "63.44")]
    net_total: Money,
    #[schema(value_type = String, example = "13.96")]
    vat_total: Money,
    #[schema(value_type = String, example = "77.40")]
    gross_total: Money,
    /// Always `EUR`.
    #[schema(example = "EUR")]
    currency: &'static str,
}

impl QuoteResponse {
    pub fn new(lines: &[(Product, u32)], quote: Quote) -> Self {
        Self {
            lines: lines
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

/// Price coupons, or have the coupons a device needs proposed and priced
///
/// Customers and registration officers (roles that buy); the back-office is refused. Send
/// either `lines`, or `codice_fiscale` with `device_serial`.
#[utoipa::path(
    operation_id = "catalog_create_quote",
    request_body = QuoteRequest,
    responses(
        (status = 200, description = "The quote", body = QuoteResponse),
        (status = 400, description = "Invalid fields (`/problems/invalid-field`: empty lines, a \
            quantity below 1, an unknown, inactive or repeated product, a bad codice \
            fiscale, an unknown device) or a malformed body, or neither/both of the two forms \
            (`/problems/malformed-request`)",
            body = Problem, content_type = "application/problem+json"),
        NotBuyer,
        UnknownHolder,
        TooManyLookups,
        (status = 422, description = "More coupons than the role may buy in one order, \
            on one line or over several (`/problems/order-too-large`), or nothing on the device to renew or no product \
            fits (`/problems/nothing-to-renew`)",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api/v1/quotes")]
pub async fn create_quote(
    state: State,
    request: HttpRequest,
    Buyer(user): Buyer,
    body: JsonObject<QuoteRequest>,
) -> ApiResult {
    let body = body.into_inner();
    let cart = match (body.lines, body.codice_fiscale, body.device_serial) {
        (Some(lines), None, None) => {
            let requested = requested_lines(&lines);
            state
                .with_conn(move |conn| checkout::price(conn, &user.brand, user.role, &requested))
                .await?
        }
        (None, Some(cf), Some(serial)) => {
            let cf = CodiceFiscale::parse(&cf)
                .map_err(|e| ApiError::broken_field("codice_fiscale", e))?;
            let asker = super::lookup::asker(&state, &user, &request);
            state
                .with_conn(move |conn| -> Result<_, ApiError> {
                    let proposed = catalog::propose_for_caller(
                        conn,
                        &asker,
                        &user.brand,
                        &cf,
                        serial.trim(),
                        Utc::now(),
                    )?;
                    Ok(checkout::priced(catalog::resolve(
                        conn,
                        &user.brand,
                        &proposed,
                    )?))
                })
                .await?
        }
        _ => {
            return Err(ApiError::MalformedRequest(
                "send either lines, or codice_fiscale together with device_serial".into(),
            ))
        }
    };
    let Cart {
        products: lines,
        quote,
    } = cart;
    Ok(HttpResponse::Ok().json(QuoteResponse::new(&lines, quote)))
}

/// What to change of a product: at least one of the two.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    /// Puts the product on sale (`true`) or takes it off (`false`, hidden from the shop).
    #[serde(default)]
    active: Option<bool>,
    /// A notice (one line, at most 300 characters): the product is temporarily
    /// unavailable, listed with the notice but not sold; `null`: available again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "Disponibile dal 15 gennaio")]
    unavailable_notice: Option<Option<String>>,
}

/// A field sent, even as `null` (`Some(None)`), as against a field left out (`None`).
fn present<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

backoffice_action!(
    /// Take a product off sale or put it back; mark it temporarily unavailable
    ///
    /// Back-office only; products of the operator's brand only. Both changes asked together are
    /// made together or not at all.
    patch update_product = "/api/v1/backoffice/products/{id}" as "catalog_update_product",
    on "id" "The product's id", takes ProductPatch,
    answers (status = 200, description = "The product as it is now", body = ProductResponse),
    refuses (
        MalformedBody,
        NotOperator,
        (status = 404, description = "No such product in the operator's brand \
            (`/problems/unknown-product`)",
            body = Problem, content_type = "application/problem+json"),
    ),
    by change_product
);

async fn change_product(
    Acting(state, operator, id): Acting,
    body: JsonObject<ProductPatch>,
) -> ApiResult {
    let ProductPatch {
        active,
        unavailable_notice,
    } = body.into_inner();
    let notice = match unavailable_notice {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => {
            let notice = UnavailableNotice::parse(&text)
                .map_err(|e| ApiError::broken_field("unavailable_notice", e))?;
            Some(Some(notice))
        }
    };
    let product = state
        .with_conn(move |conn| {
            let change = ProductChange {
                active,
                unavailable: notice,
            };
            catalog::change(conn, operator.acting(), &id, &change, Utc::now())
        })
        .await?;
    Ok(HttpResponse::Ok().json(ProductResponse::from(product)))
}
