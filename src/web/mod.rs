//! The shop's pages: server-rendered HTML (handlebars templates in `templates/pages/`),
//! in Italian, working without JavaScript, over the same domain functions as the JSON
//! API. `shop` holds the handlers; this module the page plumbing: templates, the error
//! page, the browser session and CSRF protection.
//!
//! Every form that changes something is a POST carrying a CSRF token that the page puts in
//! a hidden field. In a signed-in session the token is an HMAC of the session cookie under
//! a server key: only pages of that session carry it, and a cookie planted from elsewhere
//! (a sibling subdomain, a man in the middle on plain http) cannot make a token the
//! session accepts. Signed out (the sign-in and sign-up forms) it is the double-submit
//! pattern: a random value in an HttpOnly `SameSite=Strict` cookie that the page repeats.
//! That token is worth nothing once a session exists, so one planted before the sign-in
//! never carries into the session. The session cookie is HttpOnly, `SameSite=Lax`, and
//! `Secure` when rinnovo is reached over https (`RINNOVO_PUBLIC_URL`).

/// A front end's table of pages, one line a route: `get "/negozio" => home,`. Where two
/// paths could match one URL, the earlier line wins.
macro_rules! pages {
    ($cfg:ident; $($method:ident $path:expr => $handler:path,)*) => {
        $( $cfg.route($path, actix_web::web::$method().to($handler)); )*
    };
}

mod account;
mod backoffice;
pub mod billing;
mod guide;
mod holders;
mod officer;
mod page_context;
mod pages;
mod paging;
mod recovery;
mod shop;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Role, User};
use crate::http::{AppState, Identify, Identity, State};

pub use crate::http::italian::{euro, role_label};
pub use page_context::{brand_named, BuyerPage, OperatorPage, VisitorPage};
pub use pages::render;

const SESSION_COOKIE: &str = "rinnovo_session";
const CSRF_COOKIE: &str = "rinnovo_csrf";
/// The brand of the last sign-in, so a signed-out visitor lands on the right form.
const BRAND_COOKIE: &str = "rinnovo_brand";

pub fn configure(cfg: &mut web::ServiceConfig) {
    shop::configure(cfg);
    holders::configure(cfg);
    guide::configure(cfg);
    account::configure(cfg);
    billing::configure(cfg);
    officer::configure(cfg);
    recovery::configure(cfg);
    backoffice::configure(cfg);
}

