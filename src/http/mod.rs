//! The HTTP API: routes, thin handlers, and the mapping of errors to problem JSON.

mod agent;
pub mod auth;
mod billing;
pub mod card_payments;
mod catalog;
mod coupons;
pub(crate) use coupons::csv_download;
mod backoffice_invoices;
pub mod downloads;
mod emails;
mod errors;
mod extract;
mod health;
mod idempotent;
mod invoices;
pub mod italian;
mod json;
mod lookup;
mod me;
pub mod metrics;
mod officer_applications;
mod openapi;
mod operation;
mod orders;
mod payments;
mod prepaid;
pub mod problem;
mod query;
mod renewal_info;
mod renewals;
mod responses;
mod sdi;
mod sdi_receipts;
mod users;

use std::sync::Arc;

use actix_web::middleware::ErrorHandlers;
use actix_web::{web, HttpResponse};

pub use errors::{Identify, Identity};
pub use problem::{ApiError, Problem, PROBLEM_CONTENT_TYPE};

/// What every handler answers: a response, or the problem that refuses the request.
pub type ApiResult = Result<HttpResponse, ApiError>;

use crate::auth::TokenIssuer;
use crate::ca::CertificateAuthority;
use crate::config::Config;
use crate::coupons::CouponKey;
use crate::db::{DbConnection, Pool};

/// Largest JSON body accepted; bulk orders of a thousand lines fit comfortably.
const JSON_BODY_LIMIT: usize = 256 * 1024;

/// Longest request target (path and query) served. Every URL of the API and the pages is
/// far shorter; 8 KiB is what common proxies allow by default. Up to about 64 KiB the
/// HTTP layer hands the request to us and it gets a 414 problem here; beyond that the
/// HTTP layer itself refuses the request head (400 or 431) and closes the connection.
pub const MAX_URL_LENGTH: usize = 8 * 1024;

/// The 414 answer for a request whose URL is longer than `MAX_URL_LENGTH`, if it is.
pub fn refuse_long_url(request: &actix_web::dev::ServiceRequest) -> Option<HttpResponse> {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    (length > MAX_URL_LENGTH).then(|| {
        actix_web::ResponseError::error_response(
            &ApiError::refused(
                actix_web::http::StatusCode::URI_TOO_LONG,
                "url-too-long",
                "URI Too Long",
                format!("the URL has {length} characters; at most {MAX_URL_LENGTH} are served"),
            )
            .on_field("url", "max_length"),
        )
    })
}

/// A query string sent to a documented endpoint that takes none, refused by name (see
/// [`query::Params`] for the endpoints that take some).
pub fn refuse_undeclared_query(request: &actix_web::dev::ServiceRequest) -> Option<HttpResponse> {
    static OPERATIONS: std::sync::LazyLock<query::Operations> =
        std::sync::LazyLock::new(|| query::Operations::of(openapi::document()));
    query::refuse_undeclared_query(&OPERATIONS, request)
        .map(|refusal| actix_web::ResponseError::error_response(&refusal))
}

pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenIssuer>,
    pub coupon_key: Arc<CouponKey>,
    pub ca: Arc<dyn CertificateAuthority>,
    /// The key of the pages' session-bound CSRF tokens.
    pub csrf_key: Arc<crate::auth::web_sessions::CsrfKey>,
    /// Card payments, when a provider is configured.
    pub card: Option<crate::card::CardSettings>,
}

/// The 429 problem (with Retry-After) that says `too many <what>`.
pub fn too_many(what: &str, retry_after_seconds: i64) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_seconds,
        detail: format!("too many {what}; retry in {retry_after_seconds} seconds"),
    }
}

/// The caller's brand, which must exist (users belong to one).
pub fn brand_of(conn: &mut DbConnection, id: &str) -> Result<crate::brands::Brand, ApiError> {
    crate::brands::existing(conn, id).map_err(ApiError::Unexpected)
}

