//! Coupons: the owner's list (masked), the public "verifica stato coupon" check
//! (rate-limited), and the back-office's void with refund.

use actix_web::{get, post};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract::Buyer;
use super::json::JsonObject;
use super::operation::{backoffice_action, Acting};
use super::query::{page_of, Listed, NoFilters, PageParams};
use super::responses::{BadPaging, BadReason, NotBuyer};
use super::{ApiError, ApiResult, Problem, State};
use crate::catalog::Covers;
use crate::coupons::{self, CouponCode, CouponView, ShownStatus};
use crate::money::Money;
use crate::validation::Reason;

/// One of the buyer's coupons; the code is masked (the full code is in the delivery email).
#[derive(Serialize, utoipa::ToSchema)]
struct CouponResponse {
    id: String,
    /// The masked code: only the last group and the check character are shown.
    #[schema(example = "****-****-****-P9RB-T")]
    code: String,
    product_code: String,
    product_name: String,
    covers: Covers,
    order_id: String,
    invoice_number: Option<String>,
    /// The stored state, or `expired` past `valid_until` if unused.
    status: ShownStatus,
    valid_until: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

page_of!(
    /// A page of the buyer's coupons, newest first, with the total.
    CouponListResponse { coupons: CouponResponse }
);

impl From<CouponView> for CouponResponse {
    fn from(c: CouponView) -> Self {
        Self {
            id: c.id,
            code: c.hint,
            product_code: c.product_code,
            product_name: c.product_name,
            covers: c.covers,
            order_id: c.order_id,
            invoice_number: c.invoice_number,
            status: c.status,
            valid_until: c.valid_until,
            created_at: c.created_at,
        }
    }
}

/// List the caller's coupons, codes masked
///
/// Customers and registration officers (the roles that buy), newest first, a page at a time.
/// The full codes are in the delivery email only.
#[utoipa::path(
    operation_id = "coupons_list",
    params(PageParams),
    responses(
        (status = 200, description = "A page of the caller's coupons", body = CouponListResponse),
        BadPaging,
        NotBuyer,
    )
)]
#[get("/api/v1/coupons")]
pub async fn list(state: State, Buyer(user): Buyer, listed: Listed<NoFilters>) -> ApiResult {
    let page = listed.page()?;
    let read = move |conn: &mut _| {
        coupons::page_for_owner(conn, &user.id, page, Utc::now()).map_err(ApiError::storage)
    };
    let found = listed.read_page(&state, page, read, CouponResponse::from);
    Ok(HttpResponse::Ok().json(CouponListResponse::from(found.await?)))
}

/// Export the caller's coupons as CSV, codes masked
///
/// Every coupon the caller bought, newest first: masked code, product, status, order,
/// invoice, and the dates bought, valid until, used and voided. Made for a spreadsheet
/// opened in Italy: `;` between columns, dates as dd/mm/yyyy, UTF-8 with a byte-order mark.
/// Customers and registration officers.
#[utoipa::path(
    operation_id = "coupons_export",
    responses(
        (status = 200, description = "The caller's coupons as CSV", content_type = "text/csv",
            body = String, example = "codice;prodotto;descrizione;stato;ordine;fattura;acquistato_il;valido_fino_al;usato_il;annullato_il\n****-****-****-P9RB-T;RIN-FIRMA-CNS;Rinnovo firma CNS;disponibile;0193...;V-2026-000001;01/12/2026;01/12/2027;;\n"),
        NotBuyer,
    )
)]
#[get("/api/v1/coupons/export")]
pub async fn export(state: State, Buyer(user): Buyer) -> ApiResult {
    let file = state
        .with_conn(move |conn| {
            coupons::export::csv_for_owner(conn, &user.id, Utc::now()).map_err(ApiError::storage)
        })
        .await?;
    Ok(csv_download(file))
}

/// A coupon export as a file download, for the API and the pages.
pub fn csv_download(file: Vec<u8>) -> HttpResponse {
    csv_file("coupon", file)
}

/// A CSV file download named `<stem>-<today>.csv`.
pub fn csv_file(stem: &str, file: Vec<u8>) -> HttpResponse {
    let name = format!("{stem}-{}.csv", Utc::now().format("%Y%m%d"));
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(file)
}