/// What can go wrong on a page, each shown as a page (or a redirect to the sign-in).
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("sign in first")]
    SignIn { brand: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The form's CSRF token is missing or does not match the cookie.
    #[error("the form expired or did not come from this site; reload the page and retry")]
    Csrf,
    /// A domain refusal shown as a page: its identity's status and Italian message.
    #[error("{message}")]
    Refused { status: StatusCode, message: String },
    #[error("the service cannot reach its database; retry shortly")]
    Unavailable(#[source] anyhow::Error),
    #[error("an unexpected error occurred")]
    Unexpected(#[source] anyhow::Error),
}

impl WebError {
    pub fn storage(error: impl Into<anyhow::Error>) -> Self {
        let error = error.into();
        match crate::http::ApiError::storage(error) {
            crate::http::ApiError::Unavailable(e)
            | crate::http::ApiError::StorageReadOnly { cause: e, .. } => Self::Unavailable(e),
            crate::http::ApiError::Unexpected(e) => Self::Unexpected(e),
            other => Self::Unexpected(anyhow::anyhow!("{other}")),
        }
    }
}

/// A domain error as the pages show it: its identity (status, Italian message), or the
/// storage failure as an error page. Handlers that show the refusal next to a form field
/// take the identity; the others let `?` turn the error into its page.
pub fn refusal<E: Identify>(error: E) -> Result<Identity, WebError> {
    error.identify().map_err(WebError::storage)
}

/// A page showing a refusal, with the refusal's `Retry-After` when it is a rate limit, as
/// the API's problem has it.
pub fn with_retry_after(mut response: HttpResponse, identity: &Identity) -> HttpResponse {
    if let Some(seconds) = identity.retry_after_seconds() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The status of a form shown again with a refusal: what was typed is wrong (422) where
/// the API answers that the field is invalid (400) or names nothing known (404).
pub fn form_status(identity: &Identity) -> StatusCode {
    match identity.kind.status {
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND => StatusCode::UNPROCESSABLE_ENTITY,
        other => other,
    }
}

impl From<Identity> for WebError {
    fn from(identity: Identity) -> Self {
        Self::Refused {
            status: identity.kind.status,
            message: identity.italian,
        }
    }
}

impl<E: Identify> From<E> for WebError {
    fn from(error: E) -> Self {
        match error.identify() {
            Ok(identity) => identity.into(),
            Err(storage) => Self::storage(storage),
        }
    }
}

/// What a buyer or an operator reads when a typed coupon code does not parse.
pub const COUPON_CODE_INVALID: &str = "Il codice non è valido: controlla di averlo copiato per intero (5 gruppi, l'ultimo di un carattere).";

impl From<diesel::result::Error> for WebError {
    fn from(error: diesel::result::Error) -> Self {
        Self::storage(error)
    }
}

impl From<actix_web::error::BlockingError> for WebError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::Unexpected(anyhow::anyhow!("{error}"))
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Refused { status, .. } => *status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::SignIn { brand } => {
                return see_other(&format!("/negozio/{brand}/accedi"));
            }
            Self::Unexpected(cause) => tracing::error!(error = ?cause, "page failed"),
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
            _ => {}
        }
        let title = match self.status_code() {
            StatusCode::FORBIDDEN => "Operazione non consentita",
            StatusCode::NOT_FOUND => "Pagina non trovata",
            StatusCode::TOO_MANY_REQUESTS => "Troppi tentativi",
            StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                "Operazione non possibile"
            }
            StatusCode::SERVICE_UNAVAILABLE => "Servizio momentaneamente non disponibile",
            _ => "Si è verificato un errore",
        };
        let detail = match self {
            Self::Csrf => {
                "Il modulo è scaduto o non proviene da questo sito: ricarica la pagina e riprova."
                    .to_owned()
            }
            Self::Unavailable(_) => "Riprova tra qualche istante.".to_owned(),
            Self::Unexpected(_) => {
                "L'errore è stato registrato; riprova più tardi o contatta l'assistenza.".to_owned()
            }
            other => other.to_string(),
        };
        let body = render("errore", &json!({ "title": title, "detail": detail }))
            .unwrap_or_else(|_| format!("<!DOCTYPE html><title>{title}</title><p>{title}</p>"));
        page_response(self.status_code(), body)
    }
}

/// What a page handler answers: the page or a redirect, else the error's page.
pub type PageResult = Result<HttpResponse, WebError>;

/// The query string of a GET form, field by field.
pub type Query = web::Query<std::collections::HashMap<String, String>>;

/// Runs `work` with a database connection on the blocking pool.
pub async fn with_conn<T, F>(state: &State, work: F) -> Result<T, WebError>
where
    T: Send + 'static,
    F: FnOnce(&mut crate::db::DbConnection) -> Result<T, WebError> + Send + 'static,
{
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get().map_err(WebError::storage)?;
        work(&mut conn)
    })
    .await?
}

/// A page, with the CSRF cookie if the visitor had none yet.
pub fn page(
    state: &AppState,
    csrf: &Csrf,
    status: StatusCode,
    name: &str,
    context: serde_json::Value,
) -> PageResult {
    let body = render(name, &context).map_err(WebError::Unexpected)?;
    let mut response = page_response(status, body);
    if let Some(cookie) = csrf.cookie(state) {
        response
            .add_cookie(&cookie)
            .map_err(|e| WebError::Unexpected(e.into()))?;
    }
    Ok(response)
}

/// An HTML response with the headers every page gets.
pub fn page_response(status: StatusCode, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Cookies are `Secure` when users reach rinnovo over https.
fn secure(state: &AppState) -> bool {
    state.config.public_url.starts_with("https://")
}

fn session_cookie(state: &AppState, token: &str) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(state))
        .max_age(actix_web::cookie::time::Duration::hours(
            crate::auth::web_sessions::SESSION_HOURS,
        ))
        .finish()
}

fn expired_cookie(name: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, "").path("/").finish();
    cookie.make_removal();
    cookie
}

/// The page's CSRF token: bound to the session when there is one, else the CSRF cookie's
/// (or a new one, to set with [`Csrf::cookie`]).
pub struct Csrf {
    pub token: String,
    fresh: bool,
}