/// Whether the body is a multipart form (a file sent from a browser) rather than the file
/// itself: a statement upload takes either, through the API and through the page.
pub fn is_multipart_form(request: &actix_web::HttpRequest) -> bool {
    request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// The client's address, for rate limits: the peer address, not X-Forwarded-For, which a
/// client could forge to dodge a per-address limit. Behind a proxy, the proxy throttles
/// (see README).
pub fn client_address(request: &actix_web::HttpRequest) -> String {
    request
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

impl AppState {
    /// `caller`'s lookups, within the configured limits and renewal policy.
    pub fn lookup_asker(&self, caller: crate::lookup::Caller) -> crate::lookup::Asker {
        crate::lookup::Asker {
            caller,
            limits: self.config.lookup_limits,
            policy: self.config.renewal_policy,
        }
    }

    /// The shop's settings a purchase needs, for `orders::checkout`.
    pub fn till(&self) -> crate::orders::checkout::Till<'_> {
        crate::orders::checkout::Till {
            coupon_key: &self.coupon_key,
            public_url: &self.config.public_url,
            reservation: self.config.reservation,
            card: self.card.as_ref(),
        }
    }

    /// The provider's page of card payment `id`: opened now, or the one already open,
    /// with the service's address and when the worker first asks the provider about it.
    pub async fn open_card_page(
        &self,
        card: &crate::card::CardSettings,
        id: &str,
    ) -> Result<String, crate::payments::card::CardError> {
        let first_check_after = self
            .config
            .card
            .as_ref()
            .map(|c| c.timing.first_check_after)
            .unwrap_or_else(|| chrono::Duration::minutes(10));
        let public_url = &self.config.public_url;
        crate::payments::card::sessions::checkout_url(
            &self.pool,
            card,
            public_url,
            id,
            first_check_after,
        )
        .await
    }

    /// What importing a statement for `operator_id` needs of the service, in the turn of
    /// the operator's brand, for `reconcile::import_upload`.
    pub fn statement_importer<'a>(
        &'a self,
        turn: &'a crate::payments::reconcile::ImportTurn,
        operator_id: &'a str,
    ) -> crate::payments::reconcile::Importer<'a> {
        crate::payments::reconcile::Importer {
            turn,
            operator_id,
            coupon_key: &self.coupon_key,
            public_url: &self.config.public_url,
            spool_dir: &self.config.data_dir,
        }
    }

    /// Runs blocking database work on the blocking thread pool, never on the async
    /// workers. A pool that cannot hand out a connection is a 503.
    pub async fn with_conn<T, E>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(|e| ApiError::Unavailable(e.into()))?;
            work(&mut conn).map_err(Into::into)
        })
        .await
        .map_err(|e| ApiError::Unexpected(e.into()))?
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(JSON_BODY_LIMIT)
            .error_handler(|e, _| problem::json_error(e)),
    )
    .app_data(web::PathConfig::default().error_handler(|e, _| problem::path_error(e)))
    .app_data(web::QueryConfig::default().error_handler(|e, _| problem::query_error(e)))
    .service(web::resource("/api/openapi.json").route(web::get().to(openapi::json)))
    .service(web::resource("/api/docs").route(web::get().to(openapi::viewer_root)))
    .service(web::resource("/api/docs/{file:.*}").route(web::get().to(openapi::viewer)))
    .service(web::resource("/health/live").route(web::get().to(health::live)))
    .service(web::resource("/health/ready").route(web::get().to(health::ready)))
    .service(web::resource("/metrics").route(web::get().to(metrics::scrape)))
    .service(
        web::resource("/api/v1/card/notifications")
            .route(web::post().to(card_payments::notification)),
    )
    .service(
        web::resource("/api/v1/card-payments/{id}/page").route(web::post().to(card_payments::page)),
    )
    .service(
        web::resource("/api/v1/backoffice/card-payments").route(web::get().to(card_payments::list)),
    )
    .service(
        web::resource("/api/v1/backoffice/card-payments/{id}")
            .route(web::get().to(card_payments::show)),
    )
    .service(
        web::resource("/api/v1/backoffice/card-payments/{id}/refunds")
            .route(web::post().to(card_payments::refund)),
    )
    .service(
        web::resource("/api/v1/backoffice/card-payments/{id}/refunds/{refund_id}/retry")
            .route(web::post().to(card_payments::retry_refund)),
    )
    .service(web::resource("/api/v1/auth/signup").route(web::post().to(auth::signup)))
    .service(web::resource("/api/v1/auth/login").route(web::post().to(auth::login)))
    .service(web::resource("/api/v1/auth/refresh").route(web::post().to(auth::refresh)))
    .service(web::resource("/api/v1/auth/logout").route(web::post().to(auth::logout)))
    .service(web::resource("/api/v1/auth/email/confirm").route(web::post().to(auth::confirm_email)))
    .service(
        web::resource("/api/v1/auth/password-reset")
            .route(web::post().to(auth::request_password_reset)),
    )
    .service(
        web::resource("/api/v1/auth/password-reset/confirm")
            .route(web::post().to(auth::confirm_password_reset)),
    )
    .service(
        web::resource("/api/v1/me")
            .route(web::get().to(me::get))
            .route(web::patch().to(me::patch)),
    )
    .service(
        web::resource("/api/v1/me/billing")
            .route(web::get().to(billing::get))
            .route(web::put().to(billing::put)),
    )
    .service(web::resource("/api/v1/me/sessions/revoke").route(web::post().to(me::revoke_sessions)))
    .service(
        web::resource("/api/v1/me/email/confirmation")
            .route(web::post().to(me::resend_confirmation)),
    )
    .service(
        web::resource("/api/v1/me/officer-application")
            .route(web::get().to(officer_applications::mine))
            .route(web::post().to(officer_applications::apply)),
    )
    .service(web::resource("/api/v1/backoffice/users").route(web::get().to(users::list)))
    .service(web::resource("/api/v1/backoffice/users/{id}").route(web::get().to(users::show)))
    .service(
        web::resource("/api/v1/backoffice/users/{id}/disable")
            .route(web::post().to(users::disable)),
    )
    .service(
        web::resource("/api/v1/backoffice/users/{id}/enable").route(web::post().to(users::enable)),
    )
    .service(
        web::resource("/api/v1/backoffice/users/{id}/remove-officer-role")
            .route(web::post().to(users::remove_officer_role)),
    )
    .service(
        web::resource("/api/v1/backoffice/officer-applications")
            .route(web::get().to(officer_applications::list)),
    )
    .service(
        web::resource("/api/v1/backoffice/officer-applications/{id}/approve")
            .route(web::post().to(officer_applications::approve)),
    )
    .service(
        web::resource("/api/v1/backoffice/officer-applications/{id}/refuse")
            .route(web::post().to(officer_applications::refuse)),
    )
    .service(
        web::resource("/api/v1/holders/bulk-lookup").route(web::post().to(lookup::bulk_lookup)),
    )
    .service(
        web::resource("/api/v1/holders/{codice_fiscale}/devices")
            .route(web::get().to(lookup::holder_devices)),
    )
    .service(web::resource("/api/v1/agent/challenges").route(web::post().to(agent::challenge)))
    .service(web::resource("/api/v1/agent/sessions").route(web::post().to(agent::session)))
    .service(web::resource("/api/v1/agent/certificates").route(web::get().to(agent::certificates)))
    .service(
        web::resource("/api/v1/agent/renewals").route(web::post().to(renewals::request_renewals)),
    )
    .service(web::resource("/api/v1/agent/renewals/{id}").route(web::get().to(renewals::renewal)))
    .service(
        web::resource("/api/v1/agent/renewals/{id}/installed")
            .route(web::post().to(renewals::installed)),
    )
    .service(
        web::resource("/api/v1/renewal-info/{cert_id}").route(web::get().to(renewal_info::show)),
    )
    .service(web::resource("/api/v1/products").route(web::get().to(catalog::products)))
    .service(web::resource("/api/v1/quotes").route(web::post().to(catalog::create_quote)))
    .service(
        web::resource("/api/v1/backoffice/products/{id}")
            .route(web::patch().to(catalog::update_product)),
    )
    .service(
        web::resource("/api/v1/orders")
            .route(web::get().to(orders::list))
            .route(web::post().to(orders::create)),
    )
    .service(web::resource("/api/v1/orders/{id}").route(web::get().to(orders::show)))
    .service(web::resource("/api/v1/orders/{id}/invoice.xml").route(web::get().to(invoices::xml)))
    .service(
        web::resource("/api/v1/orders/{id}/documents").route(web::get().to(invoices::of_order)),
    )
    .service(
        web::resource("/api/v1/invoices/{id}/xml").route(web::get().to(invoices::document_xml)),
    )
    .service(
        web::resource("/api/v1/invoices/{id}/pdf").route(web::get().to(invoices::document_pdf)),
    )
    .service(
        web::resource("/api/v1/backoffice/invoices")
            .route(web::get().to(backoffice_invoices::list)),
    )
    .service(
        web::resource("/api/v1/backoffice/invoices/export.zip")
            .route(web::get().to(backoffice_invoices::export)),
    )
    .service(
        web::resource("/api/v1/orders/{id}/codes/resend")
            .route(web::post().to(orders::resend_codes)),
    )
    .service(
        web::resource("/api/v1/backoffice/orders/{id}/codes/resend")
            .route(web::post().to(orders::resend_codes_as_operator)),
    )
    .service(web::resource("/api/v1/coupons").route(web::get().to(coupons::list)))
    .service(web::resource("/api/v1/coupons/export").route(web::get().to(coupons::export)))
    .service(web::resource("/api/v1/coupons/{code}/status").route(web::get().to(coupons::status)))
    .service(
        web::resource("/api/v1/backoffice/coupons/{id}/void").route(web::post().to(coupons::void)),
    )
    .service(web::resource("/api/v1/backoffice/emails").route(web::get().to(emails::list)))
    .service(
        web::resource("/api/v1/backoffice/emails/{id}/retry").route(web::post().to(emails::retry)),
    )
    .service(web::resource("/api/v1/backoffice/sdi/transmissions").route(web::get().to(sdi::list)))
    .service(
        web::resource("/api/v1/backoffice/sdi/transmissions/{id}/retry")
            .route(web::post().to(sdi::retry)),
    )
    .service(web::resource("/api/v1/prepaid").route(web::get().to(prepaid::balance)))
    .service(web::resource("/api/v1/prepaid/entries").route(web::get().to(prepaid::entries)))
    .service(
        web::resource("/api/v1/prepaid/topups")
            .route(web::get().to(prepaid::list_top_ups))
            .route(web::post().to(prepaid::request_top_up)),
    )
    .service(
        web::resource("/api/v1/backoffice/statements")
            .route(web::get().to(payments::imports::statements))
            .route(web::post().to(payments::imports::import)),
    )
    .service(
        web::resource("/api/v1/backoffice/payments").route(web::get().to(payments::queue::list)),
    )
    .service(
        web::resource("/api/v1/backoffice/payments/summary")
            .route(web::get().to(payments::summary::summary)),
    )
    .service(
        web::resource("/api/v1/backoffice/payments/{id}")
            .route(web::get().to(payments::queue::show)),
    )
    .service(
        web::resource("/api/v1/backoffice/payments/{id}/match")
            .route(web::post().to(payments::queue::match_by_hand)),
    )
    .service(
        web::resource("/api/v1/backoffice/payments/{id}/refund")
            .route(web::post().to(payments::queue::refund)),
    )
    .service(web::resource("/api/v1/backoffice/prepaid").route(web::get().to(prepaid::search)))
    .service(
        web::resource("/api/v1/backoffice/prepaid/{account}").route(web::get().to(prepaid::show)),
    )
    .service(
        web::resource("/api/v1/backoffice/prepaid/{account}/adjustments")
            .route(web::post().to(prepaid::adjust)),
    )
    .service(
        web::resource("/api/v1/backoffice/sdi/receipts")
            .route(web::get().to(sdi_receipts::list))
            .route(web::post().to(sdi_receipts::import)),
    )
    .service(
        web::resource("/api/v1/backoffice/sdi/rejected")
            .route(web::get().to(sdi_receipts::rejected)),
    )
    .service(
        web::resource("/api/v1/backoffice/sdi/rejected/{id}/resend")
            .route(web::post().to(sdi_receipts::resend)),
    );
}

/// Every error response leaves as problem JSON, whoever produced it.
pub fn problem_json_for_all_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(problem::problem_for_any_error)
}