/// What anyone holding a coupon code may know about it.
#[derive(Serialize, utoipa::ToSchema)]
struct StatusResponse {
    /// The code, in groups of four.
    #[schema(example = "7KQ2-M0ZD-4HXN-P9RB-T")]
    code: String,
    /// The stored state, or `expired` past `valid_until` if unused.
    status: ShownStatus,
    covers: Covers,
    /// The brand that sold the coupon.
    brand: String,
    valid_until: DateTime<Utc>,
}

/// Check a coupon's status by its code (public, rate-limited)
///
/// No sign-in needed. A mistyped code is refused by its check character before any lookup and
/// does not count against the rate limit; other checks are limited per client address.
#[utoipa::path(
    operation_id = "coupons_status",
    security(()),
    params(("code" = String, Path, description = "The coupon code, with or without dashes",
        example = "7KQ2-M0ZD-4HXN-P9RB-T")),
    responses(
        (status = 200, description = "The coupon's status", body = StatusResponse),
        (status = 400, description = "Not a valid coupon code: wrong length, character or check \
character (`/problems/invalid-field`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No coupon has this code (`/problems/unknown-coupon`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many checks from this address \
(`/problems/too-many-requests`)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before checking again"))),
    )
)]
#[get("/api/v1/coupons/{code}/status")]
pub async fn status(state: State, request: HttpRequest, code: web::Path<String>) -> ApiResult {
    let code = CouponCode::parse(&code).map_err(|e| ApiError::broken_field("code", e))?;
    let client = super::client_address(&request);
    let key = state.coupon_key.clone();
    let display = code.to_string();
    let found = state
        .with_conn(move |conn| coupons::public_status(conn, &key, &code, &client, Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(StatusResponse {
        code: display,
        status: found.status,
        covers: found.covers,
        brand: found.brand_id,
        valid_until: found.valid_until,
    }))
}

/// Why the coupon is voided (kept in the audit log).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    #[schema(example = "customer cancelled the order")]
    reason: String,
}

/// The coupon is voided and its price credited to the owner's prepaid account.
#[derive(Serialize, utoipa::ToSchema)]
struct VoidResponse {
    #[schema(example = "voided")]
    status: &'static str,
    /// The amount credited to the owner's prepaid account, in euro.
    #[schema(value_type = String, example = "31.72")]
    refunded: Money,
    /// The number of the credit note (nota di credito) that credits the coupon; null for
    /// an order fulfilled before invoices were issued, which has no invoice to credit.
    #[schema(example = "NC-V2026-000001")]
    credit_note: Option<String>,
}

backoffice_action!(
    /// Void a coupon and refund it to the owner's prepaid account
    ///
    /// Back-office operators only, for coupons of their brand that are still available.
    post void = "/api/v1/backoffice/coupons/{id}/void" as "coupons_void",
    on "id" "The coupon's id", takes VoidRequest,
    answers (status = 200, description = "Voided and refunded, with its credit note", body = VoidResponse,
            example = json!({ "status": "voided", "refunded": "31.72", "credit_note": "NC-V2026-000001" })),
    refuses (
        BadReason,
        (status = 403, description = "The caller is not a back-office operator \
(`/problems/forbidden-role`), or the coupon belongs to another brand (`/problems/other-brand`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such coupon (`/problems/unknown-coupon`), or its owner \
has no prepaid account (`/problems/unknown-account`)",
            body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The coupon is not available any more: reserved, redeemed \
or voided (`/problems/coupon-not-available`), or its invoice's credit notes would credit more \
than it sold (`/problems/credit-exceeds-invoice`)",
            body = Problem, content_type = "application/problem+json"),
    ),
    by void_coupon
);

async fn void_coupon(
    Acting(state, operator, id): Acting,
    body: JsonObject<VoidRequest>,
) -> ApiResult {
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::broken_field("reason", e))?;
    let voided = state
        .with_conn(move |conn| coupons::void(conn, operator.acting(), &id, &reason, Utc::now()))
        .await?;
    Ok(HttpResponse::Ok().json(VoidResponse {
        status: "voided",
        refunded: voided.refund,
        credit_note: voided.credit_note.map(|note| note.number),
    }))
}