impl Csrf {
    pub fn of(request: &HttpRequest) -> Self {
        if let Some(token) = session_bound_token(request) {
            return Self {
                token,
                fresh: false,
            };
        }
        match request.cookie(CSRF_COOKIE) {
            Some(cookie) if cookie.value().len() >= 32 => Self {
                token: cookie.value().to_owned(),
                fresh: false,
            },
            _ => Self {
                token: crate::secrets::hex(&crate::secrets::random_bytes::<32>()),
                fresh: true,
            },
        }
    }

    /// The cookie to set along with the page, if the token is new.
    pub fn cookie(&self, state: &AppState) -> Option<Cookie<'static>> {
        self.fresh.then(|| {
            Cookie::build(CSRF_COOKIE, self.token.clone())
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(secure(state))
                .finish()
        })
    }

    /// A POSTed form is genuine if its token is the session's or, with no session, the
    /// CSRF cookie's. With a session cookie the CSRF cookie is not looked at, so a planted
    /// one is no use.
    pub fn check(request: &HttpRequest, submitted: &str) -> Result<(), WebError> {
        let expected = match session_bound_token(request) {
            Some(token) => token,
            None => {
                let cookie = request.cookie(CSRF_COOKIE).ok_or(WebError::Csrf)?;
                cookie.value().to_owned()
            }
        };
        let expected = expected.as_bytes();
        let submitted = submitted.as_bytes();
        // Constant time: the comparison does not tell how much of a guess was right.
        let same = expected.len() == submitted.len()
            && expected
                .iter()
                .zip(submitted)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same && expected.len() >= 32 {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }
}

/// The CSRF token of the request's session, if it carries a session cookie. Whether the
/// session is alive is the handler's business; a dead one signs nothing in anyway.
fn session_bound_token(request: &HttpRequest) -> Option<String> {
    let session = request.cookie(SESSION_COOKIE)?;
    if session.value().is_empty() {
        return None;
    }
    let state = request.app_data::<State>()?;
    Some(state.csrf_key.token_for(session.value()))
}

/// A POSTed form whose CSRF token matched the cookie: its other fields.
pub struct CheckedForm<F>(pub F);

#[derive(Deserialize)]
struct Posted<F> {
    #[serde(default)]
    csrf_token: String,
    #[serde(flatten)]
    fields: F,
}

impl<F: DeserializeOwned + 'static> FromRequest for CheckedForm<F> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let form = web::Form::<Posted<F>>::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let Posted { csrf_token, fields } = form.await?.into_inner();
            Csrf::check(&request, &csrf_token)?;
            Ok(Self(fields))
        })
    }
}

/// A form that carries nothing but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

/// Whoever the session cookie names, if anyone: the common part of [`Shopper`] and
/// [`Operator`].
async fn session_user(request: &HttpRequest) -> Result<User, WebError> {
    let state = request
        .app_data::<State>()
        .cloned()
        .ok_or_else(|| WebError::Unexpected(anyhow::anyhow!("no state")))?;
    let brand = brand_hint(request);
    let Some(token) = request.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Err(WebError::SignIn { brand });
    };
    let pool = state.pool.clone();
    let user = web::block(move || -> Result<Option<User>, WebError> {
        let mut conn = pool.get().map_err(WebError::storage)?;
        crate::auth::web_sessions::user_of(&mut conn, &token, Utc::now()).map_err(WebError::storage)
    })
    .await??;
    user.ok_or(WebError::SignIn { brand })
}

