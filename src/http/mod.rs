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
mod operations;
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
                problem::kinds::URL_TOO_LONG,
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

/// The shared state as a handler receives it.
pub type State = web::Data<AppState>;

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

/// A multipart form part's name and file name; a part without a Content-Disposition has
/// an empty name, which no form of ours uses.
pub fn part_names(part: &actix_multipart::Field) -> (String, Option<String>) {
    match part.content_disposition() {
        Some(disposition) => (
            disposition.get_name().unwrap_or_default().to_owned(),
            disposition.get_filename().map(str::to_owned),
        ),
        None => (String::new(), None),
    }
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
    .service(web::resource("/api/docs/{file:.*}").route(web::get().to(openapi::viewer)));
    operations::Router::serve(cfg);
}

/// Every error response leaves as problem JSON, whoever produced it.
pub fn problem_json_for_all_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(problem::problem_for_any_error)
}