/// Whoever the session cookie names, or nobody: for the pages anyone may open (the
/// confirmation link's), which still tell a signed-in user apart.
pub(crate) async fn optional_session_user(request: &HttpRequest) -> Result<Option<User>, WebError> {
    match session_user(request).await {
        Ok(user) => Ok(Some(user)),
        Err(WebError::SignIn { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The brand of the last sign-in (a cookie), to send a signed-out visitor to the right
/// sign-in form. Only a plain brand id is taken: it ends up in a redirect.
pub fn brand_hint(request: &HttpRequest) -> String {
    request
        .cookie(BRAND_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 32 && b.chars().all(|c| c.is_ascii_lowercase()))
        .unwrap_or_else(|| "visura".to_owned())
}

type UserFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, WebError>>>>;

/// The session's user, as `who`, if `allowed` takes their role, else a 403 page saying
/// `refusal`.
fn signed_in_as<T: 'static>(
    request: &HttpRequest,
    allowed: fn(Role) -> bool,
    refusal: &'static str,
    who: fn(User) -> T,
) -> UserFuture<T> {
    let request = request.clone();
    Box::pin(async move {
        let user = session_user(&request).await?;
        if allowed(user.role) {
            Ok(who(user))
        } else {
            Err(WebError::Forbidden(refusal.into()))
        }
    })
}

/// A signed-in buyer (customer or registration officer) of the shop.
pub struct Shopper(pub User);

impl FromRequest for Shopper {
    type Error = WebError;
    type Future = UserFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let refusal = "Il negozio è per i clienti e gli incaricati alla registrazione: il back-office è su /backoffice.";
        signed_in_as(request, Role::buys, refusal, Shopper)
    }
}

/// A signed-in back-office operator.
pub struct Operator(pub User);

impl FromRequest for Operator {
    type Error = WebError;
    type Future = UserFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let refusal = "Il back-office è riservato agli operatori.";
        signed_in_as(request, |role| role == Role::BackOffice, refusal, Operator)
    }
}

/// Where a user lands after signing in.
pub fn home_of(role: Role) -> &'static str {
    if role.buys() {
        "/negozio/acquista"
    } else {
        "/backoffice"
    }
}

/// The shop's sections, in the header of every page of a buyer.
const SHOP_NAV: &[(&str, &str)] = &[
    ("/negozio/acquista", "Acquista coupon"),
    ("/negozio/ordini", "Ordini"),
    ("/negozio/coupon", "I tuoi coupon"),
    ("/negozio/prepagato", "Conto prepagato"),
    ("/negozio/profilo", "Il tuo profilo"),
];

/// The back-office's sections.
const BACKOFFICE_NAV: &[(&str, &str)] = &[
    ("/backoffice/pagamenti", "Pagamenti"),
    ("/backoffice/ordini", "Ordini"),
    ("/backoffice/fatture", "Fatture"),
    ("/backoffice/estratti", "Estratti conto"),
    ("/backoffice/riepilogo", "Riepilogo giornaliero"),
    ("/backoffice/prepagati", "Conti prepagati"),
    ("/backoffice/coupon", "Coupon"),
    ("/backoffice/email", "Email non consegnate"),
    ("/backoffice/ricevute-sdi", "Ricevute SdI"),
    ("/backoffice/fatture-scartate", "Fatture scartate"),
    ("/backoffice/sdi", "Trasmissioni SdI"),
    ("/backoffice/utenti", "Utenti"),
];

/// What the layout needs on every page of a signed-in user: who, the brand, the CSRF
/// token of the sign-out form, and the sections of the shop or of the back-office.
pub fn signed_in_context(user: &User, brand_name: &str, csrf: &Csrf) -> serde_json::Value {
    let nav = if user.role.buys() {
        SHOP_NAV
    } else {
        BACKOFFICE_NAV
    };
    json!({
        "user": {
            "name": user.name,
            "email": user.email.to_string(),
            "role": role_label(user.role),
            "home": home_of(user.role),
            // Buyers are asked to confirm (they cannot buy until then).
            "email_unconfirmed": user.role.buys() && user.email_confirmed_at.is_none(),
        },
        "brand_name": brand_name,
        "csrf_token": csrf.token,
        // The forms that set a password state the rule's own length.
        "password_min_length": crate::auth::password::MIN_LENGTH,
        "nav": nav.iter().map(|(href, label)| json!({ "href": href, "label": label })).collect::<Vec<_>>(),
    })
}

/// A document (invoice or credit note) as the pages list it, with its downloads under
/// `base` (`/negozio/fatture`, `/backoffice/fatture`).
pub fn document_row(document: &crate::invoices::StoredDocument, base: &str) -> serde_json::Value {
    use crate::http::italian;
    json!({
        "id": document.id,
        "kind": italian::document_kind_label(document.kind),
        "number": document.number,
        "date": document.issue_date.format("%d/%m/%Y").to_string(),
        "total": euro(crate::money::Money::from_cents(document.gross_cents)),
        "status": italian::invoice_status_label(document.status),
        "status_code": document.status.as_str(),
        "xml_url": format!("{base}/{}/xml", document.id),
        "pdf_url": format!("{base}/{}/pdf", document.id),
        "file_name": document.file_name,
    })
}

/// Adds `extra`'s fields to a page context.
pub fn merge(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}
